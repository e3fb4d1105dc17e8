package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/parley/parley/internal/config"
	"github.com/parley/parley/internal/servertest"
	"github.com/parley/parley/internal/signaling"
)

// webmStart is a WebM file's first bytes as Chromium's MediaRecorder
// writes them (EBML header, DocType "webm", then a Segment).
var webmStart = []byte{0x1A, 0x45, 0xDF, 0xA3, 0x9F, 0x42, 0x86, 0x81, 0x01, 0x42, 0xF7, 0x81, 0x01, 0x42, 0xF2, 0x81, 0x04, 0x42, 0xF3, 0x81, 0x08, 0x42, 0x82, 0x84, 'w', 'e', 'b', 'm', 0x42, 0x87, 0x81, 0x04, 0x42, 0x85, 0x81, 0x02, 0x18, 0x53, 0x80, 0x67, 0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}

// studioClient calls the studio API as one user, with the headers a
// same-origin page sends.
type studioClient struct {
	t  *testing.T
	s  *servertest.Server
	c  *http.Client
	ch string
}

func (sc studioClient) do(method, path string, body []byte) (int, string) {
	sc.t.Helper()
	req, err := http.NewRequest(method, sc.s.URL+"/api/channels/"+sc.ch+"/studio"+path, bytes.NewReader(body))
	if err != nil {
		sc.t.Fatal(err)
	}
	req.Header.Set("Origin", sc.s.URL)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	resp, text := sc.s.Do(sc.c, req)
	return resp.StatusCode, text
}

func (sc studioClient) json(method, path string, v any, out any) int {
	sc.t.Helper()
	b, _ := json.Marshal(v)
	if v == nil {
		b = nil
	}
	status, text := sc.do(method, path, b)
	if out != nil && status < 300 {
		if err := json.Unmarshal([]byte(text), out); err != nil {
			sc.t.Fatalf("%s %s: %v in %s", method, path, err, text)
		}
	}
	return status
}

type idOnly struct {
	ID string `json:"id"`
}

type takeJSON struct {
	ID         string `json:"id"`
	State      string `json:"state"`
	Bytes      int64  `json:"bytes"`
	Chunks     int64  `json:"chunks"`
	DurationMS int64  `json:"durationMs"`
	OffsetMS   int64  `json:"offsetMs"`
	MIME       string `json:"mime"`
}

// studioFixture makes a channel owned by ann with member bob (and eve, who
// is not a member), a song and a track.
type studioFixture struct {
	s             *servertest.Server
	ann, bob, eve studioClient
	song, track   string
}

func newStudioFixture(t *testing.T, opts ...servertest.Option) studioFixture {
	s := servertest.Start(t, opts...)
	annC := s.SignUp("ann", "Ann")
	bobC := s.SignUp("bob", "Bob")
	eveC := s.SignUp("eve", "Eve")
	ch := s.CreateChannel(annC, "band")
	s.AddMember(annC, ch, "bob")
	f := studioFixture{s: s, ann: studioClient{t, s, annC, ch}, bob: studioClient{t, s, bobC, ch}, eve: studioClient{t, s, eveC, ch}}
	var song, track idOnly
	if st := f.ann.json("POST", "/songs", map[string]string{"name": "Tune"}, &song); st != http.StatusCreated {
		t.Fatalf("create song: %d", st)
	}
	if st := f.ann.json("POST", "/songs/"+song.ID+"/tracks", map[string]string{"name": "Vocals"}, &track); st != http.StatusCreated {
		t.Fatalf("create track: %d", st)
	}
	f.song, f.track = song.ID, track.ID
	return f
}

func (f studioFixture) newTake(t *testing.T, as studioClient, offsetMS int64) takeJSON {
	t.Helper()
	var k takeJSON
	if st := as.json("POST", "/tracks/"+f.track+"/takes", map[string]int64{"offsetMs": offsetMS, "latencyMs": 12}, &k); st != http.StatusCreated {
		t.Fatalf("create take: %d", st)
	}
	return k
}

