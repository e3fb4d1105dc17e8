// Package p2p is `parley p2p`: two copies of Parley in a direct WebRTC
// call, with no server in between.
//
// One side listens on a TCP port and the other dials it. That one TCP
// connection carries the signaling (newline-delimited JSON: the dialer's
// offer, the listener's answer, trickled candidates, bye); media then flows
// peer to peer over UDP. Each side sends audio from an Ogg Opus file or
// stream and may record what it receives.
package p2p

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/parley/parley/internal/pionlog"
	"github.com/parley/parley/internal/record"
	"github.com/parley/parley/internal/rtpcount"
	"github.com/parley/parley/internal/source"
	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/webrtc/v4"
)

// Config describes one side of a call.
type Config struct {
	// Listen is the TCP address to wait on for one peer ("listen" mode).
	Listen string
	// Dial is the TCP address of a listening peer ("dial" mode). Exactly
	// one of Listen and Dial is set.
	Dial string
	// SendAudio is an Ogg Opus file to send (looped), or "-" to send the
	// Ogg Opus stream read from Stdin; empty sends no audio.
	SendAudio string
	// Stdin is read when SendAudio is "-".
	Stdin io.Reader
	// RecordDir, if set, is where received tracks are recorded; it is
	// made if missing.
	RecordDir string
	// Duration ends the call this long after it connected; 0 lets it run
	// until ctx is done or the peer hangs up.
	Duration time.Duration
	// Loopback restricts ICE to loopback addresses: for tests and for two
	// copies on one host. Left false, every local address is offered, as
	// two machines on a LAN need.
	Loopback bool
	// Status receives a status line every StatusInterval and the summary
	// at the end; nil discards them.
	Status io.Writer
	// StatusInterval defaults to one second.
	StatusInterval time.Duration
}

// ConnectTimeout bounds the time from the TCP connection to a connected
// WebRTC call.
const ConnectTimeout = 30 * time.Second

func (c Config) validate() error {
	var errs []error
	switch {
	case c.Listen == "" && c.Dial == "":
		errs = append(errs, errors.New("p2p: give an address to listen on or to dial"))
	case c.Listen != "" && c.Dial != "":
		errs = append(errs, errors.New("p2p: listen or dial, not both"))
	case c.Dial != "":
		if host, port, err := net.SplitHostPort(c.Dial); err != nil || host == "" || port == "" {
			errs = append(errs, fmt.Errorf("p2p: dial address %q is not HOST:PORT", c.Dial))
		}
	default:
		if _, _, err := net.SplitHostPort(c.Listen); err != nil {
			errs = append(errs, fmt.Errorf("p2p: listen address %q is not [HOST]:PORT", c.Listen))
		}
	}
	if c.SendAudio == "-" && c.Stdin == nil {
		errs = append(errs, errors.New("p2p: audio from standard input needs Stdin"))
	}
	if c.Duration < 0 {
		errs = append(errs, fmt.Errorf("p2p: duration %v is negative", c.Duration))
	}
	return errors.Join(errs...)
}

// Peer is one side of a call, ready to Run.
type Peer struct {
	cfg   Config
	log   *slog.Logger
	audio source.Source // nil: send nothing
	ln    net.Listener  // listen mode
}

// Summary says how a call went.
type Summary struct {
	Reason         string        // why the call ended
	Connected      time.Duration // how long WebRTC was connected
	Sent, Received rtpcount.Counts
	Recordings     []Recording
}

// Recording is one file written during the call.
type Recording struct {
	Path  string
	Stats record.Stats
}

// New checks cfg, opens the audio source (reading an Ogg stream's headers
// from Stdin) and, in listen mode, starts listening, so that every
// mistake is reported before waiting for a peer.
func New(cfg Config, log *slog.Logger) (*Peer, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.StatusInterval <= 0 {
		cfg.StatusInterval = time.Second
	}
	if cfg.Status == nil {
		cfg.Status = io.Discard
	}
	p := &Peer{cfg: cfg, log: log}
	var err error
	switch cfg.SendAudio {
	case "":
	case "-":
		p.audio, err = source.OggStream(cfg.Stdin)
	default:
		p.audio, err = source.OpenOgg(cfg.SendAudio, true)
	}
	if err != nil {
		return nil, fmt.Errorf("p2p: audio to send: %w", err)
	}
	if cfg.RecordDir != "" {
		if err := os.MkdirAll(cfg.RecordDir, 0o755); err != nil {
			return nil, fmt.Errorf("p2p: recordings: %w", err)
		}
	}
	if cfg.Listen != "" {
		if p.ln, err = net.Listen("tcp", cfg.Listen); err != nil {
			return nil, fmt.Errorf("p2p: %w", err)
		}
	}
	return p, nil
}

