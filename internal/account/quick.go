package account

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/parley/parley/internal/store"
)

// QuickCallCapacity is how many people a quick 1:1 call takes at once.
const QuickCallCapacity = 2

// QuickCallIdle is how long a quick call may stay empty before it is
// deleted (PruneQuickCalls).
const QuickCallIdle = 24 * time.Hour

// IsQuickCode reports whether s has the shape of a quick call's code: six
// digits.
func IsQuickCode(s string) bool {
	if len(s) != 6 {
		return false
	}
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// CreateQuickCall makes a 1:1 call with a fresh 6-digit code, owned by
// user. It counts as empty from now until someone opens it.
func (s *Service) CreateQuickCall(ctx context.Context, user store.User) (store.QuickCall, error) {
	now := storedTime(s.now())
	for range 10 { // a million codes: clashes happen, but not ten in a row
		n, _ := rand.Int(rand.Reader, big.NewInt(1_000_000))
		q := store.QuickCall{ID: newID(), Code: fmt.Sprintf("%06d", n.Int64()), CreatedBy: user.ID, CreatedAt: now, EmptySince: now}
		err := s.db.CreateQuickCall(ctx, q)
		if errors.Is(err, store.ErrConflict) {
			continue
		}
		if err != nil {
			return store.QuickCall{}, fmt.Errorf("account: create quick call: %w", err)
		}
		s.log.Info("quick call created", "call_id", q.ID, "by", user.ID)
		return q, nil
	}
	return store.QuickCall{}, errors.New("account: no free 1:1 call code after 10 tries; try again")
}

// QuickCall returns the quick call with code, or ErrNoSuchCode.
func (s *Service) QuickCall(ctx context.Context, code string) (store.QuickCall, error) {
	if !IsQuickCode(code) {
		return store.QuickCall{}, ErrNoSuchCode
	}
	q, err := s.db.QuickCallByCode(ctx, code)
	if errors.Is(err, store.ErrNotFound) {
		return store.QuickCall{}, ErrNoSuchCode
	}
	if err != nil {
		return store.QuickCall{}, fmt.Errorf("account: quick call: %w", err)
	}
	return q, nil
}

// QuickCallInUse records that someone is in quick call id (inUse) or that
// it was left empty now.
func (s *Service) QuickCallInUse(ctx context.Context, id string, inUse bool) error {
	at := time.Time{}
	if !inUse {
		at = s.now()
	}
	if err := s.db.SetQuickCallEmpty(ctx, id, at); err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("account: quick call in use: %w", err)
	}
	return nil
}

// PruneQuickCalls deletes the quick calls empty for QuickCallIdle and
// returns their ids.
func (s *Service) PruneQuickCalls(ctx context.Context) ([]string, error) {
	ids, err := s.db.DeleteEmptyQuickCalls(ctx, s.now().Add(-QuickCallIdle))
	if err != nil {
		return nil, fmt.Errorf("account: prune quick calls: %w", err)
	}
	return ids, nil
}
