package web

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/parley/parley/internal/account"
)

// accountPages are the templates of this file's pages, parsed with
// pageNames.
var accountPages = []string{"forgot", "reset", "verify"}

// routeAccounts adds the forgotten-password, email verification and
// account-change routes.
func (s *Server) routeAccounts(mux *http.ServeMux) {
	mux.HandleFunc("GET /forgot", s.forgotForm)
	mux.HandleFunc("POST /forgot", s.forgot)
	mux.HandleFunc("GET /reset/{token}", s.resetForm)
	mux.HandleFunc("POST /reset/{token}", s.reset)
	mux.HandleFunc("GET /verify/{token}", s.verifyForm)
	mux.HandleFunc("POST /verify/{token}", s.verify)
	mux.HandleFunc("POST /account/name", s.requirePage(s.changeName))
	mux.HandleFunc("POST /account/email", s.requirePage(s.changeEmail))
	mux.HandleFunc("POST /account/password", s.requirePage(s.changePassword))
	mux.HandleFunc("POST /account/delete", s.requirePage(s.deleteAccount))
}

// accountFlash is flash for this file's redirects.
func accountFlash(done string) string {
	switch done {
	case "reset":
		return "Your password was changed and every session of your account was logged out. Log in with the new password."
	case "deleted":
		return "Your account was deleted."
	case "name":
		return "Display name saved."
	case "email":
		return "Email address saved."
	case "email-pending":
		return "Check your inbox: open the link we sent to confirm the new address. Until then your old address stays."
	case "password":
		return "Password changed. Every other browser and device signed in as you was logged out."
	}
	return ""
}

// linkBase is what links in mails start with: --public-url, which is
// required when mail goes out. Without mail, links only reach the log,
// and the address the request came to is good enough there.
func (s *Server) linkBase(r *http.Request) string {
	if s.cfg.PublicURL != "" {
		return strings.TrimRight(s.cfg.PublicURL, "/")
	}
	scheme := "http"
	if s.cfg.Secure() {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

type forgotData struct {
	Sent           bool
	MailConfigured bool
	TTL            string
}

func (s *Server) forgotForm(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, http.StatusOK, "forgot", page{Title: "Forgot your password?", Data: forgotData{}})
}

// forgot answers the same whether or not an account matches: the lookup
// and the mail happen in the background (account.RequestPasswordReset).
func (s *Server) forgot(w http.ResponseWriter, r *http.Request) {
	if !s.parseForm(w, r) {
		return
	}
	form := formValues(r, "identifier")
	p := page{Title: "Forgot your password?", Form: form, Data: forgotData{}}
	err := s.accounts.RequestPasswordReset(r.Context(), account.ResetRequest{
		Identifier: form["identifier"], IP: s.clientIP(r), LinkBase: s.linkBase(r),
	})
	var rl *account.RateLimitedError
	switch {
	case err == nil:
		p.Data = forgotData{Sent: true, MailConfigured: s.accounts.MailConfigured(), TTL: account.HumanTTL(s.accounts.ResetTTL())}
		s.render(w, r, http.StatusOK, "forgot", p)
	case errors.As(err, &rl):
		w.Header().Set("Retry-After", fmt.Sprint(account.RetryAfterSeconds(rl.RetryAfter)))
		p.Errors = map[string]string{"form": "Too many reset links were asked for. Try again in " + humanDuration(rl.RetryAfter) + ", and check your inbox (and spam folder) for the links already sent."}
		s.render(w, r, http.StatusTooManyRequests, "forgot", p)
	default:
		if fields, ok := fieldErrors(err); ok {
			p.Errors = fields
			s.render(w, r, http.StatusUnprocessableEntity, "forgot", p)
			return
		}
		s.internalError(w, r, err)
	}
}

// linkError turns a bad reset or verification link into a page.
func (s *Server) linkError(w http.ResponseWriter, r *http.Request, what string, err error) {
	again := "Ask for a new one on the log-in page (“Forgot your password?”)."
	if what == "Confirmation link" {
		again = "Ask for a new one on your account page."
	}
	switch {
	case errors.Is(err, account.ErrLinkExpired):
		s.errorPage(w, r, http.StatusGone, what+" expired", "This link is too old to use. "+again)
	case errors.Is(err, account.ErrLinkInvalid):
		s.errorPage(w, r, http.StatusNotFound, what+" not valid", "This link was already used, was replaced by a newer one, or is mistyped. "+again)
	case errors.Is(err, account.ErrBusy):
		w.Header().Set("Retry-After", fmt.Sprint(account.RetryAfterSeconds(account.BusyRetryAfter)))
		s.errorPage(w, r, http.StatusServiceUnavailable, "Parley is busy", "Parley is busy checking other passwords right now. Go back and send the form again in a few seconds.")
	default:
		// Not internalError: the path holds the link's secret.
		s.log.Error("request failed", "method", r.Method, "path", "/"+strings.SplitN(strings.TrimPrefix(r.URL.Path, "/"), "/", 2)[0]+"/…", "err", err)
		s.errorPage(w, r, http.StatusInternalServerError, "Something went wrong", "Parley could not finish this request. Try again; if it keeps happening, tell the server's operator.")
	}
}

type resetData struct{ Token, Username string }

// resetForm asks for the new password; it uses nothing up, so a mail
// scanner that opens the link does not spend it.
func (s *Server) resetForm(w http.ResponseWriter, r *http.Request) {
	token := r.PathValue("token")
	u, err := s.accounts.CheckResetLink(r.Context(), token)
	if err != nil {
		s.linkError(w, r, "Reset link", err)
		return
	}
	s.render(w, r, http.StatusOK, "reset", page{Title: "Choose a new password", Data: resetData{Token: token, Username: u.Username}})
}

func (s *Server) reset(w http.ResponseWriter, r *http.Request) {
	if !s.parseForm(w, r) {
		return
	}
	token := r.PathValue("token")
	u, err := s.accounts.ResetPassword(r.Context(), token, r.PostFormValue("password"))
	if fields, ok := fieldErrors(err); ok {
		s.render(w, r, http.StatusUnprocessableEntity, "reset", page{Title: "Choose a new password", Errors: fields, Data: resetData{Token: token, Username: u.Username}})
		return
	}
	if err != nil {
		s.linkError(w, r, "Reset link", err)
		return
	}
	// Every session of the user ended, this browser's too if it had one.
	s.clearSessionCookie(w)
	http.Redirect(w, r, "/login?done=reset", http.StatusSeeOther)
}

type verifyData struct {
	Token, Email string
	Done         bool
}

// verifyForm asks before confirming: a GET must not change anything (a
// mail scanner opening the link would confirm on the user's behalf).
func (s *Server) verifyForm(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, http.StatusOK, "verify", page{Title: "Confirm your email address", Data: verifyData{Token: r.PathValue("token")}})
}

