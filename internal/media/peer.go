package media

import (
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/webrtc/v4"
)

// Tile is the rendered size of one remote video at a subscriber.
type Tile struct {
	Participant string
	Source      string // "camera" or "screen"
	Width       int    // device pixels
	Height      int
}

type tileKey struct{ participant, source string }

// Peer is one participant's media: a publish and a subscribe connection.
// A WHIP publisher's Peer has only the publish connection, and a WHEP
// viewer is a Peer with only a subscribe connection that the client
// offered (whep.go).
type Peer struct {
	id     string
	sfu    *SFU
	room   *sfuRoom
	log    *slog.Logger
	events PeerEvents
	// pubPC is made on the first Publish when lazyPub (guarded by pubMu
	// until then); nil for a viewer.
	pubPC   *webrtc.PeerConnection
	lazyPub bool
	subPC   *webrtc.PeerConnection // nil for a publisher-only peer
	viewer  bool                   // a WHEP viewer: in sfuRoom.viewers, not peers

	done      chan struct{}
	closeOnce sync.Once
	closeMu   sync.Mutex // guards closed and wg.Add
	closed    bool
	wg        sync.WaitGroup // goroutines of this peer

	mute [3]atomic.Bool // microphone, camera, screen: true = not sending

	srcMu   sync.Mutex
	sources map[string]string // publisher track id → source

	// publish connection, guarded by pubMu
	pubMu        sync.Mutex
	pubRemoteSet bool
	pubGathered  bool
	pubCands     []webrtc.ICECandidateInit
	pubSDPOut    atomic.Bool // an answer was handed out: trickle from now on

	// subscribe connection: negMu serializes negotiation with pion; subMu
	// guards the bookkeeping below.
	negMu            sync.Mutex
	subGathered      bool
	subMu            sync.Mutex
	downs            map[*downTrack]bool // current subscriptions
	pendingAdd       []*downTrack
	pendingRemove    []*downTrack
	offerOutstanding bool
	needOffer        bool // offer even without queued changes
	subRemoteSet     bool
	subCands         []webrtc.ICECandidateInit
	subSDPOut        atomic.Bool
	kick             chan struct{}

	layoutMu  sync.Mutex
	layoutSet bool
	layout    map[tileKey]Tile

	// bandwidth control (bandwidth.go): the latest estimate from the
	// subscriber; bwBad and bwStepAt are owned by the room goroutine.
	remb     atomic.Uint64
	rembAt   atomic.Int64
	bwBad    int
	bwStepAt int64
	gotMedia atomic.Bool // the first media packet was forwarded to it
}

func newPeer(s *SFU, id string, pub, sub *webrtc.PeerConnection, pe PeerEvents) *Peer {
	return &Peer{
		id:      id,
		sfu:     s,
		log:     s.log,
		events:  pe,
		pubPC:   pub,
		subPC:   sub,
		done:    make(chan struct{}),
		sources: map[string]string{},
		downs:   map[*downTrack]bool{},
		kick:    make(chan struct{}, 1),
		layout:  map[tileKey]Tile{},
	}
}

// ID is the participant id.
func (p *Peer) ID() string { return p.id }

// start installs the connection handlers and, for a peer the SFU offers
// to, the negotiation goroutine.
func (p *Peer) start() {
	if p.pubPC != nil {
		p.watchPub(p.pubPC)
	}
	if p.subPC != nil {
		p.subPC.OnICECandidate(func(c *webrtc.ICECandidate) { p.candidate("sub", &p.subSDPOut, c) })
		p.subPC.OnConnectionStateChange(func(s webrtc.PeerConnectionState) { p.stateChange("sub", s) })
	}
	// A viewer's one negotiation is done by View; a publisher-only peer
	// has nothing to negotiate.
	if p.subPC == nil || p.viewer {
		return
	}
	if p.goAdd() {
		go p.negotiateLoop()
	}
	p.kickNegotiation()
}

// watchPub installs the publish connection's handlers.
func (p *Peer) watchPub(pc *webrtc.PeerConnection) {
	pc.OnTrack(p.onTrack)
	pc.OnICECandidate(func(c *webrtc.ICECandidate) { p.candidate("pub", &p.pubSDPOut, c) })
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) { p.stateChange("pub", s) })
}

