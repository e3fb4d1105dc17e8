package account

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/parley/parley/internal/mail"
	"github.com/parley/parley/internal/store"
)

// Mailer sends one email; *mail.Sender is the real one.
type Mailer interface {
	Send(ctx context.Context, m mail.Message) error
}

// ErrLinkInvalid is returned (wrapped) for a reset or verification link
// that was never made, or was used already.
var ErrLinkInvalid = errors.New("this link is not valid or was already used: ask for a new one")

// ErrLinkExpired is returned (wrapped) for a link past its expiry.
var ErrLinkExpired = errors.New("this link has expired: ask for a new one")

// maxMailJobs bounds the mail jobs running at once; further requests are
// dropped (and logged) rather than queued without bound.
const maxMailJobs = 8

// maxAccountsPerEmail bounds the accounts one reset request by email
// reaches (addresses are not unique).
const maxAccountsPerEmail = 5

// mailJobTimeout bounds one background job: lookups, store and send.
const mailJobTimeout = time.Minute

// MailConfigured reports whether mail goes out (Config.Mailer), so pages
// can tell users to check their inbox or to ask the operator.
func (s *Service) MailConfigured() bool { return s.cfg.Mailer != nil }

// ResetRequest is what the forgotten-password form sends.
type ResetRequest struct {
	// Identifier is a username or an email address.
	Identifier string
	// IP is the client address requests are counted against; empty skips
	// that limit.
	IP string
	// LinkBase starts the link in the mail, e.g. https://meet.example.org.
	LinkBase string
}

// RequestPasswordReset mails a single-use reset link to the account
// Identifier names (by username, or every account, up to a few, with that
// email address). It answers the same whether or not such an account
// exists, and takes as long: the lookup, the link and the mail happen in
// the background (Flush waits for them). Only an empty or overlong
// identifier (*ValidationError) or a rate limit (*RateLimitedError, per
// address and per identifier, counted alike for known and unknown names)
// is reported; a third limit per account drops mails silently.
func (s *Service) RequestPasswordReset(ctx context.Context, in ResetRequest) error {
	ident := strings.TrimSpace(in.Identifier)
	switch {
	case ident == "":
		return invalid("identifier", "Enter your username or the email address of your account.")
	case len(ident) > MaxEmailLen || hasControl(ident, ""):
		return invalid("identifier", "That is not a username or an email address. Check what you typed.")
	}
	rules := []rule{{key: "reset:" + strings.ToLower(ident), limit: s.cfg.MaxMailsPerAccount}}
	if in.IP != "" {
		rules = append(rules, rule{key: "resetip:" + in.IP, limit: s.cfg.MaxMailsPerIP})
	}
	if wait := s.mails.admit(s.now(), rules...); wait > 0 {
		s.log.Warn("password reset rate limited", "ip", in.IP, "retry_after", wait)
		return &RateLimitedError{RetryAfter: wait, Mail: true}
	}
	s.inBackground("password reset", func(ctx context.Context) error {
		return s.sendResets(ctx, ident, in.LinkBase)
	})
	return nil
}

// inBackground runs job off the request, bounded by maxMailJobs.
func (s *Service) inBackground(what string, job func(ctx context.Context) error) {
	select {
	case s.slots <- struct{}{}:
	default:
		s.log.Warn("too many mails being sent at once: request dropped", "what", what)
		return
	}
	s.background.Add(1)
	go func() {
		defer s.background.Done()
		defer func() { <-s.slots }()
		ctx, cancel := context.WithTimeout(context.Background(), mailJobTimeout)
		defer cancel()
		if err := job(ctx); err != nil {
			s.log.Error("could not send mail", "what", what, "err", err)
		}
	}()
}

// Flush waits for the mails being sent in the background; call it before
// closing the database, and in tests before asserting no mail was sent.
func (s *Service) Flush() { s.background.Wait() }

