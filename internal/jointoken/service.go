package jointoken

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/parley/parley/internal/store"
)

// keyCacheTTL is how long the service trusts its copy of the keys: a
// rotation or revocation made by another process (parley join-keys)
// takes effect within it.
const keyCacheTTL = 10 * time.Second

// MaxLivePerIssuer bounds the unexpired, unrevoked tokens of one issuer.
const MaxLivePerIssuer = 10000

// ErrTooMany: the issuer has MaxLivePerIssuer live tokens.
var ErrTooMany = fmt.Errorf("too many live join tokens (at most %d per account): revoke some or wait for them to expire", MaxLivePerIssuer)

// ErrNotFound: no such token of this issuer (Revoke), or no such key.
var ErrNotFound = errors.New("no such join token")

// Service mints, checks, refreshes and revokes join tokens.
type Service struct {
	db  *store.DB
	log *slog.Logger
	now func() time.Time

	mu       sync.Mutex
	keys     map[string][]byte
	current  Key
	loadedAt time.Time
}

// New returns a Service on db; now is the clock (nil: time.Now).
func New(db *store.DB, log *slog.Logger, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{db: db, log: log, now: now}
}

// MintRequest is what an app asks for (validated by Mint).
type MintRequest struct {
	ChannelID    string
	IssuerID     string // the channel owner whose credential is used
	MintedBy     string // that credential's key (access token or API key)
	ExternalID   string
	Name         string // already validated by the caller (account.GuestName)
	Grants       []string
	TTL          time.Duration
	EmbedOrigins []string
}

// Minted is a fresh token.
type Minted struct {
	Token        string
	JTI          string
	IdentityID   string
	UserID       string
	ExpiresAt    time.Time
	Grants       []string
	EmbedOrigins []string
}

// Session is what a valid token lets in.
type Session struct {
	JTI          string
	ChannelID    string
	IssuerID     string
	IdentityID   string
	UserID       string // the identity's Parley user
	ExternalID   string
	Name         string
	Grants       []string
	TTL          time.Duration
	ExpiresAt    time.Time // of the token presented
	EmbedOrigins []string
}

// NoPassword is the password hash of an identity's user: not a hash
// format, so no password matches it and it cannot log in.
const NoPassword = "!external-identity"

// Credential is the room.Auth credential of a token's jti: ending it
// ends every connection made with the token or its refreshes.
func Credential(jti string) string { return "jointoken:" + jti }

// Has reports whether the session holds grant g.
func (s Session) Has(g string) bool {
	for _, x := range s.Grants {
		if x == g {
			return true
		}
	}
	return false
}

// ValidationError is a mint request field that is wrong.
type ValidationError struct{ Field, Msg string }

func (e *ValidationError) Error() string { return e.Field + ": " + e.Msg }

// Validate checks and normalizes r's app-supplied fields.
func (r *MintRequest) Validate() error {
	if err := ValidExternalID(r.ExternalID); err != nil {
		return &ValidationError{"external_user_id", err.Error()}
	}
	if r.Grants == nil {
		r.Grants = DefaultGrants
	}
	g, err := ParseGrants(r.Grants)
	if err != nil {
		return &ValidationError{"grants", err.Error()}
	}
	r.Grants = g
	if r.TTL == 0 {
		r.TTL = DefaultTTL
	}
	if r.TTL < MinTTL || r.TTL > MaxTTL {
		return &ValidationError{"ttl_seconds", fmt.Sprintf("must be between %d and %d", int(MinTTL/time.Second), int(MaxTTL/time.Second))}
	}
	if len(r.EmbedOrigins) > MaxEmbedOrigins {
		return &ValidationError{"embed_origins", fmt.Sprintf("at most %d origins", MaxEmbedOrigins)}
	}
	var origins []string
	for _, o := range r.EmbedOrigins {
		n, err := ParseOrigin(o)
		if err != nil {
			return &ValidationError{"embed_origins", err.Error()}
		}
		if !containsString(origins, n) {
			origins = append(origins, n)
		}
	}
	r.EmbedOrigins = origins
	return nil
}

func containsString(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}

