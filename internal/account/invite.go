package account

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/parley/parley/internal/store"
)

// Why an invite link refuses a join. Each is returned wrapped; the text says
// what to do.
var (
	ErrInviteRevoked  = errors.New("this invite link was revoked: ask the channel owner for a new one")
	ErrInviteExpired  = errors.New("this invite link has expired: ask the channel owner for a new one")
	ErrInviteUsedUp   = errors.New("this invite link has been used as many times as its owner allowed: ask the channel owner for a new one")
	ErrRemovedByOwner = errors.New("the channel owner removed you from this channel, so invite links no longer let you in: ask the owner to add you back")
)

// Invite link defaults and limits.
const (
	// DefaultInviteExpiry is how long a new link works unless the owner
	// picks otherwise: long enough to reach people over a week, short
	// enough that a forgotten link dies on its own.
	DefaultInviteExpiry = 7 * 24 * time.Hour
	// MaxInviteExpiry bounds a chosen expiry ("never" is 0, not this).
	MaxInviteExpiry = 365 * 24 * time.Hour
	// MaxInviteUses bounds a chosen use limit.
	MaxInviteUses = 10000
)

// InviteOptions are what the owner chooses for a new invite link.
type InviteOptions struct {
	// ExpiresIn is how long the link works; 0 means it never expires.
	ExpiresIn time.Duration
	// MaxUses is how many people may join through it; 0 means any number.
	MaxUses int
}

// DefaultInviteOptions is a link that works for DefaultInviteExpiry, for
// any number of people.
var DefaultInviteOptions = InviteOptions{ExpiresIn: DefaultInviteExpiry}

// inviteExpiries are the choices of the channel page's expiry menu.
var inviteExpiries = map[string]time.Duration{
	"1h": time.Hour, "1d": 24 * time.Hour, "7d": 7 * 24 * time.Hour, "30d": 30 * 24 * time.Hour, "never": 0,
}

// ParseInviteOptions reads the channel page's form: expires is one of 1h,
// 1d, 7d, 30d or never ("" means the default, 7d); maxUses is a whole
// number of uses, "" or "0" for any number. Bad input yields
// *ValidationError{"expires" or "max_uses": ...}.
func ParseInviteOptions(expires, maxUses string) (InviteOptions, error) {
	opts := DefaultInviteOptions
	if e := strings.TrimSpace(expires); e != "" {
		d, ok := inviteExpiries[e]
		if !ok {
			return InviteOptions{}, invalid("expires", "Pick when the link expires: in an hour, a day, 7 days, 30 days, or never.")
		}
		opts.ExpiresIn = d
	}
	if m := strings.TrimSpace(maxUses); m != "" {
		n, err := strconv.Atoi(m)
		if err != nil || n < 0 || n > MaxInviteUses {
			return InviteOptions{}, invalid("max_uses", fmt.Sprintf("Use limit must be a whole number from 1 to %d, or empty for no limit.", MaxInviteUses))
		}
		opts.MaxUses = n
	}
	return opts, nil
}

// InviteUsable says whether a link lets people join at now: nil, or an
// error wrapping ErrInviteRevoked, ErrInviteExpired or ErrInviteUsedUp.
func InviteUsable(inv store.Invite, now time.Time) error {
	switch {
	case !inv.RevokedAt.IsZero():
		return fmt.Errorf("invite: %w", ErrInviteRevoked)
	case !inv.ExpiresAt.IsZero() && !now.Before(inv.ExpiresAt):
		return fmt.Errorf("invite: %w", ErrInviteExpired)
	case inv.MaxUses > 0 && inv.Uses >= inv.MaxUses:
		return fmt.Errorf("invite: %w", ErrInviteUsedUp)
	}
	return nil
}

// checkInvite is the whole rule for joining through a link.
func checkInvite(now time.Time) store.RedeemCheck {
	return func(inv store.Invite, removed, member bool) error {
		if member {
			return nil // nothing changes; no point refusing
		}
		if removed {
			return fmt.Errorf("invite: %w", ErrRemovedByOwner)
		}
		return InviteUsable(inv, now)
	}
}

