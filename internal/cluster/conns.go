package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"time"

	"github.com/redis/go-redis/v9"
)

// Per-account connection counts across nodes: each account's open sockets
// and WHIP/WHEP sessions are members of a sorted set scored by when they
// expire; the node holding one pushes its expiry forward every renewal, so
// a crashed node's connections drop out within two lease periods.

func (n *Node) connsKey(userID string) string { return n.cfg.Prefix + "conns:" + userID }

// reserveScript: KEYS[1] the account's set; ARGV: now (ms), expiry (ms),
// max, member. 1 = counted, 0 = the account is at max.
var reserveScript = redis.NewScript(`
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[4])
redis.call('PEXPIREAT', KEYS[1], ARGV[2])
return 1`)

// ReserveConn counts one more connection of userID across the cluster,
// unless it already has max; release undoes it. With Redis unreachable it
// allows the connection (the node's own count still bounds it) and says
// so in the log.
func (n *Node) ReserveConn(ctx context.Context, userID string, max int) (release func(), ok bool) {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	member := n.cfg.NodeID + ":" + hex.EncodeToString(b)
	key := n.connsKey(userID)
	now := time.Now()
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	res, err := reserveScript.Run(cctx, n.rdb, []string{key}, now.UnixMilli(), now.Add(2*n.cfg.LeaseTTL).UnixMilli(), max, member).Int()
	if err != nil {
		n.noteFailure()
		n.log.Warn("connection count unreachable in Redis: counting on this node only", "user_id", userID, "err", err)
		return func() {}, true
	}
	if res == 0 {
		return nil, false
	}
	n.mu.Lock()
	n.conns[member] = userID
	n.mu.Unlock()
	return func() {
		n.mu.Lock()
		_, mine := n.conns[member]
		delete(n.conns, member)
		n.mu.Unlock()
		if !mine {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		n.rdb.ZRem(ctx, key, member)
	}, true
}

// renewConns pushes the expiry of this node's connections forward (and
// puts them back after Redis lost its data).
func (n *Node) renewConns(ctx context.Context) {
	n.mu.Lock()
	conns := make(map[string]string, len(n.conns))
	for m, u := range n.conns {
		conns[m] = u
	}
	n.mu.Unlock()
	if len(conns) == 0 {
		return
	}
	exp := time.Now().Add(2 * n.cfg.LeaseTTL).UnixMilli()
	pipe := n.rdb.Pipeline()
	for m, u := range conns {
		pipe.ZAdd(ctx, n.connsKey(u), redis.Z{Score: float64(exp), Member: m})
		pipe.PExpireAt(ctx, n.connsKey(u), time.UnixMilli(exp))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		n.log.Debug("renew connection counts", "err", err)
	}
}
