package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/parley/parley/internal/signaling"
	"github.com/parley/parley/internal/store/storetest"
	"github.com/parley/parley/internal/testtool"
	"github.com/parley/parley/internal/webhook"
)

// killReceiver is a webhook endpoint that, while down, holds every
// request without answering (until the client gives up), and once up
// records the signed events it accepts.
type killReceiver struct {
	t        *testing.T
	up       atomic.Bool
	inFlight atomic.Int32 // requests held right now
	mu       sync.Mutex
	secret   string
	events   []webhook.Envelope
	badSig   int
}

func (k *killReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if !k.up.Load() {
		k.inFlight.Add(1)
		defer k.inFlight.Add(-1)
		<-r.Context().Done() // the server timed out, or was killed
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := webhook.Verify(k.secret, r.Header.Get(webhook.SignatureHeader), body, time.Now(), 5*time.Minute); err != nil {
		k.badSig++
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var env webhook.Envelope
	if err := json.Unmarshal(body, &env); err != nil {
		k.t.Errorf("body %s: %v", body, err)
	}
	k.events = append(k.events, env)
	w.WriteHeader(http.StatusNoContent)
}

func (k *killReceiver) got() []webhook.Envelope {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]webhook.Envelope(nil), k.events...)
}

// api calls /api/v1 with the session cookie as a same-origin page would.
func (p *parleyProcess) api(session, method, path string, body any, out any) int {
	p.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, p.base+path, rd)
	if err != nil {
		p.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", p.base)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	req.Header.Set("Cookie", "parley_session="+session)
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		p.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	if out != nil {
		json.NewDecoder(resp.Body).Decode(out)
	}
	return resp.StatusCode
}

// joinCall opens a signaling socket to the channel and joins its call.
func (p *parleyProcess) joinCall(session, channelID string) *websocket.Conn {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(p.base, "http")+"/ws/c/"+channelID, &websocket.DialOptions{
		HTTPHeader:   http.Header{"Cookie": {"parley_session=" + session}, "Origin": {p.base}},
		Subprotocols: []string{signaling.Subprotocol},
	})
	if err != nil {
		p.t.Fatal(err)
	}
	p.t.Cleanup(func() { conn.CloseNow() })
	join, _ := signaling.Encode(signaling.Message{Type: signaling.TypeJoin})
	if err := conn.Write(ctx, websocket.MessageText, join); err != nil {
		p.t.Fatal(err)
	}
	for {
		_, data, err := conn.Read(ctx)
		if err != nil {
			p.t.Fatal(err)
		}
		if m, err := signaling.Parse(data); err == nil && m.Type == signaling.TypeJoined {
			go func() {
				for {
					if _, _, err := conn.Read(context.Background()); err != nil {
						return
					}
				}
			}()
			return conn
		}
	}
}

// TestWebhookSurvivesKill9: events are written, the receiver holds the
// first delivery without answering, and the server is killed with
// SIGKILL. Started again on the same data, it delivers every event
// written before the kill, in order, each once, signed, and invents none
// (the call whose server died is not reported as ended). On SQLite and
// (with PARLEY_TEST_POSTGRES) on PostgreSQL.
func TestWebhookSurvivesKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and kills it")
	}
	bin := buildParley(t)
	t.Run("sqlite", func(t *testing.T) { webhookKill(t, bin, "") })
	t.Run("postgres", func(t *testing.T) { webhookKill(t, bin, storetest.PostgresDSN(t)) })
}

func webhookKill(t *testing.T, bin, dsn string) {
	t.Setenv("PARLEY_WEBHOOK_ALLOW_PRIVATE", "true") // the receiver is on loopback
	t.Setenv("PARLEY_WEBHOOK_RETRY_MIN", "20ms")
	t.Setenv("PARLEY_WEBHOOK_RETRY_MAX", "100ms")
	t.Setenv("PARLEY_WEBHOOK_TIMEOUT", "1s") // a delivery cut by the kill is retried 7 s later
	t.Setenv("PARLEY_RTC_LOOPBACK_ONLY", "true")
	rc := &killReceiver{t: t}
	hs := httptest.NewServer(rc)
	defer hs.Close()

	srv := &parleyProcess{t: t, bin: bin, dataDir: t.TempDir(), dsn: dsn}
	srv.start()
	t.Cleanup(srv.kill)
	ann := srv.signUp("ann")
	bob := srv.signUp("bob")
	ch := srv.createChannel(ann, "Hooks")
	var wh struct{ ID, Secret string }
	if code := srv.api(ann, "POST", "/api/v1/webhooks", map[string]any{"url": hs.URL + "/hook",
		"events": []string{"member.added", "member.removed", "call.started", "call.ended", "participant.joined", "participant.left"}}, &wh); code != 201 {
		t.Fatalf("create webhook: %d", code)
	}
	rc.mu.Lock()
	rc.secret = wh.Secret
	rc.mu.Unlock()

	srv.addMember(ann, ch, "bob")                 // member.added
	srv.joinCall(ann, ch)                         // call.started, participant.joined
	b := srv.joinCall(bob, ch)                    // participant.joined
	b.Close(websocket.StatusNormalClosure, "bye") // participant.left
	want := []string{"member.added", "call.started", "participant.joined", "participant.joined", "participant.left"}
	type delivery struct{ EventID, EventType, State string }
	var before []delivery
	testtool.Eventually(t, 15*time.Second, func() bool {
		var l struct{ Items []delivery }
		srv.api(ann, "GET", "/api/v1/webhooks/"+wh.ID+"/deliveries", nil, &l)
		before = l.Items
		return len(l.Items) == len(want) && rc.inFlight.Load() > 0
	}, "every event written, and a delivery held")
	srv.kill()
	for _, d := range before {
		if d.State != "pending" {
			t.Fatalf("delivered before the kill: %+v", d)
		}
	}

	rc.up.Store(true)
	srv.start()
	testtool.Eventually(t, 30*time.Second, func() bool { return len(rc.got()) >= len(want) }, "every event delivered after the restart")
	// A marker event after the restart: anything invented would come
	// before it.
	if code := srv.api(ann, "DELETE", "/api/v1/channels/"+ch+"/members/"+userID(t, srv, bob), nil, nil); code != 204 {
		t.Fatalf("remove bob: %d", code)
	}
	want = append(want, "member.removed")
	testtool.Eventually(t, 15*time.Second, func() bool { return len(rc.got()) >= len(want) }, "the marker delivered")
	got := rc.got()
	var types []string
	seen := map[string]bool{}
	for i, ev := range got {
		types = append(types, ev.Type)
		if seen[ev.ID] {
			t.Errorf("event %s (%s) arrived twice", ev.ID, ev.Type)
		}
		seen[ev.ID] = true
		// Newest first in the list: the i-th event written is before[n-1-i].
		if i < len(before) && ev.ID != before[len(before)-1-i].EventID {
			t.Errorf("event %d is %s, want %s (the order written)", i, ev.ID, before[len(before)-1-i].EventID)
		}
	}
	if strings.Join(types, " ") != strings.Join(want, " ") {
		t.Errorf("events after the restart:\n %v\nwant\n %v", types, want)
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.badSig != 0 {
		t.Errorf("%d deliveries with a bad signature", rc.badSig)
	}
}

// userID looks up a user's id through /api/v1/me.
func userID(t *testing.T, p *parleyProcess, session string) string {
	t.Helper()
	var me struct{ ID string }
	if code := p.api(session, "GET", "/api/v1/me", nil, &me); code != 200 || me.ID == "" {
		t.Fatalf("me: %d", code)
	}
	return me.ID
}
