package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/parley/parley/internal/api"
	"github.com/parley/parley/internal/apitest"
	"github.com/parley/parley/internal/servertest"
	"github.com/parley/parley/internal/store"
)

// caller sends API requests as one user and checks every answer against
// the OpenAPI document.
type caller struct {
	t         *testing.T
	s         *servertest.Server
	doc       *openapi3.T
	http      *http.Client
	bearer    string       // "" for the cookie
	cookieJar *http.Client // the logged-in client (session cookie)
	origin    string       // Origin header; "" none
	u         store.User
}

func (c *caller) user() store.User { return c.u }

// newUser makes a caller with a personal access token for a new user.
func newUser(t *testing.T, s *servertest.Server, doc *openapi3.T, username string) *caller {
	t.Helper()
	c := s.SignUp(username, strings.ToUpper(username[:1])+username[1:])
	u, _, err := s.Accounts().LogIn(context.Background(), "", username, servertest.Password)
	if err != nil {
		t.Fatal(err)
	}
	return &caller{t: t, s: s, doc: doc, http: s.Client(), bearer: s.Token(username), cookieJar: c, u: u}
}

func (c *caller) req(method, path string, body any, header ...string) *http.Request {
	c.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		buf, err := json.Marshal(b)
		if err != nil {
			c.t.Fatal(err)
		}
		rd = bytes.NewReader(buf)
	}
	req, err := http.NewRequest(method, c.s.URL+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+c.bearer)
	}
	if c.origin != "" {
		req.Header.Set("Origin", c.origin)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return req
}

// do sends a request and checks the answer against the document; it
// fails the test unless the status is want.
func (c *caller) do(want int, method, path string, body any, header ...string) (*http.Response, []byte) {
	c.t.Helper()
	req := c.req(method, path, body, header...)
	cl := c.http
	if c.bearer == "" {
		cl = c.cookieJar
	}
	resp, b := apitest.Do(c.t, c.doc, cl, req)
	if resp.StatusCode != want {
		c.t.Fatalf("%s %s: status %d, want %d: %s", method, path, resp.StatusCode, want, b)
	}
	return resp, b
}

// json sends a request expecting want and decodes the answer into out.
func (c *caller) json(want int, method, path string, body, out any, header ...string) *http.Response {
	c.t.Helper()
	resp, b := c.do(want, method, path, body, header...)
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			c.t.Fatalf("%s %s: decode %s: %v", method, path, b, err)
		}
	}
	return resp
}

// problem decodes a problem answer.
func (c *caller) problem(want int, method, path string, body any, header ...string) api.Problem {
	c.t.Helper()
	var p api.Problem
	resp := c.json(want, method, path, body, &p, header...)
	if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
		c.t.Fatalf("%s %s: Content-Type %q, want application/problem+json", method, path, ct)
	}
	if p.Status != want {
		c.t.Fatalf("%s %s: problem status %d, want %d", method, path, p.Status, want)
	}
	return p
}

func TestMeAndAuth(t *testing.T) {
	s := servertest.Start(t)
	doc := apitest.Load(t)
	ann := newUser(t, s, doc, "ann")

	var me struct{ Username, Via string }
	ann.json(200, "GET", "/api/v1/me", nil, &me)
	if me.Username != "ann" || me.Via != "token" {
		t.Fatalf("me = %+v", me)
	}
	// The cookie works too.
	cookie := &caller{t: t, s: s, doc: doc, cookieJar: ann.cookieJar}
	cookie.json(200, "GET", "/api/v1/me", nil, &me)
	if me.Via != "session" {
		t.Fatalf("via cookie: %+v", me)
	}

	anon := &caller{t: t, s: s, doc: doc, http: s.Client(), cookieJar: s.Client()}
	resp, _ := anon.do(401, "GET", "/api/v1/me", nil)
	if resp.Header.Get("WWW-Authenticate") == "" {
		t.Error("401 without WWW-Authenticate")
	}
	bad := &caller{t: t, s: s, doc: doc, http: s.Client(), bearer: "parley_nope"}
	bad.problem(401, "GET", "/api/v1/me", nil)
	bad.bearer = "pk_nope.nope"
	bad.problem(401, "GET", "/api/v1/me", nil)
	bad.problem(401, "GET", "/api/v1/me", nil, "Authorization", "Basic YTpi")

	// The document is served, and is OpenAPI 3.1.
	_, body := anon.do(200, "GET", "/api/v1/openapi.json", nil)
	served, err := openapi3.NewLoader().LoadFromData(body)
	if err != nil || !served.IsOpenAPI31OrLater() {
		t.Fatalf("served document: %v", err)
	}
	if err := served.Validate(context.Background()); err != nil {
		t.Fatalf("served document: %v", err)
	}
}

// TestEveryRouteIsDocumented fails when a route is registered under
// /api/v1 but missing from the OpenAPI document (or the other way round).
func TestEveryRouteIsDocumented(t *testing.T) {
	doc := apitest.Load(t)
	a, err := api.New(api.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	registered := map[string]bool{}
	for _, r := range a.Routes() {
		registered[r.Method+" "+r.Path] = true
		item := doc.Paths.Value(r.Path)
		if item == nil || item.GetOperation(r.Method) == nil {
			t.Errorf("%s %s is registered but not in the OpenAPI document", r.Method, r.Path)
		}
	}
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			if !registered[method+" "+path] {
				t.Errorf("%s %s is in the OpenAPI document but not registered", method, path)
			}
		}
	}
}

// TestUnknownRoutes: paths and methods the API does not have are
// problems too (they are not in the document, so checked here by hand).
func TestUnknownRoutes(t *testing.T) {
	s := servertest.Start(t)
	c := &caller{t: t, s: s}
	for _, tc := range []struct {
		method, path string
		status       int
		allow        string
	}{
		{"GET", "/api/v1/nope", 404, ""},
		{"POST", "/api/v1/me", 405, "GET"},
		{"PUT", "/api/v1/channels", 405, "GET, POST"},
		{"POST", "/api/v1/channels/x", 405, "GET, PATCH, DELETE"},
	} {
		resp, body := s.Do(s.Client(), c.req(tc.method, tc.path, nil))
		if resp.StatusCode != tc.status || resp.Header.Get("Content-Type") != "application/problem+json" || resp.Header.Get("Allow") != tc.allow {
			t.Errorf("%s %s: %d %q Allow %q: %s", tc.method, tc.path, resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header.Get("Allow"), body)
		}
	}
}