// ensurePub makes the publish connection on first use. Called with pubMu
// held.
func (p *Peer) ensurePub() error {
	if p.pubPC != nil {
		return nil
	}
	if !p.lazyPub {
		return ErrUnknownPC
	}
	conf, err := p.sfu.pcConfig()
	if err != nil {
		return err
	}
	pc, err := p.sfu.api.NewPeerConnection(conf)
	if err != nil {
		return fmt.Errorf("media: publish connection: %w", err)
	}
	p.watchPub(pc)
	p.pubPC = pc
	return nil
}

// subscribes reports whether the room should forward other participants'
// tracks to p as they are published (not to WHIP publishers, which only
// send, nor to WHEP viewers, which watch one chosen participant).
func (p *Peer) subscribes() bool { return p.subPC != nil && !p.viewer }

// Done is closed when the peer has closed: by Close, or by itself after
// its connection failed or the client closed it.
func (p *Peer) Done() <-chan struct{} { return p.done }

// goAdd counts a goroutine of p, unless p is closing.
func (p *Peer) goAdd() bool {
	p.closeMu.Lock()
	defer p.closeMu.Unlock()
	if p.closed {
		return false
	}
	p.wg.Add(1)
	return true
}

func (p *Peer) isClosed() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *Peer) candidate(pc string, sdpOut *atomic.Bool, c *webrtc.ICECandidate) {
	// Candidates gathered before the SDP was handed out are in it.
	if p.events.Candidate == nil || !sdpOut.Load() || p.isClosed() {
		return
	}
	if c == nil {
		p.events.Candidate(pc, nil)
		return
	}
	init := c.ToJSON()
	p.events.Candidate(pc, &init)
}

func (p *Peer) stateChange(pc string, s webrtc.PeerConnectionState) {
	if p.events.State != nil && !p.isClosed() {
		p.events.State(pc, s)
	}
	// A failed connection, or one the remote closed (DTLS close_notify),
	// does not come back: clean up now rather than when the room notices.
	if (s == webrtc.PeerConnectionStateFailed || s == webrtc.PeerConnectionStateClosed) && !p.isClosed() {
		p.log.Info("connection ended, closing peer", "pc", pc, "state", s)
		go p.Close()
	}
}

func sourceIndex(source string) int {
	switch source {
	case sourceMicrophone:
		return 0
	case sourceCamera:
		return 1
	}
	return 2
}

// sending reports whether source is not muted.
func (p *Peer) sending(source string) bool { return !p.mute[sourceIndex(source)].Load() }

// sourceOf says which source a received track is, from Publish's sources,
// else by guess: audio is the microphone, the first video the camera.
func (p *Peer) sourceOf(tr *webrtc.TrackRemote, hasCamera bool) string {
	p.srcMu.Lock()
	s, ok := p.sources[tr.ID()]
	p.srcMu.Unlock()
	if ok {
		return s
	}
	if tr.Kind() == webrtc.RTPCodecTypeAudio {
		return sourceMicrophone
	}
	if hasCamera {
		return sourceScreen
	}
	return sourceCamera
}

// Publish applies the client's offer on the publish connection (the first
// one and every renegotiation) and returns the answer. sources maps each
// sent MediaStreamTrack id to "microphone", "camera" or "screen"; entries
// accumulate over calls. Simulcast camera video is expected as rids q, h, f.
func (p *Peer) Publish(offerSDP string, sources map[string]string) (string, error) {
	if p.isClosed() {
		return "", ErrClosed
	}
	for id, s := range sources {
		if s != sourceMicrophone && s != sourceCamera && s != sourceScreen {
			return "", fmt.Errorf("%w: %q for track %q", ErrBadSource, s, id)
		}
	}
	p.srcMu.Lock()
	for id, s := range sources {
		p.sources[id] = s
	}
	p.srcMu.Unlock()

	p.pubMu.Lock()
	defer p.pubMu.Unlock()
	if p.isClosed() {
		return "", ErrClosed // Close may have run while we waited for pubMu
	}
	if err := p.ensurePub(); err != nil {
		return "", err
	}
	if err := p.pubPC.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offerSDP}); err != nil {
		return "", fmt.Errorf("media: publish offer: %w", err)
	}
	if !p.pubRemoteSet {
		p.pubRemoteSet = true
		for _, c := range p.pubCands {
			if err := p.pubPC.AddICECandidate(c); err != nil {
				p.log.Debug("queued candidate", "pc", "pub", "err", err)
			}
		}
		p.pubCands = nil
	}
	answer, err := p.pubPC.CreateAnswer(nil)
	if err != nil {
		return "", fmt.Errorf("media: publish answer: %w", err)
	}
	if err := p.pubPC.SetLocalDescription(answer); err != nil {
		return "", fmt.Errorf("media: publish answer: %w", err)
	}
	if !p.pubGathered {
		p.pubGathered = true
		p.waitGathering(p.pubPC)
	}
	p.pubSDPOut.Store(true)
	return p.pubPC.LocalDescription().SDP, nil
}

