package media

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/dtls/v3"
	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/nack"
	"github.com/pion/interceptor/pkg/report"
	"github.com/pion/interceptor/pkg/twcc"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/parley/parley/internal/pionlog"
)

// Errors returned by the SFU.
var (
	ErrClosed    = errors.New("media: closed")
	ErrNoOffer   = errors.New("media: no subscriber offer is waiting for an answer")
	ErrUnknownPC = errors.New(`media: pc must be "pub" or "sub"`)
	ErrBadSource = errors.New(`media: source must be "microphone", "camera" or "screen"`)
)

// Config for the SFU. Zero values are defaults.
type Config struct {
	UDPPort      int      // ICE UDP mux port (all media on one port); 0 = pick a free one (tests)
	TCPPort      int      // ICE-TCP fallback port; 0 = pick a free one; -1 = disabled
	ListenIP     string   // IP to bind both; "" = all interfaces (127.0.0.1 when LoopbackOnly)
	PublicIPs    []string // 1:1 NAT: host candidates advertise these addresses instead of local ones
	LoopbackOnly bool     // tests: loopback candidates only, mDNS disabled
	Interfaces   []string // optional allow-list of network interface names for candidates

	// PLIInterval is the least time between two keyframe requests sent to
	// one publisher layer (default 500ms).
	PLIInterval time.Duration
	// SpeakerInterval is how often the active speaker is re-evaluated, so
	// the most often RoomEvents.Speaker can fire (default 250ms).
	SpeakerInterval time.Duration
	// SpeakerThreshold is the audio level, in -dBov, quieter than which a
	// participant counts as silent (default 50, i.e. -50 dBov).
	SpeakerThreshold int
	// LayerTimeout: a simulcast layer that sent nothing for this long is
	// treated as stopped (the browser paused it) and subscribers move to
	// another layer (default 1.5s).
	LayerTimeout time.Duration
	// GatherTimeout bounds the wait for local ICE candidates before an
	// SDP is handed out (default 2s; host candidates take milliseconds).
	GatherTimeout time.Duration
	// ICEDisconnectedTimeout and ICEFailedTimeout control how fast a
	// vanished client is noticed (defaults 4s and 12s).
	ICEDisconnectedTimeout, ICEFailedTimeout time.Duration
	// BandwidthProbeInterval: after a subscriber's bandwidth estimate
	// made the SFU lower its video, this long without congestion lets one
	// layer back up (default 8s).
	BandwidthProbeInterval time.Duration
}

func (c *Config) setDefaults() {
	if c.PLIInterval <= 0 {
		c.PLIInterval = 500 * time.Millisecond
	}
	if c.SpeakerInterval <= 0 {
		c.SpeakerInterval = 250 * time.Millisecond
	}
	if c.SpeakerThreshold <= 0 {
		c.SpeakerThreshold = 50
	}
	if c.LayerTimeout <= 0 {
		c.LayerTimeout = 1500 * time.Millisecond
	}
	if c.GatherTimeout <= 0 {
		c.GatherTimeout = 2 * time.Second
	}
	if c.ICEDisconnectedTimeout <= 0 {
		c.ICEDisconnectedTimeout = 4 * time.Second
	}
	if c.ICEFailedTimeout <= 0 {
		c.ICEFailedTimeout = 12 * time.Second
	}
	if c.BandwidthProbeInterval <= 0 {
		c.BandwidthProbeInterval = 8 * time.Second
	}
	if c.LoopbackOnly && c.ListenIP == "" {
		c.ListenIP = "127.0.0.1"
	}
}

// SFU is the selective forwarding unit: one webrtc.API, one UDP port (and
// optionally one TCP port) for every peer connection, and the rooms.
type SFU struct {
	cfg     Config
	log     *slog.Logger
	api     *webrtc.API
	metrics *metrics
	epoch   time.Time // monotonic time base for the forwarding path
	// skew moves now() forward: tests step past an interval (PLI, probe)
	// at once instead of sleeping through it. Always 0 in production.
	skew atomic.Int64

	udpMux  ice.UDPMux
	tcpMux  ice.TCPMux
	udpAddr net.Addr
	tcpAddr net.Addr

	certMu sync.Mutex
	cert   *webrtc.Certificate

	mu        sync.Mutex
	rooms     map[string]*sfuRoom
	recorders map[string]Recorder // rooms being recorded (record.go)
	closed    bool
	wg        sync.WaitGroup // room goroutines
}

