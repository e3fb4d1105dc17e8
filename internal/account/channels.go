package account

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/parley/parley/internal/store"
)

// CreateChannel creates a channel owned by owner, who becomes its first
// member, with one invite link of DefaultInviteOptions. A bad name yields
// *ValidationError{"name": ...}.
func (s *Service) CreateChannel(ctx context.Context, owner store.User, name string) (store.Channel, error) {
	name = strings.TrimSpace(name)
	if msg := checkChannelName(name); msg != "" {
		return store.Channel{}, invalid("name", msg)
	}
	c := store.Channel{
		ID:        newID(),
		Name:      name,
		OwnerID:   owner.ID,
		CreatedAt: storedTime(s.now()),
		Mode:      store.ModeAuto,
	}
	if err := s.db.CreateChannel(ctx, c); err != nil {
		return store.Channel{}, fmt.Errorf("account: create channel: %w", err)
	}
	inv, err := s.newInvite(c.ID, owner.ID, DefaultInviteOptions)
	if err != nil {
		return store.Channel{}, err
	}
	if err := s.db.CreateInvite(ctx, inv); err != nil {
		// The channel stands; its owner can still make a link by hand.
		return store.Channel{}, fmt.Errorf("account: create channel's first invite link: %w", err)
	}
	s.log.Info("channel created", "channel_id", c.ID, "owner_id", owner.ID)
	return c, nil
}

// channel loads a channel, translating the store's not-found.
func (s *Service) channel(ctx context.Context, channelID string) (store.Channel, error) {
	c, err := s.db.ChannelByID(ctx, channelID)
	if errors.Is(err, store.ErrNotFound) {
		return store.Channel{}, fmt.Errorf("channel %q: %w", channelID, ErrNotFound)
	}
	if err != nil {
		return store.Channel{}, fmt.Errorf("account: %w", err)
	}
	return c, nil
}

// memberChannel loads a channel the user is a member of: ErrNotFound if it
// does not exist, ErrForbidden if the user is not in it.
func (s *Service) memberChannel(ctx context.Context, user store.User, channelID string) (store.Channel, error) {
	c, err := s.channel(ctx, channelID)
	if err != nil {
		return store.Channel{}, err
	}
	ok, err := s.db.IsMember(ctx, channelID, user.ID)
	if err != nil {
		return store.Channel{}, fmt.Errorf("account: %w", err)
	}
	if !ok {
		return store.Channel{}, fmt.Errorf("user %q is not a member of channel %q: %w", user.ID, channelID, ErrForbidden)
	}
	return c, nil
}

// ownedChannel loads a channel the actor owns: ErrNotFound if it does not
// exist, ErrForbidden if someone else owns it.
func (s *Service) ownedChannel(ctx context.Context, actor store.User, channelID string) (store.Channel, error) {
	c, err := s.channel(ctx, channelID)
	if err != nil {
		return store.Channel{}, err
	}
	if c.OwnerID != actor.ID {
		return store.Channel{}, fmt.Errorf("user %q does not own channel %q: %w", actor.ID, channelID, ErrForbidden)
	}
	return c, nil
}

// Channel returns a channel the user is a member of. It returns an error
// wrapping ErrNotFound if there is no such channel and ErrForbidden if the
// user is not a member.
func (s *Service) Channel(ctx context.Context, user store.User, channelID string) (store.Channel, error) {
	return s.memberChannel(ctx, user, channelID)
}

// Channels returns the channels the user is a member of, newest first.
func (s *Service) Channels(ctx context.Context, user store.User) ([]store.Channel, error) {
	cs, err := s.db.ChannelsForUser(ctx, user.ID)
	if err != nil {
		return nil, fmt.Errorf("account: %w", err)
	}
	return cs, nil
}

// Members returns the members of a channel, ordered by display name, to a
// member of that channel (ErrNotFound / ErrForbidden otherwise).
func (s *Service) Members(ctx context.Context, user store.User, channelID string) ([]store.User, error) {
	if _, err := s.memberChannel(ctx, user, channelID); err != nil {
		return nil, err
	}
	us, err := s.db.Members(ctx, channelID)
	if err != nil {
		return nil, fmt.Errorf("account: %w", err)
	}
	return us, nil
}