// waitGathering waits (bounded) for host candidates, so the SDP carries
// them and the client needs no trickle from us.
func (p *Peer) waitGathering(pc *webrtc.PeerConnection) {
	if pc.ICEGatheringState() == webrtc.ICEGatheringStateComplete {
		return
	}
	t := time.NewTimer(p.sfu.cfg.GatherTimeout)
	defer t.Stop()
	select {
	case <-webrtc.GatheringCompletePromise(pc):
	case <-t.C:
	case <-p.done:
	}
}

// AnswerSubscriber applies the client's answer to the last Offer.
func (p *Peer) AnswerSubscriber(answerSDP string) error {
	if p.isClosed() {
		return ErrClosed
	}
	p.negMu.Lock()
	p.subMu.Lock()
	outstanding := p.offerOutstanding
	p.subMu.Unlock()
	if !outstanding {
		p.negMu.Unlock()
		return ErrNoOffer
	}
	err := p.subPC.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answerSDP})
	p.subMu.Lock()
	p.offerOutstanding = false
	if err != nil {
		// pion cannot roll back a local offer: the same offer is sent
		// again for the client to answer properly.
		p.needOffer = true
	}
	if err == nil && !p.subRemoteSet {
		p.subRemoteSet = true
		for _, c := range p.subCands {
			if cErr := p.subPC.AddICECandidate(c); cErr != nil {
				p.log.Debug("queued candidate", "pc", "sub", "err", cErr)
			}
		}
		p.subCands = nil
	}
	p.subMu.Unlock()
	p.negMu.Unlock()
	p.kickNegotiation()
	if err != nil {
		return fmt.Errorf("media: subscriber answer: %w", err)
	}
	return nil
}

// AddCandidate adds a remote ICE candidate for pc "pub" or "sub". An empty
// candidate (end of gathering) is ignored. Candidates that arrive before
// the connection's remote description are queued.
func (p *Peer) AddCandidate(pc string, c webrtc.ICECandidateInit) error {
	if p.isClosed() {
		return ErrClosed
	}
	if c.Candidate == "" {
		return nil
	}
	const maxQueued = 64
	switch {
	case pc == "pub":
		p.pubMu.Lock()
		defer p.pubMu.Unlock()
		if p.pubPC == nil && !p.lazyPub {
			return ErrUnknownPC
		}
		if !p.pubRemoteSet {
			if len(p.pubCands) < maxQueued {
				p.pubCands = append(p.pubCands, c)
			}
			return nil
		}
		return p.pubPC.AddICECandidate(c)
	case pc == "sub" && p.subPC != nil && p.viewer:
		// View set the client's offer before anyone could trickle;
		// negMu keeps a candidate out of the middle of a RestartICE.
		p.negMu.Lock()
		defer p.negMu.Unlock()
		return p.subPC.AddICECandidate(c)
	case pc == "sub" && p.subPC != nil:
		p.subMu.Lock()
		if !p.subRemoteSet {
			if len(p.subCands) < maxQueued {
				p.subCands = append(p.subCands, c)
			}
			p.subMu.Unlock()
			return nil
		}
		p.subMu.Unlock()
		return p.subPC.AddICECandidate(c)
	}
	return ErrUnknownPC
}

