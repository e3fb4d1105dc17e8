package account

import (
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"
)

const (
	saltLen = 16
	keyLen  = 32
)

// hashPassword hashes password with argon2id and a fresh random salt and
// returns it in PHC string format (salt and key in unpadded standard base64):
//
//	$argon2id$v=19$m=19456,t=2,p=1$<salt>$<key>
func hashPassword(password string, p Argon2Params) string {
	salt := randomBytes(saltLen)
	key := argon2.IDKey([]byte(password), salt, p.Time, p.MemoryKiB, p.Threads, keyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.MemoryKiB, p.Time, p.Threads, base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key))
}

// parsedHash is a decoded PHC argon2id string.
type parsedHash struct {
	params Argon2Params
	salt   []byte
	key    []byte
}

// parseHash decodes a PHC argon2id string, rejecting parameters no hash of
// ours would carry so a corrupt row cannot make verification eat the
// server's memory.
func parseHash(encoded string) (parsedHash, error) {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return parsedHash{}, errors.New("not an argon2id PHC string")
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return parsedHash{}, fmt.Errorf("unsupported argon2 version %q", parts[2])
	}
	var p Argon2Params
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.MemoryKiB, &p.Time, &p.Threads); err != nil {
		return parsedHash{}, fmt.Errorf("bad argon2 parameters %q: %w", parts[3], err)
	}
	if p.Time < 1 || p.Time > 100 || p.Threads < 1 || p.MemoryKiB < 8*uint32(p.Threads) || p.MemoryKiB > 4<<20 {
		return parsedHash{}, fmt.Errorf("argon2 parameters %q out of range", parts[3])
	}
	salt, err := base64.RawStdEncoding.DecodeString(parts[4])
	if err != nil || len(salt) < 8 {
		return parsedHash{}, errors.New("bad argon2 salt")
	}
	key, err := base64.RawStdEncoding.DecodeString(parts[5])
	if err != nil || len(key) < 16 || len(key) > 128 {
		return parsedHash{}, errors.New("bad argon2 key")
	}
	return parsedHash{params: p, salt: salt, key: key}, nil
}

// verifyPassword reports whether password matches the PHC string encoded,
// comparing in constant time.
func verifyPassword(password, encoded string) (bool, error) {
	h, err := parseHash(encoded)
	if err != nil {
		return false, err
	}
	key := argon2.IDKey([]byte(password), h.salt, h.params.Time, h.params.MemoryKiB, h.params.Threads, uint32(len(h.key)))
	return subtle.ConstantTimeCompare(key, h.key) == 1, nil
}

// needsRehash reports whether a stored hash was made with other parameters
// than the ones configured now, so a successful login can upgrade it.
func needsRehash(encoded string, p Argon2Params) bool {
	h, err := parseHash(encoded)
	return err != nil || h.params != p || len(h.key) != keyLen || len(h.salt) != saltLen
}

// burnHash spends the same effort as checking a password, so that logging
// in as a user who does not exist takes as long as a wrong password and
// does not reveal which usernames exist.
func burnHash(password string, p Argon2Params) {
	var salt [saltLen]byte
	argon2.IDKey([]byte(password), salt[:], p.Time, p.MemoryKiB, p.Threads, keyLen)
}
