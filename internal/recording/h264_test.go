package recording

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtp/codecs"

	"github.com/parley/parley/internal/media"
	"github.com/parley/parley/internal/testtool"
)

var h264Track = media.TrackInfo{Participant: "p_bbbbbbbbbb", TrackID: "p_bbbbbbbbbb:camera", Source: "camera", Kind: "video", MimeType: "video/H264", ClockRate: 90000}

// h264AccessUnits encodes seconds of ffmpeg's test pattern (320x240,
// 30 fps, baseline, a keyframe every second) and splits the Annex-B
// stream into access units, one per frame.
func h264AccessUnits(t *testing.T, seconds int) [][]byte {
	t.Helper()
	ffmpeg := testtool.Find(t, "ffmpeg", "ffmpeg")
	out := filepath.Join(t.TempDir(), "in.h264")
	cmd := exec.Command(ffmpeg, "-v", "error", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=30", "-t", strconv.Itoa(seconds),
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
	vcl := false
	for _, nal := range bytes.Split(data, []byte{0, 0, 1}) {
		nal = bytes.TrimRight(nal, "\x00") // a 4-byte start code's leading zero
		if len(nal) == 0 {
			continue
		}
		isVCL := nal[0]&0x1f == 1 || nal[0]&0x1f == naluIDR
		if vcl && (!isVCL || nal[1]&0x80 != 0) { // a new frame: non-VCL after a slice, or first_mb_in_slice == 0
			aus = append(aus, cur)
			cur, vcl = nil, false
		}
		cur = append(cur, 0, 0, 0, 1)
		cur = append(cur, nal...)
		vcl = vcl || isVCL
	}
	if len(cur) > 0 {
		aus = append(aus, cur)
	}
	return aus
}

// feedH264 sends access units as RTP the way a WebRTC publisher does
// (pion's payloader: SPS and PPS in a STAP-A, large slices in FU-A),
// 30 fps, the marker on each frame's last packet.
func feedH264(t *testing.T, sink media.TrackSink, aus [][]byte) {
	t.Helper()
	pay := &codecs.H264Payloader{}
	seq, ts := uint16(0), uint32(5000)
	for _, au := range aus {
		parts := pay.Payload(1200, au)
		for j, p := range parts {
			sink.WriteRTP(0, rtpBytes(t, seq, ts, j == len(parts)-1, p))
			seq++
		}
		ts += 3000
	}
}

// ffprobeVideo returns a file's video codec name, width x height and
// the number of frames ffprobe counts by decoding.
func ffprobeVideo(t *testing.T, path string) string {
	t.Helper()
	ffprobe := testtool.Find(t, "ffmpeg", "ffprobe")
	out, err := exec.Command(ffprobe, "-v", "error", "-count_frames", "-select_streams", "v:0",
		"-show_entries", "stream=codec_name,width,height,nb_read_frames", "-of", "csv=p=0", path).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", path, err)
	}
	return strings.TrimSpace(string(out))
}

// decodeErrors decodes every frame of a file and returns what ffmpeg
// complained about (nothing for a good file).
func decodeErrors(t *testing.T, path string) string {
	t.Helper()
	ffmpeg := testtool.Find(t, "ffmpeg", "ffmpeg")
	out, err := exec.Command(ffmpeg, "-v", "error", "-i", path, "-f", "null", "-").CombinedOutput()
	if err != nil {
		return err.Error() + ": " + string(out)
	}
	return strings.TrimSpace(string(out))
}

// TestH264FilePlays: an H.264 track (as OBS publishes over WHIP) becomes
// a Matroska file with the AVC configuration from the first keyframe's
// SPS and PPS: ffprobe reads h264 at 320x240 lasting what was sent, and
// every frame decodes.
func TestH264FilePlays(t *testing.T) {
	aus := h264AccessUnits(t, 3)
	s := newService(t, Config{QueuePackets: 1 << 16})
	ss, _ := s.Start("chan1", Person{UserID: "u1"}, nil)
	v := ss.Track(h264Track)
	if v == nil {
		t.Fatal("H.264 track not recorded")
	}
	feedH264(t, v, aus)
	v.Close()
	m := ss.Stop(StateFinished, "test")
	if len(m.Files) != 1 || filepath.Ext(m.Files[0].Name) != ".mkv" || m.Files[0].Codec != "video/H264" {
		t.Fatalf("files: %+v", m.Files)
	}
	p := filepath.Join(s.cfg.Dir, "chan1", m.ID, m.Files[0].Name)
	if got, want := ffprobeVideo(t, p), "h264,320,240,"+strconv.Itoa(len(aus)); got != want {
		t.Errorf("ffprobe: %q, want %q", got, want)
	}
	if d := ffprobeDuration(t, p); d < 2900*time.Millisecond || d > 3100*time.Millisecond {
		t.Errorf("lasts %v, want 3s", d)
	}
	if e := decodeErrors(t, p); e != "" {
		t.Errorf("decoding: %s", e)
	}
}

