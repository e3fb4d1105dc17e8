package webhook_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parley/parley/internal/store"
	"github.com/parley/parley/internal/store/storetest"
	"github.com/parley/parley/internal/testtool"
	"github.com/parley/parley/internal/webhook"
)

func TestSignVerify(t *testing.T) {
	body := []byte(`{"id":"evt_1"}`)
	now := time.Unix(1_700_000_000, 0)
	h := webhook.Sign("whsec_x", now, body)
	if !strings.HasPrefix(h, "t=1700000000,v1=") || len(h) != len("t=1700000000,v1=")+64 {
		t.Fatalf("header %q", h)
	}
	if err := webhook.Verify("whsec_x", h, body, now.Add(time.Minute), 5*time.Minute); err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"other secret":  webhook.Verify("whsec_y", h, body, now, 5*time.Minute),
		"other body":    webhook.Verify("whsec_x", h, []byte(`{"id":"evt_2"}`), now, 5*time.Minute),
		"too old":       webhook.Verify("whsec_x", h, body, now.Add(6*time.Minute), 5*time.Minute),
		"from future":   webhook.Verify("whsec_x", h, body, now.Add(-6*time.Minute), 5*time.Minute),
		"no v1":         webhook.Verify("whsec_x", "t=1700000000", body, now, 5*time.Minute),
		"bad timestamp": webhook.Verify("whsec_x", strings.Replace(h, "t=1700000000", "t=17e8", 1), body, now, 5*time.Minute),
		"empty":         webhook.Verify("whsec_x", "", body, now, 5*time.Minute),
	} {
		if err == nil {
			t.Errorf("%s: verified", name)
		}
	}
	// A second v1 (a rotated secret) and unknown keys are fine.
	if err := webhook.Verify("whsec_x", "v0=zz,"+h+",v1="+strings.Repeat("00", 32), body, now, time.Minute); err != nil {
		t.Errorf("with extra parts: %v", err)
	}
}

func FuzzParseSignature(f *testing.F) {
	f.Add("t=1700000000,v1=" + strings.Repeat("ab", 32))
	f.Add("t=1,v1=00,v1=11")
	f.Add("")
	f.Add("t==,=,,")
	f.Fuzz(func(t *testing.T, h string) {
		s, err := webhook.ParseSignature(h)
		if err != nil {
			return
		}
		if s.Timestamp <= 0 || len(s.V1) == 0 {
			t.Fatalf("accepted %q as %+v", h, s)
		}
		for _, v := range s.V1 {
			if len(v) != 32 {
				t.Fatalf("v1 of %d bytes from %q", len(v), h)
			}
		}
	})
}

func TestBackoff(t *testing.T) {
	lo, hi := 10*time.Second, time.Hour
	for attempts, want := range map[int]time.Duration{1: 10 * time.Second, 2: 20 * time.Second, 3: 40 * time.Second, 9: 2560 * time.Second, 10: time.Hour, 40: time.Hour} {
		for range 50 {
			d := webhook.Backoff(attempts, lo, hi)
			if d < want/2 || d > want {
				t.Fatalf("attempt %d: %v, want within [%v, %v]", attempts, d, want/2, want)
			}
		}
	}
}

