package account

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/parley/parley/internal/store"
)

// SignUpInput is what the sign-up form sends.
type SignUpInput struct {
	Username    string
	DisplayName string
	Email       string
	Password    string
	// IP is the client address sign-ups are counted against (see
	// Config.MaxSignUpsPerIP); empty skips the limit.
	IP string
	// LinkBase starts the email verification link mailed when a mail
	// server is configured, e.g. https://meet.example.org.
	LinkBase string
}

// SignUp creates an account. Bad input, including a username that is taken,
// yields a *ValidationError with a message per field (keys "username",
// "display_name", "email", "password"). The username is stored lower-case;
// the display name and email are trimmed.
//
// Too many sign-ups from in.IP yield a *RateLimitedError, and a queue for
// password hashing that stays full yields ErrBusy; both before any work.
func (s *Service) SignUp(ctx context.Context, in SignUpInput) (store.User, error) {
	username := normalizeUsername(in.Username)
	display := strings.TrimSpace(in.DisplayName)
	email := strings.TrimSpace(in.Email)

	fields := map[string]string{}
	for field, msg := range map[string]string{
		"username":     checkUsername(username),
		"display_name": checkDisplayName(display),
		"email":        checkEmail(email),
		"password":     checkPassword(in.Password, username),
	} {
		if msg != "" {
			fields[field] = msg
		}
	}
	if len(fields) > 0 {
		return store.User{}, &ValidationError{Fields: fields, Order: []string{"username", "display_name", "email", "password"}}
	}

	// Count the sign-up before hashing, in one step with the check, so a
	// burst from one address cannot slip past the limit. Only valid forms
	// count: they are the ones that cost a hash.
	now := s.now()
	signupKey := "signup:" + in.IP
	if in.IP != "" {
		if wait := s.signups.admit(now, rule{key: signupKey, limit: s.cfg.MaxSignUpsPerIP}); wait > 0 {
			s.log.Warn("sign-up rate limited", "ip", in.IP, "retry_after", wait)
			return store.User{}, &RateLimitedError{RetryAfter: wait, SignUp: true}
		}
	}
	var hash string
	if err := s.hasher.do(ctx, func() int {
		hash = hashPassword(in.Password, s.cfg.Argon2)
		return 1
	}); err != nil {
		s.signups.undo(now, signupKey)
		return store.User{}, err
	}
	u := store.User{
		ID:           newID(),
		Username:     username,
		DisplayName:  display,
		Email:        email,
		PasswordHash: hash,
		CreatedAt:    storedTime(now),
	}
	if err := s.db.CreateUser(ctx, u); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return store.User{}, invalid("username", "Username is taken. Pick another one.")
		}
		return store.User{}, fmt.Errorf("account: sign up: %w", err)
	}
	s.log.Info("user signed up", "user_id", u.ID, "username", u.Username)
	if err := s.requestVerification(u, u.Email, in.LinkBase); err != nil {
		// The account exists; the user can ask again from their account page.
		s.log.Warn("verification mail not sent", "user_id", u.ID, "err", err)
	}
	return u, nil
}

// LogIn checks a username and password and starts a session, returning the
// user and the session token to hand to the client.
//
// It returns ErrBadCredentials for an unknown user or a wrong password
// (taking as long either way). Before checking the password it returns
// *RateLimitedError if the attempt is over a limit (see Config): too many
// failures from ip, too many failures on this account from ip, or, for an
// account that had many failures from anywhere, less than the slow-down
// delay since the last attempt. It returns ErrBusy when no password-hashing
// slot came free in time. An empty ip skips the per-address limits.
//
// The attempt is counted before the password is hashed, in one step with
// the check, so that parallel guesses cannot all pass the check before
// any of them is counted; a success or a server-side failure takes the
// count back.
func (s *Service) LogIn(ctx context.Context, ip, username, password string) (store.User, string, error) {
	username = normalizeUsername(username)
	accountKey := "user:" + username
	rules := []rule{{key: accountKey, limit: s.cfg.MaxFailuresPerAccount, slow: true}}
	var ipKey, pairKey string
	if ip != "" {
		ipKey = "ip:" + ip
		pairKey = "pair:" + ip + "\x00" + username
		rules = append(rules,
			rule{key: ipKey, limit: s.cfg.MaxFailuresPerIP},
			rule{key: pairKey, limit: s.cfg.MaxFailuresPerAccount})
	}
	now := s.now()
	if wait := s.limiter.admit(now, rules...); wait > 0 {
		s.log.Warn("login rate limited", "username", username, "ip", ip, "retry_after", wait)
		return store.User{}, "", &RateLimitedError{RetryAfter: wait}
	}
	// From here the attempt counts as a failure unless taken back.
	keys := []string{accountKey, ipKey, pairKey}
	takeBack := func() { s.limiter.undo(now, keys...) }

	u, err := s.db.UserByUsername(ctx, username)
	known := err == nil
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		takeBack()
		return store.User{}, "", fmt.Errorf("account: log in: %w", err)
	}
	var ok bool
	var newHash string
	err = s.hasher.do(ctx, func() int {
		if !known {
			burnHash(password, s.cfg.Argon2)
			return 1
		}
		var verr error
		ok, verr = verifyPassword(password, u.PasswordHash)
		if verr != nil {
			// A stored hash we cannot read is our bug, not the user's;
			// still refuse the login.
			s.log.Error("unreadable password hash", "user_id", u.ID, "err", verr)
		}
		if ok && needsRehash(u.PasswordHash, s.cfg.Argon2) {
			// The password is at hand only now, so this is the moment to
			// move the hash to the current cost settings.
			newHash = hashPassword(password, s.cfg.Argon2)
			return 2
		}
		return 1
	})
	if err != nil {
		takeBack()
		return store.User{}, "", err
	}
	if !ok {
		s.log.Info("login failed", "username", username, "ip", ip)
		return store.User{}, "", ErrBadCredentials
	}
	// The owner got in: the account's and this address's failures on it
	// are forgiven, but the address's count over all accounts is not
	// (a success on one account must not wash a spray over others).
	s.limiter.clear(accountKey, pairKey)
	s.limiter.undo(now, ipKey)

	if newHash != "" {
		// Failing is harmless: the old hash still works.
		if err := s.db.UpdatePasswordHash(ctx, u.ID, newHash); err != nil {
			s.log.Warn("could not upgrade password hash", "user_id", u.ID, "err", err)
		} else {
			u.PasswordHash = newHash
		}
	}

	token, err := s.StartSession(ctx, u)
	if err != nil {
		return store.User{}, "", err
	}
	s.log.Info("user logged in", "user_id", u.ID, "ip", ip)
	return u, token, nil
}

