package jointoken_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parley/parley/internal/jointoken"
	"github.com/parley/parley/internal/store"
	"github.com/parley/parley/internal/store/storetest"
)

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

var seq int

func benchFixture(b *testing.B, db *store.DB) (owner, channel string) {
	ctx := context.Background()
	u := store.User{ID: "ubench", Username: "bench", DisplayName: "B", Email: "b@example.com", PasswordHash: "$argon2id$fake", CreatedAt: time.Now()}
	c := store.Channel{ID: "cbench", Name: "C", OwnerID: u.ID, CreatedAt: time.Now(), Mode: store.ModeAuto}
	if err := db.CreateUser(ctx, u); err != nil {
		b.Fatal(err)
	}
	if err := db.CreateChannel(ctx, c); err != nil {
		b.Fatal(err)
	}
	return u.ID, c.ID
}

func fixture(t *testing.T, db *store.DB) (owner store.User, a, b store.Channel) {
	t.Helper()
	ctx := context.Background()
	seq++
	owner = store.User{ID: "u" + strings.ToLower(t.Name()[len(t.Name())-6:]) + time.Now().Format("150405.000000"), Username: "owner" + time.Now().Format("150405000000"), DisplayName: "Owner",
		Email: "o@example.com", PasswordHash: "$argon2id$fake", CreatedAt: time.Now()}
	if err := db.CreateUser(ctx, owner); err != nil {
		t.Fatal(err)
	}
	for i, c := range []*store.Channel{&a, &b} {
		*c = store.Channel{ID: owner.ID + "-c" + string(rune('a'+i)), Name: "Chan", OwnerID: owner.ID, CreatedAt: time.Now(), Mode: store.ModeAuto}
		if err := db.CreateChannel(ctx, *c); err != nil {
			t.Fatal(err)
		}
	}
	return owner, a, b
}

