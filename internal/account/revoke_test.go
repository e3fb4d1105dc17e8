package account_test

import (
	"context"
	"sync"
	"testing"

	"github.com/parley/parley/internal/account"
	"github.com/parley/parley/internal/store"
	"github.com/parley/parley/internal/store/storetest"
)

// TestRevokedNamesTheCredential: LogOut and RevokeToken tell
// Config.Revoked the very credential AuthenticateSession and
// AuthenticateAccessToken named, so the connections they authenticated
// can be found; a logout of an unknown session tells nothing.
func TestRevokedNamesTheCredential(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		var mu sync.Mutex
		var got []account.Revocation
		s, _ := newService(t, db, account.Config{Revoked: func(rv account.Revocation) {
			mu.Lock()
			got = append(got, rv)
			mu.Unlock()
		}})
		ctx := context.Background()
		u := signUp(t, s, "ann")
		_, session, err := s.LogIn(ctx, "", "ann", goodPassword)
		if err != nil {
			t.Fatal(err)
		}
		_, other, err := s.LogIn(ctx, "", "ann", goodPassword)
		if err != nil {
			t.Fatal(err)
		}
		tok, secret, err := s.CreateToken(ctx, u, "cli")
		if err != nil {
			t.Fatal(err)
		}
		_, sessCred, err := s.AuthenticateSession(ctx, session)
		if err != nil {
			t.Fatal(err)
		}
		_, otherCred, _ := s.AuthenticateSession(ctx, other)
		_, tokCred, err := s.AuthenticateAccessToken(ctx, secret)
		if err != nil {
			t.Fatal(err)
		}
		if sessCred.UserID != u.ID || sessCred.Key == "" || sessCred == otherCred || sessCred.Key == tokCred.Key {
			t.Fatalf("credentials %+v %+v %+v: want distinct keys of %s", sessCred, otherCred, tokCred, u.ID)
		}

		if err := s.LogOut(ctx, session); err != nil {
			t.Fatal(err)
		}
		if err := s.LogOut(ctx, "no such session"); err != nil {
			t.Fatal(err)
		}
		if err := s.RevokeToken(ctx, u, tok.ID); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(got) != 2 || got[0].Credential != sessCred || got[1].Credential != tokCred {
			t.Fatalf("revocations %+v, want the session's %+v then the token's %+v", got, sessCred, tokCred)
		}
		if got[0].Why == "" || got[1].Why == "" {
			t.Errorf("revocations without a reason: %+v", got)
		}
	})
}
