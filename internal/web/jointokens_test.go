package web_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/parley/parley/internal/apitest"
	"github.com/parley/parley/internal/jointoken"
	"github.com/parley/parley/internal/servertest"
	"github.com/parley/parley/internal/signaling"
)

// This file: join tokens at the edge (docs/api.md, Join tokens): minted
// through /api/v1 with the owner's bearer credential, used by the page,
// the embed page, the socket and WHIP; refused with their reasons.

// minted is the API's answer to a mint.
type minted struct {
	Token, JTI, UserID, JoinURL, EmbedURL string
	ExpiresAt                             time.Time
}

// mintJoin mints a join token for ch with the bearer credential, checking
// the answer against the OpenAPI document; want is the expected status.
func mintJoin(t testing.TB, s *servertest.Server, bearer, ch string, want int, body map[string]any) (minted, []byte) {
	t.Helper()
	b, _ := json.Marshal(body)
	req, err := http.NewRequest(http.MethodPost, s.URL+"/api/v1/channels/"+ch+"/join-tokens", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+bearer)
	resp, out := apitest.Do(t, apitest.Load(t), httpc, req)
	if resp.StatusCode != want {
		t.Fatalf("mint: %d %s, want %d", resp.StatusCode, out, want)
	}
	var m struct {
		Token     string    `json:"token"`
		JTI       string    `json:"jti"`
		UserID    string    `json:"userId"`
		JoinURL   string    `json:"joinUrl"`
		EmbedURL  string    `json:"embedUrl"`
		ExpiresAt time.Time `json:"expiresAt"`
	}
	if want == http.StatusCreated {
		if err := json.Unmarshal(out, &m); err != nil {
			t.Fatal(err)
		}
	}
	return minted{m.Token, m.JTI, m.UserID, m.JoinURL, m.EmbedURL, m.ExpiresAt}, out
}

// wsRefusal dials the socket with token and returns the refusal's status
// and body.
func wsRefusal(t *testing.T, s *servertest.Server, ch, token string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(s.URL, "http")+"/ws/c/"+ch+"?token="+url.QueryEscape(token), &websocket.DialOptions{Subprotocols: []string{signaling.Subprotocol}})
	if err == nil {
		conn.CloseNow()
		t.Fatalf("socket with token %.20s… accepted", token)
	}
	if resp == nil {
		t.Fatalf("dial: %v", err)
	}
	var body bytes.Buffer
	body.ReadFrom(resp.Body)
	return resp.StatusCode, body.String()
}

