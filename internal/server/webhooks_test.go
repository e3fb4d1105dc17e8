package server_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/parley/parley/internal/config"
	"github.com/parley/parley/internal/servertest"
	"github.com/parley/parley/internal/signaling"
	"github.com/parley/parley/internal/store/storetest"
	"github.com/parley/parley/internal/testtool"
	"github.com/parley/parley/internal/webhook"
)

// hookReceiver is a webhook endpoint on loopback that refuses its first
// failFirst requests (503) and records, in order, the events it accepts
// with a valid signature.
type hookReceiver struct {
	t         *testing.T
	failFirst int
	mu        sync.Mutex
	secret    string
	requests  int
	events    []webhook.Envelope
	badSig    int
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.requests++
	if h.requests <= h.failFirst {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	if err := webhook.Verify(h.secret, r.Header.Get(webhook.SignatureHeader), body, time.Now(), 5*time.Minute); err != nil {
		h.badSig++
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var env webhook.Envelope
	if err := json.Unmarshal(body, &env); err != nil {
		h.t.Errorf("delivery body %s: %v", body, err)
	}
	h.events = append(h.events, env)
	w.WriteHeader(http.StatusOK)
}

func (h *hookReceiver) got() []webhook.Envelope {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]webhook.Envelope(nil), h.events...)
}