// Addr is the address listened on, or nil in dial mode.
func (p *Peer) Addr() net.Addr {
	if p.ln == nil {
		return nil
	}
	return p.ln.Addr()
}

// Close releases the listener of a Peer that will not Run.
func (p *Peer) Close() error {
	if p.ln == nil {
		return nil
	}
	return p.ln.Close()
}

// Run waits for the peer (or dials it), holds the call until ctx is done,
// the duration is reached or the peer hangs up, then says bye and closes
// the recordings. An interrupted wait for a peer is no error. What the user
// needs to know, errors included, is written to Config.Status.
func (p *Peer) Run(ctx context.Context) (Summary, error) {
	conn, err := p.connect(ctx)
	if conn == nil {
		if err == nil {
			fmt.Fprintln(p.cfg.Status, "p2p: interrupted before a peer connected")
			return Summary{Reason: "interrupted before a peer connected"}, nil
		}
		fmt.Fprintln(p.cfg.Status, err)
		return Summary{}, err
	}
	defer conn.Close()
	p.log.Info("signaling connected", "peer", conn.RemoteAddr())
	c := &call{Peer: p, sig: newSignalConn(conn), dialer: p.cfg.Dial != "",
		remoteName: "peer-" + hostOf(conn.RemoteAddr()), done: make(chan struct{})}
	defer close(c.done)
	sum, err := c.run(ctx)
	p.printSummary(sum, err)
	return sum, err
}

func (p *Peer) connect(ctx context.Context) (net.Conn, error) {
	if p.ln != nil {
		defer p.ln.Close() // one peer per run
		p.log.Info("waiting for a peer", "addr", p.ln.Addr())
		stop := context.AfterFunc(ctx, func() { p.ln.Close() })
		defer stop()
		conn, err := p.ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil, nil
			}
			return nil, fmt.Errorf("p2p: accept: %w", err)
		}
		return conn, nil
	}
	d := net.Dialer{Timeout: 10 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", p.cfg.Dial)
	if err != nil {
		if ctx.Err() != nil {
			return nil, nil
		}
		return nil, fmt.Errorf("p2p: cannot reach %s (is `parley p2p listen` running there, and its port open?): %w", p.cfg.Dial, err)
	}
	return conn, nil
}

func hostOf(a net.Addr) string {
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}

// call is one call's state, owned by the run loop; pion's callbacks hand
// their events to it over channels.
type call struct {
	*Peer
	sig        *signalConn
	dialer     bool
	remoteName string
	done       chan struct{} // closed when Run returns: callbacks stop handing over

	counts    rtpcount.Counter
	pc        *webrtc.PeerConnection
	track     *webrtc.TrackLocalStaticSample // nil: no audio to send
	pending   []webrtc.ICECandidateInit      // candidates that came before the remote description
	recorders []*record.Recorder

	connectedAt time.Time
	state       webrtc.PeerConnectionState
	stopAudio   context.CancelFunc
	audioDone   chan error
}

