// Package web is Parley's HTTP edge: its own ServeMux, server-rendered
// pages, the JSON API, session cookies, cross-origin protection and the
// WebSocket upgrade that hands a socket to the room manager.
//
// Errors from the layers below are turned into status codes here, once;
// what the user sees is kept apart from what is logged.
package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/parley/parley/internal/account"
	"github.com/parley/parley/internal/clientip"
	"github.com/parley/parley/internal/config"
	"github.com/parley/parley/internal/connlimit"
	"github.com/parley/parley/internal/jointoken"
	"github.com/parley/parley/internal/pairing"
	"github.com/parley/parley/internal/room"
	"github.com/parley/parley/internal/signaling"
	"github.com/parley/parley/internal/store"
	"github.com/parley/parley/internal/studio"
	"github.com/parley/parley/internal/ui"
	"github.com/parley/parley/internal/webhook"
)

// SessionCookie is the name of the login cookie.
const SessionCookie = "parley_session"

// maxFormBytes bounds every request body the pages accept.
const maxFormBytes = 64 << 10

// Server is the HTTP handler of a Parley server.
type Server struct {
	cfg      config.Config
	log      *slog.Logger
	accounts *account.Service
	rooms    *room.Manager
	pages    map[string]*template.Template
	handler  http.Handler
	whip     *whipResources // WHIP/WHEP sessions (whip.go)
	// recordings is set by SetRecordings before serving (recordings.go)
	recordings *Recordings
	proxies    clientip.Proxies
	studio     *studio.Service    // nil: no studio routes
	guests     *guestBook         // guests.go
	webhooks   *webhook.Service   // nil: no webhook routes (webhooks.go)
	joinTokens *jointoken.Service // jointokens.go; nil: refused
	// api serves /api/v1 (internal/api), set by SetAPI before serving.
	api     http.Handler
	pairing *pairing.Hub // "Send to a device" (pairing.go); set by SetPairing
	// cluster places calls on nodes (nil: this is the only node); the
	// forwarder carries requests to the node that holds a call (cluster.go).
	cluster   Placer
	forwarder *http.Transport
}

// SetAPI mounts the versioned API at /api/v1/. It does its own
// authentication, cross-origin check and error format (problem+json).
func (s *Server) SetAPI(h http.Handler) { s.api = h }