// dialCall joins the channel's call and returns the socket, to be closed
// to leave.
func dialCall(t *testing.T, s *servertest.Server, c *http.Client, channelID string) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ck := s.SessionCookie(c)
	conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(s.URL, "http")+"/ws/c/"+channelID, &websocket.DialOptions{
		HTTPHeader:   http.Header{"Cookie": {ck.Name + "=" + ck.Value}, "Origin": {s.URL}},
		Subprotocols: []string{signaling.Subprotocol},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.CloseNow() })
	join, _ := signaling.Encode(signaling.Message{Type: signaling.TypeJoin})
	if err := conn.Write(ctx, websocket.MessageText, join); err != nil {
		t.Fatal(err)
	}
	for {
		_, data, err := conn.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if m, err := signaling.Parse(data); err == nil && m.Type == signaling.TypeJoined {
			// Keep reading (pings are answered by reads), discarding.
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

// TestWebhooksDeliverEveryEvent: a whole server with a webhook on every
// event; members are added and removed and a call starts, is joined and
// ends, while the receiver refuses the first three deliveries. Every
// event arrives, once, signed, in the order it happened.
func TestWebhooksDeliverEveryEvent(t *testing.T) {
	s := servertest.Start(t, servertest.WithConfig(func(c *config.Config) {
		c.WebhookAllowPrivate = true // the receiver is on loopback
		c.WebhookRetryMin, c.WebhookRetryMax = 10*time.Millisecond, 50*time.Millisecond
	}))
	a := s.SignUp("ann", "Ann")
	b := s.SignUp("bob", "Bob")
	s.SignUp("cyd", "Cyd")
	ann, bob := user(t, s, "ann"), user(t, s, "bob")
	ctx := context.Background()
	rc := &hookReceiver{t: t, failFirst: 3}
	hs := httptest.NewServer(rc)
	defer hs.Close()
	wh, err := s.Webhooks().Create(ctx, ann.ID, webhook.Input{URL: hs.URL + "/parley", Events: webhook.EventTypes})
	if err != nil {
		t.Fatal(err)
	}
	rc.mu.Lock()
	rc.secret = wh.Secret
	rc.mu.Unlock()

	ch := s.CreateChannel(a, "Standup")
	s.AddMember(a, ch, "bob") // member.added (by the owner)
	if _, err := s.Accounts().AddMember(ctx, ann, ch, "cyd"); err != nil {
		t.Fatal(err)
	}
	ca := dialCall(t, s, a, ch) // call.started, participant.joined
	cb := dialCall(t, s, b, ch) // participant.joined
	cb.Close(websocket.StatusNormalClosure, "bye")
	want := []string{webhook.MemberAdded, webhook.MemberAdded, webhook.CallStarted, webhook.ParticipantJoined, webhook.ParticipantJoined, webhook.ParticipantLeft}
	// Ann leaves once Bob's leaving is written, so the order is known.
	testtool.Eventually(t, 10*time.Second, func() bool {
		ds, _ := s.Webhooks().Deliveries(ctx, ann.ID, wh.ID, 50)
		return len(ds) == len(want)
	}, "bob's leaving written")
	ca.Close(websocket.StatusNormalClosure, "bye") // participant.left, call.ended
	want = append(want, webhook.ParticipantLeft, webhook.CallEnded)
	// Bob leaves the channel once the call's end is written: the room
	// sees Ann's close on its own goroutine, so without the wait the
	// membership change could be written first.
	testtool.Eventually(t, 10*time.Second, func() bool {
		ds, _ := s.Webhooks().Deliveries(ctx, ann.ID, wh.ID, 50)
		return len(ds) == len(want)
	}, "the call's end written")
	if err := s.Accounts().Leave(ctx, bob, ch); err != nil { // member.removed (left)
		t.Fatal(err)
	}
	want = append(want, webhook.MemberRemoved)

	testtool.Eventually(t, 15*time.Second, func() bool { return len(rc.got()) >= len(want) }, "every event delivered")
	got := rc.got()
	var types []string
	seen := map[string]bool{}
	var callID string
	for _, ev := range got {
		types = append(types, ev.Type)
		if seen[ev.ID] {
			t.Errorf("event %s (%s) arrived twice", ev.ID, ev.Type)
		}
		seen[ev.ID] = true
		if ev.ChannelID != ch {
			t.Errorf("%s in channel %q, want %q", ev.Type, ev.ChannelID, ch)
		}
		var d struct {
			CallID                string `json:"callId"`
			Username, Reason, How string
		}
		json.Unmarshal(ev.Data, &d)
		if strings.HasPrefix(ev.Type, "call.") || strings.HasPrefix(ev.Type, "participant.") {
			if callID == "" {
				callID = d.CallID
			}
			if d.CallID == "" || d.CallID != callID {
				t.Errorf("%s of call %q, want %q", ev.Type, d.CallID, callID)
			}
		}
	}
	if strings.Join(types, " ") != strings.Join(want, " ") {
		t.Errorf("events\n %v\nwant\n %v", types, want)
	}
	rc.mu.Lock()
	if rc.badSig != 0 || rc.requests != len(want)+3 {
		t.Errorf("%d requests (want %d: 3 refused), %d bad signatures", rc.requests, len(want)+3, rc.badSig)
	}
	rc.mu.Unlock()
	var joined []struct{ Username string }
	for _, ev := range got {
		if ev.Type == webhook.ParticipantJoined {
			var d struct{ Username string }
			json.Unmarshal(ev.Data, &d)
			joined = append(joined, d)
		}
	}
	if len(joined) != 2 || joined[0].Username != "ann" || joined[1].Username != "bob" {
		t.Errorf("joined %+v, want ann then bob", joined)
	}
	var last struct{ How, Username string }
	json.Unmarshal(got[len(got)-1].Data, &last)
	if last.How != "left" || last.Username != "bob" {
		t.Errorf("member.removed data %+v", last)
	}
}

// TestRecordingFinishedWebhook: stopping a call recording by hand sends
// recording.finished with the recording's id and state "finished".
func TestRecordingFinishedWebhook(t *testing.T) {
	s := servertest.Start(t, servertest.WithConfig(func(c *config.Config) { c.WebhookAllowPrivate = true }))
	owner := s.SignUp("ann", "Ann")
	ch := s.CreateChannel(owner, "Rec")
	ann := s.Token("ann")
	rc := &hookReceiver{t: t}
	hs := httptest.NewServer(rc)
	defer hs.Close()
	wh, err := s.Webhooks().Create(context.Background(), user(t, s, "ann").ID, webhook.Input{URL: hs.URL, Events: []string{webhook.RecordingFinished}})
	if err != nil {
		t.Fatal(err)
	}
	rc.mu.Lock()
	rc.secret = wh.Secret
	rc.mu.Unlock()
	k := openSocket(t, s, ann, ch)
	k.await(signaling.TypeHello)
	k.send(signaling.Message{Type: signaling.TypeJoin, State: &signaling.State{}})
	k.await(signaling.TypeJoined)
	code, b := api(t, s, ann, "POST", "/api/channels/"+ch+"/recording", map[string]string{"action": "start"})
	if code != 200 {
		t.Fatalf("start: %d %s", code, b)
	}
	if code, b := api(t, s, ann, "POST", "/api/channels/"+ch+"/recording", map[string]string{"action": "stop"}); code != 200 {
		t.Fatalf("stop: %d %s", code, b)
	}
	testtool.Eventually(t, 10*time.Second, func() bool { return len(rc.got()) == 1 }, "recording.finished delivered")
	ev := rc.got()[0]
	var d webhook.RecordingData
	json.Unmarshal(ev.Data, &d)
	if ev.Type != webhook.RecordingFinished || ev.ChannelID != ch || d.RecordingID == "" || d.State != "finished" {
		t.Errorf("event %s %s %+v", ev.Type, ev.ChannelID, d)
	}
}

// TestWebhooksTwoServersOnePostgres: two servers on one PostgreSQL
// database both run delivery workers over the shared outbox. Events
// written through either arrive once each, and each webhook's in the
// order written, while the receivers refuse every third request.
func TestWebhooksTwoServersOnePostgres(t *testing.T) {
	dsn := storetest.PostgresDSN(t)
	conf := servertest.WithConfig(func(c *config.Config) {
		c.DatabaseURL = dsn
		c.WebhookAllowPrivate = true
		c.WebhookRetryMin, c.WebhookRetryMax = 5*time.Millisecond, 20*time.Millisecond
	})
	a := servertest.Start(t, conf)
	b := servertest.Start(t, conf)
	owner := a.SignUp("ann", "Ann")
	ch := a.CreateChannel(owner, "Shared")
	ann := user(t, a, "ann")
	ctx := context.Background()

	type rec struct {
		mu     sync.Mutex
		n      int
		events []string
	}
	const hooks, perHook = 3, 30
	recs := make([]*rec, hooks)
	for i := range recs {
		r := &rec{}
		recs[i] = r
		hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			body, _ := io.ReadAll(req.Body)
			r.mu.Lock()
			defer r.mu.Unlock()
			r.n++
			if r.n%3 == 0 {
				w.WriteHeader(http.StatusBadGateway)
				return
			}
			var env webhook.Envelope
			json.Unmarshal(body, &env)
			r.events = append(r.events, env.ID)
		}))
		defer hs.Close()
		if _, err := a.Webhooks().Create(ctx, ann.ID, webhook.Input{URL: hs.URL, Events: []string{webhook.CallStarted}}); err != nil {
			t.Fatal(err)
		}
	}
	var want []string
	for i := range perHook {
		via := a
		if i%2 == 1 {
			via = b
		}
		ev, err := via.Webhooks().Event(webhook.CallStarted, ch, webhook.CallData{CallID: "call_x"})
		if err != nil {
			t.Fatal(err)
		}
		if err := via.DB().Enqueue(ctx, ev); err != nil {
			t.Fatal(err)
		}
		want = append(want, ev.ID)
	}
	a.Webhooks().Kick()
	b.Webhooks().Kick()
	testtool.Eventually(t, 30*time.Second, func() bool {
		for _, r := range recs {
			r.mu.Lock()
			n := len(r.events)
			r.mu.Unlock()
			if n < perHook {
				return false
			}
		}
		return true
	}, "every event at every webhook")
	for i, r := range recs {
		r.mu.Lock()
		if strings.Join(r.events, " ") != strings.Join(want, " ") {
			t.Errorf("webhook %d got %d events, not once each in the order written:\n%v\nwant\n%v", i, len(r.events), r.events, want)
		}
		r.mu.Unlock()
	}
}