// TestService covers minting, checking and the refusals (expired,
// tampered, wrong channel, revoked), identities, renewal and key
// rotation, on SQLite and PostgreSQL.
func TestService(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		clk := &clock{t: time.Now()}
		svc := jointoken.New(db, storetest.Logger(t), clk.now)
		owner, chA, chB := fixture(t, db)
		mint := func(ext string, ttl time.Duration, grants ...string) jointoken.Minted {
			t.Helper()
			m, err := svc.Mint(ctx, jointoken.MintRequest{ChannelID: chA.ID, IssuerID: owner.ID, MintedBy: "apikey:1", ExternalID: ext, Name: "Ann " + ext,
				Grants: grants, TTL: ttl, EmbedOrigins: []string{"https://App.example.com", "https://app.example.com/"}})
			if err != nil {
				t.Fatalf("Mint: %v", err)
			}
			return m
		}
		m := mint("user-1", time.Minute)
		if strings.Join(m.Grants, ",") != "publish,subscribe,chat" || strings.Join(m.EmbedOrigins, ",") != "https://app.example.com" {
			t.Errorf("defaults: grants %v origins %v", m.Grants, m.EmbedOrigins)
		}
		sess, err := svc.Verify(ctx, m.Token, chA.ID)
		if err != nil || sess.UserID != m.UserID || sess.Name != "Ann user-1" || sess.JTI != m.JTI || !sess.Has("chat") || sess.Has("record") {
			t.Fatalf("Verify = %+v, %v", sess, err)
		}
		// The same external id is the same identity and user, renamed.
		m2 := mint("user-1", time.Hour, "subscribe")
		if m2.UserID != m.UserID || m2.IdentityID != m.IdentityID || m2.JTI == m.JTI {
			t.Errorf("second mint for the same external id: %+v vs %+v", m2, m)
		}
		if other := mint("user-2", time.Hour); other.UserID == m.UserID {
			t.Error("another external id got the same user")
		}
		if u, err := db.UserByID(ctx, m.UserID); err != nil || u.DisplayName != "Ann user-1" {
			t.Errorf("identity's user = %+v, %v", u, err)
		}

		// Refusals, each with its reason.
		if _, err := svc.Verify(ctx, m.Token, chB.ID); !errors.Is(err, jointoken.ErrWrongChannel) {
			t.Errorf("wrong channel: %v", err)
		}
		parts := strings.Split(m.Token, ".")
		tampered := parts[0] + "." + parts[1] + "x." + parts[2]
		if _, err := svc.Verify(ctx, tampered, chA.ID); !errors.Is(err, jointoken.ErrBadSignature) && !errors.Is(err, jointoken.ErrMalformed) {
			t.Errorf("tampered payload: %v", err)
		}
		sig := []byte(parts[2])
		if sig[3] == 'A' { // another valid base64url character
			sig[3] = 'B'
		} else {
			sig[3] = 'A'
		}
		if _, err := svc.Verify(ctx, parts[0]+"."+parts[1]+"."+string(sig), chA.ID); !errors.Is(err, jointoken.ErrBadSignature) {
			t.Errorf("tampered signature: %v", err)
		}
		if _, err := svc.Verify(ctx, "garbage", chA.ID); !errors.Is(err, jointoken.ErrMalformed) {
			t.Errorf("garbage: %v", err)
		}

		// Renewal keeps the jti and moves the expiry; revocation ends
		// the token and its renewals.
		clk.add(30 * time.Second)
		fresh, exp, err := svc.Renew(ctx, m.JTI)
		if err != nil || !exp.After(m.ExpiresAt) {
			t.Fatalf("Renew = %v, %v", exp, err)
		}
		clk.add(31 * time.Second) // the first token has expired, the fresh one not
		if _, err := svc.Verify(ctx, m.Token, chA.ID); !errors.Is(err, jointoken.ErrExpired) {
			t.Errorf("expired: %v", err)
		}
		if s2, err := svc.Verify(ctx, fresh, chA.ID); err != nil || s2.JTI != m.JTI {
			t.Errorf("renewed token: %+v, %v", s2, err)
		}
		if err := svc.Revoke(ctx, "someone-else", m.JTI); !errors.Is(err, jointoken.ErrNotFound) {
			t.Errorf("revoke by another issuer: %v", err)
		}
		if err := svc.Revoke(ctx, owner.ID, m.JTI); err != nil {
			t.Fatal(err)
		}
		if _, err := svc.Verify(ctx, fresh, chA.ID); !errors.Is(err, jointoken.ErrRevoked) {
			t.Errorf("revoked: %v", err)
		}
		if _, _, err := svc.Renew(ctx, m.JTI); !errors.Is(err, jointoken.ErrRevoked) {
			t.Errorf("renew revoked: %v", err)
		}

		// Rotation: tokens of the old key stay valid until they expire;
		// new tokens use the new key; the old key goes once its last
		// token expired.
		old := mint("user-3", 20*time.Second)
		oldKeys, _ := svc.Keys(ctx)
		kid, err := svc.Rotate(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := svc.Verify(ctx, old.Token, chA.ID); err != nil {
			t.Errorf("old key's token after rotation: %v", err)
		}
		newer := mint("user-3", time.Hour)
		if !strings.Contains(header(t, newer.Token), kid) || strings.Contains(header(t, old.Token), kid) {
			t.Errorf("kids: new token %s, old %s, current %s", header(t, newer.Token), header(t, old.Token), kid)
		}
		clk.add(21 * time.Second)
		if _, err := svc.Verify(ctx, old.Token, chA.ID); !errors.Is(err, jointoken.ErrExpired) {
			t.Errorf("old token later: %v", err)
		}
		// m2 (an hour, old key) keeps the old key alive.
		if _, err := svc.Verify(ctx, m2.Token, chA.ID); err != nil {
			t.Errorf("hour-long token of the old key: %v", err)
		}
		clk.add(2 * time.Hour)
		keys, _ := svc.Keys(ctx)
		if len(keys) != 1 || keys[0].KID != kid || len(oldKeys) != 1 {
			t.Errorf("keys after every old token expired: %+v (before: %+v)", keys, oldKeys)
		}
		// Revoking a key refuses what it signed.
		tok := mint("user-4", time.Hour)
		if err := svc.RevokeKey(ctx, kid); err != nil {
			t.Fatal(err)
		}
		if _, err := svc.Verify(ctx, tok.Token, chA.ID); !errors.Is(err, jointoken.ErrBadSignature) {
			t.Errorf("token of a revoked key: %v", err)
		}
		if tok2 := mint("user-4", time.Hour); !strings.Contains(header(t, tok2.Token), "kid") {
			t.Error("no kid after revoking the current key")
		} else if _, err := svc.Verify(ctx, tok2.Token, chA.ID); err != nil {
			t.Errorf("token of the key made after a revocation: %v", err)
		}
		// Revoking the minting credential revokes its tokens.
		live := mint("user-5", time.Hour)
		jtis, err := svc.RevokeMintedBy(ctx, "apikey:1")
		if err != nil || !contains(jtis, live.JTI) {
			t.Errorf("RevokeMintedBy = %v, %v", jtis, err)
		}
		if _, err := svc.Verify(ctx, live.Token, chA.ID); !errors.Is(err, jointoken.ErrRevoked) {
			t.Errorf("token of a revoked credential: %v", err)
		}
	})
}

