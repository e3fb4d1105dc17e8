// Package api is Parley's versioned JSON API, /api/v1: channels, members,
// invites, the live call, chat history, recordings, studio takes, access
// tokens and API keys, for programs (server-to-server with an API key or a
// personal access token) and for the web app (with its session cookie).
//
// Every route is described by the OpenAPI 3.1 document in openapi/
// (served at /api/v1/openapi.json); tests check each answer against it.
// Errors are RFC 9457 problem details (problem.go).
//
// Adding an area (join tokens, webhooks, ...): describe its routes in a
// new openapi/<area>.json (only "paths" and "components"; it is merged
// into base.json, and a path or component defined twice fails start-up),
// register them in a route<Area> method with a.handle (authenticated) or
// a.handlePublic, call it from New, and check every answer in its tests
// with internal/apitest (apitest.Do or apitest.Check).
// TestEveryRouteIsDocumented fails for a route registered here but not
// in the document, or the other way round. Never register on a.mux
// directly: such a route escapes that test.
package api

import (
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/parley/parley/internal/account"
	"github.com/parley/parley/internal/jointoken"
	"github.com/parley/parley/internal/recording"
	"github.com/parley/parley/internal/room"
	"github.com/parley/parley/internal/store"
	"github.com/parley/parley/internal/studio"
	"github.com/parley/parley/internal/webhook"
)

// Prefix is where the API is mounted.
const Prefix = "/api/v1"

// maxBodyBytes bounds every request body the API reads.
const maxBodyBytes = 64 << 10

// Deps is what the API works with. Accounts and Rooms are required;
// Recordings and Studio may be nil (their routes then answer 404).
type Deps struct {
	Log      *slog.Logger
	Accounts *account.Service
	Rooms    *room.Manager
	// Recordings is the call recordings' store; nil: none.
	Recordings *recording.Service
	// Studio is the channels' studios; nil: none.
	Studio *studio.Service
	// Webhooks is the accounts' webhooks; nil: none (webhooks.go).
	Webhooks *webhook.Service
	// SessionCookie is the name of the web app's login cookie.
	SessionCookie string
	// Rate is how many requests per second one credential (token, API
	// key, login session) may make, with bursts of Burst. Zero: defaults
	// (DefaultRate, DefaultBurst).
	Rate  rate.Limit
	Burst int
	// JoinTokens mints and revokes join tokens (jointokens.go); nil: its
	// routes answer 404.
	JoinTokens *jointoken.Service
	// Clock is the time source (tests); nil: time.Now.
	Clock func() time.Time
}

// Default request rate per credential.
const (
	DefaultRate  rate.Limit = 20
	DefaultBurst            = 40
)

// API is the /api/v1 handler.
type API struct {
	d      Deps
	log    *slog.Logger
	mux    *http.ServeMux
	routes []Route
	cop    *http.CrossOriginProtection
	limits *limiter
	doc    []byte // the OpenAPI document, served as is
}

// Route is one registered method and path pattern (in ServeMux syntax,
// which for these routes is also OpenAPI's path template syntax).
type Route struct{ Method, Path string }

// handler is what a route does once the caller is authenticated. It
// returns an error instead of answering: fail turns it into a problem.
type handler func(w http.ResponseWriter, r *http.Request, c Caller) error

// Caller is who makes a request, and with what.
type Caller struct {
	User store.User
	// Auth names the credential, for connections that end with it.
	Auth room.Auth
	// Via is "session", "token" or "apikey".
	Via string
}

// New builds the API. It fails if the OpenAPI document does not load.
func New(d Deps) (*API, error) {
	if d.Log == nil {
		d.Log = slog.Default()
	}
	if d.Rate == 0 {
		d.Rate = DefaultRate
	}
	if d.Burst == 0 {
		d.Burst = DefaultBurst
	}
	if d.Clock == nil {
		d.Clock = time.Now
	}
	doc, err := Document()
	if err != nil {
		return nil, err
	}
	a := &API{d: d, log: d.Log, mux: http.NewServeMux(), cop: http.NewCrossOriginProtection(), doc: doc,
		limits: &limiter{rate: d.Rate, burst: d.Burst, now: d.Clock, m: map[string]*limitEntry{}}}
	a.handlePublic("GET", "/openapi.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-cache")
		w.Write(a.doc)
	})
	// Each area registers its routes here (one line each).
	a.routeMe()
	a.routeChannels()
	a.routeCall()
	a.routeMessages()
	a.routeRecordings()
	a.routeTakes()
	a.routeCredentials()
	a.routeWebhooks()
	a.routeJoinTokens()
	a.mux.HandleFunc(Prefix+"/", a.notFound)
	return a, nil
}

// Routes lists every registered route, for the test that each is in the
// OpenAPI document.
func (a *API) Routes() []Route { return append([]Route(nil), a.routes...) }

// ServeHTTP implements http.Handler.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.mux.ServeHTTP(w, r) }

// notFound answers a path no route has (404), or a method the path's
// routes do not take (405 with Allow), as problems.
func (a *API) notFound(w http.ResponseWriter, r *http.Request) {
	var allow []string
	for _, m := range []string{"GET", "POST", "PUT", "PATCH", "DELETE"} {
		r2 := r.Clone(r.Context())
		r2.Method = m
		if _, pattern := a.mux.Handler(r2); pattern != Prefix+"/" && pattern != "" {
			allow = append(allow, m)
		}
	}
	if len(allow) > 0 {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		WriteProblem(w, Errorf(http.StatusMethodNotAllowed, "%s does not take %s: it takes %s.", r.URL.Path, r.Method, strings.Join(allow, ", ")))
		return
	}
	WriteProblem(w, Errorf(http.StatusNotFound, "There is no API route %s %s: see %s/openapi.json.", r.Method, r.URL.Path, Prefix))
}

