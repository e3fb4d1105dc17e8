package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/parley/parley/internal/client"
	"github.com/parley/parley/internal/config"
	"github.com/parley/parley/internal/recording"
	"github.com/parley/parley/internal/servertest"
	"github.com/parley/parley/internal/signaling"
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
// time they joined (5 s late, as the test asks).
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

	const late = 5 * time.Second
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

	// Downloads: members only, with range requests (players seek).
	s.SignUp("eve", "Eve")
	file := "/api/channels/" + ch + "/recordings/" + id + "/files/" + m.Files[0].Name
	if code, _ := api(t, s, s.Token("eve"), "GET", file, nil); code != http.StatusForbidden {
		t.Errorf("non-member download: %d, want 403", code)
	}
	req, _ := http.NewRequest("GET", s.URL+file, nil)
	req.Header.Set("Authorization", "Bearer "+s.Token("bob"))
	req.Header.Set("Range", "bytes=0-99")
	if resp, body := s.Do(http.DefaultClient, req); resp.StatusCode != http.StatusPartialContent || len(body) != 100 {
		t.Errorf("range request: %d, %d bytes; want 206, 100", resp.StatusCode, len(body))
	}
	if len(m.Participants) != 3 || m.DurationMS < total.Milliseconds()-1000 {
		t.Errorf("manifest: %d participants, %d ms; want 3, about %v", len(m.Participants), m.DurationMS, total)
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
			t.Logf("%s %s: start %d ms (%s), plays %v, manifest %d ms, %d packets", who, f.Name, f.StartMS, f.Sync, got, f.DurationMS, f.Packets)
		}
	}
	// The composite: asked for by a member, made by ffmpeg, one video and
	// one audio stream as long as the recording.
	if code, b := api(t, s, s.Token("bob"), "POST", "/api/channels/"+ch+"/recordings/"+id+"/composite", nil); code != http.StatusAccepted {
		t.Fatalf("composite: %d %s", code, b)
	}
	testtool.Eventually(t, 120*time.Second, func() bool {
		m = manifest(t, s, ann, ch, id)
		return m.Composite != nil && (m.Composite.State == recording.CompositeDone || m.Composite.State == recording.CompositeFailed)
	}, "the composite")
	if m.Composite.State != recording.CompositeDone {
		t.Fatalf("composite: %+v", m.Composite)
	}
	comp := filepath.Join(dir, recording.CompositeName)
	streams, err := exec.Command(ffprobe, "-v", "error", "-show_entries", "stream=codec_type", "-of", "csv=p=0", comp).Output()
	if err != nil || strings.Join(strings.Fields(string(streams)), ",") != "video,audio" {
		t.Errorf("composite streams %q (%v), want video,audio", streams, err)
	}
	if d, want := probe(t, ffprobe, comp), time.Duration(m.DurationMS)*time.Millisecond; d < want-500*time.Millisecond || d > want+500*time.Millisecond {
		t.Errorf("composite lasts %v, want %v", d, want)
	}

	// Ann and Bob were there from the start; Cat's audio starts when she
	// joined, 5 s later (plus her connection's setup, tens of milliseconds
	// on loopback; her video at its first keyframe).
	var annAudio time.Duration
	for _, f := range m.Files {
		if f.UserName == "Ann" && f.Kind == "audio" {
			annAudio = time.Duration(f.StartMS) * time.Millisecond
		}
	}
	for _, f := range m.Files {
		start := time.Duration(f.StartMS) * time.Millisecond
		switch f.UserName {
		case "Cat":
			if f.Kind == "audio" && (start-annAudio < joinAt-200*time.Millisecond || start-annAudio > joinAt+time.Second) {
				t.Errorf("Cat's %s starts %v after Ann's audio; she joined %v after the start", f.Name, start-annAudio, joinAt)
			}
			if start < joinAt-200*time.Millisecond || start > joinAt+2*time.Second {
				t.Errorf("Cat's %s starts at %v on the timeline; she joined at %v", f.Name, start, joinAt)
			}
		default:
			if start < 0 || start > 1500*time.Millisecond {
				t.Errorf("%s's %s starts at %v, want near 0", f.UserName, f.Name, start)
			}
		}
	}
}

// socket is a raw signaling socket, for the protocol side of recording.
type socket struct {
	t    *testing.T
	conn *websocket.Conn
}