// newInvite makes a link for channelID by creator under opts.
func (s *Service) newInvite(channelID, creator string, opts InviteOptions) (store.Invite, error) {
	if opts.ExpiresIn < 0 || opts.ExpiresIn > MaxInviteExpiry {
		return store.Invite{}, invalid("expires", "Pick when the link expires: in an hour, a day, 7 days, 30 days, or never.")
	}
	if opts.MaxUses < 0 || opts.MaxUses > MaxInviteUses {
		return store.Invite{}, invalid("max_uses", fmt.Sprintf("Use limit must be a whole number from 1 to %d, or empty for no limit.", MaxInviteUses))
	}
	now := storedTime(s.now())
	inv := store.Invite{ID: newID(), ChannelID: channelID, Code: newInviteCode(), CreatedBy: creator, CreatedAt: now, MaxUses: opts.MaxUses}
	if opts.ExpiresIn > 0 {
		inv.ExpiresAt = storedTime(now.Add(opts.ExpiresIn))
	}
	return inv, nil
}

// CreateInvite makes a new invite link for a channel the actor owns
// (ErrForbidden otherwise). Bad options yield *ValidationError.
func (s *Service) CreateInvite(ctx context.Context, actor store.User, channelID string, opts InviteOptions) (store.Invite, error) {
	if _, err := s.ownedChannel(ctx, actor, channelID); err != nil {
		return store.Invite{}, err
	}
	inv, err := s.newInvite(channelID, actor.ID, opts)
	if err != nil {
		return store.Invite{}, err
	}
	if err := s.db.CreateInvite(ctx, inv); err != nil {
		return store.Invite{}, fmt.Errorf("account: create invite: %w", err)
	}
	inv.CreatorName = actor.DisplayName
	s.log.Info("invite link created", "channel_id", channelID, "invite_id", inv.ID, "by", actor.ID,
		"expires_in", opts.ExpiresIn, "max_uses", opts.MaxUses)
	return inv, nil
}

// Invites lists the live (not revoked) invite links of a channel the actor
// owns, newest first; ErrForbidden for anyone else, since the links are
// secrets.
func (s *Service) Invites(ctx context.Context, actor store.User, channelID string) ([]store.Invite, error) {
	if _, err := s.ownedChannel(ctx, actor, channelID); err != nil {
		return nil, err
	}
	invs, err := s.db.Invites(ctx, channelID)
	if err != nil {
		return nil, fmt.Errorf("account: invites: %w", err)
	}
	return invs, nil
}

// RevokeInvite revokes one invite link of a channel the actor owns. An
// unknown or already revoked link yields an error wrapping ErrNotFound.
func (s *Service) RevokeInvite(ctx context.Context, actor store.User, channelID, inviteID string) error {
	if _, err := s.ownedChannel(ctx, actor, channelID); err != nil {
		return err
	}
	err := s.db.RevokeInvite(ctx, channelID, inviteID, s.now())
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("invite %q: %w", inviteID, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("account: revoke invite: %w", err)
	}
	s.log.Info("invite link revoked", "channel_id", channelID, "invite_id", inviteID, "by", actor.ID)
	return nil
}

// ResetInvites revokes every invite link of a channel the actor owns and
// makes one new link with DefaultInviteOptions, atomically, and returns it.
func (s *Service) ResetInvites(ctx context.Context, actor store.User, channelID string) (store.Invite, error) {
	if _, err := s.ownedChannel(ctx, actor, channelID); err != nil {
		return store.Invite{}, err
	}
	inv, err := s.newInvite(channelID, actor.ID, DefaultInviteOptions)
	if err != nil {
		return store.Invite{}, err
	}
	n, err := s.db.ResetInvites(ctx, channelID, inv)
	if errors.Is(err, store.ErrNotFound) {
		return store.Invite{}, fmt.Errorf("channel %q: %w", channelID, ErrNotFound)
	}
	if err != nil {
		return store.Invite{}, fmt.Errorf("account: reset invites: %w", err)
	}
	inv.CreatorName = actor.DisplayName
	s.log.Info("invite links reset", "channel_id", channelID, "revoked", n, "by", actor.ID)
	return inv, nil
}

