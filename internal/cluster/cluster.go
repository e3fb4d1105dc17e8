// Package cluster lets several Parley nodes share one deployment through
// Redis: which node holds each call (a lease per room), which nodes are
// alive and what they hold (a registry with a TTL), and login rate limits
// counted across nodes (limiter.go).
//
// A call lives on one node. The room → node lease is a Redis key set with
// SET NX PX by the first node a participant reaches, renewed by its owner
// every LeaseTTL/4 with a compare-and-renew script, and taken over by
// another node only once it has lapsed (or its owner is found dead: its
// registry entry is gone or its URL refuses connections). A node that
// finds its lease taken by another ends its local copy of the call, so the
// participants reconnect to the new owner.
package cluster

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Config is what a Node needs.
type Config struct {
	// RedisURL is redis://[user:pass@]host:port/db (rediss:// for TLS).
	RedisURL string
	// Prefix starts every key this deployment writes ("parley:").
	Prefix string
	// NodeID names this node; NodeURL is where other nodes reach its
	// HTTP server (http://10.0.0.2:8080).
	NodeID  string
	NodeURL string
	// Secret is shared by every node (derived from --turn-secret): each
	// node signs its registered URL with it, and a node forwards
	// participants (with their cookies) only to a URL so signed, so that
	// whoever can write to Redis cannot point the nodes at another host.
	Secret []byte
	// LeaseTTL is how long a room's lease lasts without renewal (and a
	// node's registry entry without a heartbeat): the longest a dead
	// node's calls stay unreachable. Default 6 s.
	LeaseTTL time.Duration
}

// Room is one call a node holds, as the registry shows it.
type Room struct {
	ID           string `json:"id"`
	Participants int    `json:"participants"`
}

// Local is what the node runs now: its rooms (a room whose last socket
// left is no longer listed, and its lease is released).
type Local func() []Room

// Lost is told when another node took a lease this node held: the local
// call must end so its participants reconnect to the new owner.
type Lost func(roomID string)

// Node is this process's membership of the cluster.
type Node struct {
	cfg   Config
	log   *slog.Logger
	rdb   *redis.Client
	local Local
	lost  Lost

	mu       sync.Mutex
	held     map[string]time.Time // room → when this node took its lease
	conns    map[string]string    // this node's counted connections: member → user (conns.go)
	draining bool
	nodeURL  string
	// failed is when Redis last failed this node: for a while after an
	// outage no new lease is taken, so the nodes that ran calls through
	// it claim theirs back first (tick) and no call starts twice.
	failed time.Time

	subs []*redis.PubSub // events.go

	stop context.CancelFunc
	done chan struct{}
}

var setLogger sync.Once

// redisLog sends go-redis's own messages (a failed dial on every attempt
// during an outage) to the debug log instead of stderr.
type redisLog struct{ log *slog.Logger }

func (l redisLog) Printf(_ context.Context, format string, v ...any) {
	l.log.Debug("redis: " + fmt.Sprintf(format, v...))
}

// ErrUnavailable: Redis cannot be reached, so which node holds a call is
// unknown for now; the caller retries later.
var ErrUnavailable = errors.New("cluster: the coordination store (Redis) is unreachable")

// ErrDraining: this node is shutting down and takes no new calls.
var ErrDraining = errors.New("cluster: this node is shutting down")

var validID = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// ValidNodeID reports whether id can name a node (letters, digits, dot,
// dash, underscore; 1 to 64).
func ValidNodeID(id string) bool { return validID.MatchString(id) }

// ParseRedisURL checks a --redis URL.
func ParseRedisURL(s string) error {
	_, err := redis.ParseURL(s)
	return err
}