func openSocket(t *testing.T, s *servertest.Server, token, ch string) *socket {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(s.URL, "http")+"/ws/c/"+ch, &websocket.DialOptions{
		HTTPHeader: http.Header{"Authorization": {"Bearer " + token}}, Subprotocols: []string{signaling.Subprotocol}})
	if err != nil {
		t.Fatal(err)
	}
	conn.SetReadLimit(1 << 20)
	t.Cleanup(func() { conn.CloseNow() })
	return &socket{t: t, conn: conn}
}

func (k *socket) send(m signaling.Message) {
	k.t.Helper()
	b, _ := signaling.Encode(m)
	if err := k.conn.Write(context.Background(), websocket.MessageText, b); err != nil {
		k.t.Fatal(err)
	}
}

// await reads until a message of type typ (skipping the rest).
func (k *socket) await(typ string) signaling.Message {
	k.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		_, b, err := k.conn.Read(ctx)
		if err != nil {
			k.t.Fatalf("waiting for %q: %v", typ, err)
		}
		m, err := signaling.Parse(b)
		if err == nil && m.Type == typ {
			return m
		}
	}
}

// TestRecordingAuthorization: who may start, stop, list, download and
// delete recordings, and the bad cases (no call, a second start, a stop
// with nothing running, a p2p-pinned channel), over the API and the
// signaling socket; everyone in the channel sees who started it.
func TestRecordingAuthorization(t *testing.T) {
	s := servertest.Start(t)
	owner := s.SignUp("ann", "Ann")
	s.SignUp("bob", "Bob")
	s.SignUp("eve", "Eve")
	ch := s.CreateChannel(owner, "Rec")
	s.AddMember(owner, ch, "bob")
	ann, bob, eve := s.Token("ann"), s.Token("bob"), s.Token("eve")
	start := map[string]string{"action": "start"}
	stop := map[string]string{"action": "stop"}
	base := "/api/channels/" + ch

	for _, path := range []string{base + "/recordings", base + "/recording", base + "/recordings/x", base + "/recordings/x/files/y.ogg"} {
		if code, b := api(t, s, eve, "GET", path, nil); code != http.StatusForbidden {
			t.Errorf("non-member GET %s: %d %s, want 403", path, code, b)
		}
	}
	if code, _ := api(t, s, eve, "POST", base+"/recording", start); code != http.StatusForbidden {
		t.Errorf("non-member start: %d, want 403", code)
	}
	if code, _ := api(t, s, "", "GET", base+"/recordings", nil); code != http.StatusUnauthorized {
		t.Errorf("anonymous list: %d, want 401", code)
	}
	if code, b := api(t, s, ann, "POST", base+"/recording", start); code != http.StatusConflict {
		t.Errorf("start with nobody in the call: %d %s, want 409", code, b)
	}
	if code, b := api(t, s, ann, "POST", base+"/recording", map[string]string{"action": "pause"}); code != http.StatusBadRequest {
		t.Errorf("bad action: %d %s, want 400", code, b)
	}

	bs := openSocket(t, s, bob, ch)
	bs.await(signaling.TypeHello)
	bs.send(signaling.Message{Type: signaling.TypeJoin, State: &signaling.State{}})
	bs.await(signaling.TypeJoined)
	as := openSocket(t, s, ann, ch)
	as.await(signaling.TypeHello)

	// A member may not record unless the owner allows it.
	bs.send(signaling.Message{Type: signaling.TypeRecord, Action: signaling.RecordStart})
	if e := bs.await(signaling.TypeError); e.Code != signaling.CodeForbidden || e.Ref != signaling.TypeRecord {
		t.Errorf("member's record over the socket: %+v, want forbidden", e)
	}
	if code, _ := api(t, s, bob, "POST", base+"/recording", start); code != http.StatusForbidden {
		t.Errorf("member start: %d, want 403", code)
	}
	if code, _ := api(t, s, bob, "POST", base+"/recording-policy", map[string]bool{"membersMayRecord": true}); code != http.StatusForbidden {
		t.Errorf("member changes the policy: %d, want 403", code)
	}

	// The owner starts over the socket: everyone hears who.
	as.send(signaling.Message{Type: signaling.TypeRecord, Action: signaling.RecordStart})
	for _, k := range []*socket{as, bs} {
		m := k.await(signaling.TypeRecording)
		if m.Recording == nil || !m.Recording.Active || m.Recording.By == nil || m.Recording.By.Name != "Ann" {
			t.Fatalf("recording message %+v, want active, by Ann", m.Recording)
		}
	}
	// Two starts: the second is refused.
	as.send(signaling.Message{Type: signaling.TypeRecord, Action: signaling.RecordStart})
	if e := as.await(signaling.TypeError); e.Code != signaling.CodeConflict {
		t.Errorf("second start: %+v, want conflict", e)
	}
	// A socket opened while recording hears it at once.
	late := openSocket(t, s, bob, ch)
	late.await(signaling.TypeHello)
	if m := late.await(signaling.TypeRecording); m.Recording == nil || !m.Recording.Active {
		t.Errorf("a new socket got %+v, want the running recording", m.Recording)
	}

	// Allowed, a member may stop it.
	if code, b := api(t, s, ann, "POST", base+"/recording-policy", map[string]bool{"membersMayRecord": true}); code != 200 {
		t.Fatalf("policy: %d %s", code, b)
	}
	if code, b := api(t, s, bob, "POST", base+"/recording", stop); code != 200 {
		t.Fatalf("member stop once allowed: %d %s", code, b)
	}
	m := as.await(signaling.TypeRecording)
	if m.Recording == nil || m.Recording.Active || !strings.Contains(m.Recording.Reason, "Bob") {
		t.Errorf("stop message %+v, want inactive, stopped by Bob", m.Recording)
	}
	id := m.Recording.ID
	as.send(signaling.Message{Type: signaling.TypeRecord, Action: signaling.RecordStop})
	if e := as.await(signaling.TypeError); e.Code != signaling.CodeConflict {
		t.Errorf("stop without a recording: %+v, want conflict", e)
	}

	// Listed for members; deleted by the owner only.
	var list struct{ Recordings []recording.Manifest }
	testtool.Eventually(t, 10*time.Second, func() bool {
		_, b := api(t, s, bob, "GET", base+"/recordings", nil)
		json.Unmarshal(b, &list)
		return len(list.Recordings) == 1 && list.Recordings[0].State == recording.StateFinished
	}, "the recording listed as finished")
	if r := list.Recordings[0]; r.ID != id || r.StartedBy.Name != "Ann" || len(r.Participants) != 1 || r.Participants[0].Name != "Bob" {
		t.Errorf("listed %+v", r)
	}
	if code, _ := api(t, s, bob, "DELETE", base+"/recordings/"+id, nil); code != http.StatusForbidden {
		t.Errorf("member delete: %d, want 403", code)
	}
	if code, b := api(t, s, ann, "DELETE", base+"/recordings/"+id, nil); code != http.StatusNoContent {
		t.Errorf("owner delete: %d %s, want 204", code, b)
	}
	if code, _ := api(t, s, ann, "GET", base+"/recordings/"+id, nil); code != http.StatusNotFound {
		t.Errorf("deleted recording: %d, want 404", code)
	}

	// Pinning the channel to p2p stops a running recording; after that a
	// p2p-pinned channel cannot be recorded.
	as.send(signaling.Message{Type: signaling.TypeRecord, Action: signaling.RecordStart})
	if m := as.await(signaling.TypeRecording); m.Recording == nil || !m.Recording.Active {
		t.Fatalf("restart: %+v", m.Recording)
	}
	if resp, _ := s.PostForm(owner, "/c/"+ch+"/mode", url.Values{"mode": {"p2p"}}); resp.StatusCode >= 400 {
		t.Fatalf("set mode: %d", resp.StatusCode)
	}
	if m := as.await(signaling.TypeRecording); m.Recording == nil || m.Recording.Active || !strings.Contains(m.Recording.Reason, "peer-to-peer") {
		t.Errorf("pinning to p2p: %+v, want the recording stopped", m.Recording)
	}
	testtool.Eventually(t, 5*time.Second, func() bool {
		code, _ := api(t, s, ann, "POST", base+"/recording", start)
		return code == http.StatusBadRequest
	}, "start refused in a p2p channel")
	as.send(signaling.Message{Type: signaling.TypeRecord, Action: signaling.RecordStart})
	if e := as.await(signaling.TypeError); e.Code != signaling.CodeInvalid || !strings.Contains(e.Human, "peer-to-peer") {
		t.Errorf("socket start in p2p channel: %+v", e)
	}
}