func (f studioFixture) audio(t *testing.T, as studioClient, take string) (int, []byte, http.Header) {
	t.Helper()
	resp, err := as.c.Get(f.s.URL + "/api/channels/" + as.ch + "/studio/takes/" + take + "/audio")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b, resp.Header
}

func wantJSONError(t *testing.T, what string, status int, body string, wantStatus int, text string) {
	t.Helper()
	var e struct {
		Error string `json:"error"`
	}
	json.Unmarshal([]byte(body), &e)
	if status != wantStatus || !strings.Contains(e.Error, text) {
		t.Errorf("%s: %d %s; want %d with %q", what, status, body, wantStatus, text)
	}
}

// TestStudioBadUploads sends every kind of bad chunk (not WebM/Ogg,
// oversized, out of order, unknown take, someone else's take, quota full,
// after the end) and checks each status and message, and that the take's
// stored bytes are exactly the good chunks afterwards.
func TestStudioBadUploads(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []servertest.Option
	}{{"sqlite", nil}, {"postgres", []servertest.Option{servertest.WithPostgres()}}} {
		t.Run(tc.name, func(t *testing.T) {
			opts := append(tc.opts, servertest.WithConfig(func(c *config.Config) { c.StudioQuota = 64 << 10 }))
			testStudioBadUploads(t, newStudioFixture(t, opts...))
		})
	}
}

