package media

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/parley/parley/internal/pionlog"
	"github.com/parley/parley/internal/testtool"
)

// testLog shows errors on stderr (pion's teardown warnings are noise
// here); PARLEY_MEDIA_DEBUG=1 shows everything.
func testLog() *slog.Logger {
	level := slog.LevelError
	if os.Getenv("PARLEY_MEDIA_DEBUG") != "" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

func newTestSFU(t testing.TB, mod func(*Config)) *SFU {
	t.Helper()
	cfg := Config{LoopbackOnly: true}
	if mod != nil {
		mod(&cfg)
	}
	s, err := New(cfg, testLog(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// lossyConn wraps a client's UDP socket. It can drop every n-th incoming
// RTP packet larger than 300 bytes (video; retransmissions included), or
// sink all incoming RTP and RTCP so a benchmark's subscribers cost only
// the receive system call.
type lossyConn struct {
	*net.UDPConn
	dropEvery      atomic.Int64
	dropEveryWrite atomic.Int64 // the same for outgoing RTP
	writeCount     atomic.Int64
	sink           atomic.Bool
	count          atomic.Int64
	dropped        atomic.Int64
}

// ReadFrom is the only method pion's UDP mux reads with (the wrapper hides
// UDPConn's others). It reads with ReadFromUDPAddrPort, which does not
// allocate, so dropped packets cost nothing but the system call.
func (c *lossyConn) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		n, ap, err := c.UDPConn.ReadFromUDPAddrPort(b)
		if err != nil {
			return n, nil, err
		}
		addr := func() net.Addr { return net.UDPAddrFromAddrPort(ap) }
		if n < 2 || b[0] < 128 || b[0] > 191 { // not RTP/RTCP (RFC 7983)
			return n, addr(), nil
		}
		if c.sink.Load() {
			continue
		}
		isRTCP := b[1] >= 192 && b[1] <= 223
		if k := c.dropEvery.Load(); k > 0 && !isRTCP && n > 300 && c.count.Add(1)%k == 0 {
			c.dropped.Add(1)
			continue
		}
		return n, addr(), nil
	}
}

// packetConn hides every method but net.PacketConn's, so pion uses
// ReadFrom above.
type packetConn struct{ *lossyConn }

func (p packetConn) ReadFrom(b []byte) (int, net.Addr, error) { return p.lossyConn.ReadFrom(b) }
func (p packetConn) WriteTo(b []byte, a net.Addr) (int, error) {
	c := p.lossyConn
	if k := c.dropEveryWrite.Load(); k > 0 && len(b) > 300 && b[0] >= 128 && b[0] <= 191 &&
		!(b[1] >= 192 && b[1] <= 223) && c.writeCount.Add(1)%k == 0 {
		c.dropped.Add(1)
		return len(b), nil // lost on the way
	}
	return c.UDPConn.WriteTo(b, a)
}
func (p packetConn) Close() error                      { return p.lossyConn.UDPConn.Close() }
func (p packetConn) LocalAddr() net.Addr               { return p.lossyConn.UDPConn.LocalAddr() }
func (p packetConn) SetDeadline(t time.Time) error     { return p.lossyConn.UDPConn.SetDeadline(t) }
func (p packetConn) SetReadDeadline(t time.Time) error { return p.lossyConn.UDPConn.SetReadDeadline(t) }
func (p packetConn) SetWriteDeadline(t time.Time) error {
	return p.lossyConn.UDPConn.SetWriteDeadline(t)
}

// newClientAPI is a browser-like pion API: default codecs and
// interceptors (NACK generator, reports, TWCC), audio level, loopback
// only, UDP on conn (or TCP only if conn is nil).
func newClientAPI(t testing.TB, conn net.PacketConn) *webrtc.API {
	t.Helper()
	me := &webrtc.MediaEngine{}
	if err := me.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	if err := me.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: sdp.AudioLevelURI}, webrtc.RTPCodecTypeAudio); err != nil {
		t.Fatal(err)
	}
	ir := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(me, ir); err != nil {
		t.Fatal(err)
	}
	logs := pionlog.Factory{Log: testLog().With("side", "client"), Down: pionlog.Step}
	se := webrtc.SettingEngine{LoggerFactory: logs}
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	// As libwebrtc: a late retransmission must not fall out of the SRTP
	// replay window (pion's default is 64 packets).
	se.SetSRTPReplayProtectionWindow(1024)
	if conn == nil { // ICE-TCP only: active TCP candidates towards the SFU's passive ones
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeTCP4})
	} else {
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
		se.SetICEUDPMux(webrtc.NewICEUDPMux(logs.NewLogger("udpmux"), conn))
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se))
}