// SetSending sets which of the participant's sources are forwarded;
// false = muted (packets are dropped). Unmuting video waits for, and asks
// for, a keyframe. All sources are forwarded until the first call.
func (p *Peer) SetSending(audio, video, screen bool) {
	var resumed [3]bool
	for i, on := range [3]bool{audio, video, screen} {
		wasMuted := p.mute[i].Swap(!on)
		resumed[i] = on && wasMuted
	}
	if resumed == [3]bool{} {
		return
	}
	for _, u := range p.room.snapshot() {
		if u.pub != p || !resumed[sourceIndex(u.source)] {
			continue
		}
		for _, d := range *u.subs.Load() {
			d.resume()
		}
		if u.kind == webrtc.RTPCodecTypeVideo {
			u.requestKeyframeAll()
		}
	}
}

// SetLayout records the subscriber's rendered video sizes. A video not
// listed, or 0×0, is hidden and not forwarded. Until the first call every
// video is treated as visible at 640×360.
func (p *Peer) SetLayout(tiles []Tile) {
	p.layoutMu.Lock()
	p.layoutSet = true
	clear(p.layout)
	for _, t := range tiles {
		p.layout[tileKey{t.Participant, t.Source}] = t
	}
	p.layoutMu.Unlock()
	now := p.sfu.now()
	for _, d := range p.subscriptions() {
		d.refreshTarget(now)
	}
}

func (p *Peer) tileSize(participant, source string) (w, h int, visible bool) {
	p.layoutMu.Lock()
	defer p.layoutMu.Unlock()
	if !p.layoutSet {
		return 640, 360, true
	}
	t, ok := p.layout[tileKey{participant, source}]
	if !ok || t.Width <= 0 || t.Height <= 0 {
		return 0, 0, false
	}
	return t.Width, t.Height, true
}

// onTrack runs, in its own goroutine, for each stream the publisher sends
// (each simulcast layer): it publishes the track and forwards until the
// stream ends.
func (p *Peer) onTrack(tr *webrtc.TrackRemote, recv *webrtc.RTPReceiver) {
	if !p.goAdd() {
		return
	}
	defer p.wg.Done()
	u, l := p.room.attach(p, tr, recv)
	if l == nil {
		if u != nil {
			p.sfu.metrics.drop(dropNoLayer)
			p.log.Warn("ignoring extra simulcast encoding", "rid", tr.RID())
		}
		return
	}
	if rec := p.sfu.recorder(p.room.id); rec != nil {
		u.tap(rec) // a track published while the room records
	}
	if p.goAdd() {
		go func() {
			defer p.wg.Done()
			u.readRTCP(l)
		}()
	}
	if u.kind == webrtc.RTPCodecTypeVideo {
		l.requestKeyframe()
	}
	u.readRTP(l)
	if u.layerEnded(l) {
		p.room.unpublish(u)
	}
}

// queueAdd queues a new subscription for the next negotiation.
func (p *Peer) queueAdd(d *downTrack) {
	p.subMu.Lock()
	p.downs[d] = true
	p.pendingAdd = append(p.pendingAdd, d)
	p.subMu.Unlock()
	p.kickNegotiation()
}

// queueRemove queues the removal of a subscription.
func (p *Peer) queueRemove(d *downTrack) {
	p.subMu.Lock()
	delete(p.downs, d)
	if p.viewer {
		// A WHEP player cannot be sent a new offer: the track just stops.
		// With nothing left to play the viewer ends, so the player learns
		// it (its connection closes) and can ask for someone else.
		left := len(p.downs)
		p.subMu.Unlock()
		if left == 0 && !p.isClosed() {
			p.log.Info("viewer's publisher stopped sending; closing viewer")
			go p.Close()
		}
		return
	}
	for i, x := range p.pendingAdd {
		if x == d { // never negotiated: nothing to undo
			p.pendingAdd = append(p.pendingAdd[:i], p.pendingAdd[i+1:]...)
			p.subMu.Unlock()
			return
		}
	}
	p.pendingRemove = append(p.pendingRemove, d)
	p.subMu.Unlock()
	p.kickNegotiation()
}

func (p *Peer) kickNegotiation() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