// AddMember adds the user called username to the channel and returns them.
// Only the owner may add members (ErrForbidden otherwise). Adding someone
// the owner removed earlier lets invite links work for them again. An unknown
// username, or someone already in the channel, yields
// *ValidationError{"username": ...}.
func (s *Service) AddMember(ctx context.Context, actor store.User, channelID, username string) (store.User, error) {
	if _, err := s.ownedChannel(ctx, actor, channelID); err != nil {
		return store.User{}, err
	}
	typed := strings.TrimSpace(username)
	if typed == "" {
		return store.User{}, invalid("username", "Username is required. Enter the username of the person to add.")
	}
	u, err := s.db.UserByUsername(ctx, normalizeUsername(typed))
	if errors.Is(err, store.ErrNotFound) {
		return store.User{}, invalid("username", fmt.Sprintf("No user called %q. Check the spelling.", typed))
	}
	if err != nil {
		return store.User{}, fmt.Errorf("account: add member: %w", err)
	}
	already, err := s.db.IsMember(ctx, channelID, u.ID)
	if err != nil {
		return store.User{}, fmt.Errorf("account: add member: %w", err)
	}
	if already {
		return store.User{}, invalid("username", fmt.Sprintf("%q is already a member of this channel. Enter someone else.", u.Username))
	}
	if err := s.db.AddMember(ctx, channelID, u.ID); err != nil {
		return store.User{}, fmt.Errorf("account: add member: %w", err)
	}
	s.log.Info("member added", "channel_id", channelID, "user_id", u.ID, "by", actor.ID)
	return u, nil
}

// RemoveMember removes the user with id userID from the channel. Only the
// owner may remove members (ErrForbidden otherwise), and not themself
// (*ValidationError{"user": ...}). Removing a non-member yields an error
// wrapping ErrNotFound.
//
// The removal is remembered: no invite link, old or new, lets the user
// back in (ErrRemovedByOwner) until the owner adds them by username
// (AddMember). Everyone else's links keep working, so removing one person
// does not cut off people who were invited but have not joined yet.
func (s *Service) RemoveMember(ctx context.Context, actor store.User, channelID, userID string) error {
	c, err := s.ownedChannel(ctx, actor, channelID)
	if err != nil {
		return err
	}
	if userID == c.OwnerID {
		return invalid("user", "You own this channel, so you can't remove yourself. Delete the channel instead.")
	}
	err = s.db.ExpelMember(ctx, channelID, userID, s.now())
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("user %q is not a member of channel %q: %w", userID, channelID, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("account: remove member: %w", err)
	}
	s.membershipLost()
	s.log.Info("member removed", "channel_id", channelID, "user_id", userID, "by", actor.ID)
	if s.cfg.MemberRemoved != nil {
		s.cfg.MemberRemoved(channelID, userID)
	}
	return nil
}

// Leave takes the user out of a channel they are a member of. The owner
// cannot leave (*ValidationError{"user": ...}); they can delete the channel.
func (s *Service) Leave(ctx context.Context, user store.User, channelID string) error {
	c, err := s.memberChannel(ctx, user, channelID)
	if err != nil {
		return err
	}
	if user.ID == c.OwnerID {
		return invalid("user", "You own this channel, so you can't leave it. Delete the channel instead.")
	}
	if err := s.removeMember(ctx, channelID, user.ID); err != nil {
		return err
	}
	s.log.Info("member left", "channel_id", channelID, "user_id", user.ID)
	return nil
}

func (s *Service) removeMember(ctx context.Context, channelID, userID string) error {
	err := s.db.RemoveMember(ctx, channelID, userID)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("user %q is not a member of channel %q: %w", userID, channelID, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("account: remove member: %w", err)
	}
	s.membershipLost()
	return nil
}

