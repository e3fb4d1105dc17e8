package account

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"strings"
)

// randomBytes returns n bytes from crypto/rand. Since Go 1.24 rand.Read
// never returns an error (it crashes the program if the OS source fails), so
// there is nothing to handle.
func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// newID returns a random 96-bit identifier: 20 lower-case base32
// characters, URL-safe and easy to read aloud or type.
func newID() string {
	enc := base32.StdEncoding.WithPadding(base32.NoPadding)
	return strings.ToLower(enc.EncodeToString(randomBytes(12)))
}

// newInviteCode returns a random 128-bit, URL-safe invite code.
func newInviteCode() string {
	return base64.RawURLEncoding.EncodeToString(randomBytes(16))
}

// newSessionToken returns a random 256-bit, URL-safe session token.
func newSessionToken() string {
	return base64.RawURLEncoding.EncodeToString(randomBytes(32))
}

// hashToken returns what the store keeps instead of a session token. The
// token is already 256 random bits, so a fast unsalted hash is enough: it
// cannot be brute-forced, and it makes a leaked table useless.
func hashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}
