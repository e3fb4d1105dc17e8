package web

import (
	"errors"
	"net/http"
	"strings"

	"github.com/parley/parley/internal/account"
)

// routeMeetings adds the pages of issue 13's meetings: moderators.
func (s *Server) routeMeetings(mux *http.ServeMux) {
	mux.HandleFunc("POST /c/{id}/members/{user}/moderator", s.requirePage(s.setModerator))
}

// setModerator makes a member a moderator of the channel's calls (on=1)
// or a plain member again (on=0); owner only.
func (s *Server) setModerator(w http.ResponseWriter, r *http.Request) {
	if !s.parseForm(w, r) {
		return
	}
	id, userID := r.PathValue("id"), r.PathValue("user")
	err := s.accounts.SetModerator(r.Context(), mustUser(r), id, userID, r.PostFormValue("on") == "1")
	if ve, ok := errors.AsType[*account.ValidationError](err); ok {
		s.channelPage(w, r, http.StatusUnprocessableEntity, page{Errors: ve.Fields, Flash: strings.Join(ve.Messages(), " ")})
		return
	}
	if err != nil {
		s.channelError(w, r, err)
		return
	}
	http.Redirect(w, r, "/c/"+id+"?done=moderator", http.StatusSeeOther)
}