// StartSession starts a session for a user whose identity is already
// established (for example right after SignUp) and returns its token.
func (s *Service) StartSession(ctx context.Context, u store.User) (string, error) {
	token := newSessionToken()
	now := s.now()
	err := s.db.CreateSession(ctx, store.Session{
		TokenHash: hashToken(token),
		UserID:    u.ID,
		CreatedAt: now,
		ExpiresAt: now.Add(s.cfg.SessionTTL),
	})
	if err != nil {
		return "", fmt.Errorf("account: start session: %w", err)
	}
	return token, nil
}

// Authenticate returns the user a session token belongs to. A missing,
// unknown or expired token yields an error wrapping ErrUnauthenticated.
func (s *Service) Authenticate(ctx context.Context, token string) (store.User, error) {
	u, _, err := s.AuthenticateSession(ctx, token)
	return u, err
}

// AuthenticateSession is Authenticate that also names the session, for
// connections that must end when it does (Config.Revoked).
func (s *Service) AuthenticateSession(ctx context.Context, token string) (store.User, Credential, error) {
	if token == "" {
		return store.User{}, Credential{}, fmt.Errorf("no session token: %w", ErrUnauthenticated)
	}
	hash := hashToken(token)
	sess, err := s.db.SessionByHash(ctx, hash)
	if errors.Is(err, store.ErrNotFound) {
		return store.User{}, Credential{}, fmt.Errorf("unknown session: %w", ErrUnauthenticated)
	}
	if err != nil {
		return store.User{}, Credential{}, fmt.Errorf("account: authenticate: %w", err)
	}
	if !s.now().Before(sess.ExpiresAt) {
		// Tidy up now rather than waiting for PruneSessions; a failure only
		// leaves a dead row behind.
		if err := s.db.DeleteSession(ctx, hash); err != nil {
			s.log.Warn("could not delete expired session", "err", err)
		}
		return store.User{}, Credential{}, fmt.Errorf("session expired: %w", ErrUnauthenticated)
	}
	u, err := s.db.UserByID(ctx, sess.UserID)
	if errors.Is(err, store.ErrNotFound) {
		return store.User{}, Credential{}, fmt.Errorf("session user gone: %w", ErrUnauthenticated)
	}
	if err != nil {
		return store.User{}, Credential{}, fmt.Errorf("account: authenticate: %w", err)
	}
	return u, sessionCredential(u.ID, hash), nil
}

// LogOut ends the session of token, and with it (Config.Revoked) every
// connection the session opened. Logging out of an unknown or already
// ended session is not an error.
func (s *Service) LogOut(ctx context.Context, token string) error {
	if token == "" {
		return nil
	}
	hash := hashToken(token)
	sess, err := s.db.SessionByHash(ctx, hash)
	if errors.Is(err, store.ErrNotFound) {
		return nil // nothing to end: no need to tell anyone
	}
	if err != nil {
		return fmt.Errorf("account: log out: %w", err)
	}
	if err := s.db.DeleteSession(ctx, hash); err != nil {
		return fmt.Errorf("account: log out: %w", err)
	}
	s.revoked(Revocation{Credential: sessionCredential(sess.UserID, hash), Why: "you logged out"})
	return nil
}

// PruneSessions deletes expired sessions and reports how many; call it now
// and then (say hourly) to keep the table small.
func (s *Service) PruneSessions(ctx context.Context) (int64, error) {
	n, err := s.db.DeleteExpiredSessions(ctx, s.now())
	if err != nil {
		return 0, fmt.Errorf("account: prune sessions: %w", err)
	}
	if n > 0 {
		s.log.Debug("pruned expired sessions", "count", n)
	}
	return n, nil
}