// New builds the handler. Templates are parsed here so a broken template
// fails start-up, not a request.
// metrics serves /metrics (Prometheus text format); studios serves the
// channels' studios (nil: none).
func New(cfg config.Config, log *slog.Logger, accounts *account.Service, rooms *room.Manager, metrics http.Handler, studios *studio.Service) (*Server, error) {
	s := &Server{cfg: cfg, log: log, accounts: accounts, rooms: rooms, pages: map[string]*template.Template{}, studio: studios,
		guests: &guestBook{byToken: map[string]guest{}}}
	proxies, err := clientip.ParseProxies(cfg.TrustedProxies)
	if err != nil {
		return nil, fmt.Errorf("--trusted-proxies: %w", err)
	}
	s.proxies = proxies
	if err := s.parseTemplates(ui.Templates()); err != nil {
		return nil, err
	}

	mux := http.NewServeMux()
	mux.Handle("GET /static/", http.StripPrefix("/static/", staticHandler(ui.Static())))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.Handle("GET /metrics", metrics)
	mux.HandleFunc("GET /{$}", s.home)
	mux.HandleFunc("GET /signup", s.signupForm)
	mux.HandleFunc("POST /signup", s.signup)
	mux.HandleFunc("GET /login", s.loginForm)
	mux.HandleFunc("POST /login", s.login)
	mux.HandleFunc("POST /logout", s.logout)
	mux.HandleFunc("GET /channels", s.requirePage(s.channels))
	mux.HandleFunc("POST /channels", s.requirePage(s.createChannel))
	mux.HandleFunc("GET /c/{id}", withToken(func(w http.ResponseWriter, r *http.Request) { s.tokenPage(w, r, false) }, s.requirePage(s.channel)))
	mux.HandleFunc("POST /c/{id}/members", s.requirePage(s.addMember))
	mux.HandleFunc("POST /c/{id}/members/{user}/remove", s.requirePage(s.removeMember))
	mux.HandleFunc("POST /c/{id}/delete", s.requirePage(s.deleteChannel))
	mux.HandleFunc("POST /c/{id}/mode", s.requirePage(s.setMode))
	s.routeMeetings(mux)
	s.routeGuests(mux)
	s.routeJoinTokens(mux) // /embed/c/{id}, /c/{id}/join-messages
	s.routeInvites(mux)    // /c/{id}/invites...
	mux.HandleFunc("GET /account", s.requirePage(s.accountPage))
	mux.HandleFunc("POST /account/tokens", s.requirePage(s.createToken))
	mux.HandleFunc("POST /account/tokens/{id}/revoke", s.requirePage(s.revokeToken))
	mux.HandleFunc("POST /account/api-keys", s.requirePage(s.createAPIKey))
	mux.HandleFunc("POST /account/api-keys/{id}/revoke", s.requirePage(s.revokeAPIKey))
	s.routeAccounts(mux) // /forgot, /reset/, /verify/, /account/...
	// Logged out too: the invite page offers to log in or sign up.
	mux.HandleFunc("GET /invite/{code}", s.inviteForm)
	mux.HandleFunc("POST /invite/{code}", s.requirePage(s.acceptInvite))
	mux.HandleFunc("GET /api/channels/{id}/messages", s.requireAPI(s.apiMessages))
	mux.HandleFunc("/api/v1/", func(w http.ResponseWriter, r *http.Request) {
		if s.api == nil {
			http.NotFound(w, r)
			return
		}
		s.api.ServeHTTP(w, r)
	})
	mux.HandleFunc("GET /ws/c/{id}", s.websocket)
	s.routeWHIP(mux)   // /whip/{channel}, /whep/{channel} and their sessions
	s.routeStudio(mux) // /c/{id}/studio, /api/channels/{id}/studio...
	s.routeRecordings(mux)
	s.routePairing(mux) // /receive, /ws/receive, /ws/send
	s.routeWebhooks(mux)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.errorPage(w, r, http.StatusNotFound, "Page not found", "There is nothing at this address. Check the link, or go back to your channels.")
	})

	// Cross-origin protection covers every state-changing request: it
	// refuses non-GET requests whose Sec-Fetch-Site or Origin says they
	// come from another site. The WebSocket upgrade is a GET, so its
	// Origin is checked by websocket.Accept instead.
	cop := http.NewCrossOriginProtection()
	// /api/v1 checks the origin itself: cookie-authenticated writes by
	// the same rule, Bearer requests without cookies not at all, and
	// refusals as problem+json.
	cop.AddInsecureBypassPattern("/api/v1/")
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.log.Warn("cross-origin request refused", "method", r.Method, "path", r.URL.Path, "origin", r.Header.Get("Origin"))
		if wantsJSON(r) {
			writeJSONError(w, http.StatusForbidden, "cross-origin request refused: it was sent from another site")
			return
		}
		s.errorPage(w, r, http.StatusForbidden, "Request refused", "This form was sent from another site, so Parley refused it. Open Parley directly and try again.")
	}))
	s.handler = securityHeaders(cop.Handler(mux), cfg.Secure())
	return s, nil
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// hsts tells browsers to use HTTPS only for a year. No includeSubDomains:
// other services on sibling names are not Parley's to decide about.
const hsts = "max-age=31536000"

// contentSecurityPolicy is every page's policy; only the embeddable call
// page (jointokens.go) changes its frame-ancestors.
const contentSecurityPolicy = "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob: mediastream:; connect-src 'self'; style-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"

// securityHeaders sets the headers every response carries; tls adds
// Strict-Transport-Security, which is sent only over HTTPS (a browser
// ignores it on plain HTTP, and promising HTTPS there would be false).
func securityHeaders(h http.Handler, tls bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		if tls {
			hd.Set("Strict-Transport-Security", hsts)
		}
		hd.Set("Content-Security-Policy", contentSecurityPolicy)
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "same-origin")
		hd.Set("Permissions-Policy", "camera=(self), microphone=(self), display-capture=(self)")
		h.ServeHTTP(w, r)
	})
}

func staticHandler(fsys fs.FS) http.Handler {
	files := http.FileServerFS(fsys)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "" || strings.HasSuffix(r.URL.Path, "/") {
			http.NotFound(w, r) // no directory listings
			return
		}
		// Short cache with revalidation: assets change with every
		// release and carry no version in their names yet.
		w.Header().Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	})
}

// userKey carries the logged-in user through a request's context.
type userKey struct{}

// currentUser returns the logged-in user, if any.
func (s *Server) currentUser(r *http.Request) (store.User, bool) {
	if u, ok := r.Context().Value(userKey{}).(store.User); ok {
		return u, true
	}
	u, _, ok := s.authenticate(r)
	return u, ok
}

