package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/parley/parley/internal/account"
)

// Limiter counts rate-limited attempts (failed logins, sign-ups, mails) in
// Redis, so every node of a deployment sees the same count: three nodes
// allow what one allows. Each key is a sorted set of attempt times
// (microseconds); a Lua script checks every rule and records the attempt in
// one step, as the in-memory limiter does under its lock. Nodes' clocks
// are assumed to agree to well within a window (NTP).
type Limiter struct {
	rdb    *redis.Client
	prefix string
	p      account.LimiterParams
}

// NewLimiter returns the shared limiter for p (account.Config.Limiters).
func (n *Node) NewLimiter(p account.LimiterParams) account.Limiter {
	return &Limiter{rdb: n.rdb, prefix: n.cfg.Prefix + "rl:" + p.Name + ":", p: p}
}

// admitScript: KEYS are the rules' keys; ARGV: now, window, delay,
// maxDelay (µs), a unique member, then limit and slow (0/1) per key.
// It returns 0 after recording the attempt, else the wait in µs.
var admitScript = redis.NewScript(`
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local delay = tonumber(ARGV[3])
local maxd = tonumber(ARGV[4])
local wait = 0
for i, k in ipairs(KEYS) do
  local limit = tonumber(ARGV[4 + 2*i])
  local slow = ARGV[5 + 2*i] == '1'
  redis.call('ZREMRANGEBYSCORE', k, '-inf', now - window)
  local n = redis.call('ZCARD', k)
  if n >= limit then
    local w
    if not slow then
      local ts = redis.call('ZRANGE', k, n - limit, n - limit, 'WITHSCORES')
      w = tonumber(ts[2]) + window - now
    else
      local d = maxd
      if n - limit < 30 then d = math.min(maxd, delay * 2 ^ (n - limit)) end
      local last = redis.call('ZRANGE', k, -1, -1, 'WITHSCORES')
      w = tonumber(last[2]) + d - now
    end
    if w > wait then wait = w end
  end
end
if wait > 0 then return math.ceil(wait) end
for i, k in ipairs(KEYS) do
  redis.call('ZADD', k, now, ARGV[5] .. ':' .. i)
  redis.call('PEXPIRE', k, math.ceil(window / 1000) + 1000)
end
return 0`)

// undoScript removes one attempt recorded at ARGV[1] from each key.
var undoScript = redis.NewScript(`
for _, k in ipairs(KEYS) do
  local m = redis.call('ZRANGEBYSCORE', k, ARGV[1], ARGV[1], 'LIMIT', 0, 1)
  if m[1] then redis.call('ZREM', k, m[1]) end
end
return 0`)

// Admit implements account.Limiter.
func (l *Limiter) Admit(ctx context.Context, now time.Time, rules []account.Rule) (time.Duration, error) {
	var keys []string
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	args := []any{now.UnixMicro(), l.p.Window.Microseconds(), l.p.Delay.Microseconds(), l.p.MaxDelay.Microseconds(),
		fmt.Sprintf("%d-%s", now.UnixMicro(), hex.EncodeToString(b))}
	for _, r := range rules {
		if r.Limit <= 0 {
			continue
		}
		keys = append(keys, l.prefix+r.Key)
		slow := 0
		if r.Slow {
			slow = 1
		}
		args = append(args, r.Limit, slow)
	}
	if len(keys) == 0 {
		return 0, nil
	}
	us, err := admitScript.Run(ctx, l.rdb, keys, args...).Int64()
	if err != nil {
		return 0, fmt.Errorf("cluster: rate limit: %w", err)
	}
	return time.Duration(us) * time.Microsecond, nil
}

// Undo implements account.Limiter.
func (l *Limiter) Undo(ctx context.Context, at time.Time, keys []string) error {
	if len(keys) == 0 {
		return nil
	}
	ks := make([]string, len(keys))
	for i, k := range keys {
		ks[i] = l.prefix + k
	}
	if err := undoScript.Run(ctx, l.rdb, ks, at.UnixMicro()).Err(); err != nil {
		return fmt.Errorf("cluster: rate limit: %w", err)
	}
	return nil
}

// Clear implements account.Limiter.
func (l *Limiter) Clear(ctx context.Context, keys []string) error {
	if len(keys) == 0 {
		return nil
	}
	ks := make([]string, len(keys))
	for i, k := range keys {
		ks[i] = l.prefix + k
	}
	if err := l.rdb.Del(ctx, ks...).Err(); err != nil {
		return fmt.Errorf("cluster: rate limit: %w", err)
	}
	return nil
}
