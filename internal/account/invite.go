package account

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/parley/parley/internal/store"
)

// InviteChannel returns the channel an invite code leads to, without
// joining it, so the invitee can be asked first. An unknown code yields an
// error wrapping ErrNotFound.
func (s *Service) InviteChannel(ctx context.Context, code string) (store.Channel, error) {
	code = strings.TrimSpace(code)
	if code == "" {
		return store.Channel{}, fmt.Errorf("empty invite code: %w", ErrNotFound)
	}
	c, err := s.db.ChannelByInvite(ctx, code)
	if errors.Is(err, store.ErrNotFound) {
		return store.Channel{}, fmt.Errorf("invite: %w", ErrNotFound)
	}
	if err != nil {
		return store.Channel{}, fmt.Errorf("account: invite: %w", err)
	}
	return c, nil
}