type recvPkt struct {
	seq   uint16
	ts    uint32
	ssrc  uint32
	tag   uint32
	layer byte
	kf    bool
}

type recvTrack struct {
	streamID, trackID string
	kind              webrtc.RTPCodecType
	pkts              []recvPkt
}

// testClient is a participant played by real pion peer connections
// talking to the SFU over loopback, with the room's part (relaying
// signaling) done in-process.
type testClient struct {
	t    testing.TB
	id   string
	sfu  *SFU
	peer *Peer
	conn *lossyConn // the subscribe connection's socket
	// the publish connection's socket
	pubConn *lossyConn
	pub     *webrtc.PeerConnection
	sub     *webrtc.PeerConnection

	queue chan func()
	done  chan struct{}
	wg    sync.WaitGroup

	// holdAnswer, if set (under mu), runs before each answer: the test
	// decides when the client answers (a slow browser, without a sleep).
	holdAnswer func()
	badAnswers atomic.Int32 // answer this many offers with garbage first

	mu             sync.Mutex
	offers         []string
	outstanding    int
	maxOutstanding int
	errs           []error
	tracks         map[string]*recvTrack
	closed         bool
}

func newTestClient(t testing.TB, s *SFU, roomID, id string, re RoomEvents) *testClient {
	t.Helper()
	return newTestClientOpts(t, s, roomID, id, clientOpts{re: re})
}

type clientOpts struct {
	re      RoomEvents
	state   func(string, webrtc.PeerConnectionState) // PeerEvents.State
	tcpOnly bool                                     // connect over ICE-TCP only
}

func newTestClientOpts(t testing.TB, s *SFU, roomID, id string, o clientOpts) *testClient {
	t.Helper()
	re, state := o.re, o.state
	c := &testClient{
		t: t, id: id, sfu: s,
		queue:  make(chan func(), 1024),
		done:   make(chan struct{}),
		tracks: map[string]*recvTrack{},
	}
	// Each connection has its own socket, as in a browser: the SFU's
	// single port tells connections apart by the client's address.
	var conns [2]*lossyConn
	for i := range conns {
		udp, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		// Room enough for bursts: the subscriber reads in one goroutine.
		_ = udp.SetReadBuffer(4 << 20)
		conns[i] = &lossyConn{UDPConn: udp}
	}
	c.pubConn, c.conn = conns[0], conns[1]
	var err error
	var pubConn, subConn net.PacketConn = packetConn{c.pubConn}, packetConn{c.conn}
	if o.tcpOnly {
		pubConn, subConn = nil, nil
	}
	if c.pub, err = newClientAPI(t, pubConn).NewPeerConnection(webrtc.Configuration{}); err != nil {
		t.Fatal(err)
	}
	if c.sub, err = newClientAPI(t, subConn).NewPeerConnection(webrtc.Configuration{}); err != nil {
		t.Fatal(err)
	}
	c.sub.OnTrack(c.onTrack)
	c.peer, err = s.Join(roomID, id, re, PeerEvents{
		Offer: func(sdp string) {
			c.mu.Lock()
			c.offers = append(c.offers, sdp)
			c.outstanding++
			c.maxOutstanding = max(c.maxOutstanding, c.outstanding)
			c.mu.Unlock()
			c.enqueue(func() { c.answer(sdp) })
		},
		Candidate: func(pc string, ci *webrtc.ICECandidateInit) {
			if ci == nil {
				return
			}
			x := *ci
			c.enqueue(func() {
				target := c.pub
				if pc == "sub" {
					target = c.sub
				}
				_ = target.AddICECandidate(x)
			})
		},
		State: state,
	})
	if err != nil {
		t.Fatal(err)
	}
	// Signaling from the SFU is handled once c.peer is set (an offer can
	// come before Join returns; it waits in the queue).
	c.wg.Add(1)
	go c.loop()
	// Trickle our candidates too (they are also in our SDPs): this drives
	// the SFU's queue of early candidates.
	c.pub.OnICECandidate(func(ci *webrtc.ICECandidate) {
		if ci != nil {
			_ = c.peer.AddCandidate("pub", ci.ToJSON())
		}
	})
	t.Cleanup(c.close)
	return c
}

