package client_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/parley/parley/internal/client"
	"github.com/parley/parley/internal/servertest"
)

// TestRevokedTokenEndsRun: revoking the token a native client joined
// with ends its Run at once with an error that says so (close code 4001),
// rather than a retry loop against a credential that no longer works.
func TestRevokedTokenEndsRun(t *testing.T) {
	s := servertest.Start(t)
	owner := s.SignUp("ann", "Ann")
	ch := s.CreateChannel(owner, "Bots")
	ctx := context.Background()
	u, _, err := s.Accounts().LogIn(ctx, "", "ann", servertest.Password)
	if err != nil {
		t.Fatal(err)
	}
	tok, secret, err := s.Accounts().CreateToken(ctx, u, "bot")
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.Dial(ctx, client.Config{URL: s.URL + "/c/" + ch, Token: secret, LoopbackOnly: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- c.Run(rctx) }()
	if err := s.Accounts().RevokeToken(ctx, u, tok.ID); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "revoked") {
			t.Errorf("Run ended with %v, want an error saying the token was revoked", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run still going 5s after its token was revoked")
	}
}