// Mint validates r, maps its identity and signs a token.
func (s *Service) Mint(ctx context.Context, r MintRequest) (Minted, error) {
	if err := r.Validate(); err != nil {
		return Minted{}, err
	}
	now := s.now()
	n, err := s.db.LiveJoinTokens(ctx, r.IssuerID, now)
	if err != nil {
		return Minted{}, err
	}
	if n >= MaxLivePerIssuer {
		return Minted{}, ErrTooMany
	}
	ident, err := s.db.ExternalIdentity(ctx, r.IssuerID, r.ExternalID, newID(10), store.User{ID: newID(12), Username: "ext-" + newID(10),
		DisplayName: r.Name, PasswordHash: NoPassword, CreatedAt: now})
	if err != nil {
		return Minted{}, err
	}
	jti := newID(15)
	exp := now.Add(r.TTL).Truncate(time.Second)
	if err := s.db.CreateJoinToken(ctx, store.JoinToken{JTI: jti, ChannelID: r.ChannelID, IdentityID: ident.ID, IssuerID: r.IssuerID, MintedBy: r.MintedBy,
		Grants: strings.Join(r.Grants, ","), TTLSeconds: int(r.TTL / time.Second), EmbedOrigins: strings.Join(r.EmbedOrigins, " "), CreatedAt: now, ExpiresAt: exp}); err != nil {
		return Minted{}, err
	}
	tok, err := s.sign(ctx, jti, r.ChannelID, ident.ID, r.Name, r.Grants, now, exp)
	if err != nil {
		return Minted{}, err
	}
	return Minted{Token: tok, JTI: jti, IdentityID: ident.ID, UserID: ident.UserID, ExpiresAt: exp, Grants: r.Grants, EmbedOrigins: r.EmbedOrigins}, nil
}

func (s *Service) sign(ctx context.Context, jti, channelID, identityID, name string, grants []string, now, exp time.Time) (string, error) {
	key, err := s.signingKey(ctx)
	if err != nil {
		return "", err
	}
	// Noted before the token exists: the key is kept for verification
	// at least until this token expires.
	if err := s.db.NoteJoinKeyUse(ctx, key.KID, exp); err != nil {
		return "", err
	}
	c := Claims{
		RegisteredClaims: jwt.RegisteredClaims{Issuer: Issuer, Audience: jwt.ClaimStrings{Audience}, Subject: identityID, ID: jti,
			IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(exp)},
		Channel: channelID, Name: name, Grants: grants,
	}
	return Sign(c, key)
}

// Verify checks token for channelID (any channel if ""): signature,
// expiry, channel, and that its jti is known and not revoked. For an
// expired token of ours, the Session returned with ErrExpired holds its
// EmbedOrigins only.
func (s *Service) Verify(ctx context.Context, token, channelID string) (Session, error) {
	now := s.now()
	keys, err := s.verifyKeys(ctx, false)
	if err != nil {
		return Session{}, err
	}
	c, err := Parse(token, keys, now)
	if errors.Is(err, ErrBadSignature) {
		// Perhaps a key another process just made: look once more.
		if keys, err = s.verifyKeys(ctx, true); err != nil {
			return Session{}, err
		}
		c, err = Parse(token, keys, now)
	}
	if errors.Is(err, ErrExpired) && c.ID != "" {
		// Signed by us (the signature is checked before the expiry), just
		// old: the session says only where it may be framed, so the
		// embed page can show the refusal in the app's frame.
		if t, _, lerr := s.db.JoinTokenWithIdentity(ctx, c.ID); lerr == nil && t.ChannelID == c.Channel {
			return Session{EmbedOrigins: splitNonEmpty(t.EmbedOrigins, " ")}, err
		}
		return Session{}, err
	}
	if err != nil {
		return Session{}, err
	}
	if channelID != "" && c.Channel != channelID {
		return Session{}, ErrWrongChannel
	}
	t, ident, err := s.db.JoinTokenWithIdentity(ctx, c.ID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return Session{}, ErrRevoked // signed by us, then deleted: long gone
	case err != nil:
		return Session{}, err
	case !t.RevokedAt.IsZero():
		return Session{}, ErrRevoked
	case t.ChannelID != c.Channel || t.IdentityID != c.Subject:
		return Session{}, ErrBadSignature
	}
	return session(t, ident, c.ExpiresAt.Time), nil
}

func session(t store.JoinToken, ident store.ExternalIdentity, exp time.Time) Session {
	s := Session{JTI: t.JTI, ChannelID: t.ChannelID, IssuerID: t.IssuerID, IdentityID: ident.ID, UserID: ident.UserID, ExternalID: ident.ExternalID, Name: ident.DisplayName,
		Grants: splitNonEmpty(t.Grants, ","), TTL: time.Duration(t.TTLSeconds) * time.Second, ExpiresAt: exp, EmbedOrigins: splitNonEmpty(t.EmbedOrigins, " ")}
	return s
}

func splitNonEmpty(s, sep string) []string {
	if s == "" {
		return []string{}
	}
	return strings.Split(s, sep)
}