func testStudioBadUploads(t *testing.T, f studioFixture) {
	k := f.newTake(t, f.ann, 0)
	chunk := func(as studioClient, take string, seq int, data []byte) (int, string) {
		return as.do("PUT", "/takes/"+take+"/chunks/"+itoa(seq)+"?durationMs="+itoa(250*(seq+1)), data)
	}
	st, body := chunk(f.ann, k.ID, 0, []byte("RIFF\x24\x00\x00\x00WAVEfmt "))
	wantJSONError(t, "WAV upload", st, body, http.StatusUnsupportedMediaType, "must be WebM")
	good0 := append(append([]byte{}, webmStart...), bytes.Repeat([]byte{1}, 100)...)
	good1 := bytes.Repeat([]byte{2}, 200)
	if st, body := chunk(f.ann, k.ID, 0, good0); st != http.StatusOK || !strings.Contains(body, `"chunks":1`) {
		t.Fatalf("chunk 0: %d %s", st, body)
	}
	if st, body := chunk(f.ann, k.ID, 1, good1); st != http.StatusOK || !strings.Contains(body, `"chunks":2`) {
		t.Fatalf("chunk 1: %d %s", st, body)
	}
	st, body = chunk(f.ann, k.ID, 5, good1)
	wantJSONError(t, "chunk 5 after 2", st, body, http.StatusConflict, "the server has 2 chunks")
	if !strings.Contains(body, `"expected":2`) {
		t.Errorf("409 body %s lacks expected:2", body)
	}
	st, body = chunk(f.ann, k.ID, 1, good1)
	wantJSONError(t, "chunk 1 resent", st, body, http.StatusConflict, "send chunk 2 next")
	st, body = chunk(f.ann, k.ID, 2, make([]byte, (1<<20)+1))
	wantJSONError(t, "oversized chunk", st, body, http.StatusRequestEntityTooLarge, "larger than the limit")
	st, body = chunk(f.ann, "k_nosuchtake", 0, good0)
	wantJSONError(t, "unknown take", st, body, http.StatusNotFound, "no such song, track or take")
	st, body = chunk(f.bob, k.ID, 2, good1)
	wantJSONError(t, "bob uploads to ann's take", st, body, http.StatusForbidden, "only the member who records")
	st, body = chunk(f.eve, k.ID, 2, good1)
	wantJSONError(t, "non-member uploads", st, body, http.StatusForbidden, "not a member")
	st, body = chunk(f.ann, k.ID, 2, make([]byte, 64<<10))
	wantJSONError(t, "quota full", st, body, http.StatusInsufficientStorage, "storage is full")
	st, body = chunk(f.ann, k.ID, 2, nil)
	wantJSONError(t, "empty chunk", st, body, http.StatusBadRequest, "empty")

	// Nothing refused reached the take.
	var done takeJSON
	if st := f.ann.json("POST", "/takes/"+k.ID+"/finish", map[string]int64{"durationMs": 500}, &done); st != http.StatusOK {
		t.Fatalf("finish: %d", st)
	}
	if done.State != "done" || done.Chunks != 2 || done.Bytes != int64(len(good0)+len(good1)) || done.DurationMS != 500 {
		t.Errorf("finished take = %+v", done)
	}
	st, b, hdr := f.audio(t, f.bob, k.ID)
	if want := append(append([]byte{}, good0...), good1...); st != http.StatusOK || !bytes.Equal(b, want) || hdr.Get("Content-Type") != "audio/webm" {
		t.Errorf("audio: %d %q, %d bytes; want 200 audio/webm %d bytes", st, hdr.Get("Content-Type"), len(b), len(want))
	}
	st, body = chunk(f.ann, k.ID, 2, good1)
	wantJSONError(t, "chunk after finish", st, body, http.StatusConflict, "finished")

	// A range request seeks (206, the asked bytes).
	req, _ := http.NewRequest("GET", f.s.URL+"/api/channels/"+f.ann.ch+"/studio/takes/"+k.ID+"/audio", nil)
	req.Header.Set("Range", "bytes=10-19")
	resp, rb := f.s.Do(f.bob.c, req)
	if resp.StatusCode != http.StatusPartialContent || rb != string(good0[10:20]) {
		t.Errorf("range: %d %q", resp.StatusCode, rb)
	}

	// Deleting: not bob's take to delete; ann (recorder and owner) may.
	// Bob's own take ann deletes as the owner, and its file goes.
	st, body = f.bob.do("DELETE", "/takes/"+k.ID, nil)
	wantJSONError(t, "bob deletes ann's take", st, body, http.StatusForbidden, "only the member who recorded it")
	kb := f.newTake(t, f.bob, 1000)
	if st, body := chunk(f.bob, kb.ID, 0, good0); st != http.StatusOK {
		t.Fatalf("bob's chunk: %d %s", st, body)
	}
	file := filepath.Join(f.s.Config.DataDir, "studio", f.ann.ch, kb.ID)
	if _, err := os.Stat(file); err != nil {
		t.Fatalf("take file: %v", err)
	}
	if st, body := f.ann.do("DELETE", "/takes/"+kb.ID, nil); st != http.StatusNoContent {
		t.Fatalf("owner deletes bob's take: %d %s", st, body)
	}
	if _, err := os.Stat(file); !os.IsNotExist(err) {
		t.Errorf("take file after delete: %v, want gone", err)
	}
	if st, _, _ := f.audio(t, f.ann, kb.ID); st != http.StatusNotFound {
		t.Errorf("deleted take's audio: %d, want 404", st)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestStudioNonMembers: every studio route answers a non-member 403 and a
// visitor who is not logged in 401, and a cross-origin write is refused.
func TestStudioNonMembers(t *testing.T) {
	f := newStudioFixture(t)
	k := f.newTake(t, f.ann, 0)
	routes := []struct{ method, path string }{
		{"GET", ""},
		{"POST", "/songs"},
		{"PATCH", "/songs/" + f.song},
		{"DELETE", "/songs/" + f.song},
		{"POST", "/songs/" + f.song + "/tracks"},
		{"PATCH", "/tracks/" + f.track},
		{"DELETE", "/tracks/" + f.track},
		{"PUT", "/tracks/" + f.track + "/chosen"},
		{"POST", "/tracks/" + f.track + "/takes"},
		{"PUT", "/takes/" + k.ID + "/chunks/0"},
		{"POST", "/takes/" + k.ID + "/finish"},
		{"GET", "/takes/" + k.ID + "/audio"},
		{"DELETE", "/takes/" + k.ID},
	}
	anon := studioClient{t, f.s, f.s.Client(), f.ann.ch}
	for _, r := range routes {
		st, body := f.eve.do(r.method, r.path, []byte(`{"name":"x"}`))
		wantJSONError(t, "non-member "+r.method+" "+r.path, st, body, http.StatusForbidden, "not a member")
		st, body = anon.do(r.method, r.path, []byte(`{"name":"x"}`))
		wantJSONError(t, "anonymous "+r.method+" "+r.path, st, body, http.StatusUnauthorized, "not logged in")
	}
	if resp, _ := f.s.Get(f.eve.c, "/c/"+f.ann.ch+"/studio"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("studio page for a non-member: %d, want 403", resp.StatusCode)
	}
	if resp, body := f.s.Get(f.bob.c, "/c/"+f.ann.ch+"/studio"); resp.StatusCode != http.StatusOK || !strings.Contains(body, "studio/main.js") {
		t.Errorf("studio page for a member: %d", resp.StatusCode)
	}
	req, _ := http.NewRequest("POST", f.s.URL+"/api/channels/"+f.ann.ch+"/studio/songs", strings.NewReader(`{"name":"x"}`))
	req.Header.Set("Origin", "https://evil.example")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	if resp, _ := f.s.Do(f.bob.c, req); resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-origin song: %d, want 403", resp.StatusCode)
	}
}

// TestStudioLiveTake: a member listening to a take in progress gets each
// chunk as it is acknowledged and the end when it is finished; the
// channel's sockets hear of the take's start, progress and end.
func TestStudioLiveTake(t *testing.T) {
	// The take streams for longer than the server's read timeout, which
	// must not end the stream (net/http clears the read deadline once the
	// request is read; this guards that).
	f := newStudioFixture(t, servertest.WithConfig(func(c *config.Config) { c.ReadTimeout = 700 * time.Millisecond }))
	sock := dialAs(t, f.s, f.ann.ch, cookieHeader(f.s, f.bob.c))
	k := f.newTake(t, f.ann, 0)
	wantStudioEvent(t, sock, signaling.StudioTakeAdded, k.ID)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", f.s.URL+"/api/channels/"+f.ann.ch+"/studio/takes/"+k.ID+"/audio", nil)
	got := make(chan []byte, 16)
	respc := make(chan *http.Response, 1)
	go func() {
		resp, err := f.bob.c.Do(req)
		if err != nil {
			close(got)
			return
		}
		respc <- resp
		defer resp.Body.Close()
		buf := make([]byte, 4096)
		for {
			n, err := resp.Body.Read(buf)
			if n > 0 {
				got <- append([]byte{}, buf[:n]...)
			}
			if err != nil {
				close(got)
				return
			}
		}
	}()
	read := func(n int) []byte {
		t.Helper()
		var b []byte
		for len(b) < n {
			select {
			case p, ok := <-got:
				if !ok {
					t.Fatalf("stream ended after %d of %d bytes", len(b), n)
				}
				b = append(b, p...)
			case <-ctx.Done():
				t.Fatalf("stream stalled at %d of %d bytes", len(b), n)
			}
		}
		return b
	}
	c0 := append(append([]byte{}, webmStart...), 7, 7, 7)
	st, body := f.ann.do("PUT", "/takes/"+k.ID+"/chunks/0?durationMs=250&levels=2", c0)
	wantJSONError(t, "a level above 1", st, body, http.StatusBadRequest, "levels must be")
	if st, body := f.ann.do("PUT", "/takes/"+k.ID+"/chunks/0?durationMs=250&levels=0.25,0.5", c0); st != http.StatusOK {
		t.Fatalf("chunk 0: %d %s", st, body)
	}
	if b := read(len(c0)); !bytes.Equal(b, c0) {
		t.Fatalf("first bytes %x", b)
	}
	if ev := wantStudioEvent(t, sock, signaling.StudioTakeProgress, k.ID); ev.DurationMS != 250 || ev.Chunks != 1 || len(ev.Levels) != 2 || ev.Levels[1] != 0.5 {
		t.Errorf("progress event %+v", ev)
	}
	resp := <-respc
	if resp.Header.Get("Content-Type") != "audio/webm" || resp.Header.Get("X-Take-State") != "recording" {
		t.Errorf("live headers %v", resp.Header)
	}
	time.Sleep(1200 * time.Millisecond) // past the read timeout: what is tested, not a synchronisation
	c1 := []byte("more audio")
	if st, body := f.ann.do("PUT", "/takes/"+k.ID+"/chunks/1?durationMs=500", c1); st != http.StatusOK {
		t.Fatalf("chunk 1: %d %s", st, body)
	}
	if b := read(len(c1)); !bytes.Equal(b, c1) {
		t.Fatalf("second bytes %q", b)
	}
	if st := f.ann.json("POST", "/takes/"+k.ID+"/finish", map[string]int64{"durationMs": 520}, nil); st != http.StatusOK {
		t.Fatalf("finish: %d", st)
	}
	select {
	case p, ok := <-got:
		if ok {
			t.Fatalf("bytes after the end: %q", p)
		}
	case <-ctx.Done():
		t.Fatal("stream did not end with the take")
	}
	wantStudioEvent(t, sock, signaling.StudioTakeFinished, k.ID)
}

// wantStudioEvent reads the socket until a studio event of kind for take.
func wantStudioEvent(t *testing.T, o *openSocket, kind, take string) signaling.StudioEvent {
	t.Helper()
	for {
		m := o.next()
		if m.Type == signaling.TypeStudio && m.Studio != nil && m.Studio.Event == kind && m.Studio.Take == take {
			return *m.Studio
		}
	}
}

// TestStudioInterruptedAndResumed: a take whose uploader goes quiet is
// marked interrupted with its bytes kept; after a server restart the
// uploader continues from the server's count.
func TestStudioInterruptedAndResumed(t *testing.T) {
	f := newStudioFixture(t, servertest.WithConfig(func(c *config.Config) { c.StudioIdle = 300 * time.Millisecond }))
	sock := dialAs(t, f.s, f.ann.ch, cookieHeader(f.s, f.bob.c))
	k := f.newTake(t, f.ann, 0)
	c0 := append(append([]byte{}, webmStart...), 1, 2, 3)
	if st, body := f.ann.do("PUT", "/takes/"+k.ID+"/chunks/0?durationMs=250", c0); st != http.StatusOK {
		t.Fatalf("chunk 0: %d %s", st, body)
	}
	ev := wantStudioEvent(t, sock, signaling.StudioTakeInterrupted, k.ID)
	if ev.Bytes != int64(len(c0)) || ev.State != "interrupted" {
		t.Errorf("interrupted event %+v", ev)
	}
	st0, b0, hdr0 := f.audio(t, f.bob, k.ID)
	if st0 != http.StatusOK || !bytes.Equal(b0, c0) || hdr0.Get("X-Take-State") != "interrupted" || hdr0.Get("ETag") == "" {
		t.Errorf("interrupted take's audio: %d %d bytes, state %q, ETag %q", st0, len(b0), hdr0.Get("X-Take-State"), hdr0.Get("ETag"))
	}

	f.s.Restart()
	st, body := f.ann.do("PUT", "/takes/"+k.ID+"/chunks/3", []byte("x"))
	wantJSONError(t, "after restart, a later chunk", st, body, http.StatusConflict, "send chunk 1 next")
	if st, body := f.ann.do("PUT", "/takes/"+k.ID+"/chunks/1?durationMs=500", []byte("resumed")); st != http.StatusOK {
		t.Fatalf("resume: %d %s", st, body)
	}
	var v struct {
		Songs []struct {
			Tracks []struct {
				Takes []takeJSON `json:"takes"`
			} `json:"tracks"`
		} `json:"songs"`
	}
	if st := f.bob.json("GET", "", nil, &v); st != http.StatusOK {
		t.Fatalf("view: %d", st)
	}
	// A copy cached while the take was interrupted is stale now.
	req, _ := http.NewRequest("GET", f.s.URL+"/api/channels/"+f.ann.ch+"/studio/takes/"+k.ID+"/audio", nil)
	req.Header.Set("If-None-Match", hdr0.Get("ETag"))
	if st := f.ann.json("POST", "/takes/"+k.ID+"/finish", map[string]int64{"durationMs": 0}, nil); st != http.StatusOK {
		t.Fatalf("finish: %d", st)
	}
	if resp, body := f.s.Do(f.bob.c, req); resp.StatusCode != http.StatusOK || body != string(c0)+"resumed" {
		t.Errorf("revalidating the interrupted copy: %d %q, want 200 with the resumed take", resp.StatusCode, body)
	}
	got := v.Songs[0].Tracks[0].Takes[0]
	if got.State != "recording" || got.Chunks != 2 || got.Bytes != int64(len(c0)+len("resumed")) || got.MIME != "audio/webm" {
		t.Errorf("resumed take %+v", got)
	}
}

// TestStudioChannelDeleted: deleting a channel removes its take files and
// its studio rows.
func TestStudioChannelDeleted(t *testing.T) {
	f := newStudioFixture(t)
	k := f.newTake(t, f.ann, 0)
	if st, body := f.ann.do("PUT", "/takes/"+k.ID+"/chunks/0", webmStart); st != http.StatusOK {
		t.Fatalf("chunk: %d %s", st, body)
	}
	dir := filepath.Join(f.s.Config.DataDir, "studio", f.ann.ch)
	if _, err := os.Stat(filepath.Join(dir, k.ID)); err != nil {
		t.Fatal(err)
	}
	if resp, _ := f.s.PostForm(f.ann.c, "/c/"+f.ann.ch+"/delete", nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("delete channel: %d", resp.StatusCode)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("take files of a deleted channel: %v, want gone", err)
	}
	if st, _ := f.ann.do("GET", "", nil); st != http.StatusNotFound {
		t.Errorf("studio of a deleted channel: %d, want 404", st)
	}
}

// TestStudioTracksAndChosenTake: tracks are renamed, reordered and
// deleted (only with the right over every take they hold), a track's
// chosen take is set and cleared, and a take downloads as a file.
func TestStudioTracksAndChosenTake(t *testing.T) {
	f := newStudioFixture(t)
	var drums idOnly
	if st := f.bob.json("POST", "/songs/"+f.song+"/tracks", map[string]string{"name": "Drums"}, &drums); st != http.StatusCreated {
		t.Fatalf("bob adds a track: %d", st)
	}
	k := f.newTake(t, f.ann, 0)
	if st, body := f.ann.do("PUT", "/takes/"+k.ID+"/chunks/0", webmStart); st != http.StatusOK {
		t.Fatalf("chunk: %d %s", st, body)
	}
	if st := f.bob.json("PATCH", "/tracks/"+f.track, map[string]any{"name": "Lead vocals", "position": 5}, nil); st != http.StatusNoContent {
		t.Errorf("rename and move: %d", st)
	}
	st, body := f.bob.do("PATCH", "/tracks/"+f.track, []byte(`{"name":"   "}`))
	wantJSONError(t, "empty track name", st, body, http.StatusBadRequest, "give the track a name")
	if st := f.bob.json("PUT", "/tracks/"+f.track+"/chosen", map[string]string{"take": k.ID}, nil); st != http.StatusNoContent {
		t.Errorf("choose: %d", st)
	}
	st, body = f.bob.do("PUT", "/tracks/"+drums.ID+"/chosen", []byte(`{"take":"`+k.ID+`"}`))
	wantJSONError(t, "choose another track's take", st, body, http.StatusNotFound, "no such")
	var v struct {
		Songs []struct {
			Tracks []struct {
				ID         string `json:"id"`
				Name       string `json:"name"`
				Position   int    `json:"position"`
				ChosenTake string `json:"chosenTake"`
			} `json:"tracks"`
		} `json:"songs"`
	}
	f.ann.json("GET", "", nil, &v)
	tr := v.Songs[0].Tracks
	if len(tr) != 2 || tr[1].ID != f.track || tr[1].Name != "Lead vocals" || tr[1].Position != 5 || tr[1].ChosenTake != k.ID {
		t.Errorf("tracks = %+v", tr)
	}
	resp, err := f.bob.c.Get(f.s.URL + "/api/channels/" + f.ann.ch + "/studio/takes/" + k.ID + "/audio?download=1")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if cd := resp.Header.Get("Content-Disposition"); !strings.HasPrefix(cd, "attachment;") || !strings.HasSuffix(cd, `.webm"`) {
		t.Errorf("download Content-Disposition %q", cd)
	}
	// Bob may not delete the track holding Ann's take; Ann (owner) may,
	// and the take's file goes with it.
	st, body = f.bob.do("DELETE", "/tracks/"+f.track, nil)
	wantJSONError(t, "bob deletes a track with ann's take", st, body, http.StatusForbidden, "only the member who recorded it")
	if st, _ := f.bob.do("DELETE", "/tracks/"+drums.ID, nil); st != http.StatusNoContent {
		t.Errorf("bob deletes his empty track: %d", st)
	}
	if st, _ := f.ann.do("DELETE", "/tracks/"+f.track, nil); st != http.StatusNoContent {
		t.Errorf("owner deletes the track: %d", st)
	}
	if _, err := os.Stat(filepath.Join(f.s.Config.DataDir, "studio", f.ann.ch, k.ID)); !os.IsNotExist(err) {
		t.Errorf("take file after its track was deleted: %v", err)
	}
	if st, _ := f.ann.do("DELETE", "/songs/"+f.song, nil); st != http.StatusNoContent {
		t.Errorf("delete song: %d", st)
	}
}

// TestStudioQuotaFreedByDelete: deleting a take gives its bytes back to
// the channel's quota at once.
func TestStudioQuotaFreedByDelete(t *testing.T) {
	f := newStudioFixture(t, servertest.WithConfig(func(c *config.Config) { c.StudioQuota = 1000 }))
	a, b := f.newTake(t, f.ann, 0), f.newTake(t, f.bob, 0)
	big := append(append([]byte{}, webmStart...), make([]byte, 600-len(webmStart))...)
	if st, body := f.ann.do("PUT", "/takes/"+a.ID+"/chunks/0", big); st != http.StatusOK {
		t.Fatalf("ann's 600 bytes: %d %s", st, body)
	}
	half := append(append([]byte{}, webmStart...), make([]byte, 500-len(webmStart))...)
	st, body := f.bob.do("PUT", "/takes/"+b.ID+"/chunks/0", half)
	wantJSONError(t, "bob's 500 bytes with 600 of 1000 used", st, body, http.StatusInsufficientStorage, "600 of 1000 bytes used")
	if st, _ := f.ann.do("DELETE", "/takes/"+a.ID, nil); st != http.StatusNoContent {
		t.Fatalf("delete: %d", st)
	}
	if st, body := f.bob.do("PUT", "/takes/"+b.ID+"/chunks/0", half); st != http.StatusOK {
		t.Errorf("bob's 500 bytes after the delete: %d %s", st, body)
	}
}