func (s *Service) sendResets(ctx context.Context, ident, base string) error {
	var users []store.User
	if strings.Contains(ident, "@") {
		us, err := s.db.UsersByEmail(ctx, ident, maxAccountsPerEmail)
		if err != nil {
			return err
		}
		users = us
	} else {
		u, err := s.db.UserByUsername(ctx, normalizeUsername(ident))
		switch {
		case errors.Is(err, store.ErrNotFound):
		case err != nil:
			return err
		default:
			users = []store.User{u}
		}
	}
	if len(users) == 0 {
		s.log.Info("password reset asked for an unknown account")
		return nil
	}
	var errs []error
	for _, u := range users {
		if wait := s.mails.admit(s.now(), rule{key: "resetuser:" + u.ID, limit: s.cfg.MaxMailsPerAccount}); wait > 0 {
			s.log.Warn("password reset mail not sent: too many for this account", "user_id", u.ID, "retry_after", wait)
			continue
		}
		token := newSessionToken()
		now := s.now()
		err := s.db.CreatePasswordReset(ctx, store.PasswordReset{TokenHash: hashToken(token), UserID: u.ID, CreatedAt: now, ExpiresAt: now.Add(s.cfg.ResetTTL)})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		link := strings.TrimRight(base, "/") + "/reset/" + token
		if s.cfg.Mailer == nil {
			s.log.Warn("no mail server configured (--smtp-url): pass this password reset link to the user yourself",
				"user_id", u.ID, "username", u.Username, "link", link, "expires_in", s.cfg.ResetTTL)
			continue
		}
		err = s.cfg.Mailer.Send(ctx, mail.Message{
			To:      u.Email,
			Subject: "Reset your Parley password",
			Text: fmt.Sprintf("Hello %s,\n\nsomeone (hopefully you) asked to reset the password of your Parley account %q.\n"+
				"To choose a new password, open this link within %s:\n\n%s\n\n"+
				"The link works once. Setting a new password logs you out everywhere else.\n"+
				"If you did not ask for this, ignore this mail: your password stays as it is.\n",
				u.DisplayName, u.Username, HumanTTL(s.cfg.ResetTTL), link),
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("reset mail for %s: %w", u.ID, err))
			continue
		}
		s.log.Info("password reset mail sent", "user_id", u.ID)
	}
	return errors.Join(errs...)
}

// ResetTTL is how long a password reset link works, for pages to say.
func (s *Service) ResetTTL() time.Duration { return s.cfg.ResetTTL }

