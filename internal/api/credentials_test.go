package api_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/parley/parley/internal/api"
	"github.com/parley/parley/internal/apitest"
	"github.com/parley/parley/internal/config"
	"github.com/parley/parley/internal/servertest"
)

type credOut struct {
	ID, Name, Secret string
	Current          bool
}

// cookieCaller is u with its login cookie, from the same origin as a
// page of the server would be.
func cookieCaller(u *caller) *caller {
	return &caller{t: u.t, s: u.s, doc: u.doc, cookieJar: u.cookieJar, origin: u.s.URL, u: u.u}
}

func TestAPIKeys(t *testing.T) { eachDB(t, testAPIKeys) }

func testAPIKeys(t *testing.T, opts ...servertest.Option) {
	s := servertest.Start(t, opts...)
	doc := apitest.Load(t)
	ann := newUser(t, s, doc, "ann")
	bob := newUser(t, s, doc, "bob")
	annWeb := cookieCaller(ann)

	// Made by a logged-in person only, not with another token or key.
	var k credOut
	annWeb.json(201, "POST", "/api/v1/api-keys", map[string]any{"name": "billing sync"}, &k)
	if !strings.HasPrefix(k.Secret, "pk_"+k.ID+".") || k.Name != "billing sync" {
		t.Fatalf("new key %+v", k)
	}
	ann.problem(403, "POST", "/api/v1/api-keys", map[string]any{"name": "minted"})
	p := annWeb.problem(422, "POST", "/api/v1/api-keys", map[string]any{"name": ""})
	if p.Errors[0].Field != "name" {
		t.Fatalf("422 %+v", p)
	}

	// The key authenticates, on the API and elsewhere (the socket).
	key := &caller{t: t, s: s, doc: doc, http: s.Client(), bearer: k.Secret}
	var me struct{ Username, Via string }
	key.json(200, "GET", "/api/v1/me", nil, &me)
	if me.Username != "ann" || me.Via != "apikey" {
		t.Fatalf("me with a key = %+v", me)
	}
	var keys page[credOut]
	key.json(200, "GET", "/api/v1/api-keys", nil, &keys)
	if len(keys.Items) != 1 || !keys.Items[0].Current || keys.Items[0].Secret != "" {
		t.Fatalf("keys %+v", keys)
	}
	key.problem(403, "POST", "/api/v1/tokens", map[string]any{"name": "minted"})
	bob.json(200, "GET", "/api/v1/api-keys", nil, &keys)
	if len(keys.Items) != 0 {
		t.Fatal("bob sees ann's keys")
	}
	// A wrong secret for a real id, and malformed keys.
	id, _, _ := strings.Cut(k.Secret, ".")
	for _, bad := range []string{id + ".wrong", id, "pk_.x", "pk_" + strings.Repeat("a", 300) + ".x"} {
		(&caller{t: t, s: s, doc: doc, http: s.Client(), bearer: bad}).problem(401, "GET", "/api/v1/me", nil)
	}

	var ch channelOut
	key.json(201, "POST", "/api/v1/channels", map[string]any{"name": "Bots"}, &ch)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(s.URL, "http")+"/ws/c/"+ch.ID, &websocket.DialOptions{
		HTTPHeader: http.Header{"Authorization": {"Bearer " + k.Secret}}, Subprotocols: []string{"parley.v1"}})
	if err != nil {
		t.Fatalf("socket with an API key: %v", err)
	}
	defer conn.CloseNow()
	ended := make(chan error, 1)
	go func() {
		for {
			if _, _, err := conn.Read(context.Background()); err != nil {
				ended <- err
				return
			}
		}
	}()

	// Revoking it ends its socket at once and it stops working.
	bob.problem(404, "DELETE", "/api/v1/api-keys/"+k.ID, nil)
	ann.do(204, "DELETE", "/api/v1/api-keys/"+k.ID, nil)
	select {
	case err := <-ended:
		var ce websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != 4001 {
			t.Fatalf("socket ended with %v, want close 4001", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the socket outlived its API key")
	}
	key.problem(401, "GET", "/api/v1/me", nil)
	ann.problem(404, "DELETE", "/api/v1/api-keys/"+k.ID, nil)

	// The account page makes and revokes keys too.
	resp, body := s.PostForm(ann.cookieJar, "/account/api-keys", url.Values{"key_name": {"from the page"}})
	if resp.StatusCode != 201 || !strings.Contains(body, `id="new-api-key"`) {
		t.Fatalf("account page create: %d", resp.StatusCode)
	}
	resp, body = s.PostForm(ann.cookieJar, "/account/api-keys", url.Values{"key_name": {""}})
	if resp.StatusCode != 422 || !strings.Contains(body, "API key name is required") {
		t.Fatalf("account page, empty name: %d", resp.StatusCode)
	}
	annWeb.json(200, "GET", "/api/v1/api-keys", nil, &keys)
	if len(keys.Items) != 1 || keys.Items[0].Name != "from the page" {
		t.Fatalf("keys %+v", keys)
	}
	_, body = s.Get(ann.cookieJar, "/account")
	if !strings.Contains(body, "pk_"+keys.Items[0].ID) {
		t.Fatal("the account page does not list the key")
	}
	resp, _ = s.PostForm(ann.cookieJar, "/account/api-keys/"+keys.Items[0].ID+"/revoke", nil)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("account page revoke: %d", resp.StatusCode)
	}
	resp, _ = s.PostForm(ann.cookieJar, "/account/api-keys/"+keys.Items[0].ID+"/revoke", nil)
	if resp.StatusCode != 404 {
		t.Fatalf("revoking twice: %d", resp.StatusCode)
	}
}

