package web

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/parley/parley/internal/connlimit"
	"github.com/parley/parley/internal/pairing"
)

// pairingPages are the templates of "Send to a device", parsed with
// pageNames.
var pairingPages = []string{"receive"}

// SetPairing gives the server the hub of "Send to a device" (before
// serving); without one, its routes answer 404.
func (s *Server) SetPairing(h *pairing.Hub) { s.pairing = h }

func (s *Server) routePairing(mux *http.ServeMux) {
	mux.HandleFunc("GET /receive", s.receivePage)
	mux.HandleFunc("GET /ws/receive", s.receiveSocket)
	mux.HandleFunc("GET /ws/send", s.sendSocket)
}

// receivePage is the device's page: it shows a code and plays what a
// sender forwards. No account is needed.
func (s *Server) receivePage(w http.ResponseWriter, r *http.Request) {
	if s.pairing == nil {
		http.NotFound(w, r)
		return
	}
	s.render(w, r, http.StatusOK, "receive", page{Title: "Receive a call"})
}

// receiveSocket is the device's socket: no login; bounded per address
// and in all by the hub, Origin-checked by the upgrade.
func (s *Server) receiveSocket(w http.ResponseWriter, r *http.Request) {
	if s.pairing == nil {
		http.NotFound(w, r)
		return
	}
	s.pairing.ServeReceive(w, r, s.clientIP(r))
}

// sendSocket is a call participant's socket to the device holding
// ?code=: the sender must be logged in (session or token) and, for a
// channel's call (?channel=), a member of it. Guests cannot send.
func (s *Server) sendSocket(w http.ResponseWriter, r *http.Request) {
	if s.pairing == nil {
		http.NotFound(w, r)
		return
	}
	u, auth, ok := s.authenticate(r)
	if !ok {
		http.Error(w, "not logged in: only a logged-in participant of a call can send to a device", http.StatusUnauthorized)
		return
	}
	channelID := r.URL.Query().Get("channel")
	if channelID == "" {
		http.Error(w, "missing channel: the call you send from", http.StatusBadRequest)
		return
	}
	// A 1:1 call (q_…) has no members: its code admits any logged-in
	// user, so being logged in is the check there.
	if !strings.HasPrefix(channelID, "q_") {
		if _, err := s.accounts.Channel(r.Context(), u, channelID); err != nil {
			s.plainChannelError(w, err)
			return
		}
	}
	release, ok := s.rooms.Reserve(u.ID, s.cfg.MaxConnectionsPerUser)
	if !ok {
		http.Error(w, fmt.Sprintf("this account already has %d connections open (tabs, devices, programs): close some and try again", s.cfg.MaxConnectionsPerUser), http.StatusTooManyRequests)
		return
	}
	defer release()
	// Bounded by the account's limit from here on (as the call's socket);
	// should the upgrade be refused, the connection closes after the answer.
	connlimit.ReleaseContext(r.Context())
	w.Header().Set("Connection", "close")
	s.pairing.ServeSend(w, r, s.clientIP(r), pairing.Sender{UserID: u.ID, Name: u.DisplayName, ChannelID: channelID, Credential: auth.Credential})
}