// handle registers an authenticated route: the caller is authenticated,
// held to the cross-origin rule and rate limited before h runs.
func (a *API) handle(method, path string, h handler) {
	a.routes = append(a.routes, Route{method, Prefix + path})
	a.mux.HandleFunc(method+" "+Prefix+path, func(w http.ResponseWriter, r *http.Request) {
		c, p := a.authenticate(r)
		if p != nil {
			if p.Status == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", `Bearer realm="parley"`)
			}
			WriteProblem(w, p)
			return
		}
		if retry, ok := a.limits.allow(c.Auth.Credential); !ok {
			secs := int((retry + time.Second - 1) / time.Second)
			w.Header().Set("Retry-After", strconv.Itoa(max(secs, 1)))
			WriteProblem(w, &Problem{Type: TypeRateLimited, Title: "Too Many Requests", Status: http.StatusTooManyRequests,
				Detail: "Too many requests with this credential: wait Retry-After seconds, then slow down."})
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
		if err := h(w, r, c); err != nil {
			fail(a.log, w, r, err)
		}
	})
}

// handlePublic registers a route that needs no credential (it must do
// its own checks and limits).
func (a *API) handlePublic(method, path string, h http.HandlerFunc) {
	a.routes = append(a.routes, Route{method, Prefix + path})
	a.mux.HandleFunc(method+" "+Prefix+path, func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
		h(w, r)
	})
}

// authenticate finds the caller: a Bearer credential (API key or personal
// access token) or the session cookie. A cookie-authenticated request
// that changes state must pass the browser cross-origin check, as forms
// do; a Bearer request without cookies is exempt (a browser never adds
// that header by itself, and cross-site JavaScript cannot without CORS,
// which Parley does not grant).
func (a *API) authenticate(r *http.Request) (Caller, *Problem) {
	at := a.d.Clock()
	ctx := r.Context()
	if h := r.Header.Get("Authorization"); h != "" {
		bearer, ok := strings.CutPrefix(h, "Bearer ")
		if !ok {
			return Caller{}, unauthorized(`Authorization must be "Bearer <API key or access token>".`)
		}
		bearer = strings.TrimSpace(bearer)
		if len(r.Cookies()) > 0 {
			if p := a.crossOrigin(r); p != nil {
				return Caller{}, p
			}
		}
		u, cred, err := a.d.Accounts.AuthenticateBearer(ctx, bearer)
		if err != nil {
			return Caller{}, a.authError(err, "This API key or access token is not valid (unknown, revoked, or mistyped).")
		}
		via := "token"
		if strings.HasPrefix(bearer, account.APIKeyPrefix) {
			via = "apikey"
		}
		return Caller{User: u, Auth: room.Auth{UserID: u.ID, Credential: cred.Key, At: at}, Via: via}, nil
	}
	ck, err := r.Cookie(a.d.SessionCookie)
	if err != nil || ck.Value == "" {
		return Caller{}, unauthorized("Not logged in: send Authorization: Bearer with an API key or personal access token.")
	}
	if p := a.crossOrigin(r); p != nil {
		return Caller{}, p
	}
	u, cred, err := a.d.Accounts.AuthenticateSession(ctx, ck.Value)
	if err != nil {
		return Caller{}, a.authError(err, "Your login session has ended: log in again.")
	}
	return Caller{User: u, Auth: room.Auth{UserID: u.ID, Credential: cred.Key, At: at}, Via: "session"}, nil
}

func (a *API) authError(err error, detail string) *Problem {
	if !errors.Is(err, account.ErrUnauthenticated) {
		a.log.Error("api authenticate", "err", err)
		return Errorf(http.StatusInternalServerError, "The server could not check your credentials. Try again.")
	}
	return unauthorized(detail)
}

// crossOrigin refuses a state-changing request that a browser says comes
// from another site.
func (a *API) crossOrigin(r *http.Request) *Problem {
	if err := a.cop.Check(r); err != nil {
		a.log.Warn("cross-origin api request refused", "method", r.Method, "path", r.URL.Path, "origin", r.Header.Get("Origin"))
		return &Problem{Type: TypeCrossOrigin, Title: "Forbidden", Status: http.StatusForbidden,
			Detail: "This request came from another site with your login cookie, so Parley refused it. Programs should use an API key."}
	}
	return nil
}

// limiter holds one token bucket per credential.
type limiter struct {
	rate  rate.Limit
	burst int
	now   func() time.Time
	mu    sync.Mutex
	m     map[string]*limitEntry
}

type limitEntry struct {
	lim  *rate.Limiter
	seen time.Time
}

// maxLimiters bounds the buckets kept; idle ones are dropped first.
const maxLimiters = 100_000

// allow takes one request from key's bucket; if it is empty, ok is false
// and retry says when the next request will be allowed.
func (l *limiter) allow(key string) (retry time.Duration, ok bool) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.m[key]
	if e == nil {
		if len(l.m) >= maxLimiters {
			l.prune(now)
		}
		e = &limitEntry{lim: rate.NewLimiter(l.rate, l.burst)}
		l.m[key] = e
	}
	e.seen = now
	res := e.lim.ReserveN(now, 1)
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now)
		return d, false
	}
	return 0, true
}

// prune drops buckets idle long enough to be full again.
func (l *limiter) prune(now time.Time) {
	full := time.Duration(float64(l.burst)/float64(l.rate)*float64(time.Second)) + time.Second
	for k, e := range l.m {
		if now.Sub(e.seen) > full {
			delete(l.m, k)
		}
	}
	if len(l.m) >= maxLimiters { // all busy: start over rather than grow
		clear(l.m)
	}
}
