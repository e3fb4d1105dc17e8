package server

import (
	"context"
	"fmt"
	"net"
	"sort"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/parley/parley/internal/account"
	"github.com/parley/parley/internal/cluster"
)

// joinCluster makes this server a cluster member when --redis is set:
// rate limits counted in Redis, and the node whose leases say which calls
// it holds. It runs before the account service is built.
func (s *Server) joinCluster(acfg *account.Config, reg prometheus.Registerer) error {
	if !s.cfg.Clustered() {
		return nil
	}
	id := s.cfg.NodeID
	if id == "" {
		var err error
		if id, err = cluster.NodeIDFromDir(s.cfg.DataDir); err != nil {
			return err
		}
	}
	local := func() []cluster.Room {
		var out []cluster.Room
		for id, n := range s.rooms.Rooms() {
			out = append(out, cluster.Room{ID: id, Participants: n})
		}
		sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
		return out
	}
	node, err := cluster.New(cluster.Config{RedisURL: s.cfg.RedisURL, Prefix: s.cfg.RedisPrefix, NodeID: id, LeaseTTL: s.cfg.LeaseTTL,
		Secret: derivedKey(s.cfg.TURNSecret, "parley cluster node URLs")},
		s.log.With("part", "cluster"), local, func(roomID string) { s.rooms.Move(roomID) })
	if err != nil {
		return err
	}
	s.node = node
	if acfg.Limiters == nil {
		acfg.Limiters = node.NewLimiter
	}
	info := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "parley_node_info",
		Help:        "Always 1; its node_id label names this node of the cluster.",
		ConstLabels: prometheus.Labels{"node_id": id},
	})
	info.Set(1)
	reg.MustRegister(info)
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "parley_node_calls", Help: "Calls running on this node of the cluster.",
		ConstLabels: prometheus.Labels{"node_id": id},
	}, func() float64 { r, _, _ := s.rooms.Counts(); return float64(r) }))
	return nil
}

// startNode registers the node under its URL once the listener is known.
func (s *Server) startNode(ln net.Listener) {
	if s.node == nil {
		return
	}
	s.nodeOnce.Do(func() {
		u := s.cfg.NodeURL
		if u == "" {
			scheme := "http"
			if s.tls != nil {
				scheme = "https"
			}
			u = fmt.Sprintf("%s://%s", scheme, ln.Addr().String())
		}
		s.node.Subscribe(s.apply)
		s.node.Start(u)
	})
}

// drainNode gives up this node's calls before its sockets close, so that
// their participants re-create them on other nodes as they reconnect.
func (s *Server) drainNode(ctx context.Context) {
	if s.node != nil {
		s.node.Drain(ctx)
	}
}

func (s *Server) closeNode() error {
	if s.node == nil {
		return nil
	}
	return s.node.Close()
}
