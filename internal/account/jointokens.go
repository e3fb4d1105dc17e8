package account

import (
	"context"
	"fmt"
	"strings"

	"github.com/parley/parley/internal/store"
)

// JoinTokenChannel loads the channel a join token lets into, for the web
// layer that checked the token: ErrNotFound if it is gone, ErrForbidden
// if issuerID (who minted the token) no longer owns it.
func (s *Service) JoinTokenChannel(ctx context.Context, channelID, issuerID string) (store.Channel, error) {
	c, err := s.channel(ctx, channelID)
	if err != nil {
		return store.Channel{}, err
	}
	if c.OwnerID != issuerID {
		return store.Channel{}, fmt.Errorf("join token's issuer no longer owns channel %q: %w", channelID, ErrForbidden)
	}
	return c, nil
}

// PostGrantedMessage posts text for a user whose join token grants chat
// in channelID (the caller checked it): PostMessage without the
// membership check.
func (s *Service) PostGrantedMessage(ctx context.Context, user store.User, channelID, text string) (store.Message, error) {
	text = strings.TrimSpace(text)
	if msg := checkMessage(text); msg != "" {
		return store.Message{}, invalid("text", msg)
	}
	m := store.Message{ID: newID(), ChannelID: channelID, UserID: user.ID, DisplayName: user.DisplayName, Text: text, CreatedAt: s.now()}
	if err := s.db.AddMessage(ctx, m, HistorySize); err != nil {
		return store.Message{}, fmt.Errorf("account: post message: %w", err)
	}
	m.CreatedAt = storedTime(m.CreatedAt)
	return m, nil
}
