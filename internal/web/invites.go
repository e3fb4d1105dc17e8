package web

import (
	"errors"
	"net/http"
	"time"

	"github.com/parley/parley/internal/account"
	"github.com/parley/parley/internal/store"
)

// routeInvites adds the owner's invite-link management. Opening and
// accepting a link (/invite/{code}) is in pages.go.
func (s *Server) routeInvites(mux *http.ServeMux) {
	mux.HandleFunc("POST /c/{id}/invites", s.requirePage(s.createInvite))
	mux.HandleFunc("POST /c/{id}/invites/reset", s.requirePage(s.resetInvites))
	mux.HandleFunc("POST /c/{id}/invites/{invite}/revoke", s.requirePage(s.revokeInvite))
}

// inviteView is one row of the owner's invite list.
type inviteView struct {
	store.Invite
	// URL is the whole link to copy.
	URL string
	// Status is "active", or why the link no longer works.
	Status string
	// Active is true while the link lets people join.
	Active bool
}

func (s *Server) inviteViews(r *http.Request, owner store.User, channelID string) ([]inviteView, error) {
	invs, err := s.accounts.Invites(r.Context(), owner, channelID)
	if err != nil {
		return nil, err
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	now := time.Now()
	out := make([]inviteView, len(invs))
	for i, inv := range invs {
		v := inviteView{Invite: inv, URL: scheme + "://" + r.Host + "/invite/" + inv.Code, Status: "active", Active: true}
		switch err := account.InviteUsable(inv, now); {
		case errors.Is(err, account.ErrInviteExpired):
			v.Status, v.Active = "expired", false
		case errors.Is(err, account.ErrInviteUsedUp):
			v.Status, v.Active = "used up", false
		}
		out[i] = v
	}
	return out, nil
}

func (s *Server) createInvite(w http.ResponseWriter, r *http.Request) {
	if !s.parseForm(w, r) {
		return
	}
	form := formValues(r, "expires", "max_uses")
	id := r.PathValue("id")
	opts, err := account.ParseInviteOptions(form["expires"], form["max_uses"])
	if err == nil {
		_, err = s.accounts.CreateInvite(r.Context(), mustUser(r), id, opts)
	}
	s.channelFormDone(w, r, form, err, "invite-created", "#invites")
}

func (s *Server) revokeInvite(w http.ResponseWriter, r *http.Request) {
	err := s.accounts.RevokeInvite(r.Context(), mustUser(r), r.PathValue("id"), r.PathValue("invite"))
	if errors.Is(err, account.ErrNotFound) && !wantsJSON(r) {
		s.errorPage(w, r, http.StatusNotFound, "No such invite link", "That invite link does not exist or was already revoked. Go back to the channel page.")
		return
	}
	s.channelFormDone(w, r, nil, err, "invite-revoked", "#invites")
}

func (s *Server) resetInvites(w http.ResponseWriter, r *http.Request) {
	_, err := s.accounts.ResetInvites(r.Context(), mustUser(r), r.PathValue("id"))
	s.channelFormDone(w, r, nil, err, "invites-reset", "#invites")
}
