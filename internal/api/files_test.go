package api_test

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parley/parley/internal/apitest"
	"github.com/parley/parley/internal/config"
	"github.com/parley/parley/internal/servertest"
)

// This file: recordings and studio takes under /api/v1.

// webmStart is a WebM file's first bytes as Chromium's MediaRecorder
// writes them (EBML header, DocType "webm", then a Segment).
var webmStart = []byte{0x1A, 0x45, 0xDF, 0xA3, 0x9F, 0x42, 0x86, 0x81, 0x01, 0x42, 0xF7, 0x81, 0x01, 0x42, 0xF2, 0x81, 0x04, 0x42, 0xF3, 0x81, 0x08, 0x42, 0x82, 0x84, 'w', 'e', 'b', 'm', 0x42, 0x87, 0x81, 0x04, 0x42, 0x85, 0x81, 0x02, 0x18, 0x53, 0x80, 0x67, 0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}

// studio calls the web app's studio routes (/api/channels/{id}/studio),
// which must keep working next to /api/v1.
func studio(t *testing.T, c *caller, ch, method, path string, body []byte, out any) {
	t.Helper()
	req, err := http.NewRequest(method, c.s.URL+"/api/channels/"+ch+"/studio"+path, strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Origin", c.s.URL)
	resp, text := c.s.Do(c.cookieJar, req)
	if resp.StatusCode >= 300 {
		t.Fatalf("%s studio%s: %d %s", method, path, resp.StatusCode, text)
	}
	if out != nil {
		if err := json.Unmarshal([]byte(text), out); err != nil {
			t.Fatal(err)
		}
	}
}

type takeOut struct {
	ID, State, SongName, TrackName, AudioPath, UserID string
	Bytes                                             int64
}

func TestTakesAPI(t *testing.T) {
	s := servertest.Start(t)
	doc := apitest.Load(t)
	ann := newUser(t, s, doc, "ann")
	bob := newUser(t, s, doc, "bob")
	eve := newUser(t, s, doc, "eve")
	var ch channelOut
	ann.json(201, "POST", "/api/v1/channels", map[string]any{"name": "Band"}, &ch)
	ann.json(201, "POST", "/api/v1/channels/"+ch.ID+"/members", map[string]any{"username": "bob"}, nil)
	base := "/api/v1/channels/" + ch.ID + "/takes"

	var p page[takeOut]
	bob.json(200, "GET", base, nil, &p)
	if len(p.Items) != 0 {
		t.Fatalf("takes of a new studio: %+v", p)
	}
	// Takes made through the web app's studio routes.
	var song, track struct{ ID string }
	studio(t, bob, ch.ID, "POST", "/songs", []byte(`{"name":"Song"}`), &song)
	studio(t, bob, ch.ID, "POST", "/songs/"+song.ID+"/tracks", []byte(`{"name":"Bass"}`), &track)
	var ids []string
	for range 3 {
		var k struct{ ID string }
		studio(t, bob, ch.ID, "POST", "/tracks/"+track.ID+"/takes", []byte(`{"offsetMs":0,"latencyMs":0}`), &k)
		studio(t, bob, ch.ID, "PUT", "/takes/"+k.ID+"/chunks/0?durationMs=100", webmStart, nil)
		studio(t, bob, ch.ID, "POST", "/takes/"+k.ID+"/finish", []byte(`{"durationMs":100}`), nil)
		ids = append(ids, k.ID)
	}
	got, pages := collect[takeOut](ann, base, 2)
	if len(got) != 3 || pages != 2 || got[0].SongName != "Song" || got[0].TrackName != "Bass" || got[0].State != "done" || got[0].Bytes != int64(len(webmStart)) {
		t.Fatalf("takes %+v in %d pages", got, pages)
	}
	var k takeOut
	ann.json(200, "GET", base+"/"+ids[0], nil, &k)
	if k.ID != ids[0] || k.AudioPath != base+"/"+ids[0]+"/audio" {
		t.Fatalf("take %+v", k)
	}
	resp, body := ann.do(200, "GET", k.AudioPath, nil)
	if string(body) != string(webmStart) || resp.Header.Get("Content-Type") != "audio/webm" || !strings.Contains(resp.Header.Get("Content-Disposition"), "attachment") {
		t.Fatalf("audio: %q %q %d bytes", resp.Header.Get("Content-Type"), resp.Header.Get("Content-Disposition"), len(body))
	}
	resp, body = ann.do(206, "GET", k.AudioPath, nil, "Range", "bytes=0-3")
	if len(body) != 4 {
		t.Fatalf("range: %d bytes", len(body))
	}

	eve.problem(403, "GET", base, nil)
	eve.problem(403, "GET", k.AudioPath, nil)
	ann.problem(404, "GET", base+"/k_nope", nil)
	ann.problem(404, "GET", base+"/k_nope/audio", nil)
	ann.problem(404, "GET", "/api/v1/channels/nope/takes", nil)
	ann.problem(422, "GET", base+"?limit=-1", nil)

	// Delete: its recorder or the owner.
	newUser(t, s, doc, "cat")
	ann.json(201, "POST", "/api/v1/channels/"+ch.ID+"/members", map[string]any{"username": "cat"}, nil)
	cat := &caller{t: t, s: s, doc: doc, http: s.Client(), bearer: s.Token("cat")}
	cat.problem(403, "DELETE", base+"/"+ids[0], nil)
	bob.do(204, "DELETE", base+"/"+ids[0], nil)
	ann.do(204, "DELETE", base+"/"+ids[1], nil)
	ann.problem(404, "DELETE", base+"/"+ids[1], nil)
	if got, _ := collect[takeOut](ann, base, 50); len(got) != 1 {
		t.Fatalf("%d takes after deleting two", len(got))
	}
}

type recordingOut struct {
	ID, State string
	Files     []struct{ Name, Path string }
}

func TestRecordingsAPI(t *testing.T) {
	dir := t.TempDir()
	s := servertest.Start(t, servertest.WithConfig(func(c *config.Config) { c.RecordingDir = dir }))
	doc := apitest.Load(t)
	ann := newUser(t, s, doc, "ann")
	bob := newUser(t, s, doc, "bob")
	eve := newUser(t, s, doc, "eve")
	var ch channelOut
	ann.json(201, "POST", "/api/v1/channels", map[string]any{"name": "Calls"}, &ch)
	ann.json(201, "POST", "/api/v1/channels/"+ch.ID+"/members", map[string]any{"username": "bob"}, nil)
	base := "/api/v1/channels/" + ch.ID + "/recordings"

	// Recordings as the recorder leaves them on disk (manifest.json and
	// its files; internal/recording's own tests make real ones).
	start := time.Date(2026, 12, 2, 6, 0, 0, 0, time.UTC)
	var ids []string
	for i, state := range []string{"finished", "stopped", "recording"} {
		id := start.Add(time.Duration(i)*time.Hour).Format("20060102T150405Z") + "-0123456789abcdef"
		ids = append(ids, id)
		rd := filepath.Join(dir, ch.ID, id)
		if err := os.MkdirAll(rd, 0o750); err != nil {
			t.Fatal(err)
		}
		m := map[string]any{"id": id, "channel_id": ch.ID, "started_by": map[string]any{"user_id": ann.user().ID, "name": "Ann"},
			"started_at": start.Add(time.Duration(i) * time.Hour), "state": state, "duration_ms": 7000,
			"participants": []any{map[string]any{"participant_id": "p_1", "user_id": ann.user().ID, "name": "Ann"}},
			"files": []any{map[string]any{"name": "p_1-microphone-audio.ogg", "participant_id": "p_1", "user_id": ann.user().ID, "user_name": "Ann",
				"source": "microphone", "kind": "audio", "codec": "audio/opus", "start_ms": 30, "sync": "sender-report", "duration_ms": 7000, "packets": 350, "bytes": 9}}}
		b, _ := json.Marshal(m)
		os.WriteFile(filepath.Join(rd, "manifest.json"), b, 0o640)
		os.WriteFile(filepath.Join(rd, "p_1-microphone-audio.ogg"), []byte("OggS12345"), 0o640)
	}
	got, pages := collect[recordingOut](bob, base, 2)
	if len(got) != 3 || pages != 2 || got[0].ID != ids[2] || got[2].ID != ids[0] {
		t.Fatalf("recordings %+v in %d pages (want newest first)", got, pages)
	}
	var r recordingOut
	bob.json(200, "GET", base+"/"+ids[0], nil, &r)
	if r.State != "finished" || len(r.Files) != 1 || r.Files[0].Path != base+"/"+ids[0]+"/files/p_1-microphone-audio.ogg" {
		t.Fatalf("recording %+v", r)
	}
	resp, body := bob.do(200, "GET", r.Files[0].Path, nil)
	if string(body) != "OggS12345" || resp.Header.Get("Content-Type") != "audio/ogg" {
		t.Fatalf("file: %q %q", resp.Header.Get("Content-Type"), body)
	}
	_, body = bob.do(206, "GET", r.Files[0].Path, nil, "Range", "bytes=4-")
	if string(body) != "12345" {
		t.Fatalf("range: %q", body)
	}
	bob.problem(404, "GET", base+"/"+ids[0]+"/files/manifest.json", nil)
	bob.problem(404, "GET", base+"/nope", nil)
	eve.problem(403, "GET", base, nil)
	eve.problem(403, "GET", r.Files[0].Path, nil)
	ann.problem(404, "GET", "/api/v1/channels/nope/recordings", nil)

	bob.problem(403, "DELETE", base+"/"+ids[0], nil)
	ann.problem(409, "DELETE", base+"/"+ids[2], nil) // still recording
	ann.do(204, "DELETE", base+"/"+ids[0], nil)
	ann.problem(404, "DELETE", base+"/"+ids[0], nil)
	if got, _ := collect[recordingOut](ann, base, 50); len(got) != 2 {
		t.Fatalf("%d recordings after deleting one", len(got))
	}
}
