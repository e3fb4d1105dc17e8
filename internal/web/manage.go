package web

import (
	"bytes"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strings"

	"github.com/parley/parley/internal/account"
)

// The channel page's management forms (add and remove members,
// moderators, call mode, meeting code, guest and invite links) work two
// ways. A plain form POST is answered as always: 303 back to the page
// with a notice, or the page with the errors. The page's script
// (static/manage.js) sends the same form body with Accept:
// application/json instead, so that the owner stays in the call: the
// answer is JSON (docs/api.md) carrying the notice and the page's parts
// as re-rendered by the same templates, which it swaps in place. Both
// go through the same handlers, hence the same authorization and
// cross-origin protection.

// manageParts are the templates of channel.html a management answer
// re-renders, keyed by the id of the element each one draws.
var manageParts = map[string]string{
	"members":           "members-card",
	"meeting-code-card": "code-card",
}

// wantsJSON is true when the request asks for a JSON answer.
func wantsJSON(r *http.Request) bool {
	for part := range strings.SplitSeq(r.Header.Get("Accept"), ",") {
		if mt, _, err := mime.ParseMediaType(strings.TrimSpace(part)); err == nil && mt == "application/json" {
			return true
		}
	}
	return false
}

// manageAnswer is the JSON answer to a management form.
type manageAnswer struct {
	// Notice says what was done, as the plain form's flash would.
	Notice string `json:"notice"`
	// HTML holds the page's parts after the change, by element id.
	HTML map[string]string `json:"html"`
}

// channelFormDone answers a form of the channel page: err nil as done
// (a key of flash) and anchor (a "#fragment" or ""), a validation error
// with the form's input kept (form nil: the messages go to the notice),
// another error as the channel's error.
func (s *Server) channelFormDone(w http.ResponseWriter, r *http.Request, form map[string]string, err error, done, anchor string) {
	if wantsJSON(r) {
		s.manageJSON(w, r, err, done)
		return
	}
	if ve, ok := errors.AsType[*account.ValidationError](err); ok {
		p := page{Form: form, Errors: ve.Fields}
		if form == nil {
			p.Flash, p.FlashError = strings.Join(ve.Messages(), " "), true
		}
		s.channelPage(w, r, http.StatusUnprocessableEntity, p)
		return
	}
	if err != nil {
		s.channelError(w, r, err)
		return
	}
	http.Redirect(w, r, "/c/"+r.PathValue("id")+"?done="+done+anchor, http.StatusSeeOther)
}

// manageJSON is channelFormDone for manage.js.
func (s *Server) manageJSON(w http.ResponseWriter, r *http.Request, err error, done string) {
	if ve, ok := errors.AsType[*account.ValidationError](err); ok {
		writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"error": strings.Join(ve.Messages(), " "), "fields": ve.Fields})
		return
	}
	if err != nil {
		s.jsonChannelError(w, r, err)
		return
	}
	d, err := s.channelView(r)
	if err != nil {
		s.jsonChannelError(w, r, err)
		return
	}
	u := mustUser(r)
	p := page{User: &u, Data: d}
	out := manageAnswer{Notice: doneMessage(done), HTML: make(map[string]string, len(manageParts))}
	for id, name := range manageParts {
		var buf bytes.Buffer
		if err := s.pages["channel"].ExecuteTemplate(&buf, name, p); err != nil {
			s.jsonChannelError(w, r, fmt.Errorf("render %s: %w", name, err))
			return
		}
		out.HTML[id] = buf.String()
	}
	writeJSON(w, http.StatusOK, out)
}

// jsonChannelError is channelError in JSON.
func (s *Server) jsonChannelError(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, account.ErrNotFound):
		writeJSONError(w, http.StatusNotFound, "That is gone already (deleted, revoked or removed by someone else). Reload the page to see the channel as it is now.")
	case errors.Is(err, account.ErrForbidden):
		writeJSONError(w, http.StatusForbidden, "Only the channel's owner can change this.")
	default:
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		writeJSONError(w, http.StatusInternalServerError, "Parley could not finish this request. Try again; if it keeps happening, tell the server's operator.")
	}
}