func (c *testClient) enqueue(f func()) {
	select {
	case c.queue <- f:
	case <-c.done:
	}
}

func (c *testClient) loop() {
	defer c.wg.Done()
	for {
		select {
		case f := <-c.queue:
			f()
		case <-c.done:
			return
		}
	}
}

func (c *testClient) fail(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed {
		c.errs = append(c.errs, err)
	}
}

func (c *testClient) answer(offer string) {
	c.mu.Lock()
	hold := c.holdAnswer
	c.mu.Unlock()
	if hold != nil {
		hold()
	}
	if c.badAnswers.Add(-1) >= 0 {
		c.mu.Lock()
		c.outstanding--
		c.mu.Unlock()
		if err := c.peer.AnswerSubscriber("v=0\r\nthis is not an answer\r\n"); err == nil {
			c.fail(fmt.Errorf("%s: a garbage answer was accepted", c.id))
		}
		return
	}
	if err := c.sub.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		c.fail(fmt.Errorf("%s: set offer: %w", c.id, err))
		return
	}
	ans, err := c.sub.CreateAnswer(nil)
	if err == nil {
		err = c.sub.SetLocalDescription(ans)
	}
	if err != nil {
		c.fail(fmt.Errorf("%s: answer: %w", c.id, err))
		return
	}
	<-webrtc.GatheringCompletePromise(c.sub)
	c.mu.Lock()
	c.outstanding--
	c.mu.Unlock()
	if err := c.peer.AnswerSubscriber(c.sub.LocalDescription().SDP); err != nil && !errors.Is(err, ErrClosed) {
		c.fail(fmt.Errorf("%s: AnswerSubscriber: %w", c.id, err))
	}
}

func (c *testClient) onTrack(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
	rt := &recvTrack{streamID: tr.StreamID(), trackID: tr.ID(), kind: tr.Kind()}
	c.mu.Lock()
	c.tracks[tr.ID()] = rt
	c.mu.Unlock()
	for {
		p, _, err := tr.ReadRTP()
		if err != nil {
			return
		}
		r := recvPkt{seq: p.SequenceNumber, ts: p.Timestamp, ssrc: p.SSRC}
		if n := len(p.Payload); n >= 5 {
			r.tag = binary.BigEndian.Uint32(p.Payload[n-4:])
			r.layer = p.Payload[n-5]
		}
		if tr.Kind() == webrtc.RTPCodecTypeVideo {
			r.kf, _, _ = vp8KeyframeStart(p.Payload)
		}
		c.mu.Lock()
		rt.pkts = append(rt.pkts, r)
		c.mu.Unlock()
	}
}

// track returns a copy of what was received on a track (nil if nothing).
func (c *testClient) track(id string) *recvTrack {
	c.mu.Lock()
	defer c.mu.Unlock()
	rt := c.tracks[id]
	if rt == nil {
		return nil
	}
	cp := *rt
	cp.pkts = append([]recvPkt(nil), rt.pkts...)
	return &cp
}

func (c *testClient) lastOffer() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.offers) == 0 {
		return ""
	}
	return c.offers[len(c.offers)-1]
}

func (c *testClient) checkErrs() {
	c.t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, err := range c.errs {
		c.t.Error(err)
	}
	c.errs = nil
}