// TestDeletedChannelLosesRecordings: deleting a channel deletes its
// recordings' files too (nobody could reach them any more).
func TestDeletedChannelLosesRecordings(t *testing.T) {
	s := servertest.Start(t)
	owner := s.SignUp("ann", "Ann")
	ch := s.CreateChannel(owner, "Gone")
	ann := s.Token("ann")
	k := openSocket(t, s, ann, ch)
	k.await(signaling.TypeHello)
	k.send(signaling.Message{Type: signaling.TypeJoin, State: &signaling.State{}})
	k.await(signaling.TypeJoined)
	if code, b := api(t, s, ann, "POST", "/api/channels/"+ch+"/recording", map[string]string{"action": "start"}); code != 200 {
		t.Fatalf("start: %d %s", code, b)
	}
	dir := filepath.Join(s.Config.DataDir, "recordings", ch)
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("no recording directory: %v", err)
	}
	if resp, _ := s.PostForm(owner, "/c/"+ch+"/delete", url.Values{}); resp.StatusCode >= 400 {
		t.Fatalf("delete: %d", resp.StatusCode)
	}
	testtool.Eventually(t, 10*time.Second, func() bool {
		_, err := os.Stat(dir)
		return errors.Is(err, fs.ErrNotExist)
	}, "the channel's recordings to be deleted")
}

