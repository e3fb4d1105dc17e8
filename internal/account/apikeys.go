package account

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/parley/parley/internal/store"
)

// APIKeyPrefix starts every API key. A key is "pk_<id>.<secret>": the id
// is public (lists, logs), the secret is shown once and only its SHA-256
// is stored.
const APIKeyPrefix = "pk_"

// MaxAPIKeysPerUser bounds the keys one user may hold.
const MaxAPIKeysPerUser = 20

// CreateAPIKey makes an API key for u and returns it with the whole key
// (prefix, id and secret), which is shown once. Bad names yield a
// *ValidationError for field "name".
func (s *Service) CreateAPIKey(ctx context.Context, u store.User, name string) (store.APIKey, string, error) {
	name = strings.TrimSpace(name)
	switch {
	case name == "":
		return store.APIKey{}, "", invalid("name", `API key name is required. Say what uses it, such as "billing sync".`)
	case hasControl(name, ""):
		return store.APIKey{}, "", invalid("name", "API key name contains invisible or invalid characters. Remove them and try again.")
	case utf8.RuneCountInString(name) > MaxTokenNameLen:
		return store.APIKey{}, "", invalid("name", fmt.Sprintf("API key name is too long. Use at most %d characters.", MaxTokenNameLen))
	}
	have, err := s.db.APIKeysForUser(ctx, u.ID)
	if err != nil {
		return store.APIKey{}, "", fmt.Errorf("account: create api key: %w", err)
	}
	if len(have) >= MaxAPIKeysPerUser {
		return store.APIKey{}, "", invalid("name", fmt.Sprintf("You already have %d API keys. Revoke one you no longer use first.", len(have)))
	}
	secret := newSessionToken()
	k := store.APIKey{ID: newID(), UserID: u.ID, Name: name, SecretHash: hashToken(secret), CreatedAt: storedTime(s.now())}
	if err := s.db.CreateAPIKey(ctx, k); err != nil {
		return store.APIKey{}, "", fmt.Errorf("account: create api key: %w", err)
	}
	s.log.Info("api key created", "user_id", u.ID, "key_id", k.ID)
	return k, APIKeyPrefix + k.ID + "." + secret, nil
}

// APIKeys lists u's keys, newest first.
func (s *Service) APIKeys(ctx context.Context, u store.User) ([]store.APIKey, error) {
	ks, err := s.db.APIKeysForUser(ctx, u.ID)
	if err != nil {
		return nil, fmt.Errorf("account: api keys: %w", err)
	}
	return ks, nil
}

// RevokeAPIKey deletes one of u's keys and ends the connections it opened;
// another user's key, or an unknown one, yields an error wrapping
// ErrNotFound.
func (s *Service) RevokeAPIKey(ctx context.Context, u store.User, id string) error {
	err := s.db.DeleteAPIKey(ctx, u.ID, id)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("api key %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("account: revoke api key: %w", err)
	}
	s.log.Info("api key revoked", "user_id", u.ID, "key_id", id)
	s.revoked(Revocation{Credential: apiKeyCredential(u.ID, id), Why: "the API key was revoked"})
	return nil
}

func apiKeyCredential(userID, keyID string) Credential {
	return Credential{UserID: userID, Key: "apikey:" + keyID}
}

// ParseAPIKey splits "pk_<id>.<secret>" into its id and secret.
func ParseAPIKey(key string) (id, secret string, ok bool) {
	rest, ok := strings.CutPrefix(key, APIKeyPrefix)
	if !ok || len(key) > 200 {
		return "", "", false
	}
	id, secret, ok = strings.Cut(rest, ".")
	if !ok || id == "" || secret == "" || len(id) > 64 {
		return "", "", false
	}
	return id, secret, true
}

// AuthenticateAPIKey returns the user an API key belongs to. A malformed,
// unknown or revoked key, or a wrong secret, yields an error wrapping
// ErrUnauthenticated.
func (s *Service) AuthenticateAPIKey(ctx context.Context, key string) (store.User, Credential, error) {
	id, secret, ok := ParseAPIKey(key)
	if !ok {
		return store.User{}, Credential{}, fmt.Errorf("not a Parley API key: %w", ErrUnauthenticated)
	}
	k, err := s.db.APIKeyByID(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return store.User{}, Credential{}, fmt.Errorf("unknown or revoked api key: %w", ErrUnauthenticated)
	}
	if err != nil {
		return store.User{}, Credential{}, fmt.Errorf("account: authenticate api key: %w", err)
	}
	if subtle.ConstantTimeCompare([]byte(hashToken(secret)), []byte(k.SecretHash)) != 1 {
		return store.User{}, Credential{}, fmt.Errorf("wrong api key secret: %w", ErrUnauthenticated)
	}
	u, err := s.db.UserByID(ctx, k.UserID)
	if errors.Is(err, store.ErrNotFound) {
		return store.User{}, Credential{}, fmt.Errorf("api key user gone: %w", ErrUnauthenticated)
	}
	if err != nil {
		return store.User{}, Credential{}, fmt.Errorf("account: authenticate api key: %w", err)
	}
	return u, apiKeyCredential(u.ID, k.ID), nil
}

// AuthenticateBearer authenticates an Authorization: Bearer credential,
// an API key or a personal access token.
func (s *Service) AuthenticateBearer(ctx context.Context, bearer string) (store.User, Credential, error) {
	if strings.HasPrefix(bearer, APIKeyPrefix) {
		return s.AuthenticateAPIKey(ctx, bearer)
	}
	return s.AuthenticateAccessToken(ctx, bearer)
}