func (c *testClient) close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	c.mu.Unlock()
	c.peer.Close()
	_ = c.pub.GracefulClose()
	_ = c.sub.GracefulClose()
	close(c.done)
	c.wg.Wait()
	_ = c.conn.Close()
	_ = c.pubConn.Close()
}

// pubLayer is one encoding a test publisher sends.
type pubLayer struct {
	track  *webrtc.TrackLocalStaticRTP
	rid    string
	idx    byte
	w, h   int
	seq    uint16
	ts     uint32
	pli    atomic.Bool
	frames int
}

// pubVideo is a synthetic VP8 camera (one layer, or q/h/f simulcast).
type pubVideo struct {
	c            *testClient
	tr           *webrtc.RTPTransceiver
	layers       []*pubLayer
	midID, ridID uint8
	mid          string
	mu           sync.Mutex
}

func (c *testClient) addVideo(id, streamID string, rids ...string) *pubVideo {
	c.t.Helper()
	v := &pubVideo{c: c}
	if len(rids) == 0 {
		rids = []string{""}
	}
	for i, rid := range rids {
		var opts []func(*webrtc.TrackLocalStaticRTP)
		if rid != "" {
			opts = append(opts, webrtc.WithRTPStreamID(rid))
		}
		tr, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, id, streamID, opts...)
		if err != nil {
			c.t.Fatal(err)
		}
		shift := len(rids) - 1 - i
		v.layers = append(v.layers, &pubLayer{track: tr, rid: rid, idx: byte(i), w: 1280 >> shift, h: 720 >> shift,
			seq: uint16(1000 * (i + 1)), ts: uint32(7_000_000 * (i + 1))})
	}
	var err error
	v.tr, err = c.pub.AddTransceiverFromTrack(v.layers[0].track, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
	if err != nil {
		c.t.Fatal(err)
	}
	for _, l := range v.layers[1:] {
		if err := v.tr.Sender().AddEncoding(l.track); err != nil {
			c.t.Fatal(err)
		}
	}
	sender := v.tr.Sender()
	for _, l := range v.layers {
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			for {
				var pkts []rtcp.Packet
				var err error
				if l.rid != "" {
					pkts, _, err = sender.ReadSimulcastRTCP(l.rid)
				} else {
					pkts, _, err = sender.ReadRTCP()
				}
				if err != nil {
					if errors.Is(err, net.ErrClosed) || strings.Contains(err.Error(), "closed") || errors.Is(err, io.EOF) || errors.Is(err, io.ErrClosedPipe) {
						return
					}
					select {
					case <-c.done:
						return
					case <-time.After(5 * time.Millisecond):
					}
					continue
				}
				for _, p := range pkts {
					if _, ok := p.(*rtcp.PictureLossIndication); ok {
						l.pli.Store(true)
					}
				}
			}
		}()
	}
	return v
}

// negotiated reads the extension ids and mid once the publish
// negotiation is done.
func (v *pubVideo) negotiated() {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.mid = v.tr.Mid()
	for _, e := range v.tr.Sender().GetParameters().HeaderExtensions {
		switch e.URI {
		case sdp.SDESMidURI:
			v.midID = uint8(e.ID)
		case sdp.SDESRTPStreamIDURI:
			v.ridID = uint8(e.ID)
		}
	}
}

// sendFrame sends one frame of npkts packets on layer l; a keyframe if key
// or if a PLI asked for one. Every packet ends with the layer index and a
// 4-byte tag.
func (v *pubVideo) sendFrame(l *pubLayer, key bool, npkts int, tag func() uint32) error {
	if l.pli.Swap(false) || l.frames == 0 {
		key = true
	}
	l.frames++
	for i := range npkts {
		payload := make([]byte, 600)
		if i == 0 {
			payload[0] = 0x10 // S=1, PID=0
			if key {
				payload[1] = 0x10 // P=0: keyframe, show_frame
				copy(payload[4:], []byte{0x9d, 0x01, 0x2a})
				binary.LittleEndian.PutUint16(payload[7:], uint16(l.w))
				binary.LittleEndian.PutUint16(payload[9:], uint16(l.h))
			} else {
				payload[1] = 0x11 // P=1
			}
		}
		payload[len(payload)-5] = l.idx
		if tag != nil {
			binary.BigEndian.PutUint32(payload[len(payload)-4:], tag())
		}
		p := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: l.seq, Timestamp: l.ts,
			Marker: i == npkts-1}, Payload: payload}
		if l.rid != "" && v.midID != 0 && v.ridID != 0 {
			_ = p.Header.SetExtension(v.midID, []byte(v.mid))
			_ = p.Header.SetExtension(v.ridID, []byte(l.rid))
		}
		l.seq++
		if err := l.track.WriteRTP(p); err != nil {
			return err
		}
	}
	l.ts += 3000
	return nil
}

