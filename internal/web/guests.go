package web

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/parley/parley/internal/account"
	"github.com/parley/parley/internal/room"
	"github.com/parley/parley/internal/signaling"
	"github.com/parley/parley/internal/store"
)

// GuestCookie holds a guest's token: a guest has no account, only a name
// given at the guest link, valid for that link.
const GuestCookie = "parley_guest"

// guestTTL bounds a guest's token; maxGuests bounds how many the server
// remembers (the oldest go first).
const (
	guestTTL  = 12 * time.Hour
	maxGuests = 10000
)

// guest is someone who came through a guest link.
type guest struct {
	ID, Name  string
	ChannelID string
	Code      string // the link's code: a new or closed link ends the guest
	At        time.Time
}

// guestBook remembers the guests by token, in memory: a restart ends
// every guest (they open the link again). In a cluster (shared set) the
// guests are kept in the shared store instead, so a guest admitted by one
// node is known to all.
type guestBook struct {
	mu      sync.Mutex
	byToken map[string]guest
	shared  KV
}

// KV is a shared store of short-lived values (internal/cluster, Redis).
type KV interface {
	Put(ctx context.Context, key string, value []byte, ttl time.Duration) error
	Get(ctx context.Context, key string) ([]byte, bool, error)
}

// guestKey names a guest in the shared store by a hash of the token, so
// the store never holds a usable token.
func guestKey(token string) string {
	h := sha256.Sum256([]byte(token))
	return "guest:" + hex.EncodeToString(h[:])
}

func (b *guestBook) add(ctx context.Context, g guest) (string, error) {
	tb := make([]byte, 32)
	rand.Read(tb)
	token := base64.RawURLEncoding.EncodeToString(tb)
	if b.shared != nil {
		v, _ := json.Marshal(g)
		if err := b.shared.Put(ctx, guestKey(token), v, guestTTL); err != nil {
			return "", fmt.Errorf("keep the guest: %w", err)
		}
		return token, nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	now := time.Now()
	for t, x := range b.byToken {
		if now.Sub(x.At) > guestTTL || len(b.byToken) >= maxGuests {
			delete(b.byToken, t)
		}
	}
	b.byToken[token] = g
	return token, nil
}

func (b *guestBook) get(ctx context.Context, token string) (guest, bool) {
	var g guest
	if b.shared != nil {
		if len(token) > 100 {
			return guest{}, false
		}
		v, ok, err := b.shared.Get(ctx, guestKey(token))
		if err != nil || !ok || json.Unmarshal(v, &g) != nil {
			return guest{}, false
		}
	} else {
		b.mu.Lock()
		var ok bool
		g, ok = b.byToken[token]
		b.mu.Unlock()
		if !ok {
			return guest{}, false
		}
	}
	if time.Since(g.At) > guestTTL {
		return guest{}, false
	}
	return g, true
}

// guestFrom returns the request's guest, if it carries a guest token.
func (s *Server) guestFrom(r *http.Request) (guest, bool) {
	c, err := r.Cookie(GuestCookie)
	if err != nil {
		return guest{}, false
	}
	return s.guests.get(r.Context(), c.Value)
}

// guestCredential is the room.Auth credential of every guest of
// channelID: ending it (EndAuth) closes all their sockets at once.
func guestCredential(channelID string) string { return "guests:" + channelID }

func (s *Server) routeGuests(mux *http.ServeMux) {
	mux.HandleFunc("POST /c/{id}/guests", s.requirePage(s.guestsOn))
	mux.HandleFunc("POST /c/{id}/guests/off", s.requirePage(s.guestsOff))
	mux.HandleFunc("GET /g/{code}", s.guestPage)
	mux.HandleFunc("POST /g/{code}", s.guestEnter)
	mux.HandleFunc("GET /ws/g/{code}", s.guestSocket)
	mux.HandleFunc("GET /api/g/{code}/messages", s.guestMessages)
}

func (s *Server) guestsOn(w http.ResponseWriter, r *http.Request) {
	if !s.parseForm(w, r) {
		return
	}
	_, err := s.accounts.SetGuestLink(r.Context(), mustUser(r), r.PathValue("id"), r.PostFormValue("lobby") == "1")
	s.channelFormDone(w, r, nil, err, "guests-on", "#guests")
}

func (s *Server) guestsOff(w http.ResponseWriter, r *http.Request) {
	err := s.accounts.GuestsOff(r.Context(), mustUser(r), r.PathValue("id"))
	s.channelFormDone(w, r, nil, err, "guests-off", "#guests")
}

type guestData struct {
	Channel store.Channel
	Code    string
	Guest   *guest
	// The call's wiring (data-* of the page): the socket, the chat
	// history, and for a join token's holder, the token and its expiry
	// and whether chat is off.
	UserID, SocketPath, HistoryURL string
	JoinToken, JoinTokenExpires    string
	Chat                           string
	Publish                        string // "0": a join token without publish
}

// guestLink finds the link of the request's code, answering a clear 404
// when it does not work.
func (s *Server) guestLink(w http.ResponseWriter, r *http.Request) (store.GuestLink, store.Channel, bool) {
	g, ch, err := s.accounts.GuestChannel(r.Context(), r.PathValue("code"))
	if err != nil {
		if !errors.Is(err, account.ErrGuestsOff) && !errors.Is(err, account.ErrNotFound) {
			s.internalError(w, r, err)
			return g, ch, false
		}
		s.errorPage(w, r, http.StatusNotFound, "This guest link does not work", "The owner turned guest access off or made a new link. Ask whoever invited you for a new one.")
		return g, ch, false
	}
	return g, ch, true
}

// guestPage asks a newcomer for a name, and shows a guest the call.
func (s *Server) guestPage(w http.ResponseWriter, r *http.Request) {
	link, ch, ok := s.guestLink(w, r)
	if !ok {
		return
	}
	d := guestData{Channel: ch, Code: link.Code}
	if g, ok := s.guestFrom(r); ok && g.Code == link.Code {
		d.Guest = &g
		d.UserID, d.SocketPath, d.HistoryURL = "guest:"+g.ID, "/ws/g/"+link.Code, "/api/g/"+link.Code+"/messages"
	}
	s.render(w, r, http.StatusOK, "guest", page{Title: ch.Name, Data: d})
}

// guestEnter takes a guest's name and gives them a token for this link.
func (s *Server) guestEnter(w http.ResponseWriter, r *http.Request) {
	if !s.parseForm(w, r) {
		return
	}
	link, ch, ok := s.guestLink(w, r)
	if !ok {
		return
	}
	name, err := account.GuestName(r.PostFormValue("name"))
	if fields, ok := fieldErrors(err); ok {
		s.render(w, r, http.StatusUnprocessableEntity, "guest", page{Title: ch.Name, Form: map[string]string{"name": r.PostFormValue("name")}, Errors: fields, Data: guestData{Channel: ch, Code: link.Code}})
		return
	}
	idb := make([]byte, 10)
	rand.Read(idb)
	token, err := s.guests.add(r.Context(), guest{ID: strings.ToLower(base64.RawURLEncoding.EncodeToString(idb)), Name: name, ChannelID: ch.ID, Code: link.Code, At: time.Now()})
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: GuestCookie, Value: token, Path: "/", MaxAge: int(guestTTL / time.Second), HttpOnly: true, Secure: s.cfg.Secure(), SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, "/g/"+link.Code, http.StatusSeeOther)
}