func contains(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}

// header is a token's decoded JOSE header.
func header(t *testing.T, tok string) string {
	t.Helper()
	h, err := decodeSegment(strings.Split(tok, ".")[0])
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

// TestMintValidation: each bad field is named.
func TestMintValidation(t *testing.T) {
	for _, tc := range []struct {
		r     jointoken.MintRequest
		field string
	}{
		{jointoken.MintRequest{ExternalID: ""}, "external_user_id"},
		{jointoken.MintRequest{ExternalID: strings.Repeat("x", 129)}, "external_user_id"},
		{jointoken.MintRequest{ExternalID: "a\x00b"}, "external_user_id"},
		{jointoken.MintRequest{ExternalID: "a", Grants: []string{"fly"}}, "grants"},
		{jointoken.MintRequest{ExternalID: "a", Grants: []string{"chat", "chat"}}, "grants"},
		{jointoken.MintRequest{ExternalID: "a", TTL: 5 * time.Second}, "ttl_seconds"},
		{jointoken.MintRequest{ExternalID: "a", TTL: 86401 * time.Second}, "ttl_seconds"},
		{jointoken.MintRequest{ExternalID: "a", EmbedOrigins: []string{"http://evil.example"}}, "embed_origins"},
		{jointoken.MintRequest{ExternalID: "a", EmbedOrigins: []string{"https://*.example.com"}}, "embed_origins"},
		{jointoken.MintRequest{ExternalID: "a", EmbedOrigins: []string{"https://a.example/path"}}, "embed_origins"},
		{jointoken.MintRequest{ExternalID: "a", EmbedOrigins: []string{"https://a.example 'unsafe-inline'"}}, "embed_origins"},
	} {
		err := tc.r.Validate()
		var ve *jointoken.ValidationError
		if !errors.As(err, &ve) || ve.Field != tc.field {
			t.Errorf("Validate(%+v) = %v; want a %s error", tc.r, err, tc.field)
		}
	}
	ok := jointoken.MintRequest{ExternalID: "a", Grants: []string{"record", "publish"}, EmbedOrigins: []string{"http://localhost:8080"}}
	if err := ok.Validate(); err != nil || strings.Join(ok.Grants, ",") != "publish,record" || ok.TTL != time.Hour || ok.EmbedOrigins[0] != "http://localhost:8080" {
		t.Errorf("Validate(ok) = %v, %+v", err, ok)
	}
}

// TestIssuerDeletedTakesIdentities: deleting the owner's account deletes
// the users made for its apps' identities (they exist only through it).
func TestIssuerDeletedTakesIdentities(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		svc := jointoken.New(db, storetest.Logger(t), nil)
		owner, ch, _ := fixture(t, db)
		m, err := svc.Mint(ctx, jointoken.MintRequest{ChannelID: ch.ID, IssuerID: owner.ID, MintedBy: "k", ExternalID: "x", Name: "X"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.DeleteAccount(ctx, owner.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := db.UserByID(ctx, m.UserID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("the identity's user after its issuer was deleted: %v", err)
		}
	})
}