// pubAudio is a synthetic Opus microphone with RFC 6464 levels.
type pubAudio struct {
	track  *webrtc.TrackLocalStaticRTP
	sender *webrtc.RTPSender
	extID  uint8
	seq    uint16
	ts     uint32
	level  atomic.Int32 // -dBov, 0..127
}

func (c *testClient) addAudio(id, streamID string) *pubAudio {
	c.t.Helper()
	tr, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, id, streamID)
	if err != nil {
		c.t.Fatal(err)
	}
	t, err := c.pub.AddTransceiverFromTrack(tr, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
	if err != nil {
		c.t.Fatal(err)
	}
	a := &pubAudio{track: tr, sender: t.Sender(), seq: 5000, ts: 123456}
	a.level.Store(127)
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		buf := make([]byte, 1500)
		for {
			if _, _, err := a.sender.Read(buf); err != nil {
				select {
				case <-c.done:
					return
				case <-time.After(5 * time.Millisecond):
				}
				if c.pub.ConnectionState() == webrtc.PeerConnectionStateClosed {
					return
				}
			}
		}
	}()
	return a
}

func (a *pubAudio) negotiated() {
	for _, e := range a.sender.GetParameters().HeaderExtensions {
		if e.URI == sdp.AudioLevelURI {
			a.extID = uint8(e.ID)
		}
	}
}

func (a *pubAudio) send(tag uint32) error {
	payload := make([]byte, 100)
	binary.BigEndian.PutUint32(payload[len(payload)-4:], tag)
	p := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 111, SequenceNumber: a.seq, Timestamp: a.ts}, Payload: payload}
	if a.extID != 0 {
		_ = p.Header.SetExtension(a.extID, []byte{byte(a.level.Load()) & 0x7f})
	}
	a.seq++
	a.ts += 960
	return a.track.WriteRTP(p)
}

// publish offers the client's tracks to the SFU and applies the answer.
func (c *testClient) publish(sources map[string]string) {
	c.t.Helper()
	offer, err := c.pub.CreateOffer(nil)
	if err != nil {
		c.t.Fatal(err)
	}
	if err := c.pub.SetLocalDescription(offer); err != nil {
		c.t.Fatal(err)
	}
	<-webrtc.GatheringCompletePromise(c.pub)
	answer, err := c.peer.Publish(c.pub.LocalDescription().SDP, sources)
	if err != nil {
		c.t.Fatal(err)
	}
	if err := c.pub.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		c.t.Fatal(err)
	}
}

func (c *testClient) waitConnected(timeout time.Duration) {
	c.t.Helper()
	testtool.Eventually(c.t, timeout, func() bool {
		return c.pub.ConnectionState() == webrtc.PeerConnectionStateConnected
	}, c.id+" publish connection")
}

// goroutineDump is printed when goroutines leak.
func goroutineDump() string {
	buf := make([]byte, 1<<20)
	return string(buf[:runtime.Stack(buf, true)])
}

// call is the set-up most tests share: an SFU with a subscriber S and a
// publisher PUB in one room, PUB's camera (and microphone) published and
// negotiated.
type call struct {
	s        *SFU
	sub, pub *testClient
	cam      *pubVideo
	mic      *pubAudio // nil unless callOpts.mic
}

