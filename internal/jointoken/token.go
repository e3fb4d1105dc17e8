// Package jointoken mints and checks join tokens: JWTs (HS256, signed
// with keys kept in the database under a "kid") that let an app's user
// into one channel's call with the grants the app chose, as one stable
// Parley identity per (issuer, external id). See docs/api.md "Join
// tokens" and docs/security.md "Join tokens".
//
// This file is the pure part (claims, grants, origins, parsing a token
// against a key ring); service.go adds the database.
package jointoken

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"
)

// Issuer and Audience are the "iss" and "aud" of every join token.
const (
	Issuer   = "parley"
	Audience = "parley-join"
)

// Limits on what a mint request may ask for.
const (
	DefaultTTL      = time.Hour
	MaxTTL          = 24 * time.Hour
	MinTTL          = 10 * time.Second
	MaxExternalID   = 128
	MaxEmbedOrigins = 10
	// MaxTokenBytes bounds a token anyone hands us, before parsing.
	MaxTokenBytes = 4096
)

// The grants a token can carry.
const (
	GrantPublish   = "publish"
	GrantSubscribe = "subscribe"
	GrantChat      = "chat"
	GrantModerate  = "moderate"
	GrantRecord    = "record"
)

// AllGrants lists the grants in their canonical order.
var AllGrants = []string{GrantPublish, GrantSubscribe, GrantChat, GrantModerate, GrantRecord}

// DefaultGrants is what a mint request without "grants" gets.
var DefaultGrants = []string{GrantPublish, GrantSubscribe, GrantChat}

// Errors of checking a token; each says, for the person holding it, why
// it was refused.
var (
	ErrMalformed    = errors.New("join token malformed: pass the whole token the app was given")
	ErrBadSignature = errors.New("join token invalid: its signature does not verify (altered, or signed with a revoked key)")
	ErrExpired      = errors.New("join token expired: ask the app for a new one")
	ErrWrongChannel = errors.New("join token is for another channel")
	ErrRevoked      = errors.New("join token revoked by the app that issued it")
)

// Claims are a join token's JWT claims: sub is the identity id, jti
// names the grant (the same across refreshes).
type Claims struct {
	jwt.RegisteredClaims
	// Channel is the channel id the token lets into.
	Channel string `json:"ch"`
	// Name is the display name shown to the others.
	Name string `json:"name"`
	// Grants are what the holder may do (AllGrants' names).
	Grants []string `json:"grants"`
}

// Key is one signing key.
type Key struct {
	KID    string
	Secret []byte
}

// Parse checks token's shape, signature (with the key of its kid among
// keys), issuer, audience and expiry at now, and returns its claims. It
// never panics, whatever token holds (FuzzParse).
func Parse(token string, keys map[string][]byte, now time.Time) (Claims, error) {
	var c Claims
	if token == "" || len(token) > MaxTokenBytes || strings.Count(token, ".") != 2 {
		return c, ErrMalformed
	}
	p := jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithIssuer(Issuer),
		jwt.WithAudience(Audience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithTimeFunc(func() time.Time { return now }),
	)
	_, err := p.ParseWithClaims(token, &c, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		k, ok := keys[kid]
		if !ok || kid == "" {
			return nil, fmt.Errorf("unknown kid %q", kid)
		}
		return k, nil
	})
	switch {
	case err == nil:
	case errors.Is(err, jwt.ErrTokenExpired):
		return c, ErrExpired
	case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrTokenUnverifiable):
		return c, ErrBadSignature
	default:
		return c, fmt.Errorf("%w (%v)", ErrMalformed, err)
	}
	if c.ID == "" || c.Subject == "" || c.Channel == "" {
		return c, fmt.Errorf("%w (claims jti, sub and ch are required)", ErrMalformed)
	}
	if _, err := ParseGrants(c.Grants); err != nil {
		return c, fmt.Errorf("%w (%v)", ErrMalformed, err)
	}
	return c, nil
}

// Sign makes a token of c with key.
func Sign(c Claims, key Key) (string, error) {
	t := jwt.NewWithClaims(jwt.SigningMethodHS256, c)
	t.Header["kid"] = key.KID
	return t.SignedString(key.Secret)
}

// decodeSecret reads a stored key.
func decodeSecret(s string) ([]byte, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) < 32 {
		return nil, errors.New("jointoken: stored key is not 32+ bytes of base64url")
	}
	return b, nil
}

// ParseGrants checks grant names (unknown or repeated ones are an error)
// and returns them in canonical order.
func ParseGrants(gs []string) ([]string, error) {
	seen := map[string]bool{}
	for _, g := range gs {
		if !slices.Contains(AllGrants, g) {
			return nil, fmt.Errorf("unknown grant %q: the grants are %s", truncate(g, 32), strings.Join(AllGrants, ", "))
		}
		if seen[g] {
			return nil, fmt.Errorf("grant %q given twice", g)
		}
		seen[g] = true
	}
	out := []string{}
	for _, g := range AllGrants {
		if seen[g] {
			out = append(out, g)
		}
	}
	return out, nil
}

// ValidExternalID checks the app's id of a user: 1 to MaxExternalID
// bytes of printable UTF-8.
func ValidExternalID(id string) error {
	if id == "" || len(id) > MaxExternalID || !utf8.ValidString(id) {
		return fmt.Errorf("external_user_id must be 1 to %d bytes of UTF-8", MaxExternalID)
	}
	for _, r := range id {
		if !unicode.IsPrint(r) {
			return errors.New("external_user_id must not contain control or invisible characters")
		}
	}
	return nil
}

// ParseOrigin checks one origin a token may be framed on and returns it
// normalized: https://host[:port] (http only for localhost and
// 127.0.0.1, for development), no path, query, fragment, user or
// wildcard.
func ParseOrigin(s string) (string, error) {
	bad := fmt.Errorf("embed origin %q is not an origin like https://app.example.com", truncate(s, 100))
	if s == "" || len(s) > 255 || strings.ContainsAny(s, "*; \t\r\n'\",") {
		return "", bad
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" || u.ForceQuery {
		return "", bad
	}
	host := strings.ToLower(u.Hostname())
	switch u.Scheme {
	case "https":
	case "http":
		if host != "localhost" && host != "127.0.0.1" {
			return "", fmt.Errorf("embed origin %q: use https (http only for localhost)", truncate(s, 100))
		}
	default:
		return "", bad
	}
	out := u.Scheme + "://" + strings.ToLower(u.Host)
	if !utf8.ValidString(out) {
		return "", bad
	}
	return out, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