// TestH264Recover: an H.264 file cut by a crash is repaired at startup
// like a VP8 one: it plays, decodes, and keeps its AVC configuration.
func TestH264Recover(t *testing.T) {
	aus := h264AccessUnits(t, 4)
	dir := t.TempDir()
	s := newService(t, Config{Dir: dir, QueuePackets: 1 << 16})
	ss, _ := s.Start("chan1", Person{UserID: "u1"}, nil)
	v := ss.Track(h264Track)
	if v == nil {
		t.Fatal("H.264 track not recorded")
	}
	feedH264(t, v, aus)
	v.Close()
	m := ss.Stop(StateFinished, "test")
	rdir := filepath.Join(dir, "chan1", m.ID)
	p := filepath.Join(rdir, m.Files[0].Name)
	fi, _ := os.Stat(p)
	head := int64(cuesSpace + 200)
	os.Truncate(p, head+(fi.Size()-head)*6/10)
	m.State, m.EndedAt = StateRecording, nil
	b, _ := json.Marshal(m)
	os.WriteFile(filepath.Join(rdir, "manifest.json"), b, 0o640)

	s2 := newService(t, Config{Dir: dir})
	if ids, err := s2.Recover(); err != nil || len(ids) != 1 {
		t.Fatalf("Recover: %v, %v", ids, err)
	}
	got, err := s2.Get("chan1", m.ID)
	if err != nil || got.State != StateInterrupted || len(got.Files) != 1 || !got.Files[0].Repaired {
		t.Fatalf("after recovery: %+v, %v", got, err)
	}
	d := ffprobeDuration(t, p)
	if d < 1500*time.Millisecond || d > 3500*time.Millisecond {
		t.Errorf("plays %v, want about 2.4s", d)
	}
	if diff := d - time.Duration(got.Files[0].DurationMS)*time.Millisecond; diff < -100*time.Millisecond || diff > 100*time.Millisecond {
		t.Errorf("manifest says %d ms, file plays %v", got.Files[0].DurationMS, d)
	}
	if v := ffprobeVideo(t, p); !strings.HasPrefix(v, "h264,320,240,") {
		t.Errorf("ffprobe: %q", v)
	}
	if e := decodeErrors(t, p); e != "" {
		t.Errorf("decoding: %s", e)
	}
}

// TestSPSSize: the picture size from SPSs of the common profiles,
// cropping included (1080p is coded as 1088 lines).
func TestSPSSize(t *testing.T) {
	for _, c := range []struct {
		sps  []byte
		w, h int
	}{
		// x264 baseline 320x240.
		{[]byte{0x67, 0x42, 0xc0, 0x0d, 0xd9, 0x01, 0x41, 0xfb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10, 0x00, 0x00, 0x03, 0x03, 0xc0, 0xf1, 0x42, 0xa4, 0x80}, 320, 240},
		// x264 high 1920x1080 (cropped from 1088).
		{[]byte{0x67, 0x64, 0x00, 0x28, 0xac, 0xd9, 0x40, 0x78, 0x02, 0x27, 0xe5, 0xc0, 0x44, 0x00, 0x00, 0x03, 0x00, 0x04, 0x00, 0x00, 0x03, 0x00, 0xf0, 0x3c, 0x60, 0xc6, 0x58}, 1920, 1080},
		// Cut short: no size.
		{[]byte{0x67, 0x64, 0x00, 0x28, 0xac}, 0, 0},
	} {
		if w, h := spsSize(c.sps); w != c.w || h != c.h {
			t.Errorf("spsSize(% x) = %dx%d, want %dx%d", c.sps, w, h, c.w, c.h)
		}
	}
}