func (s *Server) verify(w http.ResponseWriter, r *http.Request) {
	u, err := s.accounts.VerifyEmail(r.Context(), r.PathValue("token"))
	if err != nil {
		s.linkError(w, r, "Confirmation link", err)
		return
	}
	s.render(w, r, http.StatusOK, "verify", page{Title: "Email address confirmed", Data: verifyData{Email: u.Email, Done: true}})
}

// accountExtras fills the account page's profile, email and deletion
// sections.
func (s *Server) accountExtras(r *http.Request, d *accountData) error {
	u := mustUser(r)
	var err error
	if d.PendingEmail, err = s.accounts.PendingEmail(r.Context(), u); err != nil {
		return err
	}
	if d.Plan, err = s.accounts.DeletionPlan(r.Context(), u); err != nil {
		return err
	}
	if err := s.fillWebhooks(r, d, d.webhookChecked); err != nil {
		return err
	}
	d.MailConfigured = s.accounts.MailConfigured()
	d.EmailHint = "Parley sends password reset links here."
	if d.MailConfigured {
		d.EmailHint = "We send a link to the new address; it replaces the old one once you open the link."
	}
	return nil
}

// accountFormError re-renders the account page for a refused change.
func (s *Server) accountFormError(w http.ResponseWriter, r *http.Request, err error, form map[string]string, formKey string) bool {
	var rl *account.RateLimitedError
	switch {
	case err == nil:
		return false
	case errors.As(err, &rl):
		w.Header().Set("Retry-After", fmt.Sprint(account.RetryAfterSeconds(rl.RetryAfter)))
		msg := "Too many wrong passwords. Try again in " + humanDuration(rl.RetryAfter) + "."
		if rl.Mail {
			msg = "Too many confirmation links were sent. Try again in " + humanDuration(rl.RetryAfter) + "."
		}
		s.renderAccount(w, r, http.StatusTooManyRequests, page{Form: form, Errors: map[string]string{formKey: msg}, Flash: msg, FlashError: true}, accountData{})
	case errors.Is(err, account.ErrBusy):
		w.Header().Set("Retry-After", fmt.Sprint(account.RetryAfterSeconds(account.BusyRetryAfter)))
		msg := "Parley is busy checking other passwords right now. Send the form again in a few seconds."
		s.renderAccount(w, r, http.StatusServiceUnavailable, page{Form: form, Errors: map[string]string{formKey: msg}}, accountData{})
	default:
		if fields, ok := fieldErrors(err); ok {
			s.renderAccount(w, r, http.StatusUnprocessableEntity, page{Form: form, Errors: fields}, accountData{})
			return true
		}
		s.internalError(w, r, err)
	}
	return true
}

func (s *Server) changeName(w http.ResponseWriter, r *http.Request) {
	if !s.parseForm(w, r) {
		return
	}
	form := formValues(r, "display_name")
	_, err := s.accounts.ChangeDisplayName(r.Context(), mustUser(r), form["display_name"])
	if s.accountFormError(w, r, err, form, "name_form") {
		return
	}
	http.Redirect(w, r, "/account?done=name", http.StatusSeeOther)
}

func (s *Server) changeEmail(w http.ResponseWriter, r *http.Request) {
	if !s.parseForm(w, r) {
		return
	}
	form := formValues(r, "email")
	pending, err := s.accounts.ChangeEmail(r.Context(), mustUser(r), form["email"], s.linkBase(r))
	if s.accountFormError(w, r, err, form, "email_form") {
		return
	}
	done := "email"
	if pending {
		done = "email-pending"
	}
	http.Redirect(w, r, "/account?done="+done, http.StatusSeeOther)
}

func (s *Server) changePassword(w http.ResponseWriter, r *http.Request) {
	if !s.parseForm(w, r) {
		return
	}
	keep := ""
	if c, err := r.Cookie(SessionCookie); err == nil {
		keep = c.Value
	}
	err := s.accounts.ChangePassword(r.Context(), mustUser(r), keep, r.PostFormValue("current_password"), r.PostFormValue("new_password"))
	if s.accountFormError(w, r, err, nil, "password_form") {
		return
	}
	http.Redirect(w, r, "/account?done=password", http.StatusSeeOther)
}

func (s *Server) deleteAccount(w http.ResponseWriter, r *http.Request) {
	if !s.parseForm(w, r) {
		return
	}
	_, err := s.accounts.DeleteAccount(r.Context(), mustUser(r), r.PostFormValue("password"))
	if s.accountFormError(w, r, err, nil, "delete_form") {
		return
	}
	s.clearSessionCookie(w)
	http.Redirect(w, r, "/login?done=deleted", http.StatusSeeOther)
}