func TestTokensAPI(t *testing.T) {
	s := servertest.Start(t)
	doc := apitest.Load(t)
	ann := newUser(t, s, doc, "ann") // has one token: "test"
	bob := newUser(t, s, doc, "bob")
	annWeb := cookieCaller(ann)
	for i := range 3 {
		annWeb.json(201, "POST", "/api/v1/tokens", map[string]any{"name": "t" + strconv.Itoa(i)}, nil)
	}
	var tok credOut
	annWeb.json(201, "POST", "/api/v1/tokens", map[string]any{"name": "laptop"}, &tok)
	if !strings.HasPrefix(tok.Secret, "parley_") {
		t.Fatalf("token %+v", tok)
	}
	annWeb.problem(422, "POST", "/api/v1/tokens", map[string]any{"name": strings.Repeat("x", 61)})
	ann.problem(403, "POST", "/api/v1/tokens", map[string]any{"name": "minted"})
	all, pages := collect[credOut](ann, "/api/v1/tokens", 2)
	if len(all) != 5 || pages != 3 || all[4].Name != "test" { // the oldest last
		t.Fatalf("tokens %+v in %d pages", all, pages)
	}
	current := 0
	for _, c := range all {
		if c.Current {
			current++
		}
	}
	if current != 1 {
		t.Fatalf("%d tokens are current", current)
	}
	bob.problem(404, "DELETE", "/api/v1/tokens/"+tok.ID, nil)
	laptop := &caller{t: t, s: s, doc: doc, http: s.Client(), bearer: tok.Secret}
	laptop.json(200, "GET", "/api/v1/me", nil, nil)
	laptop.do(204, "DELETE", "/api/v1/tokens/"+tok.ID, nil) // a token may revoke itself
	laptop.problem(401, "GET", "/api/v1/me", nil)
}

// TestCrossOrigin: the login cookie does not let another site change
// anything through the API; Bearer requests without cookies are not
// browser requests and are not checked.
func TestCrossOrigin(t *testing.T) {
	s := servertest.Start(t)
	doc := apitest.Load(t)
	ann := newUser(t, s, doc, "ann")
	evil := &caller{t: t, s: s, doc: doc, cookieJar: ann.cookieJar}
	site := []string{"Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site"}
	p := evil.problem(403, "POST", "/api/v1/channels", map[string]any{"name": "pwned"}, site...)
	if p.Type != api.TypeCrossOrigin {
		t.Fatalf("problem %+v", p)
	}
	evil.problem(403, "DELETE", "/api/v1/tokens/x", nil, site...)
	evil.json(200, "GET", "/api/v1/me", nil, nil, site...) // reading is not a change (and CORS keeps the answer from the page)
	// Same origin with the cookie: allowed.
	cookieCaller(ann).json(201, "POST", "/api/v1/channels", map[string]any{"name": "mine"}, nil, "Sec-Fetch-Site", "same-origin")
	// Bearer without cookies: not a browser's doing, not checked.
	bearer := &caller{t: t, s: s, doc: doc, http: s.Client(), bearer: ann.bearer}
	bearer.json(201, "POST", "/api/v1/channels", map[string]any{"name": "script"}, nil, site...)
	// Bearer with the cookie, from another site: checked like the cookie.
	both := &caller{t: t, s: s, doc: doc, http: ann.cookieJar, bearer: ann.bearer}
	both.problem(403, "POST", "/api/v1/channels", map[string]any{"name": "pwned"}, site...)
	for _, ch := range collectNames(t, bearer) {
		if ch == "pwned" {
			t.Fatal("a cross-origin request made a channel")
		}
	}
}

func collectNames(t *testing.T, c *caller) []string {
	all, _ := collect[channelOut](c, "/api/v1/channels", 100)
	var out []string
	for _, ch := range all {
		out = append(out, ch.Name)
	}
	return out
}

func TestRateLimit(t *testing.T) {
	s := servertest.Start(t, servertest.WithConfig(func(c *config.Config) { c.APIRate, c.APIBurst = 1, 3 }))
	doc := apitest.Load(t)
	ann := newUser(t, s, doc, "ann")
	bob := newUser(t, s, doc, "bob")
	for range 3 {
		ann.do(200, "GET", "/api/v1/me", nil)
	}
	resp, _ := ann.do(429, "GET", "/api/v1/me", nil)
	if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || ra < 1 || ra > 2 {
		t.Fatalf("Retry-After %q", resp.Header.Get("Retry-After"))
	}
	p := ann.problem(429, "GET", "/api/v1/channels", nil)
	if p.Type != api.TypeRateLimited {
		t.Fatalf("problem %+v", p)
	}
	// Another credential, even of the same user, has its own budget.
	bob.do(200, "GET", "/api/v1/me", nil)
	cookieCaller(ann).do(200, "GET", "/api/v1/me", nil)
	// The budget refills at the rate.
	deadline := time.Now().Add(5 * time.Second)
	for {
		req := ann.req("GET", "/api/v1/me", nil)
		resp, _ := apitest.Do(t, doc, ann.http, req)
		if resp.StatusCode == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the budget did not refill")
		}
		ra, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
		<-time.After(time.Duration(ra) * time.Second)
	}
}
