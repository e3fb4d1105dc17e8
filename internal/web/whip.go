package web

// WHIP ingest (RFC 9725) at /whip/{channel} and WHEP egress
// (draft-ietf-wish-whep) at /whep/{channel}: encoders such as OBS publish
// into a channel's call, players watch one of its participants, with a
// personal access token (or the session cookie) and plain HTTP instead of
// the signaling socket. The call side lives in room (whip.go); the SDP,
// the trickle ICE fragments (RFC 8840) of PATCH, the ICE session state
// (with its ETag) and the errors about them in media (sdp.go,
// trickle.go). This file is the HTTP contract: methods, status codes,
// headers and resources.

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"sync"

	"github.com/parley/parley/internal/account"
	"github.com/parley/parley/internal/media"
	"github.com/parley/parley/internal/room"
	"github.com/parley/parley/internal/signaling"
	"github.com/parley/parley/internal/store"
)

const (
	sdpType     = "application/sdp"
	sdpFragType = "application/trickle-ice-sdpfrag"
	// maxSDPBody bounds offers and trickle fragments, as the signaling
	// protocol bounds SDP.
	maxSDPBody = signaling.MaxSDPBytes
)

// mediaSession is a room.Ingest or room.Player, as the resource handlers
// drive them.
type mediaSession interface {
	ICE() *media.ICESession
	Close()
	Done() <-chan struct{}
}

// whipResource is one WHIP or WHEP session, addressed by an unguessable
// id and bound to the user who created it: anyone else is told it does
// not exist.
type whipResource struct {
	kind    string // "whip" or "whep"
	channel string
	userID  string
	sess    mediaSession
}

// whipResources are the live sessions. An entry goes when its session
// ends, however it ends.
type whipResources struct {
	mu sync.Mutex
	m  map[string]*whipResource
}

func (rs *whipResources) add(id string, res *whipResource) {
	rs.mu.Lock()
	rs.m[id] = res
	rs.mu.Unlock()
	go func() {
		<-res.sess.Done()
		rs.mu.Lock()
		delete(rs.m, id)
		rs.mu.Unlock()
	}()
}

// get returns the live resource id of kind on channel owned by userID.
func (rs *whipResources) get(kind, channel, id, userID string) *whipResource {
	rs.mu.Lock()
	res := rs.m[id]
	rs.mu.Unlock()
	if res == nil || res.kind != kind || res.channel != channel || res.userID != userID {
		return nil
	}
	select {
	case <-res.sess.Done():
		return nil
	default:
		return res
	}
}

// routeWHIP registers the WHIP and WHEP routes. Methods are dispatched
// here rather than in the patterns so other methods get 405 with Allow
// (the catch-all "/" would otherwise answer them with a 404 page).
func (s *Server) routeWHIP(mux *http.ServeMux) {
	s.whip = &whipResources{m: map[string]*whipResource{}}
	for _, kind := range []string{"whip", "whep"} {
		mux.HandleFunc("/"+kind+"/{channel}", s.whipEndpoint(kind))
		mux.HandleFunc("/"+kind+"/{channel}/{resource}", s.whipSession(kind))
	}
}

func (s *Server) whipEndpoint(kind string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodPost:
			s.whipCreate(kind, w, r)
		case http.MethodOptions:
			w.Header().Set("Allow", "OPTIONS, POST")
			w.Header().Set("Accept-Post", sdpType)
			w.WriteHeader(http.StatusNoContent)
		default:
			w.Header().Set("Allow", "OPTIONS, POST")
			http.Error(w, fmt.Sprintf("%s is not allowed here: POST an SDP offer (Content-Type: %s) to start a session", r.Method, sdpType), http.StatusMethodNotAllowed)
		}
	}
}