func TestParseURL(t *testing.T) {
	for _, ok := range []string{"https://example.org/hook", "http://example.org:8080/a?b=c", "https://93.184.216.34/x", "https://[2606:2800:220:1::1]/"} {
		if _, err := webhook.ParseURL(ok, false); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "ftp://example.org/", "example.org/hook", "https://", "https://user:pw@example.org/", "https://example.org/#x",
		"javascript:alert(1)", "https://example.org:99999/", "https://" + strings.Repeat("a", 2000) + ".org/"} {
		if _, err := webhook.ParseURL(bad, true); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	for _, private := range []string{"http://127.0.0.1:9/", "http://localhost/", "http://LOCALHOST./", "http://10.1.2.3/", "http://192.168.0.1/",
		"http://169.254.169.254/latest/meta-data", "http://[::1]/", "http://[fd00::1]/", "http://0.0.0.0/", "http://100.64.0.1/", "http://[::ffff:127.0.0.1]/"} {
		if _, err := webhook.ParseURL(private, false); !errors.Is(err, webhook.ErrPrivateAddress) {
			t.Errorf("%s: %v, want ErrPrivateAddress", private, err)
		}
		if _, err := webhook.ParseURL(private, true); err != nil {
			t.Errorf("%s with private allowed: %v", private, err)
		}
	}
	if !webhook.PrivateAddr(netip.MustParseAddr("::ffff:10.0.0.1")) || webhook.PrivateAddr(netip.MustParseAddr("8.8.8.8")) {
		t.Error("PrivateAddr misclassifies")
	}
}

// receiver is an endpoint on loopback that fails its first failFirst
// requests with 503, then records the events it accepts, checking each
// signature.
type receiver struct {
	t         *testing.T
	secret    string
	failFirst int
	mu        sync.Mutex
	requests  int
	events    []webhook.Envelope
	badSig    int
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.requests++
	if rc.requests <= rc.failFirst {
		http.Error(w, "not yet", http.StatusServiceUnavailable)
		return
	}
	if err := webhook.Verify(rc.secret, r.Header.Get(webhook.SignatureHeader), body, time.Now(), 5*time.Minute); err != nil {
		rc.badSig++
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	var env webhook.Envelope
	if err := json.Unmarshal(body, &env); err != nil || env.ID != r.Header.Get(webhook.EventIDHeader) || r.Header.Get("Content-Type") != "application/json" {
		rc.t.Errorf("bad delivery: %v %s", err, body)
	}
	rc.events = append(rc.events, env)
	w.WriteHeader(http.StatusNoContent)
}

func (rc *receiver) got() []webhook.Envelope {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]webhook.Envelope(nil), rc.events...)
}

// TestDeliveryRetriesInOrder: a receiver that fails the first three
// deliveries gets every event, in the order written, each once, each
// signed; the failing one held the others back meanwhile.
func TestDeliveryRetriesInOrder(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		owner := store.User{ID: "u_ann", Username: "ann", DisplayName: "Ann", Email: "ann@example.com", PasswordHash: "x", CreatedAt: time.Now()}
		if err := db.CreateUser(ctx, owner); err != nil {
			t.Fatal(err)
		}
		if err := db.CreateChannel(ctx, store.Channel{ID: "c_1", Name: "c", OwnerID: owner.ID, CreatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
		svc := webhook.New(webhook.Config{AllowPrivate: true, RetryMin: 5 * time.Millisecond, RetryMax: 20 * time.Millisecond, Poll: 10 * time.Millisecond},
			db, storetest.Logger(t))
		rc := &receiver{t: t, failFirst: 3}
		srv := httptest.NewServer(rc)
		defer srv.Close()
		wh, err := svc.Create(ctx, owner.ID, webhook.Input{URL: srv.URL + "/hook", Events: []string{webhook.ParticipantJoined, webhook.CallStarted, webhook.ParticipantLeft, webhook.CallEnded}})
		if err != nil {
			t.Fatal(err)
		}
		rc.secret = wh.Secret
		if !strings.HasPrefix(wh.Secret, "whsec_") {
			t.Fatalf("secret %q", wh.Secret)
		}
		if ws, _ := svc.List(ctx, owner.ID); len(ws) != 1 || ws[0].Secret != "" {
			t.Fatalf("List shows the secret or misses the webhook: %+v", ws)
		}
		var want []string
		emit := func(typ string, data any) {
			t.Helper()
			ev, err := svc.Event(typ, "c_1", data)
			if err != nil {
				t.Fatal(err)
			}
			if err := db.Enqueue(ctx, ev); err != nil {
				t.Fatal(err)
			}
			want = append(want, ev.ID)
		}
		emit(webhook.CallStarted, webhook.CallData{CallID: "call_1"})
		for i := range 4 {
			emit(webhook.ParticipantJoined, webhook.ParticipantData{CallID: "call_1", ParticipantID: string(rune('a' + i))})
		}
		emit(webhook.MemberAdded, webhook.MemberData{}) // not chosen: not sent
		want = want[:len(want)-1]
		runCtx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { svc.Run(runCtx); close(done) }()
		defer func() { stop(); <-done }()
		for i := range 4 {
			emit(webhook.ParticipantLeft, webhook.ParticipantData{CallID: "call_1", ParticipantID: string(rune('a' + i))})
		}
		emit(webhook.CallEnded, webhook.CallData{CallID: "call_1"})
		svc.Kick()
		testtool.Eventually(t, 10*time.Second, func() bool { return len(rc.got()) >= len(want) }, "every event delivered")
		got := rc.got()
		seen := map[string]bool{}
		for i, ev := range got {
			if seen[ev.ID] {
				t.Errorf("event %s arrived twice", ev.ID)
			}
			seen[ev.ID] = true
			if i < len(want) && ev.ID != want[i] {
				t.Errorf("event %d is %s (%s), want %s", i, ev.ID, ev.Type, want[i])
			}
		}
		if len(got) != len(want) || rc.badSig != 0 {
			t.Errorf("%d events (want %d), %d bad signatures", len(got), len(want), rc.badSig)
		}
		ds, err := svc.Deliveries(ctx, owner.ID, wh.ID, 50)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range ds {
			if d.State != store.DeliveryDelivered {
				t.Errorf("delivery %s: %s", d.ID, d.State)
			}
			if d.EventID == want[0] && d.Attempts != 4 {
				t.Errorf("the first event took %d attempts, want 4 (3 failures)", d.Attempts)
			}
		}
		// A re-send arrives again, with the same event id.
		if err := svc.Resend(ctx, owner.ID, wh.ID, ds[len(ds)-1].ID); err != nil {
			t.Fatal(err)
		}
		testtool.Eventually(t, 10*time.Second, func() bool { return len(rc.got()) == len(want)+1 }, "re-sent event delivered")
		if last := rc.got()[len(want)]; last.ID != want[0] {
			t.Errorf("re-sent %s, want %s", last.ID, want[0])
		}
	})
}

