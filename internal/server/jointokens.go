package server

import (
	"context"
	"errors"
	"github.com/parley/parley/internal/cluster"
	"strings"
	"time"

	"github.com/parley/parley/internal/account"
	"github.com/parley/parley/internal/jointoken"
	"github.com/parley/parley/internal/signaling"
	"github.com/parley/parley/internal/store"
	"github.com/parley/parley/internal/web"
)

// postGrantedChat posts for a join token's holder: the chat grant, not
// membership, decides.
func (s *Server) postGrantedChat(ctx context.Context, u signaling.User, channelID, text string) (signaling.ChatMessage, error) {
	if !u.Grants.Chat {
		return signaling.ChatMessage{}, &signaling.Error{Code: signaling.CodeForbidden, Ref: signaling.TypeChat, Message: "your join token does not allow chat"}
	}
	m, err := s.accounts.PostGrantedMessage(ctx, store.User{ID: u.UserID, DisplayName: u.Name}, channelID, text)
	var ve *account.ValidationError
	switch {
	case errors.As(err, &ve):
		return signaling.ChatMessage{}, &signaling.Error{Code: signaling.CodeInvalid, Ref: signaling.TypeChat, Message: strings.Join(ve.Messages(), " ")}
	case err != nil:
		return signaling.ChatMessage{}, err
	}
	return web.ChatMessage(m), nil
}

// revokeJoinTokensOf revokes the join tokens minted with a credential
// that was just revoked (an API key or access token), and ends their
// connections. It runs in the background: the revocation is already done
// and its caller must not wait on this.
func (s *Server) revokeJoinTokensOf(rv account.Revocation) {
	if rv.Key == "" || s.joinTokens == nil {
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		jtis, err := s.joinTokens.RevokeMintedBy(ctx, rv.Key)
		if err != nil {
			s.log.Error("revoke the join tokens of a revoked credential", "err", err)
			return
		}
		for _, jti := range jtis {
			s.change(cluster.Event{Kind: evRevoked, Key: jointoken.Credential(jti), Value: "the app's key was revoked"})
		}
	}()
}
