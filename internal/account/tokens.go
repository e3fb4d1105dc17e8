package account

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/parley/parley/internal/store"
)

// TokenPrefix starts every personal access token, so a leaked one is easy
// to recognise (and to search for in logs and repositories).
const TokenPrefix = "parley_"

// MaxTokenNameLen bounds a token's name; MaxTokensPerUser the number of
// tokens one user may hold.
const (
	MaxTokenNameLen  = 60
	MaxTokensPerUser = 50
)

// CreateToken makes a personal access token for u and returns it with its
// secret, which is shown once and never stored. Bad names yield a
// *ValidationError for field "name".
func (s *Service) CreateToken(ctx context.Context, u store.User, name string) (store.Token, string, error) {
	name = strings.TrimSpace(name)
	switch {
	case name == "":
		return store.Token{}, "", invalid("name", `Token name is required. Say where it is used, such as "laptop" or "recording bot".`)
	case hasControl(name, ""):
		return store.Token{}, "", invalid("name", "Token name contains invisible or invalid characters. Remove them and try again.")
	case utf8.RuneCountInString(name) > MaxTokenNameLen:
		return store.Token{}, "", invalid("name", fmt.Sprintf("Token name is too long. Use at most %d characters.", MaxTokenNameLen))
	}
	have, err := s.db.TokensForUser(ctx, u.ID)
	if err != nil {
		return store.Token{}, "", fmt.Errorf("account: create token: %w", err)
	}
	if len(have) >= MaxTokensPerUser {
		return store.Token{}, "", invalid("name", fmt.Sprintf("You already have %d tokens. Revoke one you no longer use first.", len(have)))
	}
	secret := TokenPrefix + newSessionToken()
	t := store.Token{ID: newID(), UserID: u.ID, Name: name, TokenHash: hashToken(secret), CreatedAt: storedTime(s.now())}
	if err := s.db.CreateToken(ctx, t); err != nil {
		return store.Token{}, "", fmt.Errorf("account: create token: %w", err)
	}
	s.log.Info("access token created", "user_id", u.ID, "token_id", t.ID)
	return t, secret, nil
}

// Tokens lists u's tokens, newest first.
func (s *Service) Tokens(ctx context.Context, u store.User) ([]store.Token, error) {
	ts, err := s.db.TokensForUser(ctx, u.ID)
	if err != nil {
		return nil, fmt.Errorf("account: tokens: %w", err)
	}
	return ts, nil
}

// RevokeToken deletes one of u's tokens; another user's token, or an
// unknown one, yields an error wrapping ErrNotFound.
func (s *Service) RevokeToken(ctx context.Context, u store.User, id string) error {
	err := s.db.DeleteToken(ctx, u.ID, id)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("token %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("account: revoke token: %w", err)
	}
	s.log.Info("access token revoked", "user_id", u.ID, "token_id", id)
	s.revoked(Revocation{Credential: tokenCredential(u.ID, id), Why: "the access token was revoked"})
	return nil
}

// AuthenticateToken returns the user a personal access token belongs to.
// A missing, malformed, unknown or revoked token yields an error wrapping
// ErrUnauthenticated.
func (s *Service) AuthenticateToken(ctx context.Context, secret string) (store.User, error) {
	u, _, err := s.AuthenticateAccessToken(ctx, secret)
	return u, err
}

// AuthenticateAccessToken is AuthenticateToken that also names the
// token, for connections that must end when it is revoked
// (Config.Revoked).
func (s *Service) AuthenticateAccessToken(ctx context.Context, secret string) (store.User, Credential, error) {
	if !strings.HasPrefix(secret, TokenPrefix) || len(secret) > 200 {
		return store.User{}, Credential{}, fmt.Errorf("not a Parley access token: %w", ErrUnauthenticated)
	}
	t, err := s.db.TokenByHash(ctx, hashToken(secret))
	if errors.Is(err, store.ErrNotFound) {
		return store.User{}, Credential{}, fmt.Errorf("unknown or revoked access token: %w", ErrUnauthenticated)
	}
	if err != nil {
		return store.User{}, Credential{}, fmt.Errorf("account: authenticate token: %w", err)
	}
	u, err := s.db.UserByID(ctx, t.UserID)
	if errors.Is(err, store.ErrNotFound) {
		return store.User{}, Credential{}, fmt.Errorf("token user gone: %w", ErrUnauthenticated)
	}
	if err != nil {
		return store.User{}, Credential{}, fmt.Errorf("account: authenticate token: %w", err)
	}
	return u, tokenCredential(u.ID, t.ID), nil
}