func TestJoinTokenMintAndRefusals(t *testing.T) {
	s := servertest.Start(t)
	ann := s.SignUp("ann", "Ann")
	s.SignUp("bob", "Bob")
	ch := s.CreateChannel(ann, "Stage")
	other := s.CreateChannel(ann, "Other")
	s.AddMember(ann, ch, "bob")
	annKey, bobKey := s.Token("ann"), s.Token("bob")

	// Only the owner mints; fields are validated and named.
	mintJoin(t, s, bobKey, ch, http.StatusForbidden, map[string]any{"externalUserId": "u1", "displayName": "Zoe"})
	mintJoin(t, s, annKey, "nope", http.StatusNotFound, map[string]any{"externalUserId": "u1", "displayName": "Zoe"})
	for _, bad := range []map[string]any{
		{"externalUserId": "", "displayName": "Zoe"},
		{"externalUserId": "u1", "displayName": ""},
		{"externalUserId": "u1", "displayName": "Zoe", "grants": []string{"root"}},
		{"externalUserId": "u1", "displayName": "Zoe", "ttlSeconds": 86401},
		{"externalUserId": "u1", "displayName": "Zoe", "embedOrigins": []string{"https://*.evil"}},
	} {
		mintJoin(t, s, annKey, ch, http.StatusUnprocessableEntity, bad)
	}
	mintJoin(t, s, annKey, ch, http.StatusBadRequest, map[string]any{"externalUserId": "u1", "displayName": "Zoe", "admin": true})

	m, _ := mintJoin(t, s, annKey, ch, http.StatusCreated, map[string]any{"externalUserId": "u1", "displayName": "Zoe", "embedOrigins": []string{"https://app.example.com"}})
	again, _ := mintJoin(t, s, annKey, ch, http.StatusCreated, map[string]any{"externalUserId": "u1", "displayName": "Zoe", "grants": []string{"subscribe"}})
	if m.UserID == "" || again.UserID != m.UserID || again.JTI == m.JTI {
		t.Errorf("same external id twice: users %q and %q (jtis %q %q)", m.UserID, again.UserID, m.JTI, again.JTI)
	}

	// The page and the socket take it; hello carries the grants.
	resp, body := s.Get(s.Client(), m.JoinURL)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `data-join-token="`) || !strings.Contains(body, `data-user-id="`+m.UserID+`"`) {
		t.Fatalf("join page: %d", resp.StatusCode)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("the join page (not the embed one) may be framed: %q", csp)
	}
	sock := dialAs(t, s, ch+"?token="+url.QueryEscape(m.Token), nil)
	sock.send(signaling.Message{Type: signaling.TypeChat, Text: "hello from the app"})
	if got := sock.await(signaling.TypeChat); got.Chat == nil || got.Chat.UserID != m.UserID || got.Chat.Name != "Zoe" {
		t.Errorf("chat with the chat grant: %+v", got.Chat)
	}
	if resp, body := s.Get(s.Client(), "/c/"+ch+"/join-messages?token="+url.QueryEscape(m.Token)); resp.StatusCode != http.StatusOK || !strings.Contains(body, "hello from the app") {
		t.Errorf("chat history with the chat grant: %d %s", resp.StatusCode, body)
	}
	// Without the chat grant: posting and the history are refused.
	mute := dialAs(t, s, ch+"?token="+url.QueryEscape(again.Token), nil)
	mute.send(signaling.Message{Type: signaling.TypeChat, Text: "hi"})
	if e := mute.await(signaling.TypeError); e.Code != signaling.CodeForbidden || !strings.Contains(e.Human, "chat") {
		t.Errorf("chat without the grant: %+v", e)
	}
	if resp, _ := s.Get(s.Client(), "/c/"+ch+"/join-messages?token="+url.QueryEscape(again.Token)); resp.StatusCode != http.StatusForbidden {
		t.Errorf("chat history without the grant: %d", resp.StatusCode)
	}

	// Wrong channel, tampered, garbage: refused with their reasons.
	for _, tc := range []struct {
		ch, token string
		status    int
		says      string
	}{
		{other, m.Token, http.StatusForbidden, "another channel"},
		{ch, m.Token[:len(m.Token)-3] + "abc", http.StatusUnauthorized, "signature"},
		{ch, "not-a-token", http.StatusUnauthorized, "malformed"},
	} {
		if status, body := wsRefusal(t, s, tc.ch, tc.token); status != tc.status || !strings.Contains(body, tc.says) {
			t.Errorf("socket with a bad token: %d %q, want %d saying %q", status, body, tc.status, tc.says)
		}
		if resp, body := s.Get(s.Client(), "/c/"+tc.ch+"?token="+url.QueryEscape(tc.token)); resp.StatusCode != tc.status || !strings.Contains(body, tc.says) {
			t.Errorf("page with a bad token: %d, want %d saying %q", resp.StatusCode, tc.status, tc.says)
		}
	}

	// Embed: framing only by the token's origins; other pages never.
	resp, _ = s.Get(s.Client(), m.EmbedURL)
	if csp := resp.Header.Get("Content-Security-Policy"); resp.StatusCode != http.StatusOK || !strings.Contains(csp, "frame-ancestors https://app.example.com;") {
		t.Errorf("embed page: %d, CSP %q", resp.StatusCode, csp)
	}
	resp, _ = s.Get(s.Client(), again.EmbedURL)
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("embed page of a token without origins: CSP %q", csp)
	}
	for _, p := range []string{"/", "/login", "/c/" + ch} {
		resp, _ := s.Get(s.Client(), p)
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Errorf("%s may be framed: %q", p, csp)
		}
	}

	// WHIP needs the publish grant; a bad token gets 401.
	if resp, body := request(t, http.MethodPost, s.URL+"/whip/"+ch, again.Token, "application/sdp", "v=0\r\n"); resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "publish") {
		t.Errorf("WHIP with a subscribe-only token: %d %q", resp.StatusCode, body)
	}
	if resp, _ := request(t, http.MethodPost, s.URL+"/whip/"+ch, again.Token+"x", "application/sdp", "v=0\r\n"); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("WHIP with a tampered token: %d", resp.StatusCode)
	}

	// Revoking closes the live socket with 4001 and its reason, and the
	// token is refused from then on.
	start := time.Now()
	req, _ := http.NewRequest(http.MethodDelete, s.URL+"/api/v1/join-tokens/"+m.JTI, nil)
	req.Header.Set("Authorization", "Bearer "+annKey)
	if resp, body := apitest.Do(t, apitest.Load(t), httpc, req); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("revoke: %d %s", resp.StatusCode, body)
	}
	if code, reason := sock.closedWithin(2*time.Second, start); code != 4001 || !strings.Contains(reason, "revoked your join token") {
		t.Errorf("socket of the revoked token closed with %d %q", code, reason)
	}
	if status, body := wsRefusal(t, s, ch, m.Token); status != http.StatusUnauthorized || !strings.Contains(body, "revoked") {
		t.Errorf("revoked token: %d %q", status, body)
	}
	req, _ = http.NewRequest(http.MethodDelete, s.URL+"/api/v1/join-tokens/"+m.JTI, nil)
	req.Header.Set("Authorization", "Bearer "+bobKey)
	if resp, _ := apitest.Do(t, apitest.Load(t), httpc, req); resp.StatusCode != http.StatusNotFound {
		t.Errorf("revoke by another user: %d", resp.StatusCode)
	}

	// Expired: a token with the shortest lifetime, once it is over.
	short, _ := mintJoin(t, s, annKey, ch, http.StatusCreated, map[string]any{"externalUserId": "u9", "displayName": "Short", "ttlSeconds": 10, "embedOrigins": []string{"https://app.example.com"}})
	time.Sleep(time.Until(short.ExpiresAt.Add(time.Second))) // the expiry itself is what is tested
	if status, body := wsRefusal(t, s, ch, short.Token); status != http.StatusUnauthorized || !strings.Contains(body, "expired") {
		t.Errorf("expired token: %d %q", status, body)
	}
	// Its refusal can be framed where it could (the app shows why).
	resp, body = s.Get(s.Client(), short.EmbedURL)
	if csp := resp.Header.Get("Content-Security-Policy"); resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "expired") || !strings.Contains(csp, "frame-ancestors https://app.example.com;") {
		t.Errorf("embed page of an expired token: %d, CSP %q", resp.StatusCode, csp)
	}
}

