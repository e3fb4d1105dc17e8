package web_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/parley/parley/internal/pairing"
	"github.com/parley/parley/internal/servertest"
)

// pairDial opens a pairing socket on the real server with c's session
// (nil: none) and the given Origin; it returns the upgrade's status.
func pairDial(t *testing.T, s *servertest.Server, c *http.Client, path, origin string) (*websocket.Conn, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	hd := http.Header{"Origin": {origin}}
	if c != nil {
		if ck := s.SessionCookie(c); ck != nil {
			hd.Set("Cookie", ck.Name+"="+ck.Value)
		}
	}
	conn, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(s.URL, "http")+path, &websocket.DialOptions{
		HTTPHeader: hd, Subprotocols: []string{pairing.Subprotocol},
	})
	if err == nil {
		t.Cleanup(func() { conn.CloseNow() })
		return conn, http.StatusSwitchingProtocols
	}
	if resp == nil {
		t.Fatalf("dial %s: %v", path, err)
	}
	return nil, resp.StatusCode
}

// TestPairingRoutes: the device's page and socket need no account but
// the same origin; the sender's needs a login and membership of the
// channel it sends from; a token works as well as a cookie.
func TestPairingRoutes(t *testing.T) {
	s := servertest.Start(t)
	resp, body := s.Get(s.Client(), "/receive")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `id="receive-app"`) || !strings.Contains(body, "/static/receive.js") {
		t.Fatalf("/receive: %d\n%s", resp.StatusCode, body)
	}
	if _, st := pairDial(t, s, nil, "/ws/receive", "https://evil.example"); st != http.StatusForbidden {
		t.Fatalf("cross-origin /ws/receive: %d, want 403", st)
	}
	conn, st := pairDial(t, s, nil, "/ws/receive", s.URL)
	if st != http.StatusSwitchingProtocols {
		t.Fatalf("/ws/receive: %d", st)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, b, err := conn.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	m, err := pairing.Decode(b, pairing.RoleSender) // a code is not a client message
	if err == nil {
		t.Fatalf("decoded the server's code as a client message: %+v", m)
	}
	code := strings.Split(strings.Split(string(b), `"code":"`)[1], `"`)[0]

	ann := s.SignUp("ann", "Ann")
	ch := s.CreateChannel(ann, "Ann's")
	ben := s.SignUp("ben", "Ben")
	if _, st := pairDial(t, s, nil, "/ws/send?code="+code+"&channel="+ch, s.URL); st != http.StatusUnauthorized {
		t.Fatalf("no login: %d, want 401", st)
	}
	if _, st := pairDial(t, s, ben, "/ws/send?code="+code+"&channel="+ch, s.URL); st != http.StatusForbidden {
		t.Fatalf("not a member: %d, want 403", st)
	}
	if _, st := pairDial(t, s, ann, "/ws/send?code="+code, s.URL); st != http.StatusBadRequest {
		t.Fatalf("no channel: %d, want 400", st)
	}
	if _, st := pairDial(t, s, ann, "/ws/send?code="+code+"&channel="+ch, "https://evil.example"); st != http.StatusForbidden {
		t.Fatalf("cross-origin sender: %d, want 403", st)
	}
	// With a personal access token instead of the cookie.
	ctx2, cancel2 := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel2()
	sc, _, err := websocket.Dial(ctx2, "ws"+strings.TrimPrefix(s.URL, "http")+"/ws/send?code="+code+"&channel="+ch, &websocket.DialOptions{
		HTTPHeader:   http.Header{"Authorization": {"Bearer " + s.Token("ann")}},
		Subprotocols: []string{pairing.Subprotocol},
	})
	if err != nil {
		t.Fatalf("sender with a token: %v", err)
	}
	defer sc.CloseNow()
	if _, b, err := sc.Read(ctx2); err != nil || !strings.Contains(string(b), `"paired"`) {
		t.Fatalf("sender's first message %s, %v", b, err)
	}
	if _, b, err := conn.Read(ctx2); err != nil || !strings.Contains(string(b), `"name":"Ann"`) {
		t.Fatalf("device's message %s, %v", b, err)
	}

	// Logging out ends the pairs sent with that session: the device is
	// told the sender stopped.
	dev, _ := pairDial(t, s, nil, "/ws/receive", s.URL)
	_, b, err = dev.Read(ctx2)
	if err != nil {
		t.Fatal(err)
	}
	code2 := strings.Split(strings.Split(string(b), `"code":"`)[1], `"`)[0]
	snd, st := pairDial(t, s, ann, "/ws/send?code="+code2+"&channel="+ch, s.URL)
	if st != http.StatusSwitchingProtocols {
		t.Fatalf("sender with a cookie: %d", st)
	}
	if resp, _ := s.PostForm(ann, "/logout", nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("log out: %d", resp.StatusCode)
	}
	for {
		if _, _, err := snd.Read(ctx2); err != nil {
			break
		}
	}
	for {
		_, b, err := dev.Read(ctx2)
		if err != nil {
			t.Fatalf("the device was not told the sender stopped: %v", err)
		}
		if strings.Contains(string(b), `"reason":"The sender stopped"`) {
			break
		}
	}
	if _, metrics := s.Get(s.Client(), "/metrics"); !strings.Contains(metrics, "parley_pairing_pairs_total 2") || !strings.Contains(metrics, "parley_pairing_wrong_codes_total 0") {
		t.Errorf("/metrics does not count two pairs and no wrong code:\n%s", metrics)
	}
}
