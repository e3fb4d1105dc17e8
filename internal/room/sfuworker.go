package room

// The SFU worker of a socket. Negotiation takes milliseconds (an offer
// waits for ICE gathering), so it runs off the room goroutine, and off the
// reader (which must keep answering pings): each socket has one worker goroutine,
// sfuLoop, fed by one ordered queue. Into it go, in order, the client's
// messages for the SFU (from the reader) and the room's changes of the
// participant's SFU connections (setPeer) and answers to the worker
// (resolveSFU). A message that finds no connections waits in the worker
// (a client may answer joined or topology before the room made them)
// until either they come or the room, asked in its own order, says
// there are none: so an early offer and the candidates after it reach the
// SFU in the order the client sent them.

import (
	"context"
	"sync"

	"github.com/pion/webrtc/v4"

	"github.com/parley/parley/internal/media"
	"github.com/parley/parley/internal/signaling"
)

// setPeer makes peer (nil: none) the participant's SFU connections, and
// queues it for the socket's SFU worker, which applies the messages that
// follow to it. Room goroutine.
func (c *socket) setPeer(peer MediaPeer) {
	c.peer = peer
	c.sfu.push(sfuItem{kind: sfuSetPeer, peer: peer})
}

// sfuItemKind says what an sfuItem carries.
type sfuItemKind int

const (
	sfuMessage sfuItemKind = iota // msg, from the reader
	sfuSetPeer                    // peer (nil: none), from the room
	sfuNone                       // seq: the room has no peer for the messages up to seq
)

type sfuItem struct {
	kind sfuItemKind
	msg  signaling.Message
	peer MediaPeer
	seq  uint64
}

// maxSFUQueue bounds the messages a client may have waiting for its SFU
// worker (the rate limit bounds how fast they come).
const maxSFUQueue = 512

// sfuQueue is an unbounded FIFO the room can push to without ever
// blocking; the reader's pushes are bounded by maxSFUQueue. A nil queue
// (a WHIP participant's) takes nothing.
type sfuQueue struct {
	mu    sync.Mutex
	items []sfuItem
	wake  chan struct{} // one token: items is not empty
}

func newSFUQueue(socket bool) *sfuQueue {
	if !socket {
		return nil
	}
	return &sfuQueue{wake: make(chan struct{}, 1)}
}

// push appends it; false if a message did not fit.
func (q *sfuQueue) push(it sfuItem) bool {
	if q == nil {
		return true
	}
	q.mu.Lock()
	if it.kind == sfuMessage && len(q.items) >= maxSFUQueue {
		q.mu.Unlock()
		return false
	}
	q.items = append(q.items, it)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
	return true
}

// take waits for items and returns them all, or nil once ctx is done.
func (q *sfuQueue) take(ctx context.Context) []sfuItem {
	for {
		q.mu.Lock()
		items := q.items
		q.items = nil
		q.mu.Unlock()
		if len(items) > 0 {
			return items
		}
		select {
		case <-q.wake:
		case <-ctx.Done():
			return nil
		}
	}
}

// toSFU queues a message for the SFU (reader goroutine).
func (c *socket) toSFU(m signaling.Message) {
	if !c.sfu.push(sfuItem{kind: sfuMessage, msg: m}) {
		c.refuse(signaling.CodeRateLimited, m.Type, "too many messages for the media server are waiting; this one was dropped")
	}
}

// waiting is a message for the SFU that found no connections.
type waiting struct {
	seq uint64
	msg signaling.Message
}

// sfuLoop is the socket's SFU worker (see above); it returns once ctx
// is done.
func (c *socket) sfuLoop(ctx context.Context, r *call) {
	var (
		peer    MediaPeer
		pending []waiting
		seq     uint64
	)
	for {
		items := c.sfu.take(ctx)
		if items == nil {
			return
		}
		for _, it := range items {
			switch it.kind {
			case sfuSetPeer:
				peer = it.peer
				if peer != nil {
					for _, w := range pending {
						c.applySFU(peer, w.msg)
					}
					pending = nil
				}
			case sfuNone:
				for len(pending) > 0 && pending[0].seq <= it.seq {
					c.noSFU(pending[0].msg)
					pending = pending[1:]
				}
			case sfuMessage:
				if peer != nil {
					c.applySFU(peer, it.msg)
					continue
				}
				seq++
				pending = append(pending, waiting{seq: seq, msg: it.msg})
				n := seq
				r.post(func() { r.resolveSFU(c, n) })
			}
		}
	}
}

// resolveSFU answers a worker whose messages up to seq found no SFU
// connections: now that the room has done everything that came before,
// either the connections exist (and setPeer already handed them over)
// or there are none. Room goroutine.
func (r *call) resolveSFU(c *socket, seq uint64) {
	if c.peer == nil {
		c.sfu.push(sfuItem{kind: sfuNone, seq: seq})
	}
}

// noSFU answers a message for the SFU while the participant has no SFU
// connections.
func (c *socket) noSFU(m signaling.Message) {
	if m.Type == signaling.TypeCandidate || m.Type == signaling.TypeLayout {
		return // late candidates or layout after a switch back to the mesh
	}
	c.refuse(signaling.CodeInvalid, m.Type, "the call is not using the media server right now (topology is mesh)")
}

// applySFU applies a client's message to its SFU connections (SFU worker).
func (c *socket) applySFU(peer MediaPeer, m signaling.Message) {
	switch m.Type {
	case signaling.TypeOffer:
		if !c.mayPublish() {
			c.refuse(signaling.CodeForbidden, m.Type, "your join token does not allow sending media (publish)")
			return
		}
		answer, err := peer.Publish(m.SDP, m.Sources)
		if err != nil {
			c.log.Info("publish offer refused", "err", err)
			c.refuse(signaling.CodeInvalid, m.Type, "the media server could not use your offer: %v", err)
			return
		}
		c.sendMsg(signaling.Message{Type: signaling.TypeAnswer, From: signaling.SFU, PC: signaling.PCPublish, SDP: answer})
	case signaling.TypeAnswer:
		if err := peer.AnswerSubscriber(m.SDP); err != nil {
			c.log.Info("subscriber answer refused", "err", err)
			c.refuse(signaling.CodeInvalid, m.Type, "the media server could not use your answer: %v", err)
		}
	case signaling.TypeCandidate:
		if m.EndOfICE {
			return
		}
		ci := webrtc.ICECandidateInit{Candidate: m.Candidate.Candidate, SDPMid: m.Candidate.SDPMid, SDPMLineIndex: m.Candidate.SDPMLineIndex, UsernameFragment: m.Candidate.UsernameFragment}
		if err := peer.AddCandidate(m.PC, ci); err != nil {
			c.log.Debug("candidate refused", "err", err)
		}
	case signaling.TypeLayout:
		tiles := make([]media.Tile, len(m.Tiles))
		for i, t := range m.Tiles {
			tiles[i] = media.Tile{Participant: t.Participant, Source: t.Source, Width: t.Width, Height: t.Height}
		}
		peer.SetLayout(tiles)
	}
}