func (c *call) run(ctx context.Context) (Summary, error) {
	api, err := c.newAPI()
	if err != nil {
		return Summary{}, err
	}
	if c.pc, err = api.NewPeerConnection(webrtc.Configuration{}); err != nil {
		return Summary{}, fmt.Errorf("p2p: %w", err)
	}
	states := make(chan webrtc.PeerConnectionState, 8)
	tracks := make(chan *webrtc.TrackRemote, 2)
	c.pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		select {
		case states <- s:
		case <-c.done:
		}
	})
	c.pc.OnTrack(func(t *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		select {
		case tracks <- t:
		case <-c.done:
		}
	})
	c.pc.OnICECandidate(func(cand *webrtc.ICECandidate) {
		if cand == nil {
			return // gathering is complete; the peer needs no word of it
		}
		init := cand.ToJSON()
		if err := c.sig.write(message{Type: typeCandidate, Candidate: &init}); err != nil {
			c.log.Debug("candidate not sent", "err", err)
		}
	})
	if c.audio != nil {
		if c.track, err = webrtc.NewTrackLocalStaticSample(c.audio.Codec(), "audio", "parley-p2p"); err != nil {
			return c.end(Summary{}, fmt.Errorf("p2p: %w", err), false)
		}
	}
	if c.dialer {
		if err := c.offer(); err != nil {
			return c.end(Summary{}, err, false)
		}
	}

	msgs := make(chan message)
	readErr := make(chan error, 1)
	go func() {
		for {
			m, err := c.sig.read()
			if err != nil {
				readErr <- err
				return
			}
			select {
			case msgs <- m:
			case <-c.done:
				return
			}
		}
	}()

	status := time.NewTicker(c.cfg.StatusInterval)
	defer status.Stop()
	connectTimeout := time.NewTimer(ConnectTimeout)
	defer connectTimeout.Stop()
	var durationC <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return c.end(Summary{Reason: "interrupted"}, nil, true)
		case <-durationC:
			return c.end(Summary{Reason: fmt.Sprintf("%v reached", c.cfg.Duration)}, nil, true)
		case <-connectTimeout.C:
			if c.connectedAt.IsZero() {
				return c.end(Summary{}, fmt.Errorf("p2p: no WebRTC connection within %v although signaling works: "+
					"UDP between the two machines is probably blocked (a firewall?)", ConnectTimeout), true)
			}
		case m := <-msgs:
			if m.Type == typeBye {
				return c.end(Summary{Reason: "the peer hung up"}, nil, false)
			}
			if err := c.handle(m); err != nil {
				return c.end(Summary{}, err, true)
			}
		case err := <-readErr:
			if errors.Is(err, io.EOF) && !c.connectedAt.IsZero() {
				return c.end(Summary{Reason: "the peer left (signaling connection closed)"}, nil, false)
			}
			if errors.Is(err, io.EOF) {
				err = errors.New("p2p: the peer closed the connection before the call was set up")
			}
			return c.end(Summary{}, err, false)
		case s := <-states:
			c.state = s
			switch s {
			case webrtc.PeerConnectionStateConnected:
				if c.connectedAt.IsZero() {
					c.connectedAt = time.Now()
					c.log.Info("call connected")
					c.startAudio()
					if c.cfg.Duration > 0 {
						durationC = time.After(c.cfg.Duration)
					}
				}
			case webrtc.PeerConnectionStateDisconnected:
				c.log.Warn("connection interrupted; waiting for it to come back")
			case webrtc.PeerConnectionStateFailed:
				return c.end(Summary{}, errors.New("p2p: the WebRTC connection failed"), true)
			case webrtc.PeerConnectionStateClosed:
				return c.end(Summary{Reason: "connection closed"}, nil, false)
			}
		case t := <-tracks:
			c.receive(t)
		case err := <-c.audioDone:
			c.audioDone = nil
			if err != nil && !errors.Is(err, context.Canceled) {
				c.log.Warn("audio stopped", "err", err)
			} else {
				c.log.Info("audio input ended")
			}
		case <-status.C:
			fmt.Fprintf(c.cfg.Status, "p2p: %-12s sent %s, received %s\n", c.state, c.counts.Out(), c.counts.In())
		}
	}
}

func (c *call) newAPI() (*webrtc.API, error) {
	// Two levels down: in a command-line call the status lines tell the
	// story, and pion's warnings are ordinary setup and teardown.
	logs := pionlog.Factory{Log: c.log, Down: 2 * pionlog.Step}
	me := &webrtc.MediaEngine{}
	if err := me.RegisterDefaultCodecs(); err != nil {
		return nil, fmt.Errorf("p2p: codecs: %w", err)
	}
	ir := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptorsWithOptions(me, ir, webrtc.WithInterceptorLoggerFactory(logs)); err != nil {
		return nil, fmt.Errorf("p2p: interceptors: %w", err)
	}
	ir.Add(&c.counts)
	se := webrtc.SettingEngine{LoggerFactory: logs}
	// Both ends are pion and give real addresses; mDNS would only add
	// multicast traffic and a lookup delay.
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	if c.cfg.Loopback {
		se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
		se.SetIncludeLoopbackCandidate(true)
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se)), nil
}

// offer starts the call from the dialing side.
func (c *call) offer() error {
	if c.track != nil {
		if err := c.addTrack(); err != nil {
			return err
		}
	} else if _, err := c.pc.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio,
		webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		return fmt.Errorf("p2p: %w", err)
	}
	offer, err := c.pc.CreateOffer(nil)
	if err != nil {
		return fmt.Errorf("p2p: create offer: %w", err)
	}
	if err := c.pc.SetLocalDescription(offer); err != nil {
		return fmt.Errorf("p2p: set offer: %w", err)
	}
	return c.sig.write(message{Type: typeOffer, SDP: offer.SDP})
}

func (c *call) addTrack() error {
	sender, err := c.pc.AddTrack(c.track)
	if err != nil {
		return fmt.Errorf("p2p: add audio track: %w", err)
	}
	// RTCP must be read for pion's interceptors (reports, NACK) to see it.
	go func() {
		buf := make([]byte, 1500)
		for {
			if _, _, err := sender.Read(buf); err != nil {
				return
			}
		}
	}()
	return nil
}

