package media

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// dropReason says why a packet was not forwarded.
type dropReason int

const (
	dropMalformedRTP  dropReason = iota // RTP that does not parse
	dropMalformedRTCP                   // RTCP that does not parse
	dropMuted                           // the publisher's source is muted (SetSending false)
	dropNoLayer                         // a simulcast encoding beyond the ones the SFU keeps
	dropWriteError                      // the subscriber's transport refused the write
	dropStale                           // older than a layer switch or resync point
	dropTCPQueueFull                    // an ICE-TCP subscriber is not reading fast enough
	numDropReasons
)

func (r dropReason) String() string {
	switch r {
	case dropMalformedRTP:
		return "malformed_rtp"
	case dropMalformedRTCP:
		return "malformed_rtcp"
	case dropMuted:
		return "muted"
	case dropNoLayer:
		return "no_layer"
	case dropWriteError:
		return "write_error"
	case dropStale:
		return "stale"
	case dropTCPQueueFull:
		return "tcp_queue_full"
	}
	return "unknown"
}

// metrics holds the SFU's counters as plain atomics, so the forwarding path
// pays one atomic add per packet batch and Stats can read them without
// going through prometheus. The prometheus collector reads them at scrape
// time.
type metrics struct {
	packetsIn, bytesIn   atomic.Uint64
	packetsOut, bytesOut atomic.Uint64
	nacks, retransmits   atomic.Uint64
	plis, layerSwitches  atomic.Uint64
	rembs, bwLimits      atomic.Uint64
	firstMediaCount      atomic.Uint64
	dropped              [numDropReasons]atomic.Uint64

	rooms, peers         atomic.Int64
	viewers              atomic.Int64 // WHEP viewers (not in peers)
	published, forwarded atomic.Int64

	loss       prometheus.Histogram
	firstMedia prometheus.Histogram
}

func newMetrics() *metrics {
	return &metrics{
		loss: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "parley_sfu_receiver_loss_ratio",
			Help:    "Packet loss reported by subscribers in RTCP receiver reports (fraction lost, 0..1).",
			Buckets: []float64{0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1},
		}),
		firstMedia: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "parley_sfu_join_to_first_media_seconds",
			Help:    "Time from a participant joining the SFU to the first media packet forwarded to it.",
			Buckets: []float64{0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10},
		}),
	}
}

func (m *metrics) drop(r dropReason) { m.dropped[r].Add(1) }

// collector exposes metrics to prometheus.
type collector struct {
	m     *metrics
	descs map[string]*prometheus.Desc
}

func newCollector(m *metrics) *collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, nil)
	}
	return &collector{m: m, descs: map[string]*prometheus.Desc{
		"rooms":          d("parley_sfu_rooms", "Rooms with media on the SFU."),
		"peers":          d("parley_sfu_peers", "Participants connected to the SFU."),
		"viewers":        d("parley_sfu_viewers", "Receive-only players (WHEP) connected to the SFU."),
		"published":      d("parley_sfu_published_tracks", "Tracks received from publishers (a simulcast track counts once)."),
		"forwarded":      d("parley_sfu_forwarded_tracks", "Tracks sent to subscribers."),
		"packets_in":     d("parley_sfu_packets_in_total", "RTP packets received from publishers."),
		"bytes_in":       d("parley_sfu_bytes_in_total", "RTP bytes received from publishers."),
		"packets_out":    d("parley_sfu_packets_out_total", "RTP packets sent to subscribers (retransmissions included)."),
		"bytes_out":      d("parley_sfu_bytes_out_total", "RTP payload bytes sent to subscribers."),
		"nacks":          d("parley_sfu_nacks_total", "Packets subscribers asked for again (NACK)."),
		"retransmits":    d("parley_sfu_retransmissions_total", "Packets retransmitted to subscribers from the cache."),
		"plis":           d("parley_sfu_plis_total", "Keyframe requests (PLI) sent to publishers."),
		"layer_switches": d("parley_sfu_layer_switches_total", "Simulcast layer switches (and resumes) for subscribers."),
		"rembs":          d("parley_sfu_remb_total", "Receiver bandwidth estimates (REMB) received from subscribers."),
		"bw_limits":      d("parley_sfu_bandwidth_limits_total", "Times a subscriber's video was lowered or paused because its bandwidth estimate fell below what it was sent."),
		"dropped":        d("parley_sfu_dropped_packets_total", "Packets not forwarded, by reason.", "reason"),
	}}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
	c.m.loss.Describe(ch)
	c.m.firstMedia.Describe(ch)
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	m := c.m
	gauge := func(name string, v int64) {
		ch <- prometheus.MustNewConstMetric(c.descs[name], prometheus.GaugeValue, float64(v))
	}
	counter := func(name string, v uint64) {
		ch <- prometheus.MustNewConstMetric(c.descs[name], prometheus.CounterValue, float64(v))
	}
	gauge("rooms", m.rooms.Load())
	gauge("peers", m.peers.Load())
	gauge("viewers", m.viewers.Load())
	gauge("published", m.published.Load())
	gauge("forwarded", m.forwarded.Load())
	counter("packets_in", m.packetsIn.Load())
	counter("bytes_in", m.bytesIn.Load())
	counter("packets_out", m.packetsOut.Load())
	counter("bytes_out", m.bytesOut.Load())
	counter("nacks", m.nacks.Load())
	counter("retransmits", m.retransmits.Load())
	counter("plis", m.plis.Load())
	counter("layer_switches", m.layerSwitches.Load())
	counter("rembs", m.rembs.Load())
	counter("bw_limits", m.bwLimits.Load())
	for r := dropReason(0); r < numDropReasons; r++ {
		ch <- prometheus.MustNewConstMetric(c.descs["dropped"], prometheus.CounterValue,
			float64(m.dropped[r].Load()), r.String())
	}
	m.loss.Collect(ch)
	m.firstMedia.Collect(ch)
}

