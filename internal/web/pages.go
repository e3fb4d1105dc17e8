package web

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/parley/parley/internal/account"
	"github.com/parley/parley/internal/store"
)

// pageNames are the templates under ui/templates rendered inside the layout.
var pageNames = []string{"home", "signup", "login", "channels", "channel", "invite", "account", "error", "studio", "recordings", "quick", "guest"}

// page is what every template gets.
type page struct {
	Title  string
	User   *store.User
	Flash  string
	Form   map[string]string
	Errors map[string]string
	Next   string
	// FlashError marks Flash as an error: it stays until dismissed.
	FlashError bool
	Data       any
	// Embed draws the page alone, without Parley's top bar (the call
	// framed in another site: /embed/c/{id}).
	Embed bool
}

// fieldData feeds the "field" template.
type fieldData struct {
	Name, Label, Type, Value, Error, Autocomplete, Hint string
	Required                                            bool
}

func (s *Server) parseTemplates(fsys fs.FS) error {
	funcs := template.FuncMap{
		"field": func(name, label, typ, value, errText, autocomplete, hint string) fieldData {
			return fieldData{Name: name, Label: label, Type: typ, Value: value, Error: errText, Autocomplete: autocomplete, Hint: hint, Required: true}
		},
	}
	// missingkey=zero: templates look up .Form and .Errors by field name,
	// and a field without an error must read as "", not fail.
	for _, name := range slices.Concat(pageNames, accountPages, pairingPages) {
		t, err := template.New(name).Option("missingkey=zero").Funcs(funcs).ParseFS(fsys, "layout.html", name+".html")
		if err != nil {
			return fmt.Errorf("parse template %s: %w", name, err)
		}
		s.pages[name] = t
	}
	return nil
}

