package account

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// ErrBusy is returned by LogIn and SignUp when every password-hashing slot
// stayed taken for the whole queue wait. Nothing was checked or counted.
var ErrBusy = errors.New("the server is busy checking other passwords: try again in a few seconds")

// BusyRetryAfter is how long to tell a client refused with ErrBusy to wait.
const BusyRetryAfter = 2 * time.Second

// hasher bounds how many argon2id hashes run at once. Each costs
// Argon2.MemoryKiB of memory (19 MiB by default) and a core for tens of
// milliseconds: without a bound, a burst of logins grows the process by
// hundreds of megabytes.
type hasher struct {
	slots chan struct{}
	wait  time.Duration

	hashes     prometheus.Counter
	inProgress prometheus.Gauge
	busy       prometheus.Counter

	// hook, if set, runs while a slot is held, before the work; tests use
	// it to hold slots.
	hook func()
}

func newHasher(slots int, wait time.Duration) *hasher {
	return &hasher{
		slots: make(chan struct{}, slots),
		wait:  wait,
		hashes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "parley_password_hashes_total",
			Help: "argon2id password hashes computed (sign-ups, logins, and the dummy hash for unknown users).",
		}),
		inProgress: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "parley_password_hashes_in_progress",
			Help: "argon2id password hashes running now; at most the configured number of hashing slots.",
		}),
		busy: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "parley_password_hash_busy_total",
			Help: "logins and sign-ups refused (503) because every hashing slot stayed taken.",
		}),
	}
}

// do runs f holding a slot, waiting for one at most h.wait. f reports how
// many hashes it computed.
func (h *hasher) do(ctx context.Context, f func() int) error {
	select {
	case h.slots <- struct{}{}:
	default:
		t := time.NewTimer(h.wait)
		defer t.Stop()
		select {
		case h.slots <- struct{}{}:
		case <-t.C:
			h.busy.Inc()
			return ErrBusy
		case <-ctx.Done():
			return fmt.Errorf("account: waiting to check a password: %w", ctx.Err())
		}
	}
	defer func() { <-h.slots }()
	h.inProgress.Inc()
	defer h.inProgress.Dec()
	if h.hook != nil {
		h.hook()
	}
	h.hashes.Add(float64(f()))
	return nil
}

// Register adds the account metrics (password hashing) to reg.
func (s *Service) Register(reg prometheus.Registerer) {
	reg.MustRegister(s.hasher.hashes, s.hasher.inProgress, s.hasher.busy)
}
