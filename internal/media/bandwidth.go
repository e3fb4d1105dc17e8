package media

import (
	"math"
	"time"

	"github.com/pion/webrtc/v4"
)

// Bandwidth control towards a subscriber.
//
// Browsers that negotiated goog-remb send their receive-side bandwidth
// estimate (REMB) for the subscribe connection. Such an estimate never
// rises much above what it is sent (libwebrtc caps it near 1.5 times the
// incoming rate), so it cannot say how much more would fit; it does say
// when less fits: an estimate clearly below what the SFU sends means the
// path is congested. The SFU then steps video down one layer at a time,
// the largest camera first; once every camera is on its smallest layer
// and a screen share is being forwarded, cameras are paused so the screen
// share (one layer, the most useful picture in a talk) keeps flowing.
// After BandwidthProbeInterval without congestion one step is undone; if
// that congests again, it is taken back.

const (
	// congestedBelow: an estimate under this share of the sent bitrate
	// counts as congestion.
	congestedBelow = 0.85
	// congestedTicks: congestion must persist this many room ticks before
	// video is lowered (keyframes make single readings noisy).
	congestedTicks = 3
	// rembFresh: an estimate older than this is ignored.
	rembFresh = 3 * time.Second
	// stepGap is the least time between two downward steps, so each step
	// shows its effect in the estimate before the next.
	stepGap = time.Second
)

// onREMB records a subscriber's bandwidth estimate (bits per second).
func (p *Peer) onREMB(bitrate float32) {
	if bitrate < 0 || math.IsNaN(float64(bitrate)) {
		return
	}
	p.sfu.metrics.rembs.Add(1)
	p.remb.Store(uint64(min(float64(bitrate), math.MaxUint32)))
	p.rembAt.Store(p.sfu.now())
}

// balanceBandwidth runs on the room goroutine every tick: it lowers the
// video this subscriber gets while its estimate says the path is
// congested, and lets it back up after a quiet while.
func (p *Peer) balanceBandwidth(now int64) {
	at := p.rembAt.Load()
	if at == 0 {
		return // no estimate from this subscriber: tile sizes and loss decide
	}
	downs := p.subscriptions()
	var sent uint64
	for _, d := range downs {
		sent += d.sendingBitrate(now)
	}
	congested := now-at < int64(rembFresh) && float64(p.remb.Load()) < congestedBelow*float64(sent)
	if congested {
		p.bwBad++
	} else {
		p.bwBad = 0
	}
	switch {
	case p.bwBad >= congestedTicks && now-p.bwStepAt >= int64(stepGap):
		if d := lowerOne(downs); d != nil {
			p.sfu.metrics.bwLimits.Add(1)
			p.log.Debug("bandwidth: lowering video", "track", d.ID(), "estimate", p.remb.Load(), "sent", sent)
			p.bwStepAt, p.bwBad = now, 0
			d.refreshTarget(now)
		}
	case !congested && now-p.bwStepAt >= int64(p.sfu.cfg.BandwidthProbeInterval):
		if d := raiseOne(downs, now); d != nil {
			p.log.Debug("bandwidth: raising video", "track", d.ID())
			p.bwStepAt = now
			d.refreshTarget(now)
		}
	}
}

// subscriptions lists the peer's current downTracks.
func (p *Peer) subscriptions() []*downTrack {
	p.subMu.Lock()
	defer p.subMu.Unlock()
	downs := make([]*downTrack, 0, len(p.downs))
	for d := range p.downs {
		downs = append(downs, d)
	}
	return downs
}

// lowerOne takes one step down: the camera on the highest layer drops a
// layer; with every camera on its lowest layer and a screen share
// flowing, one camera is paused. It returns the track changed, or nil.
func lowerOne(downs []*downTrack) *downTrack {
	var best *downTrack
	bestLayer, screen := 0, false
	for _, d := range downs {
		if d.up.kind != webrtc.RTPCodecTypeVideo {
			continue
		}
		d.mu.Lock()
		cur, bw := d.cur, d.bwMax
		d.mu.Unlock()
		if d.up.tile == sourceScreen {
			screen = screen || cur >= 0
			continue
		}
		if cur > bestLayer && bw >= cur {
			best, bestLayer = d, cur
		}
	}
	if best != nil {
		best.mu.Lock()
		best.bwMax = bestLayer - 1
		best.mu.Unlock()
		return best
	}
	if !screen {
		return nil // the smallest camera layers stay: nothing is worth more
	}
	for _, d := range downs {
		if d.up.kind != webrtc.RTPCodecTypeVideo || d.up.tile == sourceScreen {
			continue
		}
		d.mu.Lock()
		paused := d.bwMax < 0
		if !paused && d.cur >= 0 {
			d.bwMax = -1
		}
		d.mu.Unlock()
		if !paused {
			return d
		}
	}
	return nil
}

// raiseOne undoes one step: a paused camera comes back first, then the
// most lowered one gains a layer, if its tile wants more than its cap.
func raiseOne(downs []*downTrack, now int64) *downTrack {
	var best *downTrack
	bestCap := maxLayers
	for _, d := range downs {
		if d.up.kind != webrtc.RTPCodecTypeVideo {
			continue
		}
		w, h, visible := d.sub.tileSize(d.up.pub.id, d.up.tile)
		d.mu.Lock()
		capped := d.bwMax < maxLayers-1 && visible &&
			(d.bwMax < 0 || d.chooseLayer(w, h, now, d.maxLayer) > d.bwMax)
		bw := d.bwMax
		d.mu.Unlock()
		if capped && bw < bestCap {
			best, bestCap = d, bw
		}
	}
	if best != nil {
		best.mu.Lock()
		best.bwMax++
		best.mu.Unlock()
	}
	return best
}

// sendingBitrate is the bitrate of what d forwards now (bits per second).
func (d *downTrack) sendingBitrate(now int64) uint64 {
	d.mu.Lock()
	cur, bound := d.cur, d.writer != nil
	d.mu.Unlock()
	l := d.up.layer(cur)
	if !bound || !l.active(now) {
		return 0
	}
	return l.bitrate.Load()
}

// firstMedia records, once per peer, how long after its first
// subscription the first media packet was forwarded to it.
func (p *Peer) firstMedia(wait int64) {
	if p.gotMedia.CompareAndSwap(false, true) {
		p.sfu.metrics.firstMediaCount.Add(1)
		p.sfu.metrics.firstMedia.Observe(time.Duration(wait).Seconds())
	}
}