// NodeIDFromDir returns the node id kept in dir (file node-id), making
// and keeping a new one the first time.
func NodeIDFromDir(dir string) (string, error) {
	path := filepath.Join(dir, "node-id")
	if b, err := os.ReadFile(path); err == nil {
		if id := strings.TrimSpace(string(b)); ValidNodeID(id) {
			return id, nil
		}
		return "", fmt.Errorf("cluster: %s does not hold a valid node id; delete it or give --node-id", path)
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	host, _ := os.Hostname()
	host = regexp.MustCompile(`[^A-Za-z0-9-]`).ReplaceAllString(host, "")
	if len(host) > 40 {
		host = host[:40]
	}
	id := hex.EncodeToString(b)
	if host != "" {
		id = host + "-" + id
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("cluster: keep the node id: %w", err)
	}
	if err := os.WriteFile(path, []byte(id+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("cluster: keep the node id: %w", err)
	}
	return id, nil
}

// New connects to Redis (it need not answer yet: a node starts while Redis
// is down and catches up). Call Start once the node's URL is known.
func New(cfg Config, log *slog.Logger, local Local, lost Lost) (*Node, error) {
	opt, err := redis.ParseURL(cfg.RedisURL)
	if err != nil {
		return nil, fmt.Errorf("cluster: --redis: %w", err)
	}
	opt.DialTimeout = time.Second
	opt.ReadTimeout = time.Second
	opt.WriteTimeout = time.Second
	opt.MaxRetries = -1 // callers retry with their own pacing
	opt.DialerRetries = 1
	setLogger.Do(func() { redis.SetLogger(redisLog{log}) })
	if cfg.Prefix == "" {
		cfg.Prefix = "parley:"
	}
	if cfg.LeaseTTL <= 0 {
		cfg.LeaseTTL = 6 * time.Second
	}
	if len(cfg.Secret) < 16 {
		return nil, errors.New("cluster: the shared secret (--turn-secret) must be at least 16 bytes")
	}
	if !ValidNodeID(cfg.NodeID) {
		return nil, fmt.Errorf("cluster: node id %q: use 1-64 letters, digits, '.', '-' or '_'", cfg.NodeID)
	}
	return &Node{cfg: cfg, log: log, rdb: redis.NewClient(opt), local: local, lost: lost, held: map[string]time.Time{}, conns: map[string]string{}}, nil
}

// ID is this node's id.
func (n *Node) ID() string { return n.cfg.NodeID }

// Redis is the client, for the rate limiter.
func (n *Node) Redis() *redis.Client { return n.rdb }

// Prefix is the deployment's key prefix.
func (n *Node) Prefix() string { return n.cfg.Prefix }

func (n *Node) leaseKey(room string) string { return n.cfg.Prefix + "room:" + room }
func (n *Node) nodeKey(id string) string    { return n.cfg.Prefix + "node:" + id }
func (n *Node) nodesKey() string            { return n.cfg.Prefix + "nodes" }

// Start registers the node under nodeURL and starts the loop that renews
// its leases and its registry entry.
func (n *Node) Start(nodeURL string) {
	n.mu.Lock()
	n.nodeURL = nodeURL
	n.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	n.stop = cancel
	n.done = make(chan struct{})
	n.tick(ctx)
	go func() {
		defer close(n.done)
		t := time.NewTicker(n.cfg.LeaseTTL / 4)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				n.tick(ctx)
			}
		}
	}()
	n.log.Info("cluster member", "node_id", n.cfg.NodeID, "node_url", nodeURL)
}

// renewScript keeps a lease: still ours → extend it (1); missing (lapsed,
// or Redis lost its data) → take it again (2); another node's → 0.
var renewScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
if not v then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 2 end
return 0`)

// releaseScript deletes a lease only if it still names ARGV[1].
var releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`)

// tick renews the leases of the rooms this node runs, releases those of
// rooms that ended, and refreshes the registry entry.
func (n *Node) tick(ctx context.Context) {
	rooms := n.local()
	active := map[string]bool{}
	for _, r := range rooms {
		active[r.ID] = true
	}
	now := time.Now()
	n.mu.Lock()
	draining := n.draining
	var renew, release []string
	for id, at := range n.held {
		// A lease just taken covers a socket still on its way to the
		// room: keep it for one TTL even before the room shows.
		if active[id] || now.Sub(at) < n.cfg.LeaseTTL {
			renew = append(renew, id)
		} else {
			release = append(release, id)
			delete(n.held, id)
		}
	}
	if !draining {
		// Rooms that run here without a lease we know of (Redis lost its
		// data, or came back after an outage): claim them again.
		for id := range active {
			if _, ok := n.held[id]; !ok {
				n.held[id] = now
				renew = append(renew, id)
			}
		}
	}
	nodeURL := n.nodeURL
	n.mu.Unlock()

	cctx, cancel := context.WithTimeout(ctx, n.cfg.LeaseTTL/4)
	defer cancel()
	if err := n.rdb.Ping(cctx).Err(); err != nil {
		n.noteFailure()
		n.log.Debug("redis unreachable", "err", err)
		return
	}
	ttl := n.cfg.LeaseTTL.Milliseconds()
	for _, id := range release {
		if err := releaseScript.Run(cctx, n.rdb, []string{n.leaseKey(id)}, n.cfg.NodeID).Err(); err != nil {
			n.log.Debug("release a lease", "channel_id", id, "err", err)
		}
	}
	for _, id := range renew {
		res, err := renewScript.Run(cctx, n.rdb, []string{n.leaseKey(id)}, n.cfg.NodeID, ttl).Int()
		if err != nil {
			n.log.Debug("renew a lease", "channel_id", id, "err", err)
			continue
		}
		if res == 0 {
			n.mu.Lock()
			delete(n.held, id)
			n.mu.Unlock()
			n.log.Warn("another node took this call over: moving its participants there", "channel_id", id)
			if active[id] {
				n.lost(id)
			}
		}
	}
	n.renewConns(cctx)
	if draining {
		return
	}
	calls, _ := json.Marshal(rooms)
	pipe := n.rdb.TxPipeline()
	pipe.HSet(cctx, n.nodeKey(n.cfg.NodeID), "url", nodeURL, "sig", n.sign(n.cfg.NodeID, nodeURL), "calls", string(calls), "seen", time.Now().UTC().Format(time.RFC3339))
	pipe.PExpire(cctx, n.nodeKey(n.cfg.NodeID), n.cfg.LeaseTTL)
	pipe.SAdd(cctx, n.nodesKey(), n.cfg.NodeID)
	if _, err := pipe.Exec(cctx); err != nil {
		n.log.Debug("heartbeat", "err", err)
	}
}