// New opens the SFU's sockets and prepares its webrtc.API. reg may be nil.
func New(cfg Config, log *slog.Logger, reg prometheus.Registerer) (*SFU, error) {
	cfg.setDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &SFU{
		cfg:     cfg,
		log:     log,
		metrics: newMetrics(),
		epoch:   time.Now(),
		rooms:   map[string]*sfuRoom{},
	}
	logs := pionlog.Factory{Log: log, Down: pionlog.Step}

	if err := s.listen(logs); err != nil {
		return nil, err
	}
	api, err := s.newAPI(logs)
	if err != nil {
		s.closeSockets()
		return nil, err
	}
	s.api = api
	if _, err := s.certificate(); err != nil {
		s.closeSockets()
		return nil, err
	}
	if reg != nil {
		if err := reg.Register(newCollector(s.metrics)); err != nil {
			s.closeSockets()
			return nil, fmt.Errorf("media: register metrics: %w", err)
		}
	}
	s.log.Info("sfu listening", "udp", s.udpAddr, "tcp", s.tcpAddr)
	return s, nil
}

// listen opens the ICE UDP mux and, unless disabled, the ICE-TCP mux.
func (s *SFU) listen(logs pionlog.Factory) error {
	cfg := s.cfg
	var ip net.IP
	if cfg.ListenIP != "" {
		if ip = net.ParseIP(cfg.ListenIP); ip == nil {
			return fmt.Errorf("media: bad ListenIP %q", cfg.ListenIP)
		}
	}
	if ip != nil {
		conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: ip, Port: cfg.UDPPort})
		if err != nil {
			return fmt.Errorf("media: listen udp: %w", err)
		}
		s.udpMux = webrtc.NewICEUDPMux(logs.NewLogger("udpmux"), conn)
		s.udpAddr = conn.LocalAddr()
	} else {
		// One socket per local address (not one unspecified socket), so the
		// source address of replies matches the candidate on multi-homed
		// hosts. All of them share one port.
		port := cfg.UDPPort
		if port == 0 {
			c, err := net.ListenUDP("udp", &net.UDPAddr{})
			if err != nil {
				return fmt.Errorf("media: pick udp port: %w", err)
			}
			port = c.LocalAddr().(*net.UDPAddr).Port
			_ = c.Close()
		}
		opts := []ice.UDPMuxFromPortOption{
			ice.UDPMuxFromPortWithLogger(logs.NewLogger("udpmux")),
			ice.UDPMuxFromPortWithNetworks(ice.NetworkTypeUDP4, ice.NetworkTypeUDP6),
		}
		if len(cfg.Interfaces) > 0 {
			opts = append(opts, ice.UDPMuxFromPortWithInterfaceFilter(s.interfaceFilter))
		}
		mux, err := ice.NewMultiUDPMuxFromPort(port, opts...)
		if err != nil {
			return fmt.Errorf("media: listen udp port %d: %w", port, err)
		}
		s.udpMux = mux
		s.udpAddr = &net.UDPAddr{Port: port}
	}
	if cfg.TCPPort >= 0 {
		host := ""
		if ip != nil {
			host = ip.String()
		}
		ln, err := net.Listen("tcp", net.JoinHostPort(host, fmt.Sprint(cfg.TCPPort)))
		if err != nil {
			_ = s.udpMux.Close()
			return fmt.Errorf("media: listen tcp: %w", err)
		}
		s.tcpMux = webrtc.NewICETCPMux(logs.NewLogger("tcpmux"), tcpListener{Listener: ln, m: s.metrics}, 64)
		s.tcpAddr = ln.Addr()
	}
	return nil
}

func (s *SFU) interfaceFilter(name string) bool {
	return slices.Contains(s.cfg.Interfaces, name)
}

