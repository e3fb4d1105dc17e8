package web

// Join tokens at the web edge (docs/api.md, "Join tokens"): the call page
// /c/{id}?token=…, the embeddable page /embed/c/{id}?token=…, the
// signaling socket /ws/c/{id}?token=… and WHIP/WHEP with the token as
// Bearer. A token's holder is a guest of the call (the guest page and
// the room's guest path), with the grants the token carries; the API
// that mints them is internal/api (jointokens.go).

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/parley/parley/internal/account"
	"github.com/parley/parley/internal/jointoken"
	"github.com/parley/parley/internal/room"
	"github.com/parley/parley/internal/signaling"
	"github.com/parley/parley/internal/store"
)

// SetJoinTokens gives the server its join tokens (before serving); nil:
// pages and sockets with a token are refused.
func (s *Server) SetJoinTokens(j *jointoken.Service) { s.joinTokens = j }

func (s *Server) routeJoinTokens(mux *http.ServeMux) {
	mux.HandleFunc("GET /embed/c/{id}", func(w http.ResponseWriter, r *http.Request) { s.tokenPage(w, r, true) })
	mux.HandleFunc("GET /c/{id}/join-messages", s.tokenMessages)
}

// withToken sends requests carrying ?token= to tok, the others to h.
func withToken(tok, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Has("token") {
			tok(w, r)
			return
		}
		h(w, r)
	}
}

// tokenRefusal is why a join token was refused, for the page, socket or
// WHIP answer.
type tokenRefusal struct {
	status int
	msg    string
}

// checkToken verifies token for channelID and loads the channel.
func (s *Server) checkToken(ctx context.Context, token, channelID string) (jointoken.Session, store.Channel, *tokenRefusal) {
	if s.joinTokens == nil {
		return jointoken.Session{}, store.Channel{}, &tokenRefusal{http.StatusNotFound, "this server does not take join tokens"}
	}
	sess, err := s.joinTokens.Verify(ctx, token, channelID)
	switch {
	case errors.Is(err, jointoken.ErrWrongChannel):
		return sess, store.Channel{}, &tokenRefusal{http.StatusForbidden, err.Error()}
	case errors.Is(err, jointoken.ErrMalformed), errors.Is(err, jointoken.ErrBadSignature), errors.Is(err, jointoken.ErrExpired), errors.Is(err, jointoken.ErrRevoked):
		return sess, store.Channel{}, &tokenRefusal{http.StatusUnauthorized, baseError(err)}
	case err != nil:
		s.log.Error("join token check", "err", err)
		return sess, store.Channel{}, &tokenRefusal{http.StatusInternalServerError, "server error; try again"}
	}
	ch, err := s.accounts.JoinTokenChannel(ctx, sess.ChannelID, sess.IssuerID)
	switch {
	case errors.Is(err, account.ErrNotFound):
		return sess, ch, &tokenRefusal{http.StatusNotFound, "this channel no longer exists"}
	case errors.Is(err, account.ErrForbidden):
		return sess, ch, &tokenRefusal{http.StatusForbidden, "join token invalid: whoever issued it no longer owns this channel"}
	case err != nil:
		s.log.Error("join token channel", "err", err)
		return sess, ch, &tokenRefusal{http.StatusInternalServerError, "server error; try again"}
	}
	return sess, ch, nil
}

// baseError is err's message without the detail a malformed token adds
// (the parser's words are for the log, not the holder).
func baseError(err error) string {
	msg := err.Error()
	if errors.Is(err, jointoken.ErrMalformed) {
		return jointoken.ErrMalformed.Error()
	}
	return msg
}

// tokenUser is who a token's holder is in the call.
func tokenUser(sess jointoken.Session) signaling.User {
	role := signaling.RoleGuest
	if sess.Has(jointoken.GrantModerate) {
		role = signaling.RoleModerator
	}
	g := tokenGrants(sess)
	return signaling.User{UserID: sess.UserID, Name: sess.Name, Role: role, Grants: &g}
}

func tokenGrants(sess jointoken.Session) signaling.Grants {
	return signaling.Grants{Publish: sess.Has(jointoken.GrantPublish), Subscribe: sess.Has(jointoken.GrantSubscribe),
		Chat: sess.Has(jointoken.GrantChat), Moderate: sess.Has(jointoken.GrantModerate), Record: sess.Has(jointoken.GrantRecord)}
}

