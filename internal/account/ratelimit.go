package account

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// limiter counts attempts per key (an account, a client address, or the
// two together) in a sliding window. It lives in memory: limits are per
// node and reset on restart, which is enough to make online guessing slow.
//
// Attempts are reserved before the expensive work they guard (a password
// hash), with the check and the count in one step under the lock, so a
// burst of parallel requests cannot all pass the check before any of them
// is counted.
type limiter struct {
	window time.Duration
	// delay and maxDelay pace keys under a slow-down rule: the first
	// attempt past the limit waits delay after the previous one, each
	// further one twice as long, up to maxDelay.
	delay, maxDelay time.Duration

	mu sync.Mutex
	// attempts holds, per key, the times of attempts still inside the
	// window, oldest first.
	attempts  map[string][]time.Time
	lastPrune time.Time
}

func newLimiter(window, delay, maxDelay time.Duration) *limiter {
	return &limiter{window: window, delay: delay, maxDelay: maxDelay, attempts: map[string][]time.Time{}}
}

// rule is one limit admit checks.
type rule struct {
	key string
	// limit is how many attempts the window holds before the rule bites;
	// <= 0 means no limit (and nothing is recorded for the key).
	limit int
	// slow makes the rule pace attempts past the limit with an
	// exponentially growing delay instead of refusing them until the
	// window has passed.
	slow bool
}

// admit reserves an attempt: if every rule allows one now, it records it
// on every rule's key and returns 0; otherwise it records nothing and
// returns how long until the strictest rule would allow one.
func (l *limiter) admit(now time.Time, rules ...rule) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	var wait time.Duration
	for _, r := range rules {
		if r.limit > 0 {
			wait = max(wait, l.wait(r, l.current(r.key, now), now))
		}
	}
	if wait > 0 {
		return wait
	}
	for _, r := range rules {
		if r.limit > 0 {
			l.attempts[r.key] = append(l.current(r.key, now), now)
		}
	}
	l.prune(now)
	return 0
}

// wait is how long rule r has an attempt wait, given the attempts ts in
// the window. l.mu must be held.
func (l *limiter) wait(r rule, ts []time.Time, now time.Time) time.Duration {
	n := len(ts)
	if n < r.limit {
		return 0
	}
	if !r.slow {
		// Once the attempt that brings the count down to limit-1 leaves
		// the window, another is allowed.
		return ts[n-r.limit].Add(l.window).Sub(now)
	}
	d := l.maxDelay
	if over := n - r.limit; over < 30 {
		d = min(l.maxDelay, l.delay<<over)
	}
	return max(0, ts[n-1].Add(d).Sub(now))
}

// undo takes back an attempt admit recorded at at on each key, for an
// attempt that turned out not to count: a login that succeeded (as far
// as the address is concerned), or one the server could not evaluate.
func (l *limiter) undo(at time.Time, keys ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range keys {
		ts := l.attempts[k]
		for i := len(ts) - 1; i >= 0; i-- {
			if ts[i].Equal(at) {
				ts = append(ts[:i:i], ts[i+1:]...)
				break
			}
		}
		if len(ts) == 0 {
			delete(l.attempts, k)
		} else {
			l.attempts[k] = ts
		}
	}
}

// clear forgets the attempts of keys.
func (l *limiter) clear(keys ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range keys {
		delete(l.attempts, k)
	}
}

// current drops attempts of key that left the window and returns the rest.
// l.mu must be held.
func (l *limiter) current(key string, now time.Time) []time.Time {
	ts := l.attempts[key]
	cut := now.Add(-l.window)
	i := 0
	for i < len(ts) && !ts[i].After(cut) {
		i++
	}
	if i == len(ts) {
		delete(l.attempts, key)
		return nil
	}
	ts = ts[i:]
	l.attempts[key] = ts
	return ts
}

// prune sweeps keys whose attempts all left the window, at most once per
// window, so that guesses at many usernames cannot grow the map forever.
// l.mu must be held.
func (l *limiter) prune(now time.Time) {
	if now.Sub(l.lastPrune) < l.window {
		return
	}
	l.lastPrune = now
	for k := range l.attempts {
		l.current(k, now)
	}
}

// size reports how many keys are tracked; for tests.
func (l *limiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.attempts)
}

// Rule is one limit a shared Limiter checks: at most Limit attempts on
// Key per window (Limit <= 0: no limit, nothing recorded); with Slow,
// attempts past the limit are paced with a doubling delay instead of
// refused until the window has passed.
type Rule struct {
	Key   string
	Limit int
	Slow  bool
}

// LimiterParams describe one of the service's limiters: Name is "logins",
// "signups" or "mails"; Delay and MaxDelay pace Slow rules.
type LimiterParams struct {
	Name                    string
	Window, Delay, MaxDelay time.Duration
}

// Limiter is a rate limiter shared by several servers (Config.Limiters),
// so that N nodes do not allow N times the attempts. It behaves as the
// in-memory one: Admit reserves an attempt on every rule's key if all
// allow one (returning 0), else records nothing and returns the wait;
// Undo takes back the attempt Admit recorded at at; Clear forgets keys.
// An error (the shared store is unreachable) makes the service fall back
// to its own in-memory count for that call.
type Limiter interface {
	Admit(ctx context.Context, now time.Time, rules []Rule) (time.Duration, error)
	Undo(ctx context.Context, at time.Time, keys []string) error
	Clear(ctx context.Context, keys []string) error
}

// limits is a service limiter: the shared one when configured, with the
// in-memory one as its fallback (and the only one otherwise).
type limits struct {
	*limiter
	shared Limiter
	log    *slog.Logger
}

// sharedTimeout bounds one call to the shared limiter.
const sharedTimeout = 2 * time.Second

func (l limits) admit(now time.Time, rules ...rule) time.Duration {
	if l.shared != nil {
		rs := make([]Rule, len(rules))
		for i, r := range rules {
			rs[i] = Rule{Key: r.key, Limit: r.limit, Slow: r.slow}
		}
		ctx, cancel := context.WithTimeout(context.Background(), sharedTimeout)
		defer cancel()
		wait, err := l.shared.Admit(ctx, now, rs)
		if err == nil {
			return wait
		}
		l.log.Warn("shared rate limiter unreachable: counting on this node only", "err", err)
	}
	return l.limiter.admit(now, rules...)
}

func (l limits) undo(at time.Time, keys ...string) {
	if l.shared != nil {
		ctx, cancel := context.WithTimeout(context.Background(), sharedTimeout)
		defer cancel()
		if err := l.shared.Undo(ctx, at, keys); err != nil {
			l.log.Warn("shared rate limiter unreachable", "err", err)
		}
	}
	l.limiter.undo(at, keys...)
}

func (l limits) clear(keys ...string) {
	if l.shared != nil {
		ctx, cancel := context.WithTimeout(context.Background(), sharedTimeout)
		defer cancel()
		if err := l.shared.Clear(ctx, keys); err != nil {
			l.log.Warn("shared rate limiter unreachable", "err", err)
		}
	}
	l.limiter.clear(keys...)
}