// TestJoinTokenIdentityAndRefresh: the same external id on a second
// socket is the same user and takes over the participant (the first gets
// 4000); a 20 s token is renewed over the socket, which stays open past
// 40 s, and a reconnect after the first token expired works with the
// fresh one.
func TestJoinTokenIdentityAndRefresh(t *testing.T) {
	s := servertest.Start(t)
	ann := s.SignUp("ann", "Ann")
	ch := s.CreateChannel(ann, "Stage")
	key := s.Token("ann")
	m, _ := mintJoin(t, s, key, ch, http.StatusCreated, map[string]any{"externalUserId": "app-42", "displayName": "Zoe", "ttlSeconds": 20,
		"grants": []string{"publish", "subscribe", "chat", "moderate"}})
	first := dialAs(t, s, ch+"?token="+url.QueryEscape(m.Token), nil)
	first.send(signaling.Message{Type: signaling.TypeJoin})
	joined := first.await(signaling.TypeJoined)
	if joined.You.UserID != m.UserID || joined.You.Role != signaling.RoleModerator {
		t.Fatalf("joined as %+v, want user %s, moderator", joined.You, m.UserID)
	}
	// The same person again (another token for the same external id).
	m2, _ := mintJoin(t, s, key, ch, http.StatusCreated, map[string]any{"externalUserId": "app-42", "displayName": "Zoe", "ttlSeconds": 20})
	second := dialAs(t, s, ch+"?token="+url.QueryEscape(m2.Token), nil)
	second.send(signaling.Message{Type: signaling.TypeJoin})
	j2 := second.await(signaling.TypeJoined)
	if j2.You.ID != joined.You.ID || j2.You.UserID != m.UserID {
		t.Errorf("second socket joined as %+v, want the first's participant %s", j2.You, joined.You.ID)
	}
	if code, _ := first.closedWithin(2*time.Second, time.Now()); code != 4000 {
		t.Errorf("first socket closed with %d, want 4000 (replaced)", code)
	}
	// Renewed before expiry, twice; the socket outlives 40 s.
	start := time.Now()
	var fresh signaling.Message
	for i := 0; i < 3; i++ {
		fresh = second.awaitWithin(signaling.TypeJoinToken, 15*time.Second)
		if fresh.Token == "" || !fresh.ExpiresAt.After(time.Now()) {
			t.Fatalf("join-token %+v", fresh)
		}
	}
	if time.Since(start) < 20*time.Second {
		t.Errorf("three renewals within %v of a 20 s token", time.Since(start))
	}
	time.Sleep(time.Until(m2.ExpiresAt.Add(21 * time.Second))) // past 40 s: what is tested
	second.alive("the socket of a renewed token, past 40 s")
	if status, body := wsRefusal(t, s, ch, m2.Token); status != http.StatusUnauthorized || !strings.Contains(body, "expired") {
		t.Errorf("the first token after its expiry: %d %q", status, body)
	}
	third := dialAs(t, s, ch+"?token="+url.QueryEscape(fresh.Token), nil)
	third.alive("a reconnect with the renewed token")
}

