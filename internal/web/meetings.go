package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/parley/parley/internal/account"
	"github.com/parley/parley/internal/signaling"
)

// routeMeetings adds the pages of issue 13's meetings: moderators,
// meeting codes, quick 1:1 calls.
func (s *Server) routeMeetings(mux *http.ServeMux) {
	mux.HandleFunc("POST /c/{id}/members/{user}/moderator", s.requirePage(s.setModerator))
	mux.HandleFunc("GET /join", s.requirePage(s.joinByCode))
	mux.HandleFunc("POST /c/{id}/code", s.requirePage(s.rotateCode))
	mux.HandleFunc("POST /calls", s.requirePage(s.newQuickCall))
	mux.HandleFunc("GET /q/{code}", s.requirePage(s.quickCallPage))
	mux.HandleFunc("GET /ws/q/{code}", s.quickSocket)
}

// quickRoom names a quick call's room; channel ids never contain ":".
func quickRoom(id string) string { return "q:" + id }

type quickData struct {
	Code string
	// RoomID stands in for the channel id on the call page.
	RoomID string
}

func (s *Server) newQuickCall(w http.ResponseWriter, r *http.Request) {
	q, err := s.accounts.CreateQuickCall(r.Context(), mustUser(r))
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	http.Redirect(w, r, "/q/"+q.Code+"?join=1", http.StatusSeeOther)
}

func (s *Server) quickCallPage(w http.ResponseWriter, r *http.Request) {
	q, err := s.accounts.QuickCall(r.Context(), r.PathValue("code"))
	if errors.Is(err, account.ErrNoSuchCode) {
		s.errorPage(w, r, http.StatusNotFound, "No such call", "No 1:1 call has this code: it may have been mistyped, or it was empty for a day and is gone. Start a new one from your channels page.")
		return
	}
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	s.render(w, r, http.StatusOK, "quick", page{Title: "1:1 call " + q.Code, Data: quickData{Code: q.Code, RoomID: "q_" + q.ID}})
}

// quickSocket is websocket for a quick 1:1 call: anyone logged in who has
// the code may open it; the room takes two participants at once.
func (s *Server) quickSocket(w http.ResponseWriter, r *http.Request) {
	u, auth, ok := s.authenticate(r)
	if !ok {
		http.Error(w, "not logged in: log in, then reopen the call", http.StatusUnauthorized)
		return
	}
	q, err := s.accounts.QuickCall(r.Context(), r.PathValue("code"))
	if errors.Is(err, account.ErrNoSuchCode) {
		http.Error(w, "no such call", http.StatusNotFound)
		return
	}
	if err != nil {
		s.log.Error("quick call socket", "err", err)
		http.Error(w, "server error; try again", http.StatusInternalServerError)
		return
	}
	if s.forward(w, r, quickRoom(q.ID)) {
		return
	}
	conn, release, ok := s.upgrade(w, r, u.ID, fmt.Sprintf("this account already has %d connections open (tabs, devices, programs): close some and try again", s.cfg.MaxConnectionsPerUser))
	if !ok {
		return
	}
	defer release()
	ctx := context.WithoutCancel(r.Context())
	if err := s.accounts.QuickCallInUse(ctx, q.ID, true); err != nil {
		s.log.Warn("quick call in use", "err", err)
	}
	room := quickRoom(q.ID)
	s.rooms.ServeCapped(ctx, conn, room, requestHost(r), signaling.User{UserID: u.ID, Name: u.DisplayName, Username: u.Username}, auth, account.QuickCallCapacity)
	if !s.rooms.Active(room) {
		if err := s.accounts.QuickCallInUse(ctx, q.ID, false); err != nil {
			s.log.Warn("quick call empty", "err", err)
		}
	}
}

// joinByCode takes a member from a meeting code straight into the call
// (the call page joins by itself with ?join=1).
func (s *Server) joinByCode(w http.ResponseWriter, r *http.Request) {
	code := strings.TrimSpace(r.URL.Query().Get("code"))
	form := map[string]string{"code": code}
	if code == "" {
		s.channelsPage(w, r, http.StatusUnprocessableEntity, page{Form: form, Errors: map[string]string{"code": "Type the code you were given, like abc-defg-hij."}})
		return
	}
	if account.IsQuickCode(code) {
		if _, err := s.accounts.QuickCall(r.Context(), code); err == nil {
			http.Redirect(w, r, "/q/"+code+"?join=1", http.StatusSeeOther)
			return
		}
	}
	ch, err := s.accounts.ChannelByMeetingCode(r.Context(), mustUser(r), code)
	if errors.Is(err, account.ErrNoSuchCode) {
		s.channelsPage(w, r, http.StatusNotFound, page{Form: form, Errors: map[string]string{"code": "No call you can join has this code. Check it with whoever gave it to you."}})
		return
	}
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	http.Redirect(w, r, "/c/"+ch.ID+"?join=1", http.StatusSeeOther)
}

// rotateCode gives the channel a new meeting code (owner only).
func (s *Server) rotateCode(w http.ResponseWriter, r *http.Request) {
	_, err := s.accounts.RotateMeetingCode(r.Context(), mustUser(r), r.PathValue("id"))
	s.channelFormDone(w, r, nil, err, "code", "")
}

// setModerator makes a member a moderator of the channel's calls (on=1)
// or a plain member again (on=0); owner only.
func (s *Server) setModerator(w http.ResponseWriter, r *http.Request) {
	if !s.parseForm(w, r) {
		return
	}
	err := s.accounts.SetModerator(r.Context(), mustUser(r), r.PathValue("id"), r.PathValue("user"), r.PostFormValue("on") == "1")
	s.channelFormDone(w, r, nil, err, "moderator", "#members")
}