// handle applies one offer, answer or candidate from the peer.
func (c *call) handle(m message) error {
	switch m.Type {
	case typeOffer:
		if c.dialer {
			return errors.New("p2p: the peer sent an offer, but this side dialed and offers (did both sides dial?)")
		}
		if err := c.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: m.SDP}); err != nil {
			return fmt.Errorf("p2p: the peer's offer: %w", err)
		}
		// Added after the offer, the track takes the transceiver the offer
		// made rather than a second audio m-line.
		if c.track != nil {
			if err := c.addTrack(); err != nil {
				return err
			}
		}
		answer, err := c.pc.CreateAnswer(nil)
		if err != nil {
			return fmt.Errorf("p2p: create answer: %w", err)
		}
		if err := c.pc.SetLocalDescription(answer); err != nil {
			return fmt.Errorf("p2p: set answer: %w", err)
		}
		if err := c.sig.write(message{Type: typeAnswer, SDP: answer.SDP}); err != nil {
			return err
		}
		return c.addPending()
	case typeAnswer:
		if !c.dialer || c.pc.RemoteDescription() != nil {
			return errors.New("p2p: the peer sent an answer to no offer")
		}
		if err := c.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: m.SDP}); err != nil {
			return fmt.Errorf("p2p: the peer's answer: %w", err)
		}
		return c.addPending()
	case typeCandidate:
		// A candidate can overtake the description it belongs to: the
		// peer's pion gathers while the description is still being sent.
		if c.pc.RemoteDescription() == nil {
			c.pending = append(c.pending, *m.Candidate)
			return nil
		}
		if err := c.pc.AddICECandidate(*m.Candidate); err != nil {
			c.log.Warn("bad candidate from the peer", "err", err)
		}
	}
	return nil
}

func (c *call) addPending() error {
	for _, cand := range c.pending {
		if err := c.pc.AddICECandidate(cand); err != nil {
			c.log.Warn("bad candidate from the peer", "err", err)
		}
	}
	c.pending = nil
	return nil
}

// startAudio sends the audio once the call is connected, so that it starts
// at its beginning rather than into a connection not yet up.
func (c *call) startAudio() {
	if c.track == nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	c.stopAudio = cancel
	c.audioDone = make(chan error, 1)
	done := c.audioDone
	go func() { done <- c.audio.Run(ctx, c.track) }()
}

// receive records a remote track, or only reads it (so its packets are
// counted and pion's buffers do not fill) when not recording.
func (c *call) receive(t *webrtc.TrackRemote) {
	c.log.Info("receiving", "kind", t.Kind(), "codec", t.Codec().MimeType)
	if c.cfg.RecordDir != "" {
		r, err := record.Start(record.Config{Dir: c.cfg.RecordDir, Participant: c.remoteName}, t, c.log)
		if err == nil {
			c.recorders = append(c.recorders, r)
			return
		}
		c.log.Error("cannot record", "err", err)
	}
	go func() {
		buf := make([]byte, 1500)
		for {
			if _, _, err := t.Read(buf); err != nil {
				return
			}
		}
	}()
}

// end hangs up: bye to the peer (unless it is gone or already said bye),
// audio stopped, recordings finalized, the connection closed.
func (c *call) end(sum Summary, err error, sayBye bool) (Summary, error) {
	if sayBye {
		if werr := c.sig.write(message{Type: typeBye}); werr != nil {
			c.log.Debug("bye not sent", "err", werr)
		}
	}
	if c.stopAudio != nil {
		c.stopAudio()
		if c.audioDone != nil {
			<-c.audioDone
		}
	}
	for _, r := range c.recorders {
		if cerr := r.Close(); cerr != nil {
			c.log.Error("recording not finalized", "file", r.Path(), "err", cerr)
			err = errors.Join(err, cerr)
		}
		sum.Recordings = append(sum.Recordings, Recording{Path: r.Path(), Stats: r.Stats()})
	}
	if c.pc != nil {
		if cerr := c.pc.Close(); cerr != nil {
			c.log.Debug("close peer connection", "err", cerr)
		}
	}
	if !c.connectedAt.IsZero() {
		sum.Connected = time.Since(c.connectedAt)
	}
	sum.Sent, sum.Received = c.counts.Out(), c.counts.In()
	if sum.Reason == "" && err != nil {
		sum.Reason = "error"
	}
	return sum, err
}

func (p *Peer) printSummary(s Summary, err error) {
	w := p.cfg.Status
	if err != nil {
		fmt.Fprintf(w, "call ended with an error: %v", err)
	} else {
		fmt.Fprintf(w, "call ended: %s", s.Reason)
	}
	fmt.Fprintf(w, "\n  connected for %v\n  sent     %s\n  received %s\n",
		s.Connected.Round(100*time.Millisecond), s.Sent, s.Received)
	for _, r := range s.Recordings {
		fmt.Fprintf(w, "  recorded %s (%d packets over %v)\n", r.Path, r.Stats.Packets, r.Stats.Duration().Round(100*time.Millisecond))
	}
}