// newAPI builds the one webrtc.API all peer connections share.
func (s *SFU) newAPI(logs pionlog.Factory) (*webrtc.API, error) {
	cfg := s.cfg
	me := &webrtc.MediaEngine{}
	// goog-remb: subscribers' browsers report their receive bandwidth
	// estimate (REMB), which caps the layers they get (bandwidth.go).
	videoFB := []webrtc.RTCPFeedback{{Type: "goog-remb"}, {Type: "ccm", Parameter: "fir"}, {Type: "nack"}, {Type: "nack", Parameter: "pli"}}
	codecs := []struct {
		p webrtc.RTPCodecParameters
		t webrtc.RTPCodecType
	}{
		{webrtc.RTPCodecParameters{PayloadType: 111, RTPCodecCapability: webrtc.RTPCodecCapability{
			MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2, SDPFmtpLine: "minptime=10;useinbandfec=1"}},
			webrtc.RTPCodecTypeAudio},
		{webrtc.RTPCodecParameters{PayloadType: 96, RTPCodecCapability: webrtc.RTPCodecCapability{
			MimeType: webrtc.MimeTypeVP8, ClockRate: 90000, RTCPFeedback: videoFB}},
			webrtc.RTPCodecTypeVideo},
		{webrtc.RTPCodecParameters{PayloadType: 97, RTPCodecCapability: webrtc.RTPCodecCapability{
			MimeType: webrtc.MimeTypeRTX, ClockRate: 90000, SDPFmtpLine: "apt=96"}},
			webrtc.RTPCodecTypeVideo},
		{webrtc.RTPCodecParameters{PayloadType: 102, RTPCodecCapability: webrtc.RTPCodecCapability{
			MimeType: webrtc.MimeTypeH264, ClockRate: 90000, RTCPFeedback: videoFB,
			SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"}},
			webrtc.RTPCodecTypeVideo},
		{webrtc.RTPCodecParameters{PayloadType: 103, RTPCodecCapability: webrtc.RTPCodecCapability{
			MimeType: webrtc.MimeTypeRTX, ClockRate: 90000, SDPFmtpLine: "apt=102"}},
			webrtc.RTPCodecTypeVideo},
	}
	for _, c := range codecs {
		if err := me.RegisterCodec(c.p, c.t); err != nil {
			return nil, fmt.Errorf("media: register codec: %w", err)
		}
	}
	exts := []struct {
		uri string
		t   webrtc.RTPCodecType
	}{
		{sdp.AudioLevelURI, webrtc.RTPCodecTypeAudio},
		{sdp.SDESMidURI, webrtc.RTPCodecTypeAudio},
		// Simulcast receive: the MID and RID extensions let pion map the
		// browser's undeclared SSRCs to layers; the repaired RID maps RTX.
		{sdp.SDESMidURI, webrtc.RTPCodecTypeVideo},
		{sdp.SDESRTPStreamIDURI, webrtc.RTPCodecTypeVideo},
		{sdp.SDESRepairRTPStreamIDURI, webrtc.RTPCodecTypeVideo},
	}
	for _, e := range exts {
		if err := me.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: e.uri}, e.t); err != nil {
			return nil, fmt.Errorf("media: register header extension: %w", err)
		}
	}

	ir := &interceptor.Registry{}
	// NACKs towards publishers for packets lost on their uplink. Answering
	// subscribers' NACKs is done by the SFU itself from one shared cache per
	// layer (pion's responder would keep a copy per subscriber).
	gen, err := nack.NewGeneratorInterceptor(nack.WithGeneratorLoggerFactory(logs))
	if err != nil {
		return nil, fmt.Errorf("media: nack generator: %w", err)
	}
	ir.Add(gen)
	if err := webrtc.ConfigureRTCPReportsWithOptions(ir,
		[]report.ReceiverOption{report.WithReceiverLoggerFactory(logs)},
		report.WithSenderLoggerFactory(logs)); err != nil {
		return nil, fmt.Errorf("media: rtcp reports: %w", err)
	}
	// Transport-wide congestion control feedback to publishers: browsers'
	// send-side bandwidth estimation needs it to enable the upper simulcast
	// layers.
	if err := webrtc.ConfigureTWCCSenderWithOptions(me, ir, twcc.WithLoggerFactory(logs)); err != nil {
		return nil, fmt.Errorf("media: twcc: %w", err)
	}

	se := webrtc.SettingEngine{LoggerFactory: logs}
	se.SetICEUDPMux(s.udpMux)
	networks := []webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6}
	if s.tcpMux != nil {
		se.SetICETCPMux(s.tcpMux)
		networks = append(networks, webrtc.NetworkTypeTCP4, webrtc.NetworkTypeTCP6)
	}
	se.SetNetworkTypes(networks)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	if len(cfg.PublicIPs) > 0 {
		// 1:1 NAT: advertise the public addresses instead of the local ones
		// (the successor of SetNAT1To1IPs with ICECandidateTypeHost).
		if err := se.SetICEAddressRewriteRules(webrtc.ICEAddressRewriteRule{
			External: cfg.PublicIPs, AsCandidateType: webrtc.ICECandidateTypeHost,
		}); err != nil {
			return nil, fmt.Errorf("media: public IPs: %w", err)
		}
	}
	if cfg.LoopbackOnly {
		se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
		se.SetIncludeLoopbackCandidate(true)
	}
	if len(cfg.Interfaces) > 0 {
		se.SetInterfaceFilter(s.interfaceFilter)
	}
	// AES-GCM first: it is cheaper per packet than AES-CM + HMAC-SHA1.
	se.SetSRTPProtectionProfiles(dtls.SRTP_AEAD_AES_128_GCM, dtls.SRTP_AES128_CM_HMAC_SHA1_80)
	se.SetICETimeouts(cfg.ICEDisconnectedTimeout, cfg.ICEFailedTimeout, time.Second)
	// Retransmissions from a publisher can arrive a few hundred packets
	// late at high bitrates; pion's default window (64) would reject them.
	se.SetSRTPReplayProtectionWindow(1024)

	return webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(ir),
		webrtc.WithSettingEngine(se)), nil
}