// Stats is a snapshot of the SFU's counters, for tests and status pages.
type Stats struct {
	Rooms, Peers                int
	Viewers                     int // receive-only players (WHEP), not in Peers
	PublishedTracks             int // tracks received from publishers
	ForwardedTracks             int // tracks offered to subscribers
	PacketsIn, BytesIn          uint64
	PacketsOut, BytesOut        uint64
	NACKs, Retransmissions      uint64
	PLIs, LayerSwitches         uint64
	REMBs, BandwidthLimits      uint64            // estimates received; video lowered or paused for bandwidth
	FirstMedia                  uint64            // participants that got their first media packet
	Dropped                     map[string]uint64 // by reason; reasons with zero are left out
	MalformedRTP, MalformedRTCP uint64            // also in Dropped, here for convenience
	BoundTracks                 int               // forwarded tracks whose negotiation completed
	SubscriberOffersOutstanding int               // subscriber offers waiting for an answer
	PeersWithPendingNegotiation int               // peers with changes queued behind an offer
}

// Stats returns a snapshot of the SFU's counters.
func (s *SFU) Stats() Stats {
	m := s.metrics
	st := Stats{
		Rooms:           int(m.rooms.Load()),
		Peers:           int(m.peers.Load()),
		Viewers:         int(m.viewers.Load()),
		PublishedTracks: int(m.published.Load()),
		ForwardedTracks: int(m.forwarded.Load()),
		PacketsIn:       m.packetsIn.Load(),
		BytesIn:         m.bytesIn.Load(),
		PacketsOut:      m.packetsOut.Load(),
		BytesOut:        m.bytesOut.Load(),
		NACKs:           m.nacks.Load(),
		Retransmissions: m.retransmits.Load(),
		PLIs:            m.plis.Load(),
		LayerSwitches:   m.layerSwitches.Load(),
		REMBs:           m.rembs.Load(),
		BandwidthLimits: m.bwLimits.Load(),
		FirstMedia:      m.firstMediaCount.Load(),
		Dropped:         map[string]uint64{},
		MalformedRTP:    m.dropped[dropMalformedRTP].Load(),
		MalformedRTCP:   m.dropped[dropMalformedRTCP].Load(),
	}
	for r := dropReason(0); r < numDropReasons; r++ {
		if v := m.dropped[r].Load(); v > 0 {
			st.Dropped[r.String()] = v
		}
	}
	for _, p := range s.allPeers() {
		bound, outstanding, pending := p.negotiationStats()
		st.BoundTracks += bound
		if outstanding {
			st.SubscriberOffersOutstanding++
		}
		if pending {
			st.PeersWithPendingNegotiation++
		}
	}
	return st
}