// guestOf is the request's guest if they may use the link of the code in
// the path now: the link is on, and is the one they came through.
func (s *Server) guestOf(r *http.Request) (guest, store.GuestLink, store.Channel, int) {
	g, ok := s.guestFrom(r)
	if !ok {
		return guest{}, store.GuestLink{}, store.Channel{}, http.StatusUnauthorized
	}
	link, ch, err := s.accounts.GuestChannel(r.Context(), r.PathValue("code"))
	switch {
	case errors.Is(err, account.ErrGuestsOff), errors.Is(err, account.ErrNotFound):
		return guest{}, link, ch, http.StatusForbidden
	case err != nil:
		return guest{}, link, ch, http.StatusInternalServerError
	case link.Code != g.Code:
		return guest{}, link, ch, http.StatusForbidden
	}
	return g, link, ch, http.StatusOK
}

// guestSocket is the signaling socket of a guest.
func (s *Server) guestSocket(w http.ResponseWriter, r *http.Request) {
	at := time.Now()
	g, link, ch, status := s.guestOf(r)
	if status != http.StatusOK {
		http.Error(w, "this guest link does not work (any more): open it again or ask for a new one", status)
		return
	}
	if s.forward(w, r, ch.ID) {
		return
	}
	userID := "guest:" + g.ID
	conn, release, ok := s.upgrade(w, r, userID, "too many connections for this guest: close some tabs")
	if !ok {
		return
	}
	defer release()
	user := signaling.User{UserID: userID, Name: g.Name, Role: signaling.RoleGuest}
	auth := room.Auth{UserID: userID, Credential: guestCredential(ch.ID), At: at}
	s.rooms.ServeGuest(context.WithoutCancel(r.Context()), conn, ch.ID, ch.Mode, requestHost(r), user, auth, link.Lobby)
}

// guestMessages is the chat history for a guest of the channel.
func (s *Server) guestMessages(w http.ResponseWriter, r *http.Request) {
	_, _, ch, status := s.guestOf(r)
	if status != http.StatusOK {
		writeJSONError(w, status, "this guest link does not work (any more)")
		return
	}
	s.writeHistory(w, r, ch.ID)
}

// writeHistory answers the channel's chat history as JSON, for pages that
// do not use the members' API (guests, join tokens).
func (s *Server) writeHistory(w http.ResponseWriter, r *http.Request, channelID string) {
	msgs, err := s.accounts.ChannelHistory(r.Context(), channelID)
	if err != nil {
		s.log.Error("chat history", "channel_id", channelID, "err", err)
		writeJSONError(w, http.StatusInternalServerError, "could not load the chat history; try again")
		return
	}
	writeMessages(w, msgs)
}

// refuseGuest answers 403 to a guest (a guest token, no login) on pages
// and APIs for members: guests have the call and its chat only.
func (s *Server) refuseGuest(w http.ResponseWriter, r *http.Request, api bool) bool {
	if _, ok := s.guestFrom(r); !ok {
		return false
	}
	const msg = "guests can use the call and its chat only; this needs an account that is a member of the channel"
	if api {
		writeJSONError(w, http.StatusForbidden, msg)
	} else {
		s.errorPage(w, r, http.StatusForbidden, "Not for guests", fmt.Sprintf("You are here as a guest: %s.", msg))
	}
	return true
}

// baseURL is the site's address as the client reached it, for links the
// owner copies.
func (s *Server) baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}