func (s *Server) whipSession(kind string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		const allow = "OPTIONS, PATCH, DELETE"
		switch r.Method {
		case http.MethodPatch, http.MethodDelete:
		case http.MethodOptions:
			w.Header().Set("Allow", allow)
			w.Header().Set("Accept-Patch", sdpFragType)
			w.WriteHeader(http.StatusNoContent)
			return
		default:
			w.Header().Set("Allow", allow)
			http.Error(w, fmt.Sprintf("%s is not allowed on a session: PATCH trickles ICE candidates or restarts ICE, DELETE ends it", r.Method), http.StatusMethodNotAllowed)
			return
		}
		var u store.User
		var ok bool
		if token, isJoin := joinBearer(r); isJoin {
			// The holder of the token that started it: a revoked or
			// expired token cannot act on the session any more.
			u, _, _, ok = s.tokenMedia(kind, token, r.PathValue("channel"), w, r)
		} else {
			u, _, ok = s.mediaUser(w, r)
		}
		if !ok {
			return
		}
		res := s.whip.get(kind, r.PathValue("channel"), r.PathValue("resource"), u.ID)
		if res == nil && s.forward(w, r, r.PathValue("channel")) {
			return // the session lives on the node holding the call
		}
		if res == nil {
			http.Error(w, fmt.Sprintf("no such %s session: it has ended, or the address is wrong (a session belongs to the user who started it)", strings.ToUpper(kind)), http.StatusNotFound)
			return
		}
		if r.Method == http.MethodDelete {
			res.sess.Close()
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			fmt.Fprintln(w, "session ended")
			return
		}
		s.whipTrickle(res, w, r)
	}
}