// render writes a page; it renders into a buffer first so a template error
// becomes a clean 500 instead of half a page.
func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, name string, p page) {
	if p.User == nil {
		if u, ok := s.currentUser(r); ok {
			p.User = &u
		}
	}
	var buf bytes.Buffer
	if err := s.pages[name].ExecuteTemplate(&buf, "layout", p); err != nil {
		s.log.Error("render", "page", name, "err", err)
		http.Error(w, "Parley could not draw this page; try again.", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

type errorData struct{ Heading, Text string }

func (s *Server) errorPage(w http.ResponseWriter, r *http.Request, status int, heading, text string) {
	s.render(w, r, status, "error", page{Title: heading, Data: errorData{heading, text}})
}

// parseForm reads a bounded urlencoded body; false means a response was sent.
func (s *Server) parseForm(w http.ResponseWriter, r *http.Request) bool {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		s.errorPage(w, r, http.StatusBadRequest, "That form could not be read", "The form was too large or malformed. Go back and try again.")
		return false
	}
	return true
}

func formValues(r *http.Request, names ...string) map[string]string {
	m := make(map[string]string, len(names))
	for _, n := range names {
		m[n] = r.PostFormValue(n)
	}
	return m
}

// fieldErrors returns the per-field messages of a validation error.
func fieldErrors(err error) (map[string]string, bool) {
	var ve *account.ValidationError
	if errors.As(err, &ve) {
		return ve.Fields, true
	}
	return nil, false
}

func (s *Server) home(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, http.StatusOK, "home", page{})
}

func (s *Server) signupForm(w http.ResponseWriter, r *http.Request) {
	next := safeNext(r.URL.Query().Get("next"))
	if _, ok := s.currentUser(r); ok {
		http.Redirect(w, r, orDefault(next, "/channels"), http.StatusSeeOther)
		return
	}
	s.render(w, r, http.StatusOK, "signup", page{Title: "Sign up", Next: next})
}

func (s *Server) signup(w http.ResponseWriter, r *http.Request) {
	if !s.parseForm(w, r) {
		return
	}
	next := safeNext(r.URL.Query().Get("next"))
	form := formValues(r, "username", "display_name", "email", "password")
	u, err := s.accounts.SignUp(r.Context(), account.SignUpInput{
		Username: form["username"], DisplayName: form["display_name"], Email: form["email"], Password: form["password"],
		IP: s.clientIP(r), LinkBase: s.linkBase(r),
	})
	delete(form, "password") // never echo a password back into a page
	var rl *account.RateLimitedError
	if fields, ok := fieldErrors(err); ok {
		s.render(w, r, http.StatusUnprocessableEntity, "signup", page{Title: "Sign up", Next: next, Form: form, Errors: fields})
		return
	}
	if errors.As(err, &rl) {
		w.Header().Set("Retry-After", fmt.Sprint(account.RetryAfterSeconds(rl.RetryAfter)))
		s.render(w, r, http.StatusTooManyRequests, "signup", page{Title: "Sign up", Next: next, Form: form, Errors: map[string]string{
			"form": "Too many accounts were made from your network address recently. Try again in " + humanDuration(rl.RetryAfter) + ", or ask the server's operator.",
		}})
		return
	}
	if errors.Is(err, account.ErrBusy) {
		s.busy(w, r, "signup", page{Title: "Sign up", Next: next, Form: form})
		return
	}
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	token, err := s.accounts.StartSession(r.Context(), u)
	if err != nil {
		s.internalError(w, r, fmt.Errorf("log in after sign-up: %w", err))
		return
	}
	s.setSessionCookie(w, token)
	// An invite link opened before signing up carries on from here.
	http.Redirect(w, r, orDefault(next, "/channels"), http.StatusSeeOther)
}

// maxNextLen bounds a post-login or post-sign-up redirect target.
const maxNextLen = 1024

// safeNext keeps a post-login (or post-sign-up) redirect on this site: a
// path of this server, never another site's address. Anything doubtful
// reads as no target at all.
func safeNext(next string) string {
	if next == "" || len(next) > maxNextLen || !strings.HasPrefix(next, "/") {
		return ""
	}
	// "//host" and "/\host" are other sites to a browser (which reads a
	// backslash as a slash); so is "/\t/host" once it drops the tab, and
	// url.Parse refuses control characters. No backslash anywhere, then.
	if strings.HasPrefix(next, "//") || strings.ContainsRune(next, '\\') {
		return ""
	}
	for _, c := range next {
		if c < 0x20 || c == 0x7f {
			return ""
		}
	}
	if u, err := url.Parse(next); err != nil || u.Host != "" || u.Scheme != "" || u.Opaque != "" {
		return ""
	}
	return next
}

func (s *Server) loginForm(w http.ResponseWriter, r *http.Request) {
	next := safeNext(r.URL.Query().Get("next"))
	if _, ok := s.currentUser(r); ok {
		http.Redirect(w, r, orDefault(next, "/channels"), http.StatusSeeOther)
		return
	}
	s.render(w, r, http.StatusOK, "login", page{Title: "Log in", Next: next, Flash: flash(r)})
}

func orDefault(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	if !s.parseForm(w, r) {
		return
	}
	next := safeNext(r.URL.Query().Get("next"))
	form := formValues(r, "username", "password")
	p := page{Title: "Log in", Next: next, Form: map[string]string{"username": form["username"]}}
	_, token, err := s.accounts.LogIn(r.Context(), s.clientIP(r), form["username"], form["password"])
	var rl *account.RateLimitedError
	switch {
	case err == nil:
		s.setSessionCookie(w, token)
		http.Redirect(w, r, orDefault(next, "/channels"), http.StatusSeeOther)
	case errors.As(err, &rl):
		w.Header().Set("Retry-After", fmt.Sprint(account.RetryAfterSeconds(rl.RetryAfter)))
		p.Errors = map[string]string{"form": "Too many failed attempts. For your safety, logging in is paused: try again in " + humanDuration(rl.RetryAfter) + "."}
		s.render(w, r, http.StatusTooManyRequests, "login", p)
	case errors.Is(err, account.ErrBusy):
		s.busy(w, r, "login", p)
	case errors.Is(err, account.ErrBadCredentials):
		p.Errors = map[string]string{"form": "Wrong username or password. Check both and try again."}
		s.render(w, r, http.StatusUnauthorized, "login", p)
	default:
		if fields, ok := fieldErrors(err); ok {
			p.Errors = fields
			s.render(w, r, http.StatusUnprocessableEntity, "login", p)
			return
		}
		s.internalError(w, r, err)
	}
}

// busy answers 503 with Retry-After when every password-hashing slot
// stayed taken: the server is overloaded, the user did nothing wrong.
func (s *Server) busy(w http.ResponseWriter, r *http.Request, name string, p page) {
	w.Header().Set("Retry-After", fmt.Sprint(account.RetryAfterSeconds(account.BusyRetryAfter)))
	p.Errors = map[string]string{"form": "Parley is busy checking other passwords right now. Wait " + humanDuration(account.BusyRetryAfter) + " and send the form again."}
	s.render(w, r, http.StatusServiceUnavailable, name, p)
}

// humanDuration rounds up to what a person would say.
func humanDuration(d time.Duration) string {
	switch {
	case d <= time.Minute:
		n := int(math.Ceil(d.Seconds()))
		if n <= 1 {
			return "1 second"
		}
		return fmt.Sprintf("%d seconds", n)
	default:
		n := int(math.Ceil(d.Minutes()))
		if n == 1 {
			return "1 minute"
		}
		return fmt.Sprintf("%d minutes", n)
	}
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(SessionCookie); err == nil && c.Value != "" {
		if err := s.accounts.LogOut(r.Context(), c.Value); err != nil {
			s.log.Error("log out", "err", err)
		}
	}
	s.clearSessionCookie(w)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

type channelsData struct{ Channels []store.Channel }

func (s *Server) channelsPage(w http.ResponseWriter, r *http.Request, status int, p page) {
	list, err := s.accounts.Channels(r.Context(), mustUser(r))
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	p.Title = "Channels"
	p.Data = channelsData{Channels: list}
	s.render(w, r, status, "channels", p)
}

func (s *Server) channels(w http.ResponseWriter, r *http.Request) {
	s.channelsPage(w, r, http.StatusOK, page{})
}

func (s *Server) createChannel(w http.ResponseWriter, r *http.Request) {
	if !s.parseForm(w, r) {
		return
	}
	form := formValues(r, "name")
	ch, err := s.accounts.CreateChannel(r.Context(), mustUser(r), form["name"])
	if fields, ok := fieldErrors(err); ok {
		s.channelsPage(w, r, http.StatusUnprocessableEntity, page{Form: form, Errors: fields})
		return
	}
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	http.Redirect(w, r, "/c/"+ch.ID, http.StatusSeeOther)
}

type channelData struct {
	Channel store.Channel
	Members []store.User
	IsOwner bool
	// Moderators are the ids of the members the owner made moderators.
	Moderators map[string]bool
	// MeetingCode takes members straight into the call (/join).
	MeetingCode string
	// GuestLink is the channel's guest link while it is on (owner only).
	GuestLink *store.GuestLink
	BaseURL   string
	// Invites are the live invite links, for the owner only.
	Invites []inviteView
}

// channelView gathers what the channel page shows the request's user.
func (s *Server) channelView(r *http.Request) (channelData, error) {
	u := mustUser(r)
	ch, err := s.accounts.Channel(r.Context(), u, r.PathValue("id"))
	if err != nil {
		return channelData{}, err
	}
	members, err := s.accounts.Members(r.Context(), u, ch.ID)
	if err != nil {
		return channelData{}, err
	}
	d := channelData{Channel: ch, Members: members, IsOwner: ch.OwnerID == u.ID}
	if d.Moderators, err = s.accounts.Moderators(r.Context(), u, ch.ID); err != nil {
		return channelData{}, err
	}
	if d.MeetingCode, err = s.accounts.MeetingCode(r.Context(), u, ch.ID); err != nil {
		return channelData{}, err
	}
	if d.IsOwner {
		if g, err := s.accounts.GuestLink(r.Context(), u, ch.ID); err == nil {
			d.GuestLink = &g
		}
		d.BaseURL = s.baseURL(r)
		if d.Invites, err = s.inviteViews(r, u, ch.ID); err != nil {
			return channelData{}, err
		}
	}
	return d, nil
}

func (s *Server) channelPage(w http.ResponseWriter, r *http.Request, status int, p page) {
	d, err := s.channelView(r)
	if err != nil {
		s.channelError(w, r, err)
		return
	}
	p.Title = d.Channel.Name
	p.Data = d
	s.render(w, r, status, "channel", p)
}

func (s *Server) channel(w http.ResponseWriter, r *http.Request) {
	s.channelPage(w, r, http.StatusOK, page{Flash: flash(r)})
}

// flash reads the one-line notice a redirect carries in its query.
func flash(r *http.Request) string { return doneMessage(r.URL.Query().Get("done")) }

// doneMessage is the notice for what a form did (done).
func doneMessage(done string) string {
	switch done {
	case "added":
		return "Member added."
	case "removed":
		return "Member removed. Invite links no longer let them back in; add them by username if you change your mind."
	case "joined":
		return "You joined this channel."
	case "mode":
		return "Call mode saved; a call in progress switches now."
	case "revoked":
		return "Token revoked: programs using it can no longer sign in."
	case "invite-created":
		return "Invite link created."
	case "invite-revoked":
		return "Invite link revoked: it no longer lets anyone join."
	case "guests-on":
		return "Guest link on. Anyone with it can join the call with just a name."
	case "guests-off":
		return "Guest link off: it no longer works, and guests in the call were disconnected."
	case "code":
		return "New meeting code made; the old one no longer works."
	case "moderator":
		return "Moderator saved; a call in progress knows at once."
	case "invites-reset":
		return "All invite links revoked; a new one is below."
	}
	if m := webhookFlash(done); m != "" {
		return m
	}
	return accountFlash(done)
}

func (s *Server) addMember(w http.ResponseWriter, r *http.Request) {
	if !s.parseForm(w, r) {
		return
	}
	form := formValues(r, "username")
	id := r.PathValue("id")
	_, err := s.accounts.AddMember(r.Context(), mustUser(r), id, form["username"])
	s.channelFormDone(w, r, form, err, "added", "#members")
}

func (s *Server) removeMember(w http.ResponseWriter, r *http.Request) {
	id, userID := r.PathValue("id"), r.PathValue("user")
	err := s.accounts.RemoveMember(r.Context(), mustUser(r), id, userID)
	s.channelFormDone(w, r, nil, err, "removed", "#members")
}

func (s *Server) deleteChannel(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := s.accounts.DeleteChannel(r.Context(), mustUser(r), id); err != nil {
		s.channelError(w, r, err)
		return
	}
	http.Redirect(w, r, "/channels", http.StatusSeeOther)
}

func (s *Server) setMode(w http.ResponseWriter, r *http.Request) {
	if !s.parseForm(w, r) {
		return
	}
	form := formValues(r, "mode")
	_, err := s.accounts.SetChannelMode(r.Context(), mustUser(r), r.PathValue("id"), form["mode"])
	s.channelFormDone(w, r, form, err, "mode", "#mode-form")
}

type inviteData struct {
	Channel store.Channel
	Code    string
}

// inviteForm asks before joining: a GET must not change anything, or any
// page could make a visitor join a channel by embedding the link.
//
// A visitor who is not logged in is offered to log in or to create an
// account, both coming back here afterwards (next). They are told nothing
// about the channel, not even whether the link works: that needs an
// account, like everything else about a channel.
func (s *Server) inviteForm(w http.ResponseWriter, r *http.Request) {
	code := r.PathValue("code")
	u, ok := s.currentUser(r)
	if !ok && s.refuseGuest(w, r, false) {
		return
	}
	if !ok {
		next := safeNext("/invite/" + url.PathEscape(code))
		s.render(w, r, http.StatusOK, "invite", page{Title: "Invitation", Next: next})
		return
	}
	r = r.WithContext(context.WithValue(r.Context(), userKey{}, u))
	ch, err := s.accounts.InviteChannel(r.Context(), mustUser(r), code)
	if err != nil {
		s.inviteError(w, r, err)
		return
	}
	if _, err := s.accounts.Channel(r.Context(), mustUser(r), ch.ID); err == nil {
		http.Redirect(w, r, "/c/"+ch.ID, http.StatusSeeOther)
		return
	}
	s.render(w, r, http.StatusOK, "invite", page{Title: "Invitation", Data: inviteData{Channel: ch, Code: code}})
}

func (s *Server) acceptInvite(w http.ResponseWriter, r *http.Request) {
	ch, err := s.accounts.JoinByInvite(r.Context(), mustUser(r), r.PathValue("code"))
	if err != nil {
		s.inviteError(w, r, err)
		return
	}
	http.Redirect(w, r, "/c/"+ch.ID+"?done=joined", http.StatusSeeOther)
}

func (s *Server) inviteError(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, account.ErrNotFound):
		s.errorPage(w, r, http.StatusNotFound, "Invite link not valid", "This invite link does not match any channel. It may be mistyped, or the channel was deleted. Ask for a new link.")
	case errors.Is(err, account.ErrInviteRevoked):
		s.errorPage(w, r, http.StatusGone, "Invite link revoked", "The channel owner revoked this invite link. Ask them for a new one.")
	case errors.Is(err, account.ErrInviteExpired):
		s.errorPage(w, r, http.StatusGone, "Invite link expired", "This invite link has expired. Ask the channel owner for a new one.")
	case errors.Is(err, account.ErrInviteUsedUp):
		s.errorPage(w, r, http.StatusGone, "Invite link used up", "This invite link has been used as many times as the channel owner allowed. Ask them for a new one.")
	case errors.Is(err, account.ErrRemovedByOwner):
		s.errorPage(w, r, http.StatusForbidden, "You were removed from this channel", "The channel owner removed you, so invite links no longer let you in. Ask the owner to add you back.")
	default:
		s.internalError(w, r, err)
	}
}