func (p *Peer) negotiateLoop() {
	defer p.wg.Done()
	for {
		select {
		case <-p.done:
			return
		case <-p.kick:
			// Offer is called outside negMu, so a callee that answers at
			// once, in the same goroutine, does not deadlock. No other
			// offer can be made before that answer.
			if sdp := p.negotiate(); sdp != "" && p.events.Offer != nil && !p.isClosed() {
				p.events.Offer(sdp)
			}
		}
	}
}

// negotiate applies queued subscription changes and returns the offer to
// send, unless an offer is outstanding (then AnswerSubscriber kicks
// again) or nothing changed.
func (p *Peer) negotiate() string {
	p.negMu.Lock()
	defer p.negMu.Unlock()
	if p.isClosed() {
		return ""
	}
	p.subMu.Lock()
	if p.offerOutstanding || (len(p.pendingAdd)+len(p.pendingRemove) == 0 && !p.needOffer) {
		p.subMu.Unlock()
		return ""
	}
	if p.subPC.SignalingState() == webrtc.SignalingStateHaveLocalOffer {
		// The last answer did not apply: offer the same again; queued
		// changes wait for the answer to it.
		p.needOffer, p.offerOutstanding = false, true
		p.subMu.Unlock()
		return p.subPC.LocalDescription().SDP
	}
	adds, removes := p.pendingAdd, p.pendingRemove
	p.pendingAdd, p.pendingRemove, p.needOffer = nil, nil, false
	p.subMu.Unlock()

	for _, d := range removes {
		if d.sender != nil {
			if err := p.subPC.RemoveTrack(d.sender); err != nil {
				p.log.Debug("remove track", "track", d.ID(), "err", err)
			}
		}
	}
	for _, d := range adds {
		sender, err := p.subPC.AddTrack(d)
		if err != nil {
			p.log.Warn("add track", "track", d.ID(), "err", err)
			continue
		}
		d.sender = sender
		if p.goAdd() {
			go func() {
				defer p.wg.Done()
				d.readRTCP(sender)
			}()
		}
	}
	offer, err := p.subPC.CreateOffer(nil)
	if err == nil {
		err = p.subPC.SetLocalDescription(offer)
	}
	if err != nil {
		if !p.isClosed() {
			p.log.Warn("subscriber offer", "err", err)
			p.subMu.Lock()
			p.needOffer = true // retried on the next change or answer
			p.subMu.Unlock()
		}
		return ""
	}
	if !p.subGathered {
		p.subGathered = true
		p.waitGathering(p.subPC)
	}
	p.subMu.Lock()
	p.offerOutstanding = true
	p.subMu.Unlock()
	p.subSDPOut.Store(true)
	return p.subPC.LocalDescription().SDP
}

// negotiationStats is for Stats: bound subscriptions, whether an offer is
// outstanding, whether changes wait behind it.
func (p *Peer) negotiationStats() (bound int, outstanding, pending bool) {
	p.subMu.Lock()
	outstanding = p.offerOutstanding
	pending = len(p.pendingAdd)+len(p.pendingRemove) > 0
	p.subMu.Unlock()
	for _, d := range p.subscriptions() {
		if d.isBound() {
			bound++
		}
	}
	return bound, outstanding, pending
}

// Close ends the peer: its tracks leave every subscriber (who
// renegotiate), both connections close, and its goroutines exit before
// Close returns. It is idempotent; concurrent calls wait for the first.
func (p *Peer) Close() {
	p.closeOnce.Do(func() {
		p.closeMu.Lock()
		p.closed = true
		close(p.done)
		p.closeMu.Unlock()
		if p.viewer {
			p.room.removeViewer(p)
		} else {
			p.room.removePeer(p)
		}
		// A Publish in progress ends (it waits on done), so pubMu comes
		// free; one starting later sees the peer closed.
		p.pubMu.Lock()
		pub := p.pubPC
		p.pubMu.Unlock()
		if pub != nil {
			if err := pub.GracefulClose(); err != nil {
				p.log.Debug("close publish connection", "err", err)
			}
		}
		if p.subPC != nil {
			if err := p.subPC.GracefulClose(); err != nil {
				p.log.Debug("close subscribe connection", "err", err)
			}
		}
		p.wg.Wait()
		if p.viewer {
			p.sfu.metrics.viewers.Add(-1)
		} else {
			p.sfu.metrics.peers.Add(-1)
		}
		p.log.Debug("peer closed")
	})
}