// TestDeliveryGivesUp: past its retry window an event is marked failed
// and the webhook's next event goes out.
func TestDeliveryGivesUp(t *testing.T) {
	db := storetest.OpenSQLite(t)
	ctx := context.Background()
	owner := store.User{ID: "u_ann", Username: "ann", DisplayName: "Ann", Email: "ann@example.com", PasswordHash: "x", CreatedAt: time.Now()}
	if err := db.CreateUser(ctx, owner); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateChannel(ctx, store.Channel{ID: "c_1", Name: "c", OwnerID: owner.ID, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	svc := webhook.New(webhook.Config{AllowPrivate: true, RetryMin: 5 * time.Millisecond, RetryMax: 10 * time.Millisecond, Poll: 10 * time.Millisecond, RetryFor: 300 * time.Millisecond}, db, storetest.Logger(t))
	rc := &receiver{t: t, failFirst: 1 << 30}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	wh, err := svc.Create(ctx, owner.ID, webhook.Input{URL: srv.URL, Events: []string{webhook.CallStarted}})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := svc.Emit(ctx, webhook.CallStarted, "c_1", webhook.CallData{}); err != nil {
			t.Fatal(err)
		}
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { svc.Run(runCtx); close(done) }()
	defer func() { stop(); <-done }()
	testtool.Eventually(t, 10*time.Second, func() bool {
		ds, _ := svc.Deliveries(ctx, owner.ID, wh.ID, 10)
		return len(ds) == 2 && ds[0].State == store.DeliveryFailed && ds[1].State == store.DeliveryFailed
	}, "both events given up")
	ds, _ := svc.Deliveries(ctx, owner.ID, wh.ID, 10)
	first := ds[1] // newest first
	if first.LastStatus != http.StatusServiceUnavailable || !strings.Contains(first.LastError, "503") || first.Attempts < 2 {
		t.Errorf("given-up delivery: %+v", first)
	}
}

// TestPrivateAddressRefused: without AllowPrivate, registering a
// loopback URL is refused, and a delivery whose URL resolves to one is
// not even connected.
func TestPrivateAddressRefused(t *testing.T) {
	db := storetest.OpenSQLite(t)
	ctx := context.Background()
	owner := store.User{ID: "u_ann", Username: "ann", DisplayName: "Ann", Email: "ann@example.com", PasswordHash: "x", CreatedAt: time.Now()}
	if err := db.CreateUser(ctx, owner); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateChannel(ctx, store.Channel{ID: "c_1", Name: "c", OwnerID: owner.ID, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	var hits int
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { mu.Lock(); hits++; mu.Unlock() }))
	defer srv.Close()
	strict := webhook.New(webhook.Config{RetryMin: time.Hour, Poll: 10 * time.Millisecond}, db, storetest.Logger(t))
	var inv *webhook.InvalidError
	if _, err := strict.Create(ctx, owner.ID, webhook.Input{URL: srv.URL, Events: []string{webhook.CallStarted}}); !errors.As(err, &inv) || inv.Field != "url" {
		t.Fatalf("loopback URL: %v", err)
	}
	// A name is checked when dialled: a webhook made while private
	// addresses were allowed (or a name that resolves to one).
	lenient := webhook.New(webhook.Config{AllowPrivate: true}, db, storetest.Logger(t))
	wh, err := lenient.Create(ctx, owner.ID, webhook.Input{URL: strings.Replace(srv.URL, "127.0.0.1", "localhost", 1), Events: []string{webhook.CallStarted}})
	if err != nil {
		t.Fatal(err)
	}
	if err := strict.Emit(ctx, webhook.CallStarted, "c_1", webhook.CallData{}); err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { strict.Run(runCtx); close(done) }()
	defer func() { stop(); <-done }()
	testtool.Eventually(t, 10*time.Second, func() bool {
		ds, _ := strict.Deliveries(ctx, owner.ID, wh.ID, 10)
		return len(ds) == 1 && ds[0].Attempts == 1 && ds[0].LastError != ""
	}, "attempt recorded")
	ds, _ := strict.Deliveries(ctx, owner.ID, wh.ID, 10)
	if !strings.Contains(ds[0].LastError, "private or loopback") {
		t.Errorf("error %q", ds[0].LastError)
	}
	mu.Lock()
	defer mu.Unlock()
	if hits != 0 {
		t.Errorf("the loopback receiver was called %d times", hits)
	}
}

func TestCreateValidates(t *testing.T) {
	db := storetest.OpenSQLite(t)
	ctx := context.Background()
	owner := store.User{ID: "u_ann", Username: "ann", DisplayName: "Ann", Email: "ann@example.com", PasswordHash: "x", CreatedAt: time.Now()}
	if err := db.CreateUser(ctx, owner); err != nil {
		t.Fatal(err)
	}
	svc := webhook.New(webhook.Config{}, db, nil)
	var inv *webhook.InvalidError
	if _, err := svc.Create(ctx, owner.ID, webhook.Input{URL: "https://example.org/", Events: nil}); !errors.As(err, &inv) || inv.Field != "events" {
		t.Errorf("no events: %v", err)
	}
	if _, err := svc.Create(ctx, owner.ID, webhook.Input{URL: "https://example.org/", Events: []string{"call.exploded"}}); !errors.As(err, &inv) || inv.Field != "events" {
		t.Errorf("unknown event: %v", err)
	}
	w, err := svc.Create(ctx, owner.ID, webhook.Input{URL: "https://example.org/", Events: []string{webhook.CallEnded, webhook.CallStarted, webhook.CallEnded}})
	if err != nil || strings.Join(w.Events, ",") != "call.started,call.ended" {
		t.Fatalf("%v %v", w.Events, err)
	}
	for range webhook.MaxPerUser - 1 {
		if _, err := svc.Create(ctx, owner.ID, webhook.Input{URL: "https://example.org/", Events: []string{webhook.CallStarted}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := svc.Create(ctx, owner.ID, webhook.Input{URL: "https://example.org/", Events: []string{webhook.CallStarted}}); !errors.Is(err, webhook.ErrTooMany) {
		t.Errorf("one too many: %v", err)
	}
	u, err := svc.Update(ctx, owner.ID, w.ID, webhook.Input{Events: []string{webhook.MemberAdded}})
	if err != nil || u.URL != "https://example.org/" || strings.Join(u.Events, ",") != "member.added" {
		t.Errorf("update: %+v %v", u, err)
	}
	if _, err := svc.Update(ctx, "someone", w.ID, webhook.Input{URL: "https://example.com/"}); !errors.Is(err, webhook.ErrNotFound) {
		t.Errorf("update someone else's: %v", err)
	}
}

func FuzzParseURL(f *testing.F) {
	f.Add("https://example.org/hook")
	f.Add("http://127.0.0.1:8080/")
	f.Add("http://[::ffff:10.0.0.1]/")
	f.Add("https://user@example.org/")
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := webhook.ParseURL(raw, false)
		if err != nil {
			return
		}
		if (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" || u.User != nil {
			t.Fatalf("accepted %q as %v", raw, u)
		}
		if a, err := netip.ParseAddr(u.Hostname()); err == nil && webhook.PrivateAddr(a) {
			t.Fatalf("accepted private %q", raw)
		}
	})
}
