package jointoken_test

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/parley/parley/internal/jointoken"
)

func decodeSegment(s string) ([]byte, error) { return base64.RawURLEncoding.DecodeString(s) }

var testKey = jointoken.Key{KID: "k1", Secret: []byte("0123456789abcdef0123456789abcdef")}

func signed(t testing.TB, c jointoken.Claims, alg jwt.SigningMethod) string {
	t.Helper()
	tok := jwt.NewWithClaims(alg, c)
	tok.Header["kid"] = testKey.KID
	var key any = testKey.Secret
	if alg == jwt.SigningMethodNone {
		key = jwt.UnsafeAllowNoneSignatureType
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func goodClaims(now time.Time) jointoken.Claims {
	return jointoken.Claims{
		RegisteredClaims: jwt.RegisteredClaims{Issuer: jointoken.Issuer, Audience: jwt.ClaimStrings{jointoken.Audience}, Subject: "id1", ID: "jti1",
			IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(time.Minute))},
		Channel: "c1", Name: "Ann", Grants: []string{"publish"},
	}
}

// TestParse: what Parse refuses (alg none, other algorithms, other
// issuers or audiences, no expiry, unknown kid, bad grants).
func TestParse(t *testing.T) {
	now := time.Now()
	keys := map[string][]byte{testKey.KID: testKey.Secret}
	good := signed(t, goodClaims(now), jwt.SigningMethodHS256)
	if c, err := jointoken.Parse(good, keys, now); err != nil || c.Channel != "c1" || c.ID != "jti1" {
		t.Fatalf("Parse(good) = %+v, %v", c, err)
	}
	mut := func(f func(c *jointoken.Claims)) jointoken.Claims { c := goodClaims(now); f(&c); return c }
	for name, tok := range map[string]string{
		"alg none":    signed(t, goodClaims(now), jwt.SigningMethodNone),
		"HS512":       signed(t, goodClaims(now), jwt.SigningMethodHS512),
		"issuer":      signed(t, mut(func(c *jointoken.Claims) { c.Issuer = "evil" }), jwt.SigningMethodHS256),
		"audience":    signed(t, mut(func(c *jointoken.Claims) { c.Audience = jwt.ClaimStrings{"other"} }), jwt.SigningMethodHS256),
		"no exp":      signed(t, mut(func(c *jointoken.Claims) { c.ExpiresAt = nil }), jwt.SigningMethodHS256),
		"expired":     signed(t, mut(func(c *jointoken.Claims) { c.ExpiresAt = jwt.NewNumericDate(now.Add(-time.Second)) }), jwt.SigningMethodHS256),
		"future iat":  signed(t, mut(func(c *jointoken.Claims) { c.IssuedAt = jwt.NewNumericDate(now.Add(time.Hour)) }), jwt.SigningMethodHS256),
		"no channel":  signed(t, mut(func(c *jointoken.Claims) { c.Channel = "" }), jwt.SigningMethodHS256),
		"bad grant":   signed(t, mut(func(c *jointoken.Claims) { c.Grants = []string{"root"} }), jwt.SigningMethodHS256),
		"empty":       "",
		"huge":        strings.Repeat("a", jointoken.MaxTokenBytes+1),
		"two parts":   "a.b",
		"unknown kid": strings.Replace(good, strings.Split(good, ".")[0], base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","kid":"k2","typ":"JWT"}`)), 1),
	} {
		if _, err := jointoken.Parse(tok, keys, now); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// FuzzParse: whatever arrives as a token, Parse answers without
// panicking, and accepts only tokens whose signature verifies.
func FuzzParse(f *testing.F) {
	now := time.Unix(1_800_000_000, 0)
	keys := map[string][]byte{testKey.KID: testKey.Secret}
	f.Add(signed(f, goodClaims(now), jwt.SigningMethodHS256))
	f.Add(signed(f, goodClaims(now), jwt.SigningMethodNone))
	f.Add("eyJhbGciOiJIUzI1NiJ9.e30.")
	f.Add("..")
	f.Fuzz(func(t *testing.T, tok string) {
		c, err := jointoken.Parse(tok, keys, now)
		if err != nil {
			return
		}
		// Accepted: re-signing its claims must give back the same token
		// (it was signed with our key, not forged).
		if c.Channel == "" || c.ID == "" {
			t.Fatalf("accepted a token without channel or jti: %q", tok)
		}
		if _, err := jointoken.Parse(tok, map[string][]byte{testKey.KID: []byte("another key, 32 bytes long......")}, now); err == nil {
			t.Fatalf("token verifies with any key: %q", tok)
		}
	})
}

// FuzzParseOrigin: an accepted origin is a bare scheme://host[:port]
// with nothing a CSP header could be broken with.
func FuzzParseOrigin(f *testing.F) {
	for _, s := range []string{"https://app.example.com", "http://localhost:3000", "https://a.b/", "https://*.x", "javascript:alert(1)", "https://a b", "https://a;b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		o, err := jointoken.ParseOrigin(s)
		if err != nil {
			return
		}
		if strings.ContainsAny(o, " ;,'\"*\r\n\t") || !(strings.HasPrefix(o, "https://") || strings.HasPrefix(o, "http://")) || strings.Count(o, "/") != 2 {
			t.Fatalf("ParseOrigin(%q) = %q", s, o)
		}
	})
}
