package web

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"syscall"
	"time"
)

// Placer decides which node of a cluster runs a call (internal/cluster).
type Placer interface {
	// Place says whether roomID's call runs here (local) or at owner;
	// runningHere says this node runs it now; wait bounds the retries
	// while the coordination store is unreachable.
	Place(ctx context.Context, roomID string, runningHere bool, wait time.Duration) (local bool, owner *url.URL, err error)
	// Dead reports that owner refused a connection while holding roomID.
	Dead(roomID string, owner *url.URL)
	// ID is this node's id.
	ID() string
	// ReserveConn counts a connection of userID across the cluster,
	// unless it has max already.
	ReserveConn(ctx context.Context, userID string, max int) (release func(), ok bool)
}

// reserve counts one more connection (socket or WHIP/WHEP session) of
// userID against --max-connections-per-user: on this node, and in a
// cluster across all nodes.
func (s *Server) reserve(ctx context.Context, userID string) (release func(), ok bool) {
	local, ok := s.rooms.Reserve(userID, s.cfg.MaxConnectionsPerUser)
	if !ok || s.cluster == nil {
		return local, ok
	}
	shared, ok := s.cluster.ReserveConn(ctx, userID, s.cfg.MaxConnectionsPerUser)
	if !ok {
		local()
		return nil, false
	}
	return func() { shared(); local() }, true
}

// forwardedHeader marks a request one node passed to another: the
// receiver serves it or refuses it, never passes it on again (no loops).
// It grants nothing: the receiver authenticates the request itself (the
// session cookie or access token travels with it; sessions live in the
// shared database).
const forwardedHeader = "X-Parley-Forwarded-By"

// placeWait is how long a request waits for Redis to come back before it
// is answered 503 (clients retry).
const placeWait = 20 * time.Second

// SetCluster makes this server one node of a cluster: sockets and WHIP/WHEP
// requests of a call another node holds are proxied to that node.
// Guests are kept in kv, so that every node knows them.
func (s *Server) SetCluster(p Placer, kv KV) {
	s.cluster = p
	s.guests.shared = kv
	s.forwarder = &http.Transport{
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost:   32,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
	}
}

// forward serves roomID's request from the node that holds its call: it
// returns false when that is this node (the caller goes on), and true when
// it has answered, by proxying the request (a WebSocket upgrade included)
// to the owner, or with 503 and Retry-After when no node can take the call
// yet.
func (s *Server) forward(w http.ResponseWriter, r *http.Request, roomID string) bool {
	if s.cluster == nil {
		return false
	}
	// A GET (the WebSocket upgrade) whose owner turns out dead is placed
	// again at once: the call usually starts here, without the client
	// having to come back.
	for attempt := 0; ; attempt++ {
		local, owner, err := s.cluster.Place(r.Context(), roomID, s.rooms.Active(roomID), placeWait)
		if err != nil {
			s.log.Warn("cannot place the call", "channel_id", roomID, "err", err)
			w.Header().Set("Retry-After", "1")
			http.Error(w, "the call cannot be reached right now (the cluster is reorganising): try again in a moment", http.StatusServiceUnavailable)
			return true
		}
		if local {
			return false
		}
		if r.Header.Get(forwardedHeader) != "" {
			// Another node sent it here as the owner, and the call moved
			// meanwhile: the client retries through the load balancer.
			w.Header().Set("Retry-After", "1")
			http.Error(w, "the call moved to another node: try again", http.StatusServiceUnavailable)
			return true
		}
		retry := r.Method == http.MethodGet && attempt == 0
		if !s.proxy(w, r, roomID, owner, retry) {
			continue // the owner was dead and nothing was answered yet
		}
		return true
	}
}

// proxy passes r to the owner's node. If the owner refuses the connection
// it is reported dead; with retry, nothing is answered then and proxy
// returns false, otherwise 503.
func (s *Server) proxy(w http.ResponseWriter, r *http.Request, roomID string, owner *url.URL, retry bool) (answered bool) {
	answered = true
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(owner)
			pr.Out.Host = pr.In.Host // the Origin check and TURN URLs use the client's host
			pr.SetXForwarded()       // the owner trusts it if this node is in its --trusted-proxies
			pr.Out.Header.Set(forwardedHeader, s.cluster.ID())
		},
		Transport:     s.forwarder,
		FlushInterval: -1,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			dead := errors.Is(err, syscall.ECONNREFUSED) || isDialError(err)
			if dead {
				s.cluster.Dead(roomID, owner)
				if retry {
					answered = false
					return
				}
			}
			s.log.Warn("proxy to the call's node failed", "channel_id", roomID, "node_url", owner.String(), "err", err)
			w.Header().Set("Retry-After", "1")
			http.Error(w, "the node holding this call did not answer: try again in a moment", http.StatusServiceUnavailable)
		},
	}
	rp.ServeHTTP(w, r)
	return answered
}

func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}