type accountData struct {
	Tokens []store.Token
	// NewToken is the secret of a token just created: shown once.
	NewToken     string
	NewTokenName string
	// APIKeys are the account's API keys (apikeys.go); NewAPIKey is the
	// whole key just created: shown once.
	APIKeys       []store.APIKey
	NewAPIKey     string
	NewAPIKeyName string

	// The profile, email and deletion sections (accounts.go).
	PendingEmail   string
	MailConfigured bool
	EmailHint      string
	Plan           []account.ChannelFate

	// The webhook section (webhooks.go); webhookChecked are the events
	// ticked in a refused form.
	Webhooks       *webhookSection
	webhookChecked []string
}

func (s *Server) accountPage(w http.ResponseWriter, r *http.Request) {
	s.renderAccount(w, r, http.StatusOK, page{Flash: flash(r)}, accountData{})
}

func (s *Server) renderAccount(w http.ResponseWriter, r *http.Request, status int, p page, d accountData) {
	tokens, err := s.accounts.Tokens(r.Context(), mustUser(r))
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	d.Tokens = tokens
	if d.APIKeys, err = s.accounts.APIKeys(r.Context(), mustUser(r)); err != nil {
		s.internalError(w, r, err)
		return
	}
	if err := s.accountExtras(r, &d); err != nil {
		s.internalError(w, r, err)
		return
	}
	p.Title, p.Data = "Your account", d
	s.render(w, r, status, "account", p)
}

func (s *Server) createToken(w http.ResponseWriter, r *http.Request) {
	if !s.parseForm(w, r) {
		return
	}
	t, secret, err := s.accounts.CreateToken(r.Context(), mustUser(r), r.PostFormValue("name"))
	if fields, ok := fieldErrors(err); ok {
		s.renderAccount(w, r, http.StatusUnprocessableEntity, page{Form: formValues(r, "name"), Errors: fields}, accountData{})
		return
	}
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	// Shown in this response only (no redirect): the secret is never stored.
	s.renderAccount(w, r, http.StatusCreated, page{}, accountData{NewToken: secret, NewTokenName: t.Name})
}

func (s *Server) revokeToken(w http.ResponseWriter, r *http.Request) {
	if !s.parseForm(w, r) {
		return
	}
	err := s.accounts.RevokeToken(r.Context(), mustUser(r), r.PathValue("id"))
	if errors.Is(err, account.ErrNotFound) {
		s.errorPage(w, r, http.StatusNotFound, "No such token", "That token does not exist or was already revoked. Go back to your account page.")
		return
	}
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	http.Redirect(w, r, "/account?done=revoked", http.StatusSeeOther)
}