// tokenPage is the call page of a token's holder: the guest page
// (embed: alone, to be framed by the origins the token lists).
func (s *Server) tokenPage(w http.ResponseWriter, r *http.Request, embed bool) {
	token := r.URL.Query().Get("token")
	id := r.PathValue("id")
	sess, ch, refused := s.checkToken(r.Context(), token, id)
	if embed {
		// Framing is allowed for the token's origins only; an expired
		// token's refusal too (its origins are known), so the app's
		// frame shows why. Other refusals cannot be framed.
		w.Header().Set("Content-Security-Policy", embedCSP(sess.EmbedOrigins))
	}
	if refused != nil {
		s.render(w, r, refused.status, "error", page{Title: "This link does not work", Embed: embed,
			Data: errorData{"This link does not work", capitalize(refused.msg) + "."}})
		return
	}
	chat, publish := "", ""
	if !sess.Has(jointoken.GrantChat) {
		chat = "off"
	}
	if !sess.Has(jointoken.GrantPublish) {
		publish = "0"
	}
	d := guestData{Channel: ch, Guest: &guest{ID: sess.UserID, Name: sess.Name}, UserID: sess.UserID,
		SocketPath: "/ws/c/" + url.PathEscape(ch.ID), HistoryURL: "/c/" + url.PathEscape(ch.ID) + "/join-messages?token=" + url.QueryEscape(token),
		JoinToken: token, JoinTokenExpires: sess.ExpiresAt.UTC().Format(time.RFC3339), Chat: chat, Publish: publish}
	s.render(w, r, http.StatusOK, "guest", page{Title: ch.Name, Data: d, Embed: embed})
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// embedCSP is the page's policy with frame-ancestors the token's origins
// ('none' without any).
func embedCSP(origins []string) string {
	fa := "'none'"
	if len(origins) > 0 {
		fa = strings.Join(origins, " ")
	}
	return strings.Replace(contentSecurityPolicy, "frame-ancestors 'none'", "frame-ancestors "+fa, 1)
}

// tokenMessages is the chat history for a token with the chat grant.
func (s *Server) tokenMessages(w http.ResponseWriter, r *http.Request) {
	sess, ch, refused := s.checkToken(r.Context(), r.URL.Query().Get("token"), r.PathValue("id"))
	if refused != nil {
		writeJSONError(w, refused.status, refused.msg)
		return
	}
	if !sess.Has(jointoken.GrantChat) {
		writeJSONError(w, http.StatusForbidden, "your join token does not allow chat")
		return
	}
	s.writeHistory(w, r, ch.ID)
}

// tokenSocket is the signaling socket of a token's holder.
func (s *Server) tokenSocket(w http.ResponseWriter, r *http.Request) {
	at := time.Now()
	current := r.URL.Query().Get("token")
	sess, ch, refused := s.checkToken(r.Context(), current, r.PathValue("id"))
	if refused != nil {
		http.Error(w, refused.msg, refused.status)
		return
	}
	user := tokenUser(sess)
	conn, release, ok := s.upgrade(w, r, user.UserID, "too many connections for this identity: close some tabs")
	if !ok {
		return
	}
	defer release()
	auth := room.Auth{UserID: user.UserID, Credential: jointoken.Credential(sess.JTI), At: at}
	jti := sess.JTI
	tok := room.JoinToken{Grants: *user.Grants, Issued: sess.ExpiresAt.Add(-sess.TTL), Expires: sess.ExpiresAt,
		// Called from the socket's one renewing goroutine: current is
		// the token it holds, checked again first, so that a revoked
		// signing key (or owner change) is not renewed past.
		Renew: func(ctx context.Context) (string, time.Time, error) {
			_, _, refused := s.checkToken(ctx, current, ch.ID)
			if refused != nil && refused.status != http.StatusInternalServerError {
				return "", time.Time{}, fmt.Errorf("%w: %s", room.ErrTokenEnded, refused.msg)
			}
			if refused != nil {
				return "", time.Time{}, errors.New(refused.msg)
			}
			t, exp, err := s.joinTokens.Renew(ctx, jti)
			if errors.Is(err, jointoken.ErrRevoked) {
				return "", time.Time{}, fmt.Errorf("%w: %w", room.ErrTokenEnded, err)
			}
			if err == nil {
				current = t
			}
			return t, exp, err
		}}
	s.rooms.ServeJoinToken(context.WithoutCancel(r.Context()), conn, ch.ID, ch.Mode, requestHost(r), user, auth, tok)
}

// joinBearer returns the request's Bearer credential if it is a join
// token (a JWT: three base64url parts, the first a JSON object) rather
// than an access token or API key.
func joinBearer(r *http.Request) (string, bool) {
	b, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	b = strings.TrimSpace(b)
	return b, ok && strings.HasPrefix(b, "eyJ") && strings.Count(b, ".") == 2
}

// tokenMedia authenticates a WHIP/WHEP request made with a join token
// for channelID: WHIP needs the publish grant, WHEP subscribe.
func (s *Server) tokenMedia(kind, token, channelID string, w http.ResponseWriter, r *http.Request) (store.User, room.Auth, store.Channel, bool) {
	at := time.Now()
	sess, ch, refused := s.checkToken(r.Context(), token, channelID)
	if refused != nil {
		if refused.status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Bearer realm="parley", error="invalid_token"`)
		}
		http.Error(w, refused.msg, refused.status)
		return store.User{}, room.Auth{}, ch, false
	}
	need := jointoken.GrantPublish
	if kind == "whep" {
		need = jointoken.GrantSubscribe
	}
	if !sess.Has(need) {
		http.Error(w, fmt.Sprintf("your join token does not allow %s (grant %q)", strings.ToUpper(kind), need), http.StatusForbidden)
		return store.User{}, room.Auth{}, ch, false
	}
	u := store.User{ID: sess.UserID, DisplayName: sess.Name}
	return u, room.Auth{UserID: u.ID, Credential: jointoken.Credential(sess.JTI), At: at}, ch, true
}