// Renew signs a fresh token for jti (same grants and lifetime, from now),
// unless it was revoked (ErrRevoked).
func (s *Service) Renew(ctx context.Context, jti string) (string, time.Time, error) {
	t, ident, err := s.db.JoinTokenWithIdentity(ctx, jti)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return "", time.Time{}, ErrRevoked
	case err != nil:
		return "", time.Time{}, err
	case !t.RevokedAt.IsZero():
		return "", time.Time{}, ErrRevoked
	}
	now := s.now()
	exp := now.Add(time.Duration(t.TTLSeconds) * time.Second).Truncate(time.Second)
	tok, err := s.sign(ctx, jti, t.ChannelID, ident.ID, ident.DisplayName, splitNonEmpty(t.Grants, ","), now, exp)
	if err != nil {
		return "", time.Time{}, err
	}
	if err := s.db.ExtendJoinToken(ctx, jti, exp); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return "", time.Time{}, ErrRevoked
		}
		return "", time.Time{}, err
	}
	return tok, exp, nil
}

// Revoke revokes issuerID's token jti (ErrNotFound if it has none).
func (s *Service) Revoke(ctx context.Context, issuerID, jti string) error {
	err := s.db.RevokeJoinToken(ctx, issuerID, jti, s.now())
	if errors.Is(err, store.ErrNotFound) {
		return ErrNotFound
	}
	return err
}

// RevokeMintedBy revokes every live token minted with credential and
// returns their jtis (to end their connections).
func (s *Service) RevokeMintedBy(ctx context.Context, credential string) ([]string, error) {
	return s.db.RevokeJoinTokensMintedBy(ctx, credential, s.now())
}

// Rotate makes a new signing key and returns its kid. Tokens signed by
// the old one stay valid until they expire.
func (s *Service) Rotate(ctx context.Context) (string, error) {
	secret := make([]byte, 32)
	rand.Read(secret)
	k := store.JoinKey{KID: "k" + newID(8), Secret: base64.RawURLEncoding.EncodeToString(secret), CreatedAt: s.now()}
	if err := s.db.RotateJoinKey(ctx, k); err != nil {
		return "", err
	}
	s.mu.Lock()
	s.loadedAt = time.Time{}
	s.mu.Unlock()
	return k.KID, nil
}

// RevokeKey makes kid verify nothing: every token it signed is refused
// (their holders' next refresh or reconnect fails).
func (s *Service) RevokeKey(ctx context.Context, kid string) error {
	err := s.db.RevokeJoinKey(ctx, kid, s.now())
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("no such join key %q (or already revoked)", kid)
	}
	s.mu.Lock()
	s.loadedAt = time.Time{}
	s.mu.Unlock()
	return err
}

// Keys lists the keys still in use.
func (s *Service) Keys(ctx context.Context) ([]store.JoinKey, error) {
	return s.db.JoinKeys(ctx, s.now())
}

// verifyKeys returns the keys by kid, reloading them when older than
// keyCacheTTL (or, with fresh, older than a second).
func (s *Service) verifyKeys(ctx context.Context, fresh bool) (map[string][]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	age := s.now().Sub(s.loadedAt)
	if s.keys != nil && (age < time.Second || (!fresh && age < keyCacheTTL)) {
		return s.keys, nil
	}
	if err := s.loadLocked(ctx); err != nil {
		return nil, err
	}
	return s.keys, nil
}

func (s *Service) loadLocked(ctx context.Context) error {
	ks, err := s.db.JoinKeys(ctx, s.now())
	if err != nil {
		return err
	}
	keys := map[string][]byte{}
	var current Key
	for _, k := range ks {
		b, err := decodeSecret(k.Secret)
		if err != nil {
			s.log.Error("join key unreadable; ignored", "kid", k.KID, "err", err)
			continue
		}
		keys[k.KID] = b
		if k.RetiredAt.IsZero() && current.KID == "" {
			current = Key{KID: k.KID, Secret: b}
		}
	}
	s.keys, s.current, s.loadedAt = keys, current, s.now()
	return nil
}

// signingKey is the current key, made on first use.
func (s *Service) signingKey(ctx context.Context) (Key, error) {
	if _, err := s.verifyKeys(ctx, false); err != nil {
		return Key{}, err
	}
	s.mu.Lock()
	k := s.current
	s.mu.Unlock()
	if k.KID != "" {
		return k, nil
	}
	if _, err := s.Rotate(ctx); err != nil {
		return Key{}, err
	}
	if _, err := s.verifyKeys(ctx, true); err != nil {
		return Key{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.current.KID == "" {
		return Key{}, errors.New("jointoken: no signing key after making one")
	}
	return s.current, nil
}

var idEnc = base32.StdEncoding.WithPadding(base32.NoPadding)

func newID(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return strings.ToLower(idEnc.EncodeToString(b))
}