// certificate returns the DTLS certificate shared by all peer connections
// (generating one per connection costs a key generation each time),
// renewing it a day before it expires.
func (s *SFU) certificate() (webrtc.Certificate, error) {
	s.certMu.Lock()
	defer s.certMu.Unlock()
	if s.cert == nil || time.Until(s.cert.Expires()) < 24*time.Hour {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return webrtc.Certificate{}, fmt.Errorf("media: certificate key: %w", err)
		}
		cert, err := webrtc.GenerateCertificate(key)
		if err != nil {
			return webrtc.Certificate{}, fmt.Errorf("media: certificate: %w", err)
		}
		s.cert = cert
	}
	return *s.cert, nil
}

// UDPAddr is the address of the ICE UDP port.
func (s *SFU) UDPAddr() net.Addr { return s.udpAddr }

// TCPAddr is the address of the ICE-TCP port, nil when disabled.
func (s *SFU) TCPAddr() net.Addr {
	if s.tcpAddr == nil {
		return nil
	}
	return s.tcpAddr
}

func (s *SFU) closeSockets() {
	if s.udpMux != nil {
		_ = s.udpMux.Close()
	}
	if s.tcpMux != nil {
		_ = s.tcpMux.Close()
	}
}

// Close closes every peer and the SFU's sockets, and waits for its
// goroutines to end.
func (s *SFU) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	for _, p := range s.allPeers() {
		p.Close()
	}
	s.closeSockets()
	s.wg.Wait()
	return nil
}

// allPeers lists every peer and viewer of every room.
func (s *SFU) allPeers() []*Peer {
	s.mu.Lock()
	rooms := make([]*sfuRoom, 0, len(s.rooms))
	for _, r := range s.rooms {
		rooms = append(rooms, r)
	}
	s.mu.Unlock()
	var peers []*Peer
	for _, r := range rooms {
		peers = append(peers, r.peerList()...)
	}
	return peers
}

// now is the forwarding path's clock: monotonic nanoseconds since New.
func (s *SFU) now() int64 { return int64(time.Since(s.epoch)) + s.skew.Load() }

// RoomEvents reach the room package for room-wide happenings.
type RoomEvents struct {
	// Speaker reports that the active speaker changed ("" = silence).
	// Called from media goroutines; must not block.
	Speaker func(participantID string)
}