// send writes one message on the socket.
func (o *openSocket) send(m signaling.Message) {
	o.t.Helper()
	b, err := signaling.Encode(m)
	if err != nil {
		o.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := o.conn.Write(ctx, websocket.MessageText, b); err != nil {
		o.t.Fatal(err)
	}
}

// await skips messages until one of type typ (10 s at most).
func (o *openSocket) await(typ string) signaling.Message {
	o.t.Helper()
	return o.awaitWithin(typ, 10*time.Second)
}

func (o *openSocket) awaitWithin(typ string, d time.Duration) signaling.Message {
	o.t.Helper()
	deadline := time.After(d)
	for {
		select {
		case m := <-o.msgs:
			if m.Type == typ {
				return m
			}
			if m.Type == signaling.TypeError {
				o.t.Logf("error message while awaiting %s: %s %s", typ, m.Code, m.Human)
			}
		case err := <-o.end:
			o.t.Fatalf("socket ended while awaiting %s: %v", typ, err)
		case <-deadline:
			o.t.Fatalf("no %s within %v", typ, d)
		}
	}
}

// TestJoinTokenAPIKeyRevoked: tokens minted with an API key end with it:
// revoking the key closes their sockets (4001, saying so) and refuses
// them from then on.
func TestJoinTokenAPIKeyRevoked(t *testing.T) {
	s := servertest.Start(t)
	ann := s.SignUp("ann", "Ann")
	ch := s.CreateChannel(ann, "Stage")
	ctx := context.Background()
	u, _, err := s.Accounts().LogIn(ctx, "", "ann", servertest.Password)
	if err != nil {
		t.Fatal(err)
	}
	k, secret, err := s.Accounts().CreateAPIKey(ctx, u, "the app")
	if err != nil {
		t.Fatal(err)
	}
	m, _ := mintJoin(t, s, secret, ch, http.StatusCreated, map[string]any{"externalUserId": "u1", "displayName": "Zoe"})
	sock := dialAs(t, s, ch+"?token="+url.QueryEscape(m.Token), nil)
	start := time.Now()
	if err := s.Accounts().RevokeAPIKey(ctx, u, k.ID); err != nil {
		t.Fatal(err)
	}
	if code, reason := sock.closedWithin(5*time.Second, start); code != 4001 || !strings.Contains(reason, "key was revoked") {
		t.Errorf("socket of a token of the revoked key: %d %q", code, reason)
	}
	if status, body := wsRefusal(t, s, ch, m.Token); status != http.StatusUnauthorized || !strings.Contains(body, "revoked") {
		t.Errorf("token of the revoked key: %d %q", status, body)
	}
}

// kidOf is the kid in a token's header.
func kidOf(t *testing.T, token string) string {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(strings.Split(token, ".")[0])
	if err != nil {
		t.Fatal(err)
	}
	var h struct{ Kid string }
	json.Unmarshal(b, &h)
	return h.Kid
}

// TestJoinTokenRotation: a key rotation made beside the server (as
// parley join-keys rotate does) logs nobody out: the open socket stays,
// the old token still opens sockets, also after a restart (the keys are
// in the database), and new tokens are signed with the new key.
func TestJoinTokenRotation(t *testing.T) {
	s := servertest.Start(t)
	ann := s.SignUp("ann", "Ann")
	ch := s.CreateChannel(ann, "Stage")
	key := s.Token("ann")
	old, _ := mintJoin(t, s, key, ch, http.StatusCreated, map[string]any{"externalUserId": "u1", "displayName": "Zoe"})
	open := dialAs(t, s, ch+"?token="+url.QueryEscape(old.Token), nil)
	kid, err := jointoken.New(s.DB(), slog.New(slog.DiscardHandler), nil).Rotate(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if kidOf(t, old.Token) == kid {
		t.Fatal("the old token already has the new kid")
	}
	dialAs(t, s, ch+"?token="+url.QueryEscape(old.Token), nil).alive("a new socket with a token of the old key")
	open.alive("the open socket after the rotation")
	s.Restart()
	dialAs(t, s, ch+"?token="+url.QueryEscape(old.Token), nil).alive("a socket with a token of the old key after a restart")
	fresh, _ := mintJoin(t, s, s.Token("ann"), ch, http.StatusCreated, map[string]any{"externalUserId": "u1", "displayName": "Zoe"})
	if got := kidOf(t, fresh.Token); got != kid {
		t.Errorf("a token minted after the rotation has kid %q, want %q", got, kid)
	}
	if fresh.UserID != old.UserID {
		t.Errorf("same external id after a restart: user %q, was %q", fresh.UserID, old.UserID)
	}
}

// TestJoinTokenWHIP: a token with publish publishes with WHIP (the
// identity shows in the call under its name), its session is driven with
// the same token, and revoking the token ends it.
func TestJoinTokenWHIP(t *testing.T) {
	s := servertest.Start(t)
	ann := s.SignUp("ann", "Ann")
	ch := s.CreateChannel(ann, "Stage")
	key := s.Token("ann")
	m, _ := mintJoin(t, s, key, ch, http.StatusCreated, map[string]any{"externalUserId": "cam-1", "displayName": "Stage camera", "grants": []string{"publish"}})
	watcher := dialLobby(t, s, ann, ch)
	watcher.expect(signaling.TypeHello)
	pub := newPublisher(t)
	if resp, body := pub.post(s.URL+"/whip/"+ch, m.Token, pub.offer()); resp.StatusCode != http.StatusCreated {
		t.Fatalf("WHIP with a join token: %d %s", resp.StatusCode, body)
	}
	p := watcher.expect(signaling.TypeParticipantJoined).Participant
	if p.UserID != m.UserID || !strings.HasPrefix(p.Name, "Stage camera") {
		t.Errorf("WHIP participant %+v, want user %s named Stage camera", p, m.UserID)
	}
	// Another credential cannot touch the session; the token can.
	if resp, _ := request(t, http.MethodPatch, pub.location, key, "text/plain", ""); resp.StatusCode != http.StatusNotFound {
		t.Errorf("PATCH with the owner's token: %d, want 404", resp.StatusCode)
	}
	if resp, _ := request(t, http.MethodPatch, pub.location, m.Token, "text/plain", ""); resp.StatusCode != http.StatusUnsupportedMediaType {
		t.Errorf("PATCH with the join token: %d, want 415 (found, wrong content type)", resp.StatusCode)
	}
	req, _ := http.NewRequest(http.MethodDelete, s.URL+"/api/v1/join-tokens/"+m.JTI, nil)
	req.Header.Set("Authorization", "Bearer "+key)
	if resp, body := apitest.Do(t, apitest.Load(t), httpc, req); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("revoke: %d %s", resp.StatusCode, body)
	}
	for {
		if left := watcher.expect(signaling.TypeParticipantLeft); left.ID == p.ID {
			break
		}
	}
}

// TestJoinTokenKeyRevokedEndsSocket: after parley join-keys rotate and
// revoke of the key that signed a socket's token, the socket is not
// renewed past it: it closes with 4001 within two renewals, and the
// token is refused.
func TestJoinTokenKeyRevokedEndsSocket(t *testing.T) {
	s := servertest.Start(t)
	ann := s.SignUp("ann", "Ann")
	ch := s.CreateChannel(ann, "Stage")
	m, _ := mintJoin(t, s, s.Token("ann"), ch, http.StatusCreated, map[string]any{"externalUserId": "u1", "displayName": "Zoe", "ttlSeconds": 10})
	sock := dialAs(t, s, ch+"?token="+url.QueryEscape(m.Token), nil)
	admin := jointoken.New(s.DB(), slog.New(slog.DiscardHandler), nil)
	ctx := context.Background()
	if _, err := admin.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := admin.RevokeKey(ctx, kidOf(t, m.Token)); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if code, reason := sock.closedWithin(25*time.Second, start); code != 4001 || !strings.Contains(reason, "revoked") {
		t.Errorf("socket of a revoked key's token closed with %d %q", code, reason)
	}
	if status, body := wsRefusal(t, s, ch, m.Token); status != http.StatusUnauthorized || !strings.Contains(body, "signature") {
		t.Errorf("token of a revoked key: %d %q", status, body)
	}
}