// authenticate returns the logged-in user and what proved it, for a
// connection that must end when that credential does (room.Auth).
func (s *Server) authenticate(r *http.Request) (store.User, room.Auth, bool) {
	at := time.Now() // before the lookup: see room.Auth.At
	var u store.User
	var cred account.Credential
	var err error
	if bearer, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		// A personal access token or API key (CLI, WHIP/WHEP, scripts). Browsers never
		// add this header by themselves, so it cannot be forged cross-site.
		u, cred, err = s.accounts.AuthenticateBearer(r.Context(), strings.TrimSpace(bearer))
	} else {
		c, cerr := r.Cookie(SessionCookie)
		if cerr != nil || c.Value == "" {
			return store.User{}, room.Auth{}, false
		}
		u, cred, err = s.accounts.AuthenticateSession(r.Context(), c.Value)
	}
	if err != nil {
		if !errors.Is(err, account.ErrUnauthenticated) {
			s.log.Error("authenticate", "err", err)
		}
		return store.User{}, room.Auth{}, false
	}
	return u, room.Auth{UserID: u.ID, Credential: cred.Key, At: at}, true
}

// requirePage sends visitors who are not logged in to the login page and
// back here afterwards.
func (s *Server) requirePage(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		u, ok := s.currentUser(r)
		if !ok && s.refuseGuest(w, r, wantsJSON(r)) {
			return
		}
		if !ok && wantsJSON(r) {
			// A page's script (manage.js) cannot follow a redirect to
			// the log-in page; it says so instead.
			writeJSONError(w, http.StatusUnauthorized, "You are not logged in any more. Reload the page and log in again.")
			return
		}
		if !ok {
			next := r.URL.RequestURI()
			if r.Method != http.MethodGet {
				next = "/channels"
			}
			http.Redirect(w, r, "/login?next="+url.QueryEscape(next), http.StatusSeeOther)
			return
		}
		h(w, r.WithContext(context.WithValue(r.Context(), userKey{}, u)))
	}
}

// requireAPI answers 401 in JSON to requests that are not logged in.
func (s *Server) requireAPI(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		u, ok := s.currentUser(r)
		if !ok && s.refuseGuest(w, r, true) {
			return
		}
		if !ok {
			writeJSONError(w, http.StatusUnauthorized, "not logged in: log in first, then retry")
			return
		}
		h(w, r.WithContext(context.WithValue(r.Context(), userKey{}, u)))
	}
}

func mustUser(r *http.Request) store.User {
	u, _ := r.Context().Value(userKey{}).(store.User)
	return u
}

func (s *Server) setSessionCookie(w http.ResponseWriter, token string) {
	http.SetCookie(w, &http.Cookie{
		Name:     SessionCookie,
		Value:    token,
		Path:     "/",
		MaxAge:   int(s.cfg.SessionTTL / time.Second),
		HttpOnly: true,
		Secure:   s.cfg.Secure(),
		SameSite: http.SameSiteLaxMode,
	})
}

func (s *Server) clearSessionCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: s.cfg.Secure(), SameSite: http.SameSiteLaxMode})
}

// channelError turns an access error on a channel into a page.
// plainChannelError answers a failed channel lookup in plain text, for
// sockets and programs rather than pages.
func (s *Server) plainChannelError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, account.ErrNotFound):
		http.Error(w, "no such channel", http.StatusNotFound)
	case errors.Is(err, account.ErrForbidden):
		http.Error(w, "you are not a member of this channel", http.StatusForbidden)
	default:
		s.log.Error("channel lookup", "err", err)
		http.Error(w, "server error; try again", http.StatusInternalServerError)
	}
}

func (s *Server) channelError(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, account.ErrNotFound):
		s.errorPage(w, r, http.StatusNotFound, "Channel not found", "There is no channel at this address. It may have been deleted, or the link is wrong.")
	case errors.Is(err, account.ErrForbidden):
		s.errorPage(w, r, http.StatusForbidden, "You are not a member of this channel", "Only members can open this channel. Ask its owner to add you, or to send you an invite link.")
	default:
		s.internalError(w, r, err)
	}
}

