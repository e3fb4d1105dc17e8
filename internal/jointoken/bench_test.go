package jointoken_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/parley/parley/internal/jointoken"
	"github.com/parley/parley/internal/store/storetest"
)

// BenchmarkHMACFloor is the floor of checking a token: one HMAC-SHA256
// over a token-sized input.
func BenchmarkHMACFloor(b *testing.B) {
	msg := []byte(signed(b, goodClaims(time.Now()), jwt.SigningMethodHS256))
	for b.Loop() {
		m := hmac.New(sha256.New, testKey.Secret)
		m.Write(msg)
		m.Sum(nil)
	}
}

// BenchmarkParse: decoding and verifying a token, without the database.
func BenchmarkParse(b *testing.B) {
	now := time.Now()
	tok := signed(b, goodClaims(now), jwt.SigningMethodHS256)
	keys := map[string][]byte{testKey.KID: testKey.Secret}
	for b.Loop() {
		if _, err := jointoken.Parse(tok, keys, now); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerify: what a page load or socket upgrade costs, with the
// jti lookup in SQLite.
func BenchmarkVerify(b *testing.B) {
	db := storetest.OpenSQLite(b)
	svc := jointoken.New(db, storetest.Logger(b), nil)
	ctx := context.Background()
	owner, ch := benchFixture(b, db)
	m, err := svc.Mint(ctx, jointoken.MintRequest{ChannelID: ch, IssuerID: owner, MintedBy: "k", ExternalID: "u", Name: "U"})
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := svc.Verify(ctx, m.Token, ch); err != nil {
			b.Fatal(err)
		}
	}
}
