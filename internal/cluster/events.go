package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"
)

// Event is a change one node makes that must reach the calls on every
// node: a credential ended, a member removed, a channel deleted, a role or
// media mode changed, guests turned off. The node that made it applies it
// at once; the others get it through Redis pub/sub.
type Event struct {
	Kind    string `json:"kind"` // the server's names: "revoked", "kick", ...
	Channel string `json:"channel,omitempty"`
	User    string `json:"user,omitempty"`
	Key     string `json:"key,omitempty"`
	Value   string `json:"value,omitempty"` // a role, a mode, a reason
	From    string `json:"from"`
}

func (n *Node) eventsKey() string { return n.cfg.Prefix + "events" }

// Publish sends ev to the other nodes. It does not wait for Redis for
// long: an event lost to an outage leaves the other nodes' sockets of
// that credential open until they reconnect (docs/security.md, Cluster).
func (n *Node) Publish(ev Event) {
	ev.From = n.cfg.NodeID
	b, err := json.Marshal(ev)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := n.rdb.Publish(ctx, n.eventsKey(), b).Err(); err != nil {
		n.log.Warn("could not tell the other nodes of a change", "kind", ev.Kind, "channel_id", ev.Channel, "user_id", ev.User, "err", err)
	}
}

// Subscribe calls handle, on one goroutine, with every event another node
// publishes, until Close. The subscription reconnects by itself after a
// Redis outage.
func (n *Node) Subscribe(handle func(Event)) {
	ps := n.rdb.Subscribe(context.Background(), n.eventsKey())
	n.mu.Lock()
	n.subs = append(n.subs, ps)
	n.mu.Unlock()
	go func() {
		for m := range ps.Channel() {
			ev, ok := decodeEvent(m.Payload)
			if !ok {
				n.log.Warn("ignored a malformed cluster event")
				continue
			}
			if ev.From == n.cfg.NodeID {
				continue
			}
			handle(ev)
		}
	}()
}

// maxEventBytes bounds one event on the wire.
const maxEventBytes = 64 << 10

// decodeEvent reads one published event; ok is false for anything that is
// not one (too large, not JSON, no kind or sender).
func decodeEvent(payload string) (ev Event, ok bool) {
	if len(payload) > maxEventBytes || json.Unmarshal([]byte(payload), &ev) != nil || ev.Kind == "" || ev.From == "" {
		return Event{}, false
	}
	return ev, true
}

// Put keeps value under key (in this deployment's prefix) for ttl: state
// every node must see, such as guests admitted through one node.
func (n *Node) Put(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	return n.rdb.Set(ctx, n.cfg.Prefix+"kv:"+key, value, ttl).Err()
}

// Get reads what Put kept; ok is false when there is nothing (or it
// expired).
func (n *Node) Get(ctx context.Context, key string) (value []byte, ok bool, err error) {
	v, err := n.rdb.Get(ctx, n.cfg.Prefix+"kv:"+key).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return v, true, nil
}
