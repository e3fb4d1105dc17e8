package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/parley/parley/internal/client"
	"github.com/parley/parley/internal/recording"
	"github.com/parley/parley/internal/source"
	"github.com/parley/parley/internal/testtool"
)

// TestRecordingSurvivesKill9: the server is killed with SIGKILL 10 s into
// a recording of a two-person call; started again on the same data, it
// lists the recording as interrupted, and every file plays (ffprobe
// decodes it) with the media that was recorded before the kill.
func TestRecordingSurvivesKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary, records 10 s and kills it")
	}
	ffprobe := testtool.Find(t, "ffmpeg", "ffprobe")
	bin := buildParley(t)
	t.Setenv("PARLEY_RTC_LOOPBACK_ONLY", "true") // the clients are on this machine
	srv := &parleyProcess{t: t, bin: bin, dataDir: t.TempDir()}
	srv.start()
	t.Cleanup(srv.kill)
	ann := srv.signUp("ann")
	srv.signUp("bob")
	ch := srv.createChannel(ann, "Rec")
	srv.addMember(ann, ch, "bob")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, who := range []string{"ann", "bob"} {
		audio, err := source.OpenOgg(filepath.Join("..", "..", "testdata", "tone.ogg"), true)
		if err != nil {
			t.Fatal(err)
		}
		video, err := source.OpenIVF(filepath.Join("..", "..", "testdata", "pattern.ivf"), true)
		if err != nil {
			t.Fatal(err)
		}
		c, err := client.Dial(ctx, client.Config{URL: srv.base + "/c/" + ch, Username: who, Password: "correct horse battery staple",
			LoopbackOnly: true, Audio: audio, Video: video}, nil)
		if err != nil {
			t.Fatal(err)
		}
		go c.Run(ctx)
		testtool.Eventually(t, 15*time.Second, func() bool { return c.Stats().Joined > 0 }, who+" joined")
	}
	call := func(method, path string, body any) (int, []byte) {
		t.Helper()
		var rd *bytes.Reader = bytes.NewReader(nil)
		if body != nil {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
		req, _ := http.NewRequest(method, srv.base+path, rd)
		req.Header.Set("Cookie", "parley_session="+ann)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		var buf bytes.Buffer
		buf.ReadFrom(resp.Body)
		return resp.StatusCode, buf.Bytes()
	}
	if code, b := call("POST", "/api/channels/"+ch+"/recording", map[string]string{"action": "start"}); code != 200 {
		t.Fatalf("start: %d %s", code, b)
	}
	const recorded = 10 * time.Second
	time.Sleep(recorded) // the length of the recording under test
	first := srv.logs.String()
	srv.kill()
	cancel() // the clients go only after the server: nobody leaves the call first

	srv.start()
	code, b := call("GET", "/api/channels/"+ch+"/recordings", nil)
	var list struct{ Recordings []recording.Manifest }
	if err := json.Unmarshal(b, &list); code != 200 || err != nil || len(list.Recordings) != 1 {
		t.Fatalf("recordings after restart: %d %s", code, b)
	}
	m := list.Recordings[0]
	if len(m.Files) == 0 {
		t.Logf("the first server's last logs:\n%s", first)
	}
	if m.State != recording.StateInterrupted {
		t.Errorf("state %q, want interrupted", m.State)
	}
	if m.DurationMS < 9000 || m.DurationMS > 10500 {
		t.Errorf("recording lasts %d ms, want 9–10.5 s", m.DurationMS)
	}
	kinds := map[string]int{}
	for _, f := range m.Files {
		kinds[f.Kind]++
		p := filepath.Join(srv.dataDir, "recordings", ch, m.ID, f.Name)
		out, err := exec.Command(ffprobe, "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", p).Output()
		if err != nil {
			t.Errorf("ffprobe %s: %v", f.Name, err)
			continue
		}
		sec, _ := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
		d := time.Duration(sec * float64(time.Second))
		end := time.Duration(f.StartMS)*time.Millisecond + d
		// Audio flows from the start; video from its first keyframe.
		if end < recorded-1500*time.Millisecond || end > recorded+500*time.Millisecond || (f.Kind == "audio" && d < recorded-1500*time.Millisecond) {
			t.Errorf("%s plays %v from %d ms; the kill came at %v", f.Name, d, f.StartMS, recorded)
		}
		dec := exec.Command(filepath.Join(filepath.Dir(ffprobe), "ffmpeg"), "-v", "error", "-i", p, "-f", "null", "-")
		if out, err := dec.CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) > 0 {
			t.Errorf("%s does not decode cleanly: %v %s", f.Name, err, out)
		}
		t.Logf("%s: start %d ms, plays %v", f.Name, f.StartMS, d)
	}
	if kinds["audio"] != 2 || kinds["video"] != 2 {
		t.Errorf("files %v, want 2 audio and 2 video", kinds)
	}
}