// mediaUser authenticates a WHIP/WHEP request, answering 401 (with
// WWW-Authenticate, as RFC 9725 asks) when it cannot.
func (s *Server) mediaUser(w http.ResponseWriter, r *http.Request) (store.User, room.Auth, bool) {
	if u, auth, ok := s.authenticate(r); ok {
		return u, auth, true
	}
	if _, hasBearer := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); hasBearer {
		w.Header().Set("WWW-Authenticate", `Bearer realm="parley", error="invalid_token"`)
		http.Error(w, "invalid or revoked access token: check that the whole token (parley_…) was copied, or create a new one on your account page (/account)", http.StatusUnauthorized)
		return store.User{}, room.Auth{}, false
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="parley"`)
	http.Error(w, "no access token: send Authorization: Bearer <token>, with a personal access token created on your account page (/account)", http.StatusUnauthorized)
	return store.User{}, room.Auth{}, false
}

// whipCaller authenticates and authorizes a WHIP/WHEP POST: a member
// (access token or session), or a join token's holder with the grant.
func (s *Server) whipCaller(kind string, w http.ResponseWriter, r *http.Request) (store.User, room.Auth, store.Channel, bool) {
	if token, ok := joinBearer(r); ok {
		return s.tokenMedia(kind, token, r.PathValue("channel"), w, r)
	}
	u, auth, ok := s.mediaUser(w, r)
	if !ok {
		return u, auth, store.Channel{}, false
	}
	ch, err := s.accounts.Channel(r.Context(), u, r.PathValue("channel"))
	switch {
	case errors.Is(err, account.ErrNotFound):
		http.Error(w, "no such channel: check the channel id in the URL (it is the part after /c/ in the channel's address)", http.StatusNotFound)
		return u, auth, ch, false
	case errors.Is(err, account.ErrForbidden):
		http.Error(w, "you are not a member of this channel: ask its owner to add you, or use a token of a member", http.StatusForbidden)
		return u, auth, ch, false
	case err != nil:
		s.log.Error(kind+" authorize", "err", err)
		http.Error(w, "server error; try again", http.StatusInternalServerError)
		return u, auth, ch, false
	}
	return u, auth, ch, true
}

// whipCreate starts a session from the client's offer.
func (s *Server) whipCreate(kind string, w http.ResponseWriter, r *http.Request) {
	u, auth, ch, ok := s.whipCaller(kind, w, r)
	if !ok {
		return
	}
	if s.forward(w, r, ch.ID) {
		return
	}
	if !hasType(r, sdpType) {
		w.Header().Set("Accept-Post", sdpType)
		http.Error(w, fmt.Sprintf("the offer must be sent with Content-Type: %s (got %q)", sdpType, r.Header.Get("Content-Type")), http.StatusUnsupportedMediaType)
		return
	}
	body, ok := readSDPBody(w, r)
	if !ok {
		return
	}
	release, ok := s.reserve(r.Context(), u.ID)
	if !ok {
		http.Error(w, fmt.Sprintf("this account already has %d connections open: end some sessions (DELETE) and try again", s.cfg.MaxConnectionsPerUser), http.StatusTooManyRequests)
		return
	}
	started := false
	defer func() {
		if !started {
			release()
		}
	}()
	user := signaling.User{UserID: u.ID, Name: u.DisplayName, Username: u.Username}
	var sess mediaSession
	var answer string
	var err error
	participant := r.URL.Query().Get("participant")
	if kind == "whip" {
		var in *room.Ingest
		in, answer, err = s.rooms.Publish(ch.ID, ch.Mode, user, auth, body)
		sess = in
	} else {
		var v *room.Player
		v, answer, err = s.rooms.View(ch.ID, ch.Mode, user, auth, participant, body)
		sess = v
	}
	if err != nil {
		s.whipError(kind, participant, w, err)
		return
	}
	id := newResourceID()
	s.whip.add(id, &whipResource{kind: kind, channel: ch.ID, userID: u.ID, sess: sess})
	started = true
	go func() { <-sess.Done(); release() }()
	h := w.Header()
	h.Set("Content-Type", sdpType)
	h.Set("Location", "/"+kind+"/"+ch.ID+"/"+id)
	// The ETag names the ICE session (RFC 9725 §4.3); an ICE restart
	// replaces it.
	h.Set("ETag", sess.ICE().ETag())
	h.Set("Cache-Control", "no-store")
	for _, ice := range s.cfg.ICEServers {
		// RFC 9725 §4.6: ICE servers the client may use. Parley's own
		// answer has every candidate, so these only help odd networks.
		h.Add("Link", "<"+ice+`>; rel="ice-server"`)
	}
	w.WriteHeader(http.StatusCreated)
	io.WriteString(w, answer)
}

// whipError answers a failed POST: what went wrong and what to do.
func (s *Server) whipError(kind, participant string, w http.ResponseWriter, err error) {
	name := strings.ToUpper(kind)
	switch {
	case errors.Is(err, media.ErrBadOffer):
		http.Error(w, "unusable SDP offer: "+media.Detail(err)+". Send the offer your WebRTC stack created, unchanged", http.StatusBadRequest)
	case errors.Is(err, room.ErrP2POnly):
		http.Error(w, fmt.Sprintf("this channel's calls are pinned to peer-to-peer mode, but %s needs the server's media path: ask the channel's owner to set the call mode to auto or sfu", name), http.StatusConflict)
	case errors.Is(err, media.ErrNoPublisher) && participant != "":
		http.Error(w, fmt.Sprintf("participant %q is not sending media through the server: check the id (participant ids look like p_…), or leave ?participant out to watch the active speaker", participant), http.StatusNotFound)
	case errors.Is(err, media.ErrNoPublisher):
		http.Error(w, "nothing to play: nobody in this channel's call is sending camera video or a microphone through the server right now (a two-person call is peer-to-peer unless the call mode is sfu); try again once someone is", http.StatusConflict)
	case errors.Is(err, room.ErrNoSFU):
		http.Error(w, fmt.Sprintf("this server runs without its media server (SFU), which %s needs: ask the operator to enable it", name), http.StatusServiceUnavailable)
	case errors.Is(err, room.ErrRevoked):
		w.Header().Set("WWW-Authenticate", `Bearer realm="parley", error="invalid_token"`)
		http.Error(w, "your login or access token was ended (logged out, or the token revoked) while the session was starting: log in again, or use a valid token", http.StatusUnauthorized)
	case errors.Is(err, room.ErrRemoved):
		http.Error(w, "you were removed from this channel (or it was deleted) while the session was starting: ask its owner to add you again", http.StatusForbidden)
	case errors.Is(err, room.ErrClosing):
		w.Header().Set("Retry-After", "5")
		http.Error(w, "the server is restarting or the call is closing: try again in a few seconds", http.StatusServiceUnavailable)
	default:
		s.log.Error(kind+" start", "err", err)
		http.Error(w, "the media server could not start the session; try again", http.StatusInternalServerError)
	}
}

// whipTrickle applies a PATCH: trickled candidates (204), or, for a
// fragment with a new a=ice-ufrag, an ICE restart (200 with the server's
// new fragment and ETag). "*" is what RFC 9725 §4.3.2 has an ICE restart
// send as If-Match; trickle sends the current ETag. Parley also takes no
// If-Match at all.
func (s *Server) whipTrickle(res *whipResource, w http.ResponseWriter, r *http.Request) {
	if !hasType(r, sdpFragType) {
		w.Header().Set("Accept-Patch", sdpFragType)
		http.Error(w, fmt.Sprintf("PATCH takes trickle ICE candidates with Content-Type: %s (got %q)", sdpFragType, r.Header.Get("Content-Type")), http.StatusUnsupportedMediaType)
		return
	}
	body, ok := readSDPBody(w, r)
	if !ok {
		return
	}
	restarted, err := res.sess.ICE().Patch(r.Header.Get("If-Match"), body)
	switch {
	case err == nil && restarted == nil:
		w.WriteHeader(http.StatusNoContent)
		return
	case err == nil:
	case errors.Is(err, media.ErrETag):
		http.Error(w, "If-Match does not name this session's current ICE session: "+media.Detail(err)+" (each ICE restart gives a new one)", http.StatusPreconditionFailed)
		return
	case errors.Is(err, media.ErrBadFragment):
		http.Error(w, "bad trickle ICE fragment: "+media.Detail(err), http.StatusBadRequest)
		return
	case errors.Is(err, media.ErrStaleICE):
		http.Error(w, "the fragment's a=ice-ufrag is of an earlier ICE session, which an ICE restart replaced: send the current one (see the last PATCH answer)", http.StatusPreconditionFailed)
		return
	case errors.Is(err, media.ErrBadRestart):
		why := media.Detail(err)
		if why == "" {
			why = "it needs a new a=ice-ufrag and its a=ice-pwd"
		}
		http.Error(w, "bad ICE restart: "+why, http.StatusBadRequest)
		return
	case errors.Is(err, media.ErrBadCandidate):
		http.Error(w, "bad ICE candidate "+media.Detail(err), http.StatusBadRequest)
		return
	case errors.Is(err, media.ErrClosed):
		http.Error(w, "this session has ended: POST a new offer", http.StatusNotFound)
		return
	default:
		s.log.Error(res.kind+" trickle or ICE restart", "err", err)
		http.Error(w, "the candidates could not be added or ICE restarted; try again, or DELETE this session and POST a new offer", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", sdpFragType)
	h.Set("ETag", restarted.ETag)
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	io.WriteString(w, restarted.Local.Fragment())
}

// hasType reports whether the request's Content-Type is want (parameters
// such as charset are ignored).
func hasType(r *http.Request, want string) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && strings.EqualFold(mt, want)
}

// readSDPBody reads a body of at most maxSDPBody bytes, answering 413
// (or 400) when it cannot.
func readSDPBody(w http.ResponseWriter, r *http.Request) (string, bool) {
	tooBig := func() {
		http.Error(w, fmt.Sprintf("the body is larger than %d bytes: an SDP offer is a few kilobytes; send only the SDP", maxSDPBody), http.StatusRequestEntityTooLarge)
	}
	if r.ContentLength > maxSDPBody {
		tooBig()
		return "", false
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxSDPBody))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		tooBig()
		return "", false
	case err != nil:
		http.Error(w, "could not read the body: "+err.Error(), http.StatusBadRequest)
		return "", false
	}
	return string(b), true
}

// newResourceID returns 128 random bits in hex: resource URLs must not be
// guessable.
func newResourceID() string {
	b := make([]byte, 16)
	rand.Read(b) // never fails (crypto/rand, Go 1.24+)
	return hex.EncodeToString(b)
}