type callOpts struct {
	cfg    func(*Config) // changes to the SFU's configuration
	rids   []string      // the camera's simulcast layers; none: one layer
	mic    bool          // publish a microphone too
	layout []Tile        // S's layout, set before PUB joins
}

// newCall sets up a call. Nothing flows yet: tests that want S receiving
// first call receiving, simulcast tests start their own sender.
func newCall(t *testing.T, o callOpts) *call {
	t.Helper()
	c := &call{s: newTestSFU(t, o.cfg)}
	c.sub = newTestClient(t, c.s, "room", "S", RoomEvents{})
	if o.layout != nil {
		c.sub.peer.SetLayout(o.layout)
	}
	c.pub = newTestClient(t, c.s, "room", "PUB", RoomEvents{})
	c.cam = c.pub.addVideo("cam", "x", o.rids...)
	sources := map[string]string{"cam": "camera"}
	if o.mic {
		c.mic = c.pub.addAudio("mic", "x")
		sources["mic"] = "microphone"
	}
	c.pub.publish(sources)
	c.cam.negotiated()
	if c.mic != nil {
		c.mic.negotiated()
	}
	return c
}

// receiving sends media until S receives every track PUB published.
func (c *call) receiving(t *testing.T) {
	t.Helper()
	warmUp(t, "S receiving", c.cam, c.mic, func() bool {
		return c.sub.track("PUB:camera") != nil && (c.mic == nil || c.sub.track("PUB:microphone") != nil)
	})
}

// received reports whether c got the packet the SFU numbered seq on
// trackID.
func (c *testClient) received(trackID string, seq uint16) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if rt := c.tracks[trackID]; rt != nil {
		for i := len(rt.pkts) - 1; i >= 0; i-- {
			if rt.pkts[i].seq == seq {
				return true
			}
		}
	}
	return false
}

// silence proves, without sleeping, that the SFU forwards nothing more to
// c on trackIDs while media keeps arriving. The caller has made sure
// forwarding stopped (the SFU's state says so). silence waits until c has
// received the newest packet the SFU sent on each track, notes what c
// has, runs more (which must return only once the SFU has read fresh
// media from the publisher), and fails t if the SFU sent anything on
// those tracks meanwhile or c received anything.
func (c *testClient) silence(t *testing.T, more func(), trackIDs ...string) {
	t.Helper()
	type mark struct {
		d       *downTrack
		last    uint16
		started bool
		n       int
	}
	marks := map[string]*mark{}
	for _, id := range trackIDs {
		d := c.downFor(id)
		d.mu.Lock()
		m := &mark{d: d, last: d.lastSeq, started: d.started}
		d.mu.Unlock()
		if m.started {
			testtool.Eventually(t, 10*time.Second, func() bool { return c.received(id, m.last) },
				c.id+" receiving the last packet the SFU sent on "+id)
		}
		if rt := c.track(id); rt != nil {
			m.n = len(rt.pkts)
		}
		marks[id] = m
	}
	more()
	for id, m := range marks {
		m.d.mu.Lock()
		last, started := m.d.lastSeq, m.d.started
		m.d.mu.Unlock()
		if started != m.started || last != m.last {
			t.Errorf("%s: the SFU sent up to %d (started %v) after %d (started %v); want nothing", id, last, started, m.last, m.started)
		}
		n := 0
		if rt := c.track(id); rt != nil {
			n = len(rt.pkts)
		}
		if n != m.n {
			t.Errorf("%s: %s received %d packets, want none", c.id, id, n-m.n)
		}
	}
}

// packetsIn waits until the SFU has read n more packets from publishers
// (sent by a sender the test runs).
func packetsIn(t *testing.T, s *SFU, n uint64) {
	t.Helper()
	from := s.Stats().PacketsIn
	testtool.Eventually(t, 10*time.Second, func() bool { return s.Stats().PacketsIn >= from+n },
		fmt.Sprintf("%d more packets in", n))
}

// downState reads a downTrack's layer state under its lock.
func (d *downTrack) state() (cur, target, bwMax int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cur, d.target, d.bwMax
}
