package account

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/parley/parley/internal/store"
)

// ChangeDisplayName renames u, with the same rules as sign-up; a bad name
// yields a *ValidationError for "display_name". Calls in progress keep
// the old name until the user rejoins.
func (s *Service) ChangeDisplayName(ctx context.Context, u store.User, name string) (store.User, error) {
	name = strings.TrimSpace(name)
	if msg := checkDisplayName(name); msg != "" {
		return store.User{}, invalid("display_name", msg)
	}
	if err := s.db.UpdateDisplayName(ctx, u.ID, name); err != nil {
		return store.User{}, fmt.Errorf("account: change display name: %w", err)
	}
	u.DisplayName = name
	return u, nil
}

// ChangeEmail asks to make email u's address. With a mail server, a
// verification link goes to the new address and the old one stays until
// it is used (pending is true); without one, the address changes at once,
// unverified. Asking for the current, unverified address again re-sends
// its link. A bad address yields a *ValidationError for "email", too many
// mails a *RateLimitedError.
func (s *Service) ChangeEmail(ctx context.Context, u store.User, email, linkBase string) (pending bool, err error) {
	email = strings.TrimSpace(email)
	if msg := checkEmail(email); msg != "" {
		return false, invalid("email", msg)
	}
	same := strings.EqualFold(email, u.Email)
	if same && !u.EmailVerifiedAt.IsZero() {
		return false, nil // nothing to do
	}
	if s.cfg.Mailer == nil {
		if same {
			return false, nil
		}
		if err := s.db.SetEmail(ctx, u.ID, email, time.Time{}); err != nil {
			return false, fmt.Errorf("account: change email: %w", err)
		}
		s.log.Info("email changed without verification (no mail server)", "user_id", u.ID)
		return false, nil
	}
	if err := s.requestVerification(u, email, linkBase); err != nil {
		return false, err
	}
	return true, nil
}

// checkCurrentPassword checks a password u typed to confirm a change,
// counted like a failed login on the account so that a stolen session
// cannot be used to guess the password. A wrong password yields a
// *ValidationError for field.
func (s *Service) checkCurrentPassword(ctx context.Context, u store.User, field, password string) error {
	key := "user:" + u.Username
	now := s.now()
	if wait := s.limiter.admit(now, rule{key: key, limit: s.cfg.MaxFailuresPerAccount, slow: true}); wait > 0 {
		return &RateLimitedError{RetryAfter: wait}
	}
	var ok bool
	if err := s.hasher.do(ctx, func() int {
		ok, _ = verifyPassword(password, u.PasswordHash)
		return 1
	}); err != nil {
		s.limiter.undo(now, key)
		return err
	}
	if !ok {
		return invalid(field, "That is not your current password. Type it again.")
	}
	s.limiter.undo(now, key)
	return nil
}

// ChangePassword sets a new password for u after checking the current
// one. Every other session of u ends, with the connections it opened
// (Config.Revoked); keepToken, the session token making the change, stays
// logged in ("" keeps none). Access tokens stay: the user is signed in and
// sees them on the same page. Errors: *ValidationError for
// "current_password" or "new_password", *RateLimitedError, ErrBusy.
func (s *Service) ChangePassword(ctx context.Context, u store.User, keepToken, current, newPassword string) error {
	if err := s.checkCurrentPassword(ctx, u, "current_password", current); err != nil {
		return err
	}
	if msg := checkPassword(newPassword, u.Username); msg != "" {
		return invalid("new_password", msg)
	}
	var hash string
	if err := s.hasher.do(ctx, func() int {
		hash = hashPassword(newPassword, s.cfg.Argon2)
		return 1
	}); err != nil {
		return err
	}
	keep := ""
	if keepToken != "" {
		keep = hashToken(keepToken)
	}
	ended, err := s.db.ChangePassword(ctx, u.ID, hash, keep)
	if err != nil {
		return fmt.Errorf("account: change password: %w", err)
	}
	s.log.Info("password changed", "user_id", u.ID, "sessions_ended", len(ended))
	for _, h := range ended {
		s.revoked(Revocation{Credential: sessionCredential(u.ID, h), Why: "the account's password was changed"})
	}
	return nil
}

// ChannelFate says what deleting its owner's account does to a channel.
type ChannelFate struct {
	Channel store.Channel
	// Heir is the member who becomes owner; nil when the channel is
	// deleted for want of other members.
	Heir *store.User
}

// DeletionPlan lists the channels u owns and what deleting u's account
// would do to each, for the page to explain before asking to confirm.
func (s *Service) DeletionPlan(ctx context.Context, u store.User) ([]ChannelFate, error) {
	chs, err := s.db.ChannelsForUser(ctx, u.ID)
	if err != nil {
		return nil, fmt.Errorf("account: deletion plan: %w", err)
	}
	var out []ChannelFate
	for _, ch := range chs {
		if ch.OwnerID != u.ID {
			continue
		}
		f := ChannelFate{Channel: ch}
		heir, err := s.db.ChannelHeir(ctx, ch.ID, u.ID)
		switch {
		case errors.Is(err, store.ErrNotFound):
		case err != nil:
			return nil, fmt.Errorf("account: deletion plan: %w", err)
		default:
			f.Heir = &heir
		}
		out = append(out, f)
	}
	return out, nil
}

// DeleteAccount deletes u after checking their password: channels u owns
// go to their longest-standing other member, or are deleted when none is
// left; u's sessions, tokens, memberships and messages go with the
// account, and every connection u has open ends (Config.Revoked); each
// deleted channel is reported like any other (Config.ChannelDeleted), so
// its call and studio files follow. Songs and takes u made in channels
// handed over stay, credited to a deleted account. A wrong password yields
// a *ValidationError for "password".
func (s *Service) DeleteAccount(ctx context.Context, u store.User, password string) (store.AccountDeletion, error) {
	if err := s.checkCurrentPassword(ctx, u, "password", password); err != nil {
		return store.AccountDeletion{}, err
	}
	d, err := s.db.DeleteAccount(ctx, u.ID)
	if err != nil {
		return store.AccountDeletion{}, fmt.Errorf("account: delete account: %w", err)
	}
	s.membershipLost()
	s.log.Info("account deleted", "user_id", u.ID, "channels_handed_over", len(d.HandedOver), "channels_deleted", len(d.DeletedChannels))
	s.revoked(Revocation{Credential: Credential{UserID: u.ID}, Why: "the account was deleted"})
	for _, id := range d.DeletedChannels {
		if s.cfg.ChannelDeleted != nil {
			s.cfg.ChannelDeleted(id)
		}
	}
	return d, nil
}