// HumanTTL says a link's lifetime in words ("1 hour", "24 hours").
func HumanTTL(d time.Duration) string {
	switch {
	case d%(24*time.Hour) == 0 && d >= 24*time.Hour:
		if d == 24*time.Hour {
			return "24 hours"
		}
		return fmt.Sprintf("%d days", d/(24*time.Hour))
	case d%time.Hour == 0:
		if d == time.Hour {
			return "1 hour"
		}
		return fmt.Sprintf("%d hours", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%d minutes", d/time.Minute)
	}
	return d.String()
}

// CheckResetLink returns the user a reset link is for, so the page can
// ask for the new password; it changes nothing. An unknown or used link
// yields an error wrapping ErrLinkInvalid, an expired one ErrLinkExpired.
func (s *Service) CheckResetLink(ctx context.Context, token string) (store.User, error) {
	if token == "" || len(token) > 100 {
		return store.User{}, fmt.Errorf("reset link: %w", ErrLinkInvalid)
	}
	r, err := s.db.PasswordResetByHash(ctx, hashToken(token))
	if errors.Is(err, store.ErrNotFound) {
		return store.User{}, fmt.Errorf("reset link: %w", ErrLinkInvalid)
	}
	if err != nil {
		return store.User{}, fmt.Errorf("account: reset link: %w", err)
	}
	if !s.now().Before(r.ExpiresAt) {
		return store.User{}, fmt.Errorf("reset link: %w", ErrLinkExpired)
	}
	u, err := s.db.UserByID(ctx, r.UserID)
	if errors.Is(err, store.ErrNotFound) {
		return store.User{}, fmt.Errorf("reset link: %w", ErrLinkInvalid)
	}
	if err != nil {
		return store.User{}, fmt.Errorf("account: reset link: %w", err)
	}
	return u, nil
}

// ResetPassword uses a reset link to set a new password. It ends every
// session and access token of the user, and through Config.Revoked every
// connection they opened: whoever knew the old password is out. A bad new
// password yields a *ValidationError for "password" (with the user, to
// show the form again) and leaves the link usable; a used, unknown or expired link the errors of CheckResetLink.
func (s *Service) ResetPassword(ctx context.Context, token, password string) (store.User, error) {
	u, err := s.CheckResetLink(ctx, token)
	if err != nil {
		return store.User{}, err
	}
	if msg := checkPassword(password, u.Username); msg != "" {
		return u, invalid("password", msg) // u: the form is shown again
	}
	var hash string
	if err := s.hasher.do(ctx, func() int {
		hash = hashPassword(password, s.cfg.Argon2)
		return 1
	}); err != nil {
		return store.User{}, err
	}
	err = s.db.ResetPassword(ctx, hashToken(token), u.ID, s.now(), hash)
	if errors.Is(err, store.ErrNotFound) {
		// Used (or expired) between the check and now: one request wins.
		return store.User{}, fmt.Errorf("reset link: %w", ErrLinkInvalid)
	}
	if err != nil {
		return store.User{}, fmt.Errorf("account: reset password: %w", err)
	}
	// The owner proved themselves by mail: the failed logins of a guesser
	// must not keep them out now.
	s.limiter.clear("user:" + u.Username)
	s.log.Info("password reset", "user_id", u.ID)
	s.revoked(Revocation{Credential: Credential{UserID: u.ID}, Why: "the account's password was reset"})
	return u, nil
}

// requestVerification sends a link that proves email is u's; using it
// makes email u's address (VerifyEmail). Without a mailer it does
// nothing. Mails to one account are limited like reset mails.
func (s *Service) requestVerification(u store.User, email, base string) error {
	if s.cfg.Mailer == nil {
		return nil
	}
	if wait := s.mails.admit(s.now(), rule{key: "verifyuser:" + u.ID, limit: s.cfg.MaxMailsPerAccount}); wait > 0 {
		return &RateLimitedError{RetryAfter: wait, Mail: true}
	}
	s.inBackground("email verification", func(ctx context.Context) error {
		token := newSessionToken()
		now := s.now()
		err := s.db.CreateEmailVerification(ctx, store.EmailVerification{TokenHash: hashToken(token), UserID: u.ID, Email: email, CreatedAt: now, ExpiresAt: now.Add(s.cfg.VerifyTTL)})
		if err != nil {
			return err
		}
		link := strings.TrimRight(base, "/") + "/verify/" + token
		err = s.cfg.Mailer.Send(ctx, mail.Message{
			To:      email,
			Subject: "Confirm your email address for Parley",
			Text: fmt.Sprintf("Hello %s,\n\nto confirm that %s is the email address of your Parley account %q, open this link within %s:\n\n%s\n\n"+
				"If you did not ask for this, ignore this mail.\n", u.DisplayName, email, u.Username, HumanTTL(s.cfg.VerifyTTL), link),
		})
		if err != nil {
			return fmt.Errorf("verification mail for %s: %w", u.ID, err)
		}
		s.log.Info("verification mail sent", "user_id", u.ID)
		return nil
	})
	return nil
}

// VerifyEmail uses a verification link: the address it was sent to
// becomes the user's, verified. It returns the user as now stored. An
// unknown or used link yields an error wrapping ErrLinkInvalid, an expired
// one ErrLinkExpired.
func (s *Service) VerifyEmail(ctx context.Context, token string) (store.User, error) {
	if token == "" || len(token) > 100 {
		return store.User{}, fmt.Errorf("verification link: %w", ErrLinkInvalid)
	}
	hash := hashToken(token)
	v, err := s.db.VerifyEmail(ctx, hash, s.now())
	if errors.Is(err, store.ErrNotFound) {
		if _, perr := s.db.EmailVerificationByHash(ctx, hash); perr == nil {
			return store.User{}, fmt.Errorf("verification link: %w", ErrLinkExpired)
		}
		return store.User{}, fmt.Errorf("verification link: %w", ErrLinkInvalid)
	}
	if err != nil {
		return store.User{}, fmt.Errorf("account: verify email: %w", err)
	}
	s.log.Info("email verified", "user_id", v.UserID)
	u, err := s.db.UserByID(ctx, v.UserID)
	if err != nil {
		return store.User{}, fmt.Errorf("account: verify email: %w", err)
	}
	return u, nil
}

// PendingEmail returns the address u asked to change to and has not yet
// verified, or "".
func (s *Service) PendingEmail(ctx context.Context, u store.User) (string, error) {
	v, err := s.db.PendingEmail(ctx, u.ID, s.now())
	if errors.Is(err, store.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("account: pending email: %w", err)
	}
	return v.Email, nil
}

// PruneLinks deletes expired reset and verification links; the janitor
// calls it with PruneSessions.
func (s *Service) PruneLinks(ctx context.Context) (int64, error) {
	n, err := s.db.DeleteExpiredLinks(ctx, s.now())
	if err != nil {
		return 0, fmt.Errorf("account: prune links: %w", err)
	}
	return n, nil
}
