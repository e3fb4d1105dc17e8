package client

import (
	"time"

	"github.com/pion/webrtc/v4"
)

// Stats sums what the client's connections sent and received: packets
// and bytes over the whole call, loss and the rest from pion's stats (the
// same counters a browser's getStats reports).
type Stats struct {
	Connections            int // live peer connections
	Connected              int // of which ICE+DTLS are connected
	Relayed                int // of which the selected path goes through a TURN relay
	PacketsSent, BytesSent uint64
	PacketsRecv, BytesRecv uint64
	PacketsLost            int64         // reported lost on what we receive
	NACKsSent              uint32        // retransmissions we asked for
	JitterSeconds          float64       // highest inbound jitter
	Joined                 time.Duration // join sent to joined received; 0 = not joined yet
	FirstMedia             time.Duration // join sent to the first remote media packet
	InboundStreams         int
}

// Stats reads the client's counters now. Safe from any goroutine.
func (c *Client) Stats() Stats {
	c.statsMu.Lock()
	pcs := make([]*webrtc.PeerConnection, 0, len(c.pcs))
	for pc := range c.pcs {
		pcs = append(pcs, pc)
	}
	out, in := c.rtp.Out(), c.rtp.In()
	st := Stats{Joined: c.joinRTT, FirstMedia: c.first, PacketsSent: out.Packets, BytesSent: out.Bytes,
		PacketsRecv: in.Packets, BytesRecv: in.Bytes, PacketsLost: c.gone.lost, NACKsSent: c.gone.nacks}
	c.statsMu.Unlock()
	for _, pc := range pcs {
		st.Connections++
		if pc.ConnectionState() == webrtc.PeerConnectionStateConnected {
			st.Connected++
		}
		if pair, err := pc.SCTP().Transport().ICETransport().GetSelectedCandidatePair(); err == nil && pair != nil &&
			(pair.Local.Typ == webrtc.ICECandidateTypeRelay || pair.Remote.Typ == webrtc.ICECandidateTypeRelay) {
			st.Relayed++
		}
		for _, s := range pc.GetStats() {
			switch s := s.(type) {
			case webrtc.InboundRTPStreamStats:
				st.InboundStreams++
				st.PacketsLost += int64(s.PacketsLost)
				st.NACKsSent += s.NACKCount
				st.JitterSeconds = max(st.JitterSeconds, s.Jitter)
			}
		}
	}
	return st
}

// losses are what one connection's inbound streams reported lost.
type losses struct {
	lost  int64
	nacks uint32
}

func (l *losses) add(o losses) {
	l.lost += o.lost
	l.nacks += o.nacks
}

func lossesOf(pc *webrtc.PeerConnection) losses {
	var l losses
	for _, s := range pc.GetStats() {
		if s, ok := s.(webrtc.InboundRTPStreamStats); ok {
			l.add(losses{int64(s.PacketsLost), s.NACKCount})
		}
	}
	return l
}