// Place decides where roomID's call runs: here (local true: this node
// holds, or has just taken, its lease) or at another node's URL. With
// Redis unreachable it retries for up to wait, then returns
// ErrUnavailable; a call already running here stays here (it was ours,
// and its participants keep talking).
func (n *Node) Place(ctx context.Context, roomID string, runningHere bool, wait time.Duration) (local bool, owner *url.URL, err error) {
	deadline := time.Now().Add(wait)
	for {
		local, owner, err = n.place(ctx, roomID)
		if !errors.Is(err, ErrUnavailable) {
			return local, owner, err
		}
		if runningHere {
			return true, nil, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false, nil, err
		}
		select {
		case <-ctx.Done():
			return false, nil, ErrUnavailable
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// sign is the registry entry's signature of node id's URL.
func (n *Node) sign(id, nodeURL string) string {
	mac := hmac.New(sha256.New, n.cfg.Secret)
	mac.Write([]byte("parley node url\x00" + id + "\x00" + nodeURL))
	return hex.EncodeToString(mac.Sum(nil))
}

// noteFailure records that Redis failed just now.
func (n *Node) noteFailure() {
	n.mu.Lock()
	n.failed = time.Now()
	n.mu.Unlock()
}

// unavailable notes a Redis failure and wraps it.
func (n *Node) unavailable(err error) error {
	n.noteFailure()
	return fmt.Errorf("%w: %v", ErrUnavailable, err)
}

func (n *Node) place(ctx context.Context, roomID string) (bool, *url.URL, error) {
	n.mu.Lock()
	draining := n.draining
	// Just after an outage, leave a lapsed lease to the node still running
	// the call: it claims it back within a renewal period.
	settling := time.Since(n.failed) < n.cfg.LeaseTTL/2
	n.mu.Unlock()
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	key := n.leaseKey(roomID)
	for range 3 {
		if !draining && !settling {
			ok, err := n.rdb.SetNX(cctx, key, n.cfg.NodeID, n.cfg.LeaseTTL).Result()
			if err != nil {
				return false, nil, n.unavailable(err)
			}
			if ok {
				n.mu.Lock()
				n.held[roomID] = time.Now()
				n.mu.Unlock()
				return true, nil, nil
			}
		}
		owner, err := n.rdb.Get(cctx, key).Result()
		if errors.Is(err, redis.Nil) {
			if draining {
				return false, nil, ErrDraining
			}
			if settling {
				return false, nil, fmt.Errorf("%w: it has just come back; waiting for the calls' nodes to claim them", ErrUnavailable)
			}
			continue // lapsed in between: try to take it
		}
		if err != nil {
			return false, nil, n.unavailable(err)
		}
		if owner == n.cfg.NodeID {
			if draining {
				return false, nil, ErrDraining
			}
			n.mu.Lock()
			if _, ok := n.held[roomID]; !ok {
				n.held[roomID] = time.Now()
			}
			n.mu.Unlock()
			return true, nil, nil
		}
		h, err := n.rdb.HMGet(cctx, n.nodeKey(owner), "url", "sig").Result()
		if err == nil && h[0] == nil {
			err = redis.Nil
		}
		if errors.Is(err, redis.Nil) {
			// Its owner stopped heartbeating: the lease is stale.
			n.log.Info("the node holding this call is gone: taking it over", "channel_id", roomID, "node_id", owner)
			releaseScript.Run(cctx, n.rdb, []string{key}, owner)
			continue
		}
		if err != nil {
			return false, nil, n.unavailable(err)
		}
		raw, _ := h[0].(string)
		sig, _ := h[1].(string)
		if !hmac.Equal([]byte(sig), []byte(n.sign(owner, raw))) {
			return false, nil, fmt.Errorf("cluster: node %s registered URL %q without a valid signature: is --turn-secret the same on every node? (not forwarding there)", owner, raw)
		}
		u, err := url.Parse(raw)
		if err != nil || u.Host == "" {
			return false, nil, fmt.Errorf("cluster: node %s registered a bad URL %q", owner, raw)
		}
		return false, u, nil
	}
	return false, nil, fmt.Errorf("%w: the lease of %s kept changing hands", ErrUnavailable, roomID)
}

// Dead reports that nodeURL refused a connection while it held roomID's
// lease: the lease and the node's registry entry are dropped (if they
// still name it), so the next attempt takes the call over at once instead
// of waiting for the lease to lapse.
func (n *Node) Dead(roomID string, owner *url.URL) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	id, err := n.rdb.Get(ctx, n.leaseKey(roomID)).Result()
	if err != nil || id == n.cfg.NodeID {
		return
	}
	raw, err := n.rdb.HGet(ctx, n.nodeKey(id), "url").Result()
	if err == nil && raw != owner.String() {
		return // the lease moved meanwhile
	}
	releaseScript.Run(ctx, n.rdb, []string{n.leaseKey(roomID)}, id)
	n.rdb.Del(ctx, n.nodeKey(id))
	n.rdb.SRem(ctx, n.nodesKey(), id)
	n.log.Warn("the node holding this call refused the connection: dropped its lease", "channel_id", roomID, "node_id", id, "node_url", owner.String())
}

// Drain stops the node from taking new calls and releases every lease it
// holds, and its registry entry, so that its calls start elsewhere as
// their participants reconnect.
func (n *Node) Drain(ctx context.Context) {
	n.mu.Lock()
	n.draining = true
	ids := make([]string, 0, len(n.held))
	for id := range n.held {
		ids = append(ids, id)
	}
	n.held = map[string]time.Time{}
	n.mu.Unlock()
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	for _, id := range ids {
		releaseScript.Run(cctx, n.rdb, []string{n.leaseKey(id)}, n.cfg.NodeID)
	}
	n.rdb.Del(cctx, n.nodeKey(n.cfg.NodeID))
	n.rdb.SRem(cctx, n.nodesKey(), n.cfg.NodeID)
	n.log.Info("draining: released the calls' leases", "calls", len(ids))
}

// Close stops the renewal loop and closes the Redis client.
func (n *Node) Close() error {
	if n.stop != nil {
		n.stop()
		<-n.done
	}
	n.mu.Lock()
	subs := n.subs
	n.subs = nil
	n.mu.Unlock()
	for _, ps := range subs {
		ps.Close()
	}
	return n.rdb.Close()
}

// NodeStatus is one node as the registry shows it.
type NodeStatus struct {
	ID    string `json:"id"`
	URL   string `json:"url"`
	Seen  string `json:"seen"`
	Calls []Room `json:"calls"`
}

// Status lists the live nodes of the deployment at redisURL with prefix.
func Status(ctx context.Context, redisURL, prefix string) ([]NodeStatus, error) {
	opt, err := redis.ParseURL(redisURL)
	if err != nil {
		return nil, fmt.Errorf("--redis: %w", err)
	}
	if prefix == "" {
		prefix = "parley:"
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	ids, err := rdb.SMembers(ctx, prefix+"nodes").Result()
	if err != nil {
		return nil, fmt.Errorf("read the node list: %w", err)
	}
	sort.Strings(ids)
	var out []NodeStatus
	for _, id := range ids {
		h, err := rdb.HGetAll(ctx, prefix+"node:"+id).Result()
		if err != nil {
			return nil, fmt.Errorf("read node %s: %w", id, err)
		}
		if len(h) == 0 {
			rdb.SRem(ctx, prefix+"nodes", id) // expired: gone
			continue
		}
		st := NodeStatus{ID: id, URL: h["url"], Seen: h["seen"]}
		_ = json.Unmarshal([]byte(h["calls"]), &st.Calls)
		out = append(out, st)
	}
	return out, nil
}