// InviteChannel returns the channel an invite code leads to, without
// joining it, so the invitee can be asked first. It refuses, as
// JoinByInvite would, a link that is revoked, expired or used up
// (ErrInviteRevoked, ErrInviteExpired, ErrInviteUsedUp) and a user the
// owner removed (ErrRemovedByOwner); a member already in the channel gets
// the channel whatever the link's state. An unknown code yields an error
// wrapping ErrNotFound.
func (s *Service) InviteChannel(ctx context.Context, user store.User, code string) (store.Channel, error) {
	code = strings.TrimSpace(code)
	if code == "" {
		return store.Channel{}, fmt.Errorf("empty invite code: %w", ErrNotFound)
	}
	inv, err := s.db.InviteByCode(ctx, code)
	if errors.Is(err, store.ErrNotFound) {
		return store.Channel{}, fmt.Errorf("invite: %w", ErrNotFound)
	}
	if err != nil {
		return store.Channel{}, fmt.Errorf("account: invite: %w", err)
	}
	c, err := s.channel(ctx, inv.ChannelID)
	if err != nil {
		return store.Channel{}, err
	}
	member, err := s.db.IsMember(ctx, c.ID, user.ID)
	if err != nil {
		return store.Channel{}, fmt.Errorf("account: invite: %w", err)
	}
	removed, err := s.db.IsRemoved(ctx, c.ID, user.ID)
	if err != nil {
		return store.Channel{}, fmt.Errorf("account: invite: %w", err)
	}
	if err := checkInvite(s.now())(inv, removed, member); err != nil {
		return store.Channel{}, err
	}
	return c, nil
}

// JoinByInvite makes the user a member of the channel whose invite link
// has the given code, counting one use of the link, and returns the
// channel. Everything is checked again at this moment, whatever the invite
// page showed: a link revoked, expired or used up since (ErrInviteRevoked,
// ErrInviteExpired, ErrInviteUsedUp) or a user the owner removed meanwhile
// (ErrRemovedByOwner) is refused. Joining a channel one is already in is
// fine and uses nothing. An unknown code yields an error wrapping
// ErrNotFound.
func (s *Service) JoinByInvite(ctx context.Context, user store.User, code string) (store.Channel, error) {
	code = strings.TrimSpace(code)
	if code == "" {
		return store.Channel{}, fmt.Errorf("empty invite code: %w", ErrNotFound)
	}
	var evs []store.OutboxEvent
	if s.cfg.MemberEvent != nil {
		// A link's channel never changes: the event can be made before
		// the transaction that uses the link (and writes it if she joins).
		inv, err := s.db.InviteByCode(ctx, code)
		if errors.Is(err, store.ErrNotFound) {
			return store.Channel{}, fmt.Errorf("invite: %w", ErrNotFound)
		}
		if err != nil {
			return store.Channel{}, fmt.Errorf("account: join: %w", err)
		}
		if evs, err = s.memberEvent(inv.ChannelID, user, "invite"); err != nil {
			return store.Channel{}, err
		}
	}
	inv, joined, err := s.db.RedeemInvite(ctx, code, user.ID, checkInvite(s.now()), evs...)
	if errors.Is(err, store.ErrNotFound) {
		// Unknown code, or the channel was deleted a moment ago.
		return store.Channel{}, fmt.Errorf("invite: %w", ErrNotFound)
	}
	if err != nil {
		return store.Channel{}, fmt.Errorf("account: join: %w", err)
	}
	c, err := s.channel(ctx, inv.ChannelID)
	if err != nil {
		return store.Channel{}, err
	}
	if joined {
		s.log.Info("member joined by invite", "channel_id", c.ID, "user_id", user.ID, "invite_id", inv.ID)
	}
	return c, nil
}
