package web_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"

	"github.com/parley/parley/internal/recording"
	"github.com/parley/parley/internal/servertest"
	"github.com/parley/parley/internal/signaling"
	"github.com/parley/parley/internal/testtool"
)

// h264Frames encodes two seconds of ffmpeg's test pattern (320x240,
// 30 fps, baseline, an IDR with SPS/PPS every second) and returns its
// access units in Annex-B form, one per frame.
func h264Frames(t *testing.T, ffmpeg string) [][]byte {
	t.Helper()
	out := filepath.Join(t.TempDir(), "in.h264")
	cmd := exec.Command(ffmpeg, "-v", "error", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=30", "-t", "2",
		"-c:v", "libx264", "-profile:v", "baseline", "-pix_fmt", "yuv420p", "-g", "30", "-bsf:v", "h264_mp4toannexb", "-f", "h264", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v: %s", err, b)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var aus [][]byte
	var cur []byte
	slice := false
	for _, nal := range bytes.Split(data, []byte{0, 0, 1}) {
		nal = bytes.TrimRight(nal, "\x00")
		if len(nal) < 2 {
			continue
		}
		typ := nal[0] & 0x1f
		isSlice := typ == 1 || typ == 5
		if slice && (!isSlice || nal[1]&0x80 != 0) { // the next frame begins
			aus, cur, slice = append(aus, cur), nil, false
		}
		cur = append(append(cur, 0, 0, 0, 1), nal...)
		slice = slice || isSlice
	}
	return append(aus, cur)
}

// TestWHIPH264Recorded: an encoder that publishes H.264 over WHIP (as
// OBS does) into a recorded call gets its video recorded, as a Matroska
// file that ffprobe reads as H.264 at the size sent and that decodes
// without an error (H.264 used to be logged and skipped).
func TestWHIPH264Recorded(t *testing.T) {
	ffmpeg := testtool.Find(t, "ffmpeg", "ffmpeg")
	ffprobe := testtool.Find(t, "ffmpeg", "ffprobe")
	frames := h264Frames(t, ffmpeg)
	s := servertest.Start(t)
	ann := s.SignUp("ann", "Ann")
	ch := s.CreateChannel(ann, "Stage")
	tok := token(t, s, ann, "obs")
	sock := dialLobby(t, s, ann, ch)
	sock.expect(signaling.TypeHello)

	pub := newWHIPPeer(t)
	video, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
		SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"}, "obs-video", "obs")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pub.pc.AddTransceiverFromTrack(video, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
		t.Fatal(err)
	}
	resp, body := pub.post(s.URL+"/whip/"+ch, tok, pub.offer())
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("WHIP POST: %d %s", resp.StatusCode, body)
	}
	if !strings.Contains(body, "H264") {
		t.Fatalf("the answer did not take H.264:\n%s", body)
	}
	sock.expect(signaling.TypeParticipantJoined)
	pub.trickle(tok)
	connected := make(chan struct{})
	pub.pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		if st == webrtc.PeerConnectionStateConnected {
			close(connected)
		}
	})
	if pub.pc.ConnectionState() != webrtc.PeerConnectionStateConnected {
		select {
		case <-connected:
		case <-time.After(15 * time.Second):
			t.Fatal("the WHIP publisher did not connect")
		}
	}

	rec := func(action string) recording.Manifest {
		t.Helper()
		resp, body := request(t, http.MethodPost, s.URL+"/api/channels/"+ch+"/recording", tok, "application/json", `{"action":"`+action+`"}`)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s recording: %d %s", action, resp.StatusCode, body)
		}
		var r struct{ Recording struct{ ID string } }
		json.Unmarshal([]byte(body), &r)
		return recording.Manifest{ID: r.Recording.ID}
	}
	id := rec("start").ID
	// Real time, as an encoder sends: the media under test.
	tick := time.NewTicker(time.Second / 30)
	for _, f := range frames {
		<-tick.C
		if err := video.WriteSample(media.Sample{Data: f, Duration: time.Second / 30}); err != nil {
			t.Fatal(err)
		}
	}
	tick.Stop()
	rec("stop")

	var m recording.Manifest
	testtool.Eventually(t, 10*time.Second, func() bool {
		_, body := request(t, http.MethodGet, s.URL+"/api/channels/"+ch+"/recordings/"+id, tok, "", "")
		return json.Unmarshal([]byte(body), &m) == nil && m.State == recording.StateFinished
	}, "the recording to finish")
	if len(m.Files) != 1 || m.Files[0].Codec != webrtc.MimeTypeH264 || filepath.Ext(m.Files[0].Name) != ".mkv" {
		t.Fatalf("files: %+v, want one H.264 .mkv", m.Files)
	}
	p := filepath.Join(s.Config.DataDir, "recordings", ch, id, m.Files[0].Name)
	out, err := exec.Command(ffprobe, "-v", "error", "-select_streams", "v:0", "-show_entries", "stream=codec_name,width,height:format=duration", "-of", "csv=p=0", p).Output()
	if err != nil {
		t.Fatalf("ffprobe: %v", err)
	}
	lines := strings.Fields(string(out))
	if len(lines) != 2 || lines[0] != "h264,320,240" {
		t.Fatalf("ffprobe: %q, want h264,320,240 and a duration", out)
	}
	var sec float64
	json.Unmarshal([]byte(lines[1]), &sec)
	// Two seconds were sent; the first keyframe may be missed while the
	// recorder starts, so one second at least must be there.
	if sec < 0.9 || sec > 2.2 {
		t.Errorf("the file lasts %.2f s, want 1–2 s of the 2 s sent", sec)
	}
	if b, err := exec.Command(ffmpeg, "-v", "error", "-i", p, "-f", "null", "-").CombinedOutput(); err != nil || len(bytes.TrimSpace(b)) > 0 {
		t.Errorf("the file does not decode cleanly: %v %s", err, b)
	}
	// The recordings page serves it as Matroska.
	if resp, _ := request(t, http.MethodGet, s.URL+"/api/channels/"+ch+"/recordings/"+id+"/files/"+m.Files[0].Name, tok, "", ""); resp.Header.Get("Content-Type") != "video/x-matroska" {
		t.Errorf("served as %q, want video/x-matroska", resp.Header.Get("Content-Type"))
	}
}
