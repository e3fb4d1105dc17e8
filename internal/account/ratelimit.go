package account

import (
	"sync"
	"time"
)

// limiter counts failed logins per key (an account or a client address) in
// a sliding window. It lives in memory: limits are per node and reset on
// restart, which is enough to make online guessing slow.
type limiter struct {
	window time.Duration

	mu sync.Mutex
	// failures holds, per key, the times of failures still inside the
	// window, oldest first.
	failures  map[string][]time.Time
	lastPrune time.Time
}

func newLimiter(window time.Duration) *limiter {
	return &limiter{window: window, failures: map[string][]time.Time{}}
}

// retryAfter reports how long until key drops below limit failures, or 0
// if another attempt is allowed now. limit <= 0 means no limit.
func (l *limiter) retryAfter(key string, limit int, now time.Time) time.Duration {
	if limit <= 0 {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	ts := l.current(key, now)
	if len(ts) < limit {
		return 0
	}
	// Once the failure that brings the count down to limit-1 leaves the
	// window, an attempt is allowed again. Usually that is the oldest;
	// concurrent attempts can overshoot the limit, hence the index.
	return ts[len(ts)-limit].Add(l.window).Sub(now)
}

// fail records a failure for each key.
func (l *limiter) fail(now time.Time, keys ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range keys {
		l.failures[k] = append(l.current(k, now), now)
	}
	l.prune(now)
}

// clear forgets the failures of key.
func (l *limiter) clear(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.failures, key)
}

// current drops failures of key that left the window and returns the rest.
// l.mu must be held.
func (l *limiter) current(key string, now time.Time) []time.Time {
	ts := l.failures[key]
	cut := now.Add(-l.window)
	i := 0
	for i < len(ts) && !ts[i].After(cut) {
		i++
	}
	if i == len(ts) {
		delete(l.failures, key)
		return nil
	}
	ts = ts[i:]
	l.failures[key] = ts
	return ts
}

// prune sweeps keys whose failures all left the window, at most once per
// window, so that guesses at many usernames cannot grow the map forever.
// l.mu must be held.
func (l *limiter) prune(now time.Time) {
	if now.Sub(l.lastPrune) < l.window {
		return
	}
	l.lastPrune = now
	for k := range l.failures {
		l.current(k, now)
	}
}

// size reports how many keys are tracked; for tests.
func (l *limiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.failures)
}
