package account

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/parley/parley/internal/store"
)

// ErrGuestsOff: the guest link is off, or was replaced, so it lets
// nobody in.
var ErrGuestsOff = errors.New("this guest link does not work (any more): ask whoever invited you for a new one")

// MaxGuestName is the longest name a guest may give, in characters.
const MaxGuestName = 64

// GuestLink returns channelID's guest link to its owner, or ErrNotFound
// wrapped while it is off.
func (s *Service) GuestLink(ctx context.Context, actor store.User, channelID string) (store.GuestLink, error) {
	if _, err := s.ownedChannel(ctx, actor, channelID); err != nil {
		return store.GuestLink{}, err
	}
	g, err := s.db.GuestLink(ctx, channelID)
	if errors.Is(err, store.ErrNotFound) {
		return store.GuestLink{}, fmt.Errorf("guest link of %q: %w", channelID, ErrNotFound)
	}
	if err != nil {
		return store.GuestLink{}, fmt.Errorf("account: guest link: %w", err)
	}
	return g, nil
}

// SetGuestLink turns channelID's guest link on with a new secret code
// (owner only); lobby makes guests wait until a member admits them. Any
// earlier link stops working, and its guests are disconnected.
func (s *Service) SetGuestLink(ctx context.Context, actor store.User, channelID string, lobby bool) (store.GuestLink, error) {
	if _, err := s.ownedChannel(ctx, actor, channelID); err != nil {
		return store.GuestLink{}, err
	}
	g := store.GuestLink{ChannelID: channelID, Code: newInviteCode(), Lobby: lobby, CreatedAt: storedTime(s.now())}
	if err := s.db.SetGuestLink(ctx, g); err != nil {
		return store.GuestLink{}, fmt.Errorf("account: set guest link: %w", err)
	}
	s.log.Info("guest link on", "channel_id", channelID, "lobby", lobby, "by", actor.ID)
	if s.cfg.GuestsOff != nil {
		s.cfg.GuestsOff(channelID) // the old link's guests
	}
	return g, nil
}

// GuestsOff turns channelID's guest link off (owner only); every guest's
// socket is closed.
func (s *Service) GuestsOff(ctx context.Context, actor store.User, channelID string) error {
	if _, err := s.ownedChannel(ctx, actor, channelID); err != nil {
		return err
	}
	if err := s.db.DeleteGuestLink(ctx, channelID); err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("account: guest link off: %w", err)
	}
	s.log.Info("guest link off", "channel_id", channelID, "by", actor.ID)
	if s.cfg.GuestsOff != nil {
		s.cfg.GuestsOff(channelID)
	}
	return nil
}

// GuestChannel returns the guest link with code and its channel, or
// ErrGuestsOff.
func (s *Service) GuestChannel(ctx context.Context, code string) (store.GuestLink, store.Channel, error) {
	if code == "" || len(code) > 64 {
		return store.GuestLink{}, store.Channel{}, ErrGuestsOff
	}
	g, err := s.db.GuestLinkByCode(ctx, code)
	if errors.Is(err, store.ErrNotFound) {
		return store.GuestLink{}, store.Channel{}, ErrGuestsOff
	}
	if err != nil {
		return store.GuestLink{}, store.Channel{}, fmt.Errorf("account: guest link: %w", err)
	}
	c, err := s.channel(ctx, g.ChannelID)
	if err != nil {
		return store.GuestLink{}, store.Channel{}, err
	}
	return g, c, nil
}

// GuestName checks and tidies the name a guest gives
// (*ValidationError{"name": ...}).
func GuestName(name string) (string, error) {
	name = strings.Join(strings.Fields(name), " ")
	if name == "" {
		return "", invalid("name", "Type the name others will see, like Sam Lee.")
	}
	if utf8.RuneCountInString(name) > MaxGuestName {
		return "", invalid("name", fmt.Sprintf("Use at most %d characters.", MaxGuestName))
	}
	if msg := checkDisplayName(name); msg != "" {
		return "", invalid("name", msg)
	}
	return name, nil
}

// ChannelHistory is History for a guest of the channel, whom the web
// layer checked against the channel's guest link.
func (s *Service) ChannelHistory(ctx context.Context, channelID string) ([]store.Message, error) {
	ms, err := s.db.Messages(ctx, channelID, HistorySize)
	if err != nil {
		return nil, fmt.Errorf("account: history: %w", err)
	}
	return ms, nil
}