func (s *Server) internalError(w http.ResponseWriter, r *http.Request, err error) {
	s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	s.errorPage(w, r, http.StatusInternalServerError, "Something went wrong", "Parley could not finish this request. Try again; if it keeps happening, tell the server's operator.")
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func writeJSONError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

// apiMessages returns a channel's chat history to a member.
func (s *Server) apiMessages(w http.ResponseWriter, r *http.Request) {
	msgs, err := s.accounts.History(r.Context(), mustUser(r), r.PathValue("id"))
	if err != nil {
		s.memberJSONError(w, err, "could not load the chat history; try again")
		return
	}
	writeMessages(w, msgs)
}

// writeMessages answers stored chat messages in their wire form.
func writeMessages(w http.ResponseWriter, msgs []store.Message) {
	out := make([]signaling.ChatMessage, len(msgs))
	for i, m := range msgs {
		out[i] = ChatMessage(m)
	}
	writeJSON(w, http.StatusOK, map[string]any{"messages": out})
}

// memberJSONError answers, as JSON, a failed lookup of a channel for one
// of its members; failed says what could not be done on a server error.
func (s *Server) memberJSONError(w http.ResponseWriter, err error, failed string) {
	switch {
	case errors.Is(err, account.ErrNotFound):
		writeJSONError(w, http.StatusNotFound, "no such channel")
	case errors.Is(err, account.ErrForbidden):
		writeJSONError(w, http.StatusForbidden, "you are not a member of this channel")
	default:
		s.log.Error("channel lookup", "err", err)
		writeJSONError(w, http.StatusInternalServerError, failed)
	}
}

// ChatMessage converts a stored message to its wire form.
func ChatMessage(m store.Message) signaling.ChatMessage {
	return signaling.ChatMessage{ID: m.ID, UserID: m.UserID, Name: m.DisplayName, Username: m.Username, Text: m.Text, At: m.CreatedAt.UTC()}
}

// websocket authenticates, authorizes and upgrades a signaling socket, then
// hands it to the room manager for its whole life.
func (s *Server) websocket(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Has("token") {
		s.tokenSocket(w, r)
		return
	}
	u, auth, ok := s.authenticate(r)
	if !ok {
		http.Error(w, "not logged in: log in, then reopen the channel", http.StatusUnauthorized)
		return
	}
	id := r.PathValue("id")
	ch, err := s.accounts.Channel(r.Context(), u, id)
	if err != nil {
		s.plainChannelError(w, err)
		return
	}
	role, err := s.accounts.Role(r.Context(), u, ch)
	if err != nil {
		s.log.Error("websocket role", "err", err)
		http.Error(w, "server error; try again", http.StatusInternalServerError)
		return
	}
	if s.forward(w, r, id) {
		return
	}
	conn, release, ok := s.upgrade(w, r, u.ID, fmt.Sprintf("this account already has %d connections open (tabs, devices, programs): close some and try again", s.cfg.MaxConnectionsPerUser))
	if !ok {
		return
	}
	defer release()
	// The request context ends when this handler returns; the socket's
	// life is bounded by the room manager instead.
	s.rooms.Serve(context.WithoutCancel(r.Context()), conn, id, ch.Mode, requestHost(r), signaling.User{UserID: u.ID, Name: u.DisplayName, Username: u.Username, Role: role}, auth)
}

// upgrade counts one more connection of userID (answering 429 with
// tooMany beyond --max-connections-per-user) and accepts the signaling
// WebSocket. On failure it has answered and ok is false; otherwise the
// caller calls release once the socket is done.
func (s *Server) upgrade(w http.ResponseWriter, r *http.Request, userID, tooMany string) (conn *websocket.Conn, release func(), ok bool) {
	release, ok = s.reserve(r.Context(), userID)
	if !ok {
		http.Error(w, tooMany, http.StatusTooManyRequests)
		return nil, nil, false
	}
	// The socket is bounded by the account's limit from here on, not by
	// the per-address cap on connections; should the upgrade fail, the
	// connection closes after the answer rather than stay uncounted.
	connlimit.ReleaseContext(r.Context())
	w.Header().Set("Connection", "close")
	// Accept refuses (403) an Origin that does not match the Host: a page
	// on another site cannot open a socket with the user's cookie.
	conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{signaling.Subprotocol}})
	if err != nil {
		release()
		s.log.Warn("websocket upgrade refused", "origin", r.Header.Get("Origin"), "err", err)
		return nil, nil, false
	}
	return conn, release, true
}

// requestHost is the host name (or IP) the client used to reach us,
// without the port.
func requestHost(r *http.Request) string {
	if h, _, err := net.SplitHostPort(r.Host); err == nil {
		return h
	}
	return strings.Trim(r.Host, "[]")
}

// clientIP is the address logins and sign-ups are counted against: the
// TCP peer, or behind a proxy listed in --trusted-proxies, the client it
// forwarded for.
func (s *Server) clientIP(r *http.Request) string {
	return s.proxies.FromRequest(r)
}
