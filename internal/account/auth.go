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
}

// SignUp creates an account. Bad input, including a username that is taken,
// yields a *ValidationError with a message per field (keys "username",
// "display_name", "email", "password"). The username is stored lower-case;
// the display name and email are trimmed.
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
		return store.User{}, &ValidationError{Fields: fields}
	}

	u := store.User{
		ID:           newID(),
		Username:     username,
		DisplayName:  display,
		Email:        email,
		PasswordHash: hashPassword(in.Password, s.cfg.Argon2),
		CreatedAt:    storedTime(s.now()),
	}
	if err := s.db.CreateUser(ctx, u); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return store.User{}, invalid("username", "Username is taken. Pick another one.")
		}
		return store.User{}, fmt.Errorf("account: sign up: %w", err)
	}
	s.log.Info("user signed up", "user_id", u.ID, "username", u.Username)
	return u, nil
}

// LogIn checks a username and password and starts a session, returning the
// user and the session token to hand to the client.
//
// It returns ErrBadCredentials for an unknown user or a wrong password
// (taking as long either way), and *RateLimitedError, without checking the
// password, once there have been too many recent failures for the username
// or from ip. An empty ip skips the per-address limit.
func (s *Service) LogIn(ctx context.Context, ip, username, password string) (store.User, string, error) {
	username = normalizeUsername(username)
	accountKey := "user:" + username
	ipKey := "ip:" + ip
	now := s.now()

	wait := s.limiter.retryAfter(accountKey, s.cfg.MaxFailuresPerAccount, now)
	if ip != "" {
		wait = max(wait, s.limiter.retryAfter(ipKey, s.cfg.MaxFailuresPerIP, now))
	}
	if wait > 0 {
		s.log.Warn("login rate limited", "username", username, "ip", ip, "retry_after", wait)
		return store.User{}, "", &RateLimitedError{RetryAfter: wait}
	}

	failed := func() (store.User, string, error) {
		keys := []string{accountKey}
		if ip != "" {
			keys = append(keys, ipKey)
		}
		s.limiter.fail(now, keys...)
		s.log.Info("login failed", "username", username, "ip", ip)
		return store.User{}, "", ErrBadCredentials
	}

	u, err := s.db.UserByUsername(ctx, username)
	if errors.Is(err, store.ErrNotFound) {
		burnHash(password, s.cfg.Argon2)
		return failed()
	}
	if err != nil {
		return store.User{}, "", fmt.Errorf("account: log in: %w", err)
	}
	ok, err := verifyPassword(password, u.PasswordHash)
	if err != nil {
		// A stored hash we cannot read is our bug, not the user's; still
		// refuse the login.
		s.log.Error("unreadable password hash", "user_id", u.ID, "err", err)
		return failed()
	}
	if !ok {
		return failed()
	}
	s.limiter.clear(accountKey)

	if needsRehash(u.PasswordHash, s.cfg.Argon2) {
		// The password is at hand only now, so this is the moment to move
		// the hash to the current cost settings. Failing is harmless: the
		// old hash still works.
		h := hashPassword(password, s.cfg.Argon2)
		if err := s.db.UpdatePasswordHash(ctx, u.ID, h); err != nil {
			s.log.Warn("could not upgrade password hash", "user_id", u.ID, "err", err)
		} else {
			u.PasswordHash = h
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