// TestCompositeNotOffered: without ffmpeg (--ffmpeg none) the composite
// is not offered: the state says so and asking for one is 404.
func TestCompositeNotOffered(t *testing.T) {
	s := servertest.Start(t, servertest.WithConfig(func(c *config.Config) { c.FFmpeg = "none" }))
	owner := s.SignUp("ann", "Ann")
	ch := s.CreateChannel(owner, "NoFF")
	ann := s.Token("ann")
	code, b := api(t, s, ann, "GET", "/api/channels/"+ch+"/recording", nil)
	var st struct{ Composites bool }
	if json.Unmarshal(b, &st); code != 200 || st.Composites {
		t.Errorf("state: %d %s, want composites false", code, b)
	}
	if code, b := api(t, s, ann, "POST", "/api/channels/"+ch+"/recordings/x/composite", nil); code != http.StatusNotFound || !strings.Contains(string(b), "ffmpeg") {
		t.Errorf("composite without ffmpeg: %d %s, want 404 naming ffmpeg", code, b)
	}
}

// TestRecordingQuotaStopsRecordingNotCall: with --recording-quota 1 (MiB)
// a recording of a call with video fills it within seconds: the
// recording stops by itself, everyone is told why, whoever started it
// gets an error saying so, and the call goes on.
func TestRecordingQuotaStopsRecordingNotCall(t *testing.T) {
	s := servertest.Start(t, servertest.WithConfig(func(c *config.Config) { c.RecordingQuotaMB = 1 }))
	// Old recordings take all but 140 KB of the quota: a few seconds of
	// the test pattern fill the rest.
	if err := os.WriteFile(filepath.Join(s.Config.DataDir, "recordings", "old"), make([]byte, 1<<20-140<<10), 0o640); err != nil {
		t.Fatal(err)
	}
	s.Restart() // the server counts what its recordings take at startup
	owner := s.SignUp("ann", "Ann")
	s.SignUp("bob", "Bob")
	ch := s.CreateChannel(owner, "Full")
	s.AddMember(owner, ch, "bob")
	caller(t, s, ch, "bob")
	as := openSocket(t, s, s.Token("ann"), ch)
	as.await(signaling.TypeHello)
	as.send(signaling.Message{Type: signaling.TypeRecord, Action: signaling.RecordStart})
	if m := as.await(signaling.TypeRecording); m.Recording == nil || !m.Recording.Active {
		t.Fatalf("start: %+v", m.Recording)
	}
	m := as.await(signaling.TypeRecording)
	if m.Recording == nil || m.Recording.Active || !strings.Contains(m.Recording.Reason, "recording-quota") {
		t.Fatalf("stop: %+v, want inactive, naming the quota", m.Recording)
	}
	if e := as.await(signaling.TypeError); e.Ref != signaling.TypeRecord || !strings.Contains(e.Human, "the call goes on") {
		t.Errorf("the starter was told %+v", e)
	}
	// The call goes on: bob is still in it, and a new socket sees no recording.
	k := openSocket(t, s, s.Token("bob"), ch)
	if h := k.await(signaling.TypeHello); len(h.Participants) != 1 {
		t.Errorf("participants after the stop: %+v", h.Participants)
	}
	var list struct{ Recordings []recording.Manifest }
	testtool.Eventually(t, 10*time.Second, func() bool {
		_, b := api(t, s, s.Token("ann"), "GET", "/api/channels/"+ch+"/recordings", nil)
		json.Unmarshal(b, &list)
		return len(list.Recordings) == 1 && list.Recordings[0].State == recording.StateStopped
	}, "the recording listed as stopped")
	if code, _ := api(t, s, s.Token("ann"), "POST", "/api/channels/"+ch+"/recording", map[string]string{"action": "start"}); code != http.StatusInsufficientStorage {
		t.Errorf("a new start over the quota: %d, want 507", code)
	}
}
