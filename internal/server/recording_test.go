package server_test

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
	"github.com/parley/parley/internal/servertest"
	"github.com/parley/parley/internal/source"
	"github.com/parley/parley/internal/testtool"
)

// api sends a JSON request with ann's (or whoever's) token.
func api(t *testing.T, s *servertest.Server, token, method, path string, body any) (int, []byte) {
	t.Helper()
	var rd *bytes.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, _ := http.NewRequest(method, s.URL+path, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, out := s.Do(http.DefaultClient, req)
	return resp.StatusCode, []byte(out)
}

// caller joins ch as username, sending the test tone and test pattern,
// until the test ends or leave is called.
func caller(t *testing.T, s *servertest.Server, ch, username string) (leave func()) {
	t.Helper()
	audio, err := source.OpenOgg(filepath.Join("..", "..", "testdata", "tone.ogg"), true)
	if err != nil {
		t.Fatal(err)
	}
	video, err := source.OpenIVF(filepath.Join("..", "..", "testdata", "pattern.ivf"), true)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c, err := client.Dial(ctx, client.Config{URL: s.URL + "/c/" + ch, Token: s.Token(username), LoopbackOnly: true,
		Audio: audio, Video: video}, nil)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); c.Run(ctx) }()
	leave = func() { cancel(); <-done }
	t.Cleanup(leave)
	testtool.Eventually(t, 15*time.Second, func() bool { return c.Stats().Joined > 0 }, username+" joined")
	return leave
}

// manifest reads a recording's manifest through the API.
func manifest(t *testing.T, s *servertest.Server, token, ch, id string) recording.Manifest {
	t.Helper()
	code, b := api(t, s, token, "GET", "/api/channels/"+ch+"/recordings/"+id, nil)
	if code != 200 {
		t.Fatalf("GET recording: %d %s", code, b)
	}
	var m recording.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// probe returns a media file's duration as ffprobe reads it, decoding
// every frame (a file that does not decode fails).
func probe(t *testing.T, ffprobe, path string) time.Duration {
	t.Helper()
	out, err := exec.Command(ffprobe, "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", path).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", path, err)
	}
	sec, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
	if err != nil {
		t.Fatalf("ffprobe %s: duration %q", path, out)
	}
	// Decode it all: errors on stderr mean frames that do not decode.
	dec := exec.Command(filepath.Join(filepath.Dir(ffprobe), "ffmpeg"), "-v", "error", "-i", path, "-f", "null", "-")
	if b, err := dec.CombinedOutput(); err != nil || len(bytes.TrimSpace(b)) > 0 {
		t.Errorf("%s does not decode cleanly: %v %s", filepath.Base(path), err, b)
	}
	return time.Duration(sec * float64(time.Second))
}

// TestRecordingCall: the owner starts recording a two-person call through
// the API (which moves it to the SFU), a third participant joins late,
// and after the stop every participant has an Ogg and a WebM file that
// ffprobe reads with the right duration, placed on the timeline at the
// time they joined.
func TestRecordingCall(t *testing.T) {
	ffprobe := testtool.Find(t, "ffmpeg", "ffprobe")
	s := servertest.Start(t)
	owner := s.SignUp("ann", "Ann")
	s.SignUp("bob", "Bob")
	s.SignUp("cat", "Cat")
	ch := s.CreateChannel(owner, "Rec")
	s.AddMember(owner, ch, "bob")
	s.AddMember(owner, ch, "cat")
	ann := s.Token("ann")
	caller(t, s, ch, "ann")
	caller(t, s, ch, "bob")

	code, b := api(t, s, ann, "POST", "/api/channels/"+ch+"/recording", map[string]string{"action": "start"})
	if code != 200 {
		t.Fatalf("start: %d %s", code, b)
	}
	var started struct {
		Recording struct {
			ID     string
			Active bool
		}
	}
	json.Unmarshal(b, &started)
	id := started.Recording.ID
	t0 := time.Now()
	if !started.Recording.Active || id == "" {
		t.Fatalf("start answered %s", b)
	}
	// A second start is refused while the first runs.
	if code, b := api(t, s, ann, "POST", "/api/channels/"+ch+"/recording", map[string]string{"action": "start"}); code != http.StatusConflict {
		t.Errorf("second start: %d %s, want 409", code, b)
	}

	const late = 3 * time.Second
	time.Sleep(late) // the late joiner comes this much later (the time under test, not a wait for an event)
	joinAt := time.Since(t0)
	caller(t, s, ch, "cat")
	time.Sleep(4 * time.Second) // recording length after the late join
	code, b = api(t, s, ann, "POST", "/api/channels/"+ch+"/recording", map[string]string{"action": "stop"})
	if code != 200 {
		t.Fatalf("stop: %d %s", code, b)
	}
	total := time.Since(t0)
	var m recording.Manifest
	testtool.Eventually(t, 10*time.Second, func() bool {
		m = manifest(t, s, ann, ch, id)
		return m.State == recording.StateFinished
	}, "the recording finished")
	if code, b := api(t, s, ann, "POST", "/api/channels/"+ch+"/recording", map[string]string{"action": "stop"}); code != http.StatusConflict {
		t.Errorf("stop without a recording: %d %s, want 409", code, b)
	}

	dir := filepath.Join(s.Config.DataDir, "recordings", ch, id)
	byUser := map[string]map[string]recording.File{}
	for _, f := range m.Files {
		if byUser[f.UserName] == nil {
			byUser[f.UserName] = map[string]recording.File{}
		}
		byUser[f.UserName][f.Kind] = f
	}
	for _, who := range []string{"Ann", "Bob", "Cat"} {
		fs := byUser[who]
		if fs["audio"].Name == "" || fs["video"].Name == "" {
			t.Errorf("%s: files %+v, want an audio and a video file", who, fs)
			continue
		}
		for _, f := range fs {
			want := total
			if who == "Cat" {
				want = total - time.Duration(f.StartMS)*time.Millisecond
			}
			got := probe(t, ffprobe, filepath.Join(dir, f.Name))
			if got < want-1500*time.Millisecond || got > want+500*time.Millisecond {
				t.Errorf("%s: %s lasts %v, want about %v", who, f.Name, got, want)
			}
			if f.Dropped != 0 {
				t.Errorf("%s: %d packets dropped", f.Name, f.Dropped)
			}
			t.Logf("%s %s: start %d ms (%s), %v", who, f.Name, f.StartMS, f.Sync, got)
		}
	}
	// Ann and Bob were there from the start; Cat's files start when she
	// joined (plus her connection's setup).
	for _, f := range m.Files {
		start := time.Duration(f.StartMS) * time.Millisecond
		switch f.UserName {
		case "Cat":
			if start < joinAt-100*time.Millisecond || start > joinAt+2*time.Second {
				t.Errorf("Cat's %s starts at %v on the timeline; she joined at %v", f.Name, start, joinAt)
			}
		default:
			if start < 0 || start > 1500*time.Millisecond {
				t.Errorf("%s's %s starts at %v, want near 0", f.UserName, f.Name, start)
			}
		}
	}
}