// PeerEvents reach one participant's signaling. They are called from media
// goroutines; the callee must not block (it queues).
type PeerEvents struct {
	// Offer: the subscriber PC needs (re)negotiation; send {type: offer,
	// from: "sfu", pc: "sub", sdp}. The next Offer comes only after
	// AnswerSubscriber.
	Offer func(sdp string)
	// Candidate: a local ICE candidate for pc "pub" or "sub" gathered after
	// the SDP was handed out (candidates known before are in the SDP);
	// nil = end of gathering.
	Candidate func(pc string, c *webrtc.ICECandidateInit)
	// State: a peer connection changed state. The SFU closes a peer whose
	// connection failed by itself; the room may close it sooner.
	State func(pc string, s webrtc.PeerConnectionState)
}

// Join adds a participant to a room's media, creating the room on its
// first Join (re is used then). The peer is subscribed at once to every
// track already published in the room. If the participant is already
// there, the new Peer replaces the old one, which is closed.
func (s *SFU) Join(roomID, participantID string, re RoomEvents, pe PeerEvents) (*Peer, error) {
	return s.join(roomID, participantID, re, pe, false)
}

// join is Join; publishOnly leaves out the subscribe connection (WHIP).
func (s *SFU) join(roomID, participantID string, re RoomEvents, pe PeerEvents, publishOnly bool) (*Peer, error) {
	if roomID == "" || participantID == "" {
		return nil, errors.New("media: empty room or participant id")
	}
	conf, err := s.pcConfig()
	if err != nil {
		return nil, err
	}
	// A WHIP publisher's publish connection is made now; everyone else's
	// on their first Publish, so a participant that only watches costs
	// one connection, not two.
	var pub, sub *webrtc.PeerConnection
	if publishOnly {
		if pub, err = s.api.NewPeerConnection(conf); err != nil {
			return nil, fmt.Errorf("media: publish connection: %w", err)
		}
	} else if sub, err = s.api.NewPeerConnection(conf); err != nil {
		return nil, fmt.Errorf("media: subscribe connection: %w", err)
	}
	closePCs := func() {
		for _, pc := range []*webrtc.PeerConnection{pub, sub} {
			if pc != nil {
				_ = pc.Close()
			}
		}
	}
	p := newPeer(s, participantID, pub, sub, pe)
	p.lazyPub = !publishOnly

	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		closePCs()
		return nil, ErrClosed
	}
	r := s.roomLocked(roomID, re)
	p.room = r
	p.log = s.log.With("channel_id", roomID, "participant_id", participantID)
	old, err := r.addPeer(p)
	if old != nil {
		s.wg.Add(1) // SFU.Close waits for the replaced peer's Close
	}
	s.mu.Unlock()
	if err != nil {
		closePCs()
		s.removeRoomIfEmpty(r)
		return nil, err
	}
	if old != nil {
		p.log.Info("participant joined again: replacing its previous connections")
		go func() {
			defer s.wg.Done()
			old.Close()
		}()
	}
	s.metrics.peers.Add(1)
	p.start()
	return p, nil
}

// pcConfig is the configuration of every peer connection of the SFU.
func (s *SFU) pcConfig() (webrtc.Configuration, error) {
	cert, err := s.certificate()
	if err != nil {
		return webrtc.Configuration{}, err
	}
	return webrtc.Configuration{
		Certificates:  []webrtc.Certificate{cert},
		BundlePolicy:  webrtc.BundlePolicyMaxBundle,
		RTCPMuxPolicy: webrtc.RTCPMuxPolicyRequire,
	}, nil
}

// roomLocked returns roomID's room, creating it (with re) if needed.
// Called with s.mu held.
func (s *SFU) roomLocked(roomID string, re RoomEvents) *sfuRoom {
	r := s.rooms[roomID]
	if r == nil {
		r = newRoom(s, roomID, re)
		s.rooms[roomID] = r
		s.metrics.rooms.Add(1)
		s.wg.Add(1)
		go r.run()
	}
	return r
}

// removeRoomIfEmpty forgets a room once its last peer and viewer left.
func (s *SFU) removeRoomIfEmpty(r *sfuRoom) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r.mu.Lock()
	empty := len(r.peers) == 0 && len(r.viewers) == 0 && !r.closed
	if empty {
		r.closed = true
	}
	r.mu.Unlock()
	if empty && s.rooms[r.id] == r {
		delete(s.rooms, r.id)
		s.metrics.rooms.Add(-1)
		close(r.done)
	}
}
