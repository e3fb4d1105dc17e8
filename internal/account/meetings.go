package account

import (
	"context"
	"errors"
	"fmt"

	"github.com/parley/parley/internal/signaling"
	"github.com/parley/parley/internal/store"
)

// Role returns user's role in channel c for the call: signaling.RoleOwner,
// signaling.RoleModerator, or signaling.RoleMember. The caller has checked
// membership.
func (s *Service) Role(ctx context.Context, user store.User, c store.Channel) (string, error) {
	if c.OwnerID == user.ID {
		return signaling.RoleOwner, nil
	}
	ok, err := s.db.IsModerator(ctx, c.ID, user.ID)
	if err != nil {
		return "", fmt.Errorf("account: role: %w", err)
	}
	if ok {
		return signaling.RoleModerator, nil
	}
	return signaling.RoleMember, nil
}

// Moderators returns the ids of channelID's moderators to a member
// (ErrNotFound / ErrForbidden otherwise).
func (s *Service) Moderators(ctx context.Context, user store.User, channelID string) (map[string]bool, error) {
	if _, err := s.memberChannel(ctx, user, channelID); err != nil {
		return nil, err
	}
	ms, err := s.db.Moderators(ctx, channelID)
	if err != nil {
		return nil, fmt.Errorf("account: %w", err)
	}
	return ms, nil
}

// SetModerator makes member userID a moderator of channelID's call, or a
// plain member again. Owner only (ErrForbidden); the owner moderates
// anyway (*ValidationError{"user": ...}); someone not in the channel is
// ErrNotFound. A call in progress applies the change at once
// (Config.RoleChanged).
func (s *Service) SetModerator(ctx context.Context, actor store.User, channelID, userID string, on bool) error {
	c, err := s.ownedChannel(ctx, actor, channelID)
	if err != nil {
		return err
	}
	if userID == c.OwnerID {
		return invalid("user", "You own this channel, so you can already moderate its calls.")
	}
	err = s.db.SetModerator(ctx, channelID, userID, on)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("user %q is not a member of channel %q: %w", userID, channelID, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("account: set moderator: %w", err)
	}
	role := signaling.RoleMember
	if on {
		role = signaling.RoleModerator
	}
	s.log.Info("moderator set", "channel_id", channelID, "user_id", userID, "moderator", on, "by", actor.ID)
	if s.cfg.RoleChanged != nil {
		s.cfg.RoleChanged(channelID, userID, role)
	}
	return nil
}