// DeleteChannel deletes a channel with its members and history. Only the
// owner may do this (ErrForbidden otherwise).
func (s *Service) DeleteChannel(ctx context.Context, actor store.User, channelID string) error {
	if _, err := s.ownedChannel(ctx, actor, channelID); err != nil {
		return err
	}
	err := s.db.DeleteChannel(ctx, channelID)
	if errors.Is(err, store.ErrNotFound) {
		// Deleted by a concurrent request between the check and now.
		return fmt.Errorf("channel %q: %w", channelID, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("account: delete channel: %w", err)
	}
	s.membershipLost()
	s.log.Info("channel deleted", "channel_id", channelID, "by", actor.ID)
	if s.cfg.ChannelDeleted != nil {
		s.cfg.ChannelDeleted(channelID)
	}
	return nil
}

// PostMessage posts text, trimmed, to a channel the user is a member of.
// Text must be 1 to MaxMessageLen characters (*ValidationError{"text": ...}).
// Each channel keeps its newest HistorySize messages.
func (s *Service) PostMessage(ctx context.Context, user store.User, channelID, text string) (store.Message, error) {
	if _, err := s.memberChannel(ctx, user, channelID); err != nil {
		return store.Message{}, err
	}
	text = strings.TrimSpace(text)
	if msg := checkMessage(text); msg != "" {
		return store.Message{}, invalid("text", msg)
	}
	m := store.Message{
		ID:          newID(),
		ChannelID:   channelID,
		UserID:      user.ID,
		DisplayName: user.DisplayName,
		Username:    user.Username,
		Text:        text,
		CreatedAt:   s.now(),
	}
	err := s.db.AddMessage(ctx, m, HistorySize)
	if errors.Is(err, store.ErrNotFound) {
		return store.Message{}, fmt.Errorf("channel %q: %w", channelID, ErrNotFound)
	}
	if err != nil {
		return store.Message{}, fmt.Errorf("account: post message: %w", err)
	}
	m.CreatedAt = storedTime(m.CreatedAt)
	return m, nil
}

// History returns the newest HistorySize messages of a channel the user is
// a member of, oldest first.
func (s *Service) History(ctx context.Context, user store.User, channelID string) ([]store.Message, error) {
	if _, err := s.memberChannel(ctx, user, channelID); err != nil {
		return nil, err
	}
	ms, err := s.db.Messages(ctx, channelID, HistorySize)
	if err != nil {
		return nil, fmt.Errorf("account: history: %w", err)
	}
	return ms, nil
}

// SetChannelMode pins a channel's call to the SFU or to peer-to-peer, or
// lets it choose ("auto"). Owner only.
func (s *Service) SetChannelMode(ctx context.Context, actor store.User, channelID, mode string) (store.Channel, error) {
	c, err := s.ownedChannel(ctx, actor, channelID)
	if err != nil {
		return store.Channel{}, err
	}
	switch mode {
	case store.ModeAuto, store.ModeSFU, store.ModeP2P:
	default:
		return store.Channel{}, invalid("mode", "Pick how the call carries media: automatic, always through the server, or always peer-to-peer.")
	}
	if err := s.db.SetChannelMode(ctx, c.ID, mode); err != nil {
		return store.Channel{}, fmt.Errorf("account: set mode: %w", err)
	}
	c.Mode = mode
	if s.cfg.ModeChanged != nil {
		s.cfg.ModeChanged(c.ID, mode)
	}
	return c, nil
}

// ErrChanged is returned (wrapped) by UpdateChannel when the channel
// changed since the caller read it.
var ErrChanged = errors.New("it changed since you read it: read it again, then retry")

// ChannelUpdate is what UpdateChannel changes; nil fields stay as they are.
type ChannelUpdate struct {
	Name *string
	Mode *string
}

// UpdateChannel renames a channel and/or changes its mode, owner only,
// provided it still is as was (read by the caller): otherwise an error
// wrapping ErrChanged. Bad values yield *ValidationError{"name"/"mode"}.
func (s *Service) UpdateChannel(ctx context.Context, actor store.User, was store.Channel, up ChannelUpdate) (store.Channel, error) {
	if _, err := s.ownedChannel(ctx, actor, was.ID); err != nil {
		return store.Channel{}, err
	}
	c := was
	fields := map[string]string{}
	if up.Name != nil {
		c.Name = strings.TrimSpace(*up.Name)
		if msg := checkChannelName(c.Name); msg != "" {
			fields["name"] = msg
		}
	}
	if up.Mode != nil {
		c.Mode = *up.Mode
		switch c.Mode {
		case store.ModeAuto, store.ModeSFU, store.ModeP2P:
		default:
			fields["mode"] = `Mode must be "auto" (the server chooses), "sfu" (always through the server) or "p2p" (always peer-to-peer).`
		}
	}
	if len(fields) > 0 {
		return store.Channel{}, &ValidationError{Fields: fields}
	}
	err := s.db.UpdateChannel(ctx, was, c.Name, c.Mode)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return store.Channel{}, fmt.Errorf("channel %q: %w", was.ID, ErrNotFound)
	case errors.Is(err, store.ErrConflict):
		return store.Channel{}, fmt.Errorf("channel %q: %w", was.ID, ErrChanged)
	case err != nil:
		return store.Channel{}, fmt.Errorf("account: update channel: %w", err)
	}
	s.log.Info("channel updated", "channel_id", c.ID, "by", actor.ID)
	if c.Mode != was.Mode && s.cfg.ModeChanged != nil {
		s.cfg.ModeChanged(c.ID, c.Mode)
	}
	return c, nil
}
