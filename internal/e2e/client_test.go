package e2e_test

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/parley/parley/internal/servertest"
)

// TestNativeClientInBrowserCall: `parley join` (the real binary) joins a call of two browser users, publishing testdata's tone and
// test pattern. Both browsers show its video with frames rising and play
// its audio (decoded audio energy rises); the client records both
// browsers' audio and video, and ffprobe reads every file with the
// expected codec and a duration within 10% of the time recorded.
func TestNativeClientInBrowserCall(t *testing.T) {
	ffprobe := requireTool(t, "ffprobe")
	s := servertest.Start(t)
	browser := newBrowser(t)
	ada, bob := newUser(t, browser, s, "Ada"), newUser(t, browser, s, "Bob")
	ada.signUp("ada", "Ada")
	bob.signUp("bob", "Bob")
	s.SignUp("bot", "Recorder Bot")
	channel := ada.createChannel("With a bot")
	ada.addMember(channel, "bob")
	ada.addMember(channel, "bot")
	ada.joinCall(channel)
	bob.joinCall(channel)
	ids := []string{ada.myID(), bob.myID()}
	ada.waitRemoteVideos(ids[1:], 30*time.Second)

	// The bot is the real command, as a user runs it.
	bin := buildParley(t)
	dir := t.TempDir()
	const callLength = 15 * time.Second
	cmd := exec.Command(bin, "join", s.URL+"/c/"+channel, "--token", s.Token("bot"), "--loopback",
		"--send-audio", filepath.Join("..", "..", "testdata", "tone.ogg"),
		"--send-video", filepath.Join("..", "..", "testdata", "pattern.ivf"),
		"--record", dir, "--duration", callLength.String())
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
	})

	// The browsers see the bot's video and hear its tone.
	ada.waitFor("a third participant", `window.parley.peers().length === 2`, 20*time.Second)
	var botID string
	for _, id := range eval[[]string](ada, `window.parley.peers()`) {
		if id != ids[1] {
			botID = id
		}
	}
	for i, u := range []*user{ada, bob} {
		u.waitRemoteVideos([]string{ids[1-i], botID}, 45*time.Second)
		u.waitFor("the bot's audio playing", fmt.Sprintf(`window.parley.sfuAudio().then(a => (a[%q]?.energy || 0) > 0)`, botID), 20*time.Second)
	}

	// The bot leaves by itself after --duration, closing its recordings.
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("parley join: %v\n%s", err, stderr.String())
		}
	case <-time.After(callLength + 20*time.Second):
		t.Fatalf("parley join did not end after --duration %v\n%s", callLength, stderr.String())
	}
	// "recorded PATH (S s, N packets)" for each file.
	recorded := regexp.MustCompile(`(?m)^recorded (\S+) \(([0-9.]+) s, (\d+) packets\)$`).FindAllStringSubmatch(stdout.String(), -1)
	if len(recorded) != 4 {
		t.Fatalf("parley join recorded %d files, want 4 (two browsers × audio and video):\n%s\n%s", len(recorded), stdout.String(), stderr.String())
	}
	for _, m := range recorded {
		path, want := m[1], "opus"
		if strings.HasSuffix(path, ".ivf") {
			want = "vp8"
		}
		flowed, _ := strconv.ParseFloat(m[2], 64)
		codec, dur := probe(t, ffprobe, path)
		if codec != want {
			t.Errorf("%s: codec %q, want %q", path, codec, want)
		}
		// The file covers the call from the moment media arrived: all of it
		// but the connection setup, which a loaded machine stretches.
		if call := callLength.Seconds(); dur < 0.8*call || dur > 1.1*call {
			t.Errorf("%s: ffprobe reads %.2f s of a %.0f s call: want 80%% to 110%% of it", path, dur, call)
		}
		if dur < 0.9*flowed || dur > 1.1*flowed {
			t.Errorf("%s: ffprobe reads %.2f s; media flowed for %.2f s: more than 10%% apart", path, dur, flowed)
		}
		if base := filepath.Base(path); !strings.HasPrefix(base, "Ada-") && !strings.HasPrefix(base, "Bob-") {
			t.Errorf("%s: the file name does not start with the participant's name", path)
		}
		t.Logf("%s: %s, %.2f s (media flowed %.2f s)", filepath.Base(path), codec, dur, flowed)
	}
	if !strings.Contains(stdout.String(), "in the call") {
		t.Errorf("no summary printed:\n%s", stdout.String())
	}
}

// buildParley builds the parley command once per test binary run.
func buildParley(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "parley")
	out, err := exec.Command("go", "build", "-o", bin, "../../cmd/parley").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// probe returns the first stream's codec and the file's duration.
func probe(t *testing.T, ffprobe, path string) (string, float64) {
	t.Helper()
	out, err := exec.Command(ffprobe, "-v", "error", "-show_entries", "stream=codec_name:format=duration",
		"-of", "default=noprint_wrappers=1", path).CombinedOutput()
	if err != nil {
		t.Fatalf("ffprobe %s: %v\n%s", path, err, out)
	}
	var codec string
	var dur float64
	for _, line := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(line, "codec_name="); ok && codec == "" {
			codec = v
		}
		if v, ok := strings.CutPrefix(line, "duration="); ok {
			dur, _ = strconv.ParseFloat(v, 64)
		}
	}
	return codec, dur
}
