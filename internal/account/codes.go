package account

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"strings"

	"github.com/parley/parley/internal/store"
)

// meetingAlphabet leaves out i, l and o: read aloud or copied from a
// screen they pass for 1, 1 and 0.
const meetingAlphabet = "abcdefghjkmnpqrstuvwxyz"

// meetingGroups is the shape of a meeting code: abc-defg-hij.
var meetingGroups = [3]int{3, 4, 3}

// ErrNoSuchCode: nothing the user may open has this code. The same for an
// unknown code and for a channel the user is not a member of, so that
// guessing codes does not tell which exist.
var ErrNoSuchCode = errors.New("no call you can join has this code: check it with whoever gave it to you (codes look like abc-defg-hij, or six digits for a 1:1 call)")

// newMeetingCode returns a random meeting code (about 45 bits).
func newMeetingCode() string {
	var b strings.Builder
	for g, n := range meetingGroups {
		if g > 0 {
			b.WriteByte('-')
		}
		for range n {
			i, _ := rand.Int(rand.Reader, big.NewInt(int64(len(meetingAlphabet))))
			b.WriteByte(meetingAlphabet[i.Int64()])
		}
	}
	return b.String()
}

// ParseMeetingCode reads a meeting code as a person types it: any case,
// with or without the dashes, with spaces around or between groups. It
// returns the code in its canonical form (abc-defg-hij), or false.
func ParseMeetingCode(s string) (string, bool) {
	var letters []byte
	for _, r := range strings.ToLower(s) {
		switch {
		case r == '-' || r == ' ' || r == '\t':
		case r < 128 && strings.ContainsRune(meetingAlphabet, r):
			letters = append(letters, byte(r))
		default:
			return "", false
		}
		if len(letters) > 10 {
			return "", false
		}
	}
	if len(letters) != 10 {
		return "", false
	}
	return string(letters[:3]) + "-" + string(letters[3:7]) + "-" + string(letters[7:]), true
}

// MeetingCode returns the meeting code of a channel the user is a member
// of, making one the first time it is asked for.
func (s *Service) MeetingCode(ctx context.Context, user store.User, channelID string) (string, error) {
	if _, err := s.memberChannel(ctx, user, channelID); err != nil {
		return "", err
	}
	code, err := s.db.MeetingCode(ctx, channelID)
	if err == nil {
		return code, nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return "", fmt.Errorf("account: meeting code: %w", err)
	}
	return s.setMeetingCode(ctx, channelID)
}

// RotateMeetingCode gives the channel a new meeting code; the old one
// stops working. Owner only (ErrForbidden).
func (s *Service) RotateMeetingCode(ctx context.Context, actor store.User, channelID string) (string, error) {
	if _, err := s.ownedChannel(ctx, actor, channelID); err != nil {
		return "", err
	}
	code, err := s.setMeetingCode(ctx, channelID)
	if err == nil {
		s.log.Info("meeting code rotated", "channel_id", channelID, "by", actor.ID)
	}
	return code, err
}

func (s *Service) setMeetingCode(ctx context.Context, channelID string) (string, error) {
	for range 5 { // a clash is one in trillions: retry, do not loop forever
		code := newMeetingCode()
		err := s.db.SetMeetingCode(ctx, channelID, code, s.now())
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		if errors.Is(err, store.ErrNotFound) {
			return "", fmt.Errorf("channel %q: %w", channelID, ErrNotFound)
		}
		if err != nil {
			return "", fmt.Errorf("account: set meeting code: %w", err)
		}
		return code, nil
	}
	return "", errors.New("account: no free meeting code after 5 tries")
}

// ChannelByMeetingCode returns the channel whose meeting code is code
// (as typed: ParseMeetingCode), if the user is a member; otherwise
// ErrNoSuchCode, whether the code is unknown or belongs to a channel the
// user is not in.
func (s *Service) ChannelByMeetingCode(ctx context.Context, user store.User, code string) (store.Channel, error) {
	canon, ok := ParseMeetingCode(code)
	if !ok {
		return store.Channel{}, ErrNoSuchCode
	}
	c, err := s.db.ChannelByMeetingCode(ctx, canon)
	if errors.Is(err, store.ErrNotFound) {
		return store.Channel{}, ErrNoSuchCode
	}
	if err != nil {
		return store.Channel{}, fmt.Errorf("account: meeting code: %w", err)
	}
	member, err := s.db.IsMember(ctx, c.ID, user.ID)
	if err != nil {
		return store.Channel{}, fmt.Errorf("account: %w", err)
	}
	if !member {
		return store.Channel{}, ErrNoSuchCode
	}
	return c, nil
}
