// Package client is Parley's native participant: a Go (pion) peer that
// speaks docs/protocol.md like the web page does. The command-line client
// (`parley join`), the load tester and tests use it.
//
// A Client owns one signaling socket. One goroutine (run) owns the call's
// state: it handles server messages and the events pion raises (queued
// from pion's goroutines), so no lock guards the peers; a writer goroutine
// sends. In a mesh call it keeps one peer connection per other participant
// (perfect negotiation, as the page); in an SFU call a publish and a
// subscribe connection with the server.
package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"

	"github.com/parley/parley/internal/pionlog"
	"github.com/parley/parley/internal/rtpcount"
	"github.com/parley/parley/internal/signaling"
)

// Source feeds one local track with media samples in real time until ctx
// ends or the source is exhausted (internal/source implements it).
type Source interface {
	Codec() webrtc.RTPCodecCapability
	Run(ctx context.Context, track *webrtc.TrackLocalStaticSample) error
}

// Remote is one track received from another participant.
type Remote struct {
	Participant string // participant id
	Name        string // display name, "" if not known yet
	Source      string // signaling.SourceMicrophone, SourceCamera or SourceScreen
	Track       *webrtc.TrackRemote
}

// Config is what a Client needs. URL and one way to authenticate are
// required.
type Config struct {
	// URL is the channel's page, https://HOST/c/CHANNEL (http:// too).
	URL string
	// Token is a personal access token (parley_...); or Username and
	// Password log in like the login form.
	Token              string
	Username, Password string
	// InsecureTLS accepts any server certificate (self-signed LAN setups).
	InsecureTLS bool
	// LoopbackOnly restricts ICE to loopback candidates (tests).
	LoopbackOnly bool
	// RelayOnly sends all media through the TURN relay the server hands
	// out (ICE transport policy "relay"), as a network that allows nothing
	// else would force; for tests and diagnosis.
	RelayOnly bool
	// Audio and Video are what to publish; nil sends nothing of that kind.
	Audio, Video Source
	// VideoLayers, instead of Video, publish a simulcast camera: sources
	// for the quarter, half and full resolution layers (rids q, h, f), as
	// browsers send. Simulcast goes to the SFU only: in a mesh call the
	// client then sends no video.
	VideoLayers []Source
	// OnTrack is called, on its own goroutine, for every remote track; it
	// must read the track until it ends (Read returns an error). Nil
	// discards what arrives.
	OnTrack func(Remote)
	// OnEvent, if set, hears about participants and state changes in
	// human words (for status lines). Must not block.
	OnEvent func(string)
}

// Client is one participant in one channel's call.
type Client struct {
	cfg    Config
	log    *slog.Logger
	api    *webrtc.API
	conn   *websocket.Conn // the current socket (owner goroutine)
	redial func(context.Context) (*websocket.Conn, error)

	out    chan signaling.Message // to the writer
	events chan func()            // pion callbacks, run on the owner goroutine
	done   chan struct{}          // closed when run ends
	err    error                  // why run ended; read after done

	user       signaling.User
	iceServers []webrtc.ICEServer // guarded by statsMu

	audio, video *webrtc.TrackLocalStaticSample
	layers       []*webrtc.TrackLocalStaticSample // simulcast camera, rids q, h, f
	simulcast    *webrtc.RTPTransceiver           // their transceiver (owner goroutine)
	tagger       ridTagger

	// owned by run
	myID     string
	resume   string // joined's resumeToken, proving myID on a rejoin
	topology string
	names    map[string]string // participant id → display name
	mesh     map[string]*meshPeer
	sfu      *sfuPeers

	statsMu sync.Mutex
	pcs     map[*webrtc.PeerConnection]bool // every live connection, for Stats
	joined  time.Time                       // when join was sent
	joinRTT time.Duration                   // join to joined, 0 = not yet
	first   time.Duration                   // join to first media packet, 0 = not yet
	rtp     rtpcount.Counter                // RTP sent and received, every connection
	gone    losses                          // what closed connections reported lost
}

// Dial connects to the channel's signaling socket and reads hello. It
// does not join the call: call Join.
func Dial(ctx context.Context, cfg Config, log *slog.Logger) (*Client, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	page, err := url.Parse(cfg.URL)
	if err != nil || (page.Scheme != "http" && page.Scheme != "https") || page.Host == "" {
		return nil, fmt.Errorf("client: %q is not a channel URL like https://HOST/c/CHANNEL", cfg.URL)
	}
	channel, ok := strings.CutPrefix(page.Path, "/c/")
	if !ok || channel == "" || strings.Contains(channel, "/") {
		return nil, fmt.Errorf("client: %q is not a channel URL: the path must be /c/CHANNEL", cfg.URL)
	}
	if cfg.Token == "" && cfg.Username == "" {
		return nil, errors.New("client: no credentials: give a personal access token (make one on the account page) or a username and password")
	}
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, Timeout: 15 * time.Second}
	if cfg.InsecureTLS {
		hc.Transport = &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	}
	base := &url.URL{Scheme: page.Scheme, Host: page.Host}
	if cfg.Token == "" {
		if err := logIn(ctx, hc, base, cfg.Username, cfg.Password); err != nil {
			return nil, err
		}
	}
	wsURL := *base
	wsURL.Scheme = map[string]string{"http": "ws", "https": "wss"}[page.Scheme]
	wsURL.Path = "/ws/c/" + channel
	header := http.Header{}
	if cfg.Token != "" {
		header.Set("Authorization", "Bearer "+cfg.Token)
	}
	dialHC := *hc
	dialHC.Timeout = 0 // the socket lives on; the dial is bounded by ctx
	conn, resp, err := websocket.Dial(ctx, wsURL.String(), &websocket.DialOptions{
		HTTPClient: &dialHC, HTTPHeader: header, Subprotocols: []string{signaling.Subprotocol},
	})
	if err != nil {
		if resp != nil {
			switch resp.StatusCode {
			case http.StatusUnauthorized:
				return nil, fmt.Errorf("client: the server refused the credentials (401): check the token, or make a new one on the account page")
			case http.StatusForbidden:
				return nil, fmt.Errorf("client: you are not a member of this channel (403): ask its owner to add you")
			case http.StatusNotFound:
				return nil, fmt.Errorf("client: no such channel (404): check the URL")
			case http.StatusTooManyRequests:
				return nil, fmt.Errorf("client: this account has too many connections open (429): close some, or ask the operator to raise --max-connections-per-user")
			}
		}
		return nil, fmt.Errorf("client: connect to %s: %w", wsURL.Redacted(), err)
	}
	conn.SetReadLimit(signaling.MaxMessageBytes)
	c := &Client{
		cfg: cfg, log: log, conn: conn,
		redial: func(ctx context.Context) (*websocket.Conn, error) {
			conn, _, err := websocket.Dial(ctx, wsURL.String(), &websocket.DialOptions{
				HTTPClient: &dialHC, HTTPHeader: header, Subprotocols: []string{signaling.Subprotocol},
			})
			if err == nil {
				conn.SetReadLimit(signaling.MaxMessageBytes)
			}
			return conn, err
		},
		out:    make(chan signaling.Message, 256),
		events: make(chan func(), 256),
		done:   make(chan struct{}),
		names:  map[string]string{},
		mesh:   map[string]*meshPeer{},
		pcs:    map[*webrtc.PeerConnection]bool{},
	}
	hello, err := c.read(ctx)
	if err != nil {
		conn.CloseNow()
		return nil, fmt.Errorf("client: waiting for hello: %w", err)
	}
	if hello.Type != signaling.TypeHello || hello.User == nil {
		conn.CloseNow()
		return nil, fmt.Errorf("client: the server sent %q first, want hello: is this a Parley server?", hello.Type)
	}
	c.user = *hello.User
	c.handleHello(hello)
	if c.api, err = newAPI(cfg.LoopbackOnly, &c.rtp, &c.tagger, log); err != nil {
		conn.CloseNow()
		return nil, err
	}
	if err := c.makeTracks(); err != nil {
		conn.CloseNow()
		return nil, err
	}
	return c, nil
}

// logIn posts the login form and keeps the session cookie in hc's jar.
func logIn(ctx context.Context, hc *http.Client, base *url.URL, username, password string) error {
	form := url.Values{"username": {username}, "password": {password}}
	u := *base
	u.Path = "/login"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), strings.NewReader(form.Encode()))
	if err != nil {
		return fmt.Errorf("client: log in: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	noRedirect := *hc
	noRedirect.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := noRedirect.Do(req)
	if err != nil {
		return fmt.Errorf("client: log in: %w", err)
	}
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusSeeOther, http.StatusFound:
		return nil
	case http.StatusTooManyRequests:
		return fmt.Errorf("client: too many failed logins; retry in %s seconds", resp.Header.Get("Retry-After"))
	case http.StatusServiceUnavailable:
		return fmt.Errorf("client: the server is busy checking other passwords; retry in %s seconds", resp.Header.Get("Retry-After"))
	default:
		return fmt.Errorf("client: log in failed (%d): check the username and password", resp.StatusCode)
	}
}

// newAPI is a browser-like pion API: default codecs and interceptors
// (NACK, RTCP reports, stats, TWCC) plus the audio level extension.
func newAPI(loopback bool, counter *rtpcount.Counter, tagger *ridTagger, log *slog.Logger) (*webrtc.API, error) {
	me := &webrtc.MediaEngine{}
	if err := me.RegisterDefaultCodecs(); err != nil {
		return nil, fmt.Errorf("client: codecs: %w", err)
	}
	if err := me.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: sdp.AudioLevelURI}, webrtc.RTPCodecTypeAudio); err != nil {
		return nil, fmt.Errorf("client: audio level: %w", err)
	}
	ir := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(me, ir); err != nil {
		return nil, fmt.Errorf("client: interceptors: %w", err)
	}
	// pion's stats report nothing for outgoing streams, and forget a
	// connection's incoming ones once it closes: count both here.
	ir.Add(counter)
	ir.Add(tagger)
	// Two levels down: pion's warnings are routine setup and teardown, and
	// a command line's status and events tell the story.
	se := webrtc.SettingEngine{LoggerFactory: pionlog.Factory{Log: log, Down: 2 * pionlog.Step}}
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	// As libwebrtc: late retransmissions must not fall out of the replay window.
	se.SetSRTPReplayProtectionWindow(1024)
	// pion's defaults declare a connection failed 30 s (disconnected 5 s +
	// failed 25 s) after checks begin or the peer falls silent. Someone
	// waiting on a call that cannot connect (both sides behind symmetric
	// NATs with no TURN relay) should hear so sooner; 15 s still leaves a
	// relayed pair (well under a second here) and a network blip plenty.
	se.SetICETimeouts(5*time.Second, 10*time.Second, 2*time.Second)
	if loopback {
		se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
		se.SetIncludeLoopbackCandidate(true)
		se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se)), nil
}

// streamID is the stream the client's camera and microphone travel in
// (mesh peers take a participant's first stream as its camera stream).
const streamID = "parley-client"

func (c *Client) makeTracks() error {
	var err error
	if c.cfg.Audio != nil {
		if c.audio, err = webrtc.NewTrackLocalStaticSample(c.cfg.Audio.Codec(), "microphone", streamID); err != nil {
			return fmt.Errorf("client: audio track: %w", err)
		}
	}
	if c.cfg.Video != nil {
		if c.video, err = webrtc.NewTrackLocalStaticSample(c.cfg.Video.Codec(), "camera", streamID); err != nil {
			return fmt.Errorf("client: video track: %w", err)
		}
	}
	if len(c.cfg.VideoLayers) > 0 {
		if c.cfg.Video != nil || len(c.cfg.VideoLayers) > len(simulcastRIDs) {
			return fmt.Errorf("client: give Video or up to %d VideoLayers, not both", len(simulcastRIDs))
		}
		for i, src := range c.cfg.VideoLayers {
			tr, err := webrtc.NewTrackLocalStaticSample(src.Codec(), "camera", streamID, webrtc.WithRTPStreamID(simulcastRIDs[i]))
			if err != nil {
				return fmt.Errorf("client: simulcast layer %s: %w", simulcastRIDs[i], err)
			}
			c.layers = append(c.layers, tr)
		}
	}
	return nil
}

// peerGoneAfter is how long a mesh connection is kept for a peer whose
// socket dropped (docs/protocol.md, Reconnecting).
const peerGoneAfter = 20 * time.Second

// simulcastRIDs name the layers smallest first, as the page does.
var simulcastRIDs = []string{"q", "h", "f"}

// sources is the publish offer's sources field.
func (c *Client) sources() map[string]string {
	m := map[string]string{}
	if c.audio != nil {
		m[c.audio.ID()] = signaling.SourceMicrophone
	}
	if c.video != nil {
		m[c.video.ID()] = signaling.SourceCamera
	}
	if len(c.layers) > 0 {
		m[c.layers[0].ID()] = signaling.SourceCamera
	}
	return m
}

// ICEServers are the STUN/TURN servers (with credentials) the server
// handed out last (hello, then ice-servers refreshes).
func (c *Client) ICEServers() []webrtc.ICEServer {
	c.statsMu.Lock()
	defer c.statsMu.Unlock()
	return append([]webrtc.ICEServer(nil), c.iceServers...)
}

func (c *Client) setICEServers(list []signaling.IceServer) {
	out := make([]webrtc.ICEServer, 0, len(list))
	for _, s := range list {
		out = append(out, webrtc.ICEServer{URLs: s.URLs, Username: s.Username, Credential: s.Credential})
	}
	c.statsMu.Lock()
	c.iceServers = out
	c.statsMu.Unlock()
}

// User is who the client is logged in as.
func (c *Client) User() signaling.User { return c.user }

// Run joins the call and stays in it until ctx ends (then it leaves
// cleanly) or the server ends the call; it returns nil after a clean
// leave. Media sources start once joined.
func (c *Client) Run(ctx context.Context) error {
	defer close(c.done)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	incoming := make(chan signaling.Message, 64)
	readErr := make(chan error, 1)
	stopWriter := c.serveSocket(ctx, &wg, incoming, readErr)
	c.send(c.joinMessage())
	c.statsMu.Lock()
	c.joined = time.Now()
	c.statsMu.Unlock()

	var sources sync.WaitGroup
	startSources := sync.OnceFunc(func() {
		type feed struct {
			src   Source
			track *webrtc.TrackLocalStaticSample
		}
		feeds := []feed{{c.cfg.Audio, c.audio}, {c.cfg.Video, c.video}}
		for i, src := range c.cfg.VideoLayers {
			feeds = append(feeds, feed{src, c.layers[i]})
		}
		for _, s := range feeds {
			if s.src == nil {
				continue
			}
			sources.Add(1)
			go func() {
				defer sources.Done()
				if err := s.src.Run(ctx, s.track); err != nil && ctx.Err() == nil {
					c.log.Warn("media source stopped", "track", s.track.ID(), "err", err)
				}
			}()
		}
	})

	// reconnected brings a new socket (and its hello) after a loss.
	type redialed struct {
		conn  *websocket.Conn
		hello signaling.Message
		err   error
	}
	reconnected := make(chan redialed, 1)
	var err error
loop:
	for {
		select {
		case <-ctx.Done():
			// Leave politely; the writer may already be gone.
			lctx, lcancel := context.WithTimeout(context.Background(), time.Second)
			_ = c.write(lctx, signaling.Message{Type: signaling.TypeLeave})
			lcancel()
			c.conn.Close(websocket.StatusNormalClosure, "left")
			break loop
		case rerr := <-readErr:
			stopWriter()
			if err = closeReason(rerr); err == nil || !reconnectable(rerr) {
				break loop
			}
			// Media keeps flowing on the connections we have (mesh peers
			// talk directly); signaling comes back with resume.
			c.event("signaling lost (%v): reconnecting", err)
			err = nil
			wg.Add(1)
			go func() {
				defer wg.Done()
				conn, hello, err := c.reconnect(ctx)
				reconnected <- redialed{conn, hello, err}
			}()
		case r := <-reconnected:
			if r.err != nil {
				err = r.err
				break loop
			}
			c.conn = r.conn
			for len(c.out) > 0 { // stale: offers and candidates for the old socket
				<-c.out
			}
			stopWriter = c.serveSocket(ctx, &wg, incoming, readErr)
			c.handleHello(r.hello)
			c.event("signaling reconnected")
			c.send(c.joinMessage())
		case m := <-incoming:
			if m.Type == signaling.TypeJoined {
				c.statsMu.Lock()
				if c.joinRTT == 0 {
					c.joinRTT = time.Since(c.joined)
				}
				c.statsMu.Unlock()
				startSources()
			}
			c.handle(m)
		case f := <-c.events:
			f()
		}
	}
	cancel()
	c.conn.CloseNow()
	c.closeAll()
	wg.Wait()
	sources.Wait()
	c.err = err
	return err
}

// joinMessage is join with our state, resuming our participant id after a
// reconnect.
func (c *Client) joinMessage() signaling.Message {
	return signaling.Message{Type: signaling.TypeJoin, Resume: c.myID, ResumeToken: c.resume,
		State: &signaling.State{Audio: c.audio != nil, Video: c.video != nil || len(c.layers) > 0}}
}

// serveSocket starts the reader and writer of the current socket; the
// returned func stops the writer.
func (c *Client) serveSocket(ctx context.Context, wg *sync.WaitGroup, incoming chan<- signaling.Message, readErr chan<- error) func() {
	conn := c.conn
	wctx, stop := context.WithCancel(ctx)
	wg.Add(2)
	go func() { defer wg.Done(); c.writeLoop(wctx, conn) }()
	go func() {
		defer wg.Done()
		for {
			// Not ctx: cancelling a read closes the socket, and leaving
			// still has to send leave on it. Closing the socket ends this.
			m, err := readFrom(context.Background(), conn)
			if err != nil {
				readErr <- err
				return
			}
			select {
			case incoming <- m:
			case <-ctx.Done():
				return
			}
		}
	}()
	return stop
}

// reconnectable says whether a lost socket is worth dialling again: not
// when the server ended our part on purpose.
func reconnectable(err error) bool {
	switch websocket.CloseStatus(err) {
	case websocket.StatusNormalClosure, 4000, 4001, 4003, 4004, websocket.StatusPolicyViolation, websocket.StatusMessageTooBig:
		return false
	}
	return true
}

// reconnect dials again with backoff (0.5 s doubling to 5 s, as the page)
// for up to two minutes, and reads the new socket's hello.
func (c *Client) reconnect(ctx context.Context) (*websocket.Conn, signaling.Message, error) {
	wait := 500 * time.Millisecond
	deadline := time.Now().Add(2 * time.Minute)
	for {
		select {
		case <-ctx.Done():
			return nil, signaling.Message{}, ctx.Err()
		case <-time.After(wait):
		}
		dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		conn, err := c.redial(dctx)
		if err == nil {
			var hello signaling.Message
			hello, err = readFrom(dctx, conn)
			if err == nil && hello.Type != signaling.TypeHello {
				err = fmt.Errorf("the server sent %q first", hello.Type)
			}
			if err == nil {
				cancel()
				return conn, hello, nil
			}
			conn.CloseNow()
		}
		cancel()
		if time.Now().After(deadline) {
			return nil, signaling.Message{}, fmt.Errorf("client: the server did not come back within two minutes: %w", err)
		}
		wait = min(2*wait, 5*time.Second)
	}
}

// handleHello takes a (new) socket's hello: ICE servers and who is there.
func (c *Client) handleHello(hello signaling.Message) {
	c.setICEServers(hello.IceServers)
	for _, p := range hello.Participants {
		c.names[p.ID] = p.Name
	}
}

// closeReason turns the socket's end into the error Run returns: nil for a
// normal end, a human reason for the server's close codes.
func closeReason(err error) error {
	switch websocket.CloseStatus(err) {
	case websocket.StatusNormalClosure:
		return nil
	case 4001:
		return errors.New("client: the access token was revoked (or the login ended): create a new token and join again")
	case 4003:
		return errors.New("client: you were removed from the channel")
	case 4004:
		return errors.New("client: the channel was deleted")
	case 4000:
		return errors.New("client: the same participant joined from another connection")
	case websocket.StatusGoingAway:
		return errors.New("client: the server is restarting; join again")
	}
	return fmt.Errorf("client: signaling connection lost: %w", err)
}

func (c *Client) read(ctx context.Context) (signaling.Message, error) { return readFrom(ctx, c.conn) }

func readFrom(ctx context.Context, conn *websocket.Conn) (signaling.Message, error) {
	typ, data, err := conn.Read(ctx)
	if err != nil {
		return signaling.Message{}, err
	}
	if typ != websocket.MessageText {
		return signaling.Message{}, errors.New("client: the server sent a binary frame")
	}
	return signaling.Parse(data)
}

// send queues m for the writer; it never blocks the owner goroutine (a
// full queue means the socket is stuck, and the message is dropped).
func (c *Client) send(m signaling.Message) {
	select {
	case c.out <- m:
	default:
		c.log.Warn("signaling queue full, dropping message", "type", m.Type)
	}
}

func (c *Client) writeLoop(ctx context.Context, conn *websocket.Conn) {
	for {
		select {
		case <-ctx.Done():
			return
		case m := <-c.out:
			if err := writeTo(ctx, conn, m); err != nil {
				return
			}
		}
	}
}

// write sends m on the current socket (owner goroutine).
func (c *Client) write(ctx context.Context, m signaling.Message) error {
	return writeTo(ctx, c.conn, m)
}

func writeTo(ctx context.Context, conn *websocket.Conn, m signaling.Message) error {
	data, err := signaling.Encode(m)
	if err != nil {
		return err
	}
	return conn.Write(ctx, websocket.MessageText, data)
}

// queue runs f on the owner goroutine (from pion callbacks).
func (c *Client) queue(f func()) {
	select {
	case c.events <- f:
	case <-c.done:
	}
}

// onOwner runs f on the owner goroutine and waits for it (from pion
// goroutines); it gives up if the client has stopped.
func (c *Client) onOwner(f func()) {
	done := make(chan struct{})
	c.queue(func() { f(); close(done) })
	select {
	case <-done:
	case <-c.done:
	}
}

func (c *Client) event(format string, args ...any) {
	if c.cfg.OnEvent != nil {
		c.cfg.OnEvent(fmt.Sprintf(format, args...))
	}
}

// handle applies one server message (owner goroutine).
func (c *Client) handle(m signaling.Message) {
	switch m.Type {
	case signaling.TypeJoined:
		rejoined := c.myID != ""
		c.myID, c.resume = m.You.ID, m.ResumeToken
		for _, p := range m.Participants {
			c.names[p.ID] = p.Name
		}
		c.event("joined the call as %s (%s), %d others there, topology %s", c.user.Name, c.myID, len(m.Participants), m.Topology)
		if rejoined && m.Topology == c.topology {
			c.rejoined(m.Participants)
			return
		}
		c.setTopology(m.Topology, m.Participants)
	case signaling.TypeTopology:
		others := make([]signaling.Participant, 0, len(c.names))
		for id, name := range c.names {
			if id != c.myID {
				others = append(others, signaling.Participant{ID: id, Name: name})
			}
		}
		c.event("the call now uses %s", m.Topology)
		c.setTopology(m.Topology, others)
	case signaling.TypeParticipantJoined:
		if m.Participant == nil || m.Participant.ID == c.myID {
			return
		}
		c.names[m.Participant.ID] = m.Participant.Name
		c.event("%s joined", m.Participant.Name)
		if p := c.mesh[m.Participant.ID]; p != nil && p.goneTimer != nil {
			// Back after a signaling loss: the connection we kept is theirs.
			p.goneTimer.Stop()
			p.goneTimer = nil
			return
		}
		if c.topology == signaling.TopologyMesh && c.myID != "" {
			c.meshPeerFor(m.Participant.ID, false)
		}
	case signaling.TypeParticipantLeft:
		c.event("%s left (%s)", c.names[m.ID], m.Reason)
		p := c.mesh[m.ID]
		if p == nil {
			delete(c.names, m.ID)
			return
		}
		if m.Reason == signaling.ReasonDisconnected || m.Reason == signaling.ReasonTimeout {
			// Probably reconnecting (their media may still flow, as ours
			// does when our socket drops): keep the connection a while, as
			// the page does, for the same id to come back.
			c.keepGone(m.ID, p)
			return
		}
		p.close()
		delete(c.mesh, m.ID)
		delete(c.names, m.ID)
	case signaling.TypeOffer, signaling.TypeAnswer, signaling.TypeCandidate:
		switch {
		case m.From == signaling.SFU:
			// Only the server sends as "sfu": it fills from itself.
			c.handleSFU(m)
		case m.PC != "" || !signaling.ValidParticipantID(m.From):
			// A participant's message never carries pc, and the server
			// always names its sender: this one passes for neither.
			c.log.Warn("dropped a negotiation message from no participant", "type", m.Type, "from", m.From, "pc", m.PC)
		case c.topology == signaling.TopologyMesh:
			c.handleMesh(m)
		}
	case signaling.TypeSFURestart:
		// The server's side of our SFU connections failed and was made
		// anew: so must ours be; its subscribe offer follows.
		if c.topology == signaling.TopologySFU {
			c.event("the media server connection is starting again")
			if c.sfu != nil {
				c.sfu.close()
				c.sfu = nil
			}
			c.startSFU()
		}
	case signaling.TypeIceServers:
		// Fresh TURN credentials before the old ones expire: live
		// connections take them too, for later ICE restarts.
		c.setICEServers(m.IceServers)
		c.statsMu.Lock()
		pcs := make([]*webrtc.PeerConnection, 0, len(c.pcs))
		for pc := range c.pcs {
			pcs = append(pcs, pc)
		}
		c.statsMu.Unlock()
		for _, pc := range pcs {
			conf := pc.GetConfiguration()
			conf.ICEServers = c.ICEServers()
			if err := pc.SetConfiguration(conf); err != nil {
				c.log.Debug("new ICE servers", "err", err)
			}
		}
	case signaling.TypeError:
		c.log.Warn("the server refused a message", "code", m.Code, "message", m.Human, "ref", m.Ref)
	}
}

// rejoined settles the call after signaling came back: mesh connections
// to peers still there are kept (media flowed on them all along), others
// closed, missing ones made; SFU connections are made anew, since the
// server dropped its side when the socket went.
func (c *Client) rejoined(others []signaling.Participant) {
	if c.topology == signaling.TopologySFU {
		if c.sfu != nil {
			c.sfu.close()
			c.sfu = nil
		}
		c.startSFU()
		return
	}
	there := map[string]bool{}
	for _, p := range others {
		there[p.ID] = true
		if c.mesh[p.ID] == nil {
			c.meshPeerFor(p.ID, true)
		}
	}
	for id, p := range c.mesh {
		if !there[id] {
			// Not back yet (after a server restart everyone rejoins one by
			// one): kept a while, as for a peer whose socket dropped.
			c.keepGone(id, p)
		}
	}
}

// keepGone keeps the connection to a peer whose socket is gone for
// peerGoneAfter, for the same participant to come back to it.
func (c *Client) keepGone(id string, p *meshPeer) {
	if p.goneTimer != nil {
		return
	}
	p.goneTimer = time.AfterFunc(peerGoneAfter, func() {
		c.queue(func() {
			if c.mesh[id] == p {
				p.close()
				delete(c.mesh, id)
			}
		})
	})
}

// setTopology moves the client's media to the mesh or the SFU.
func (c *Client) setTopology(t string, others []signaling.Participant) {
	if t == c.topology {
		return
	}
	c.topology = t
	switch t {
	case signaling.TopologySFU:
		for id, p := range c.mesh {
			p.close()
			delete(c.mesh, id)
		}
		c.startSFU()
	default:
		if c.sfu != nil {
			c.sfu.close()
			c.sfu = nil
		}
		// The newcomer (or, after a switch, everyone) offers; perfect
		// negotiation settles collisions.
		for _, p := range others {
			c.meshPeerFor(p.ID, true)
		}
	}
}

// newPC makes a peer connection counted in Stats.
func (c *Client) newPC() (*webrtc.PeerConnection, error) {
	conf := webrtc.Configuration{ICEServers: c.ICEServers()}
	if c.cfg.RelayOnly {
		conf.ICETransportPolicy = webrtc.ICETransportPolicyRelay
	}
	pc, err := c.api.NewPeerConnection(conf)
	if err != nil {
		return nil, fmt.Errorf("client: peer connection: %w", err)
	}
	c.statsMu.Lock()
	c.pcs[pc] = true
	c.statsMu.Unlock()
	return pc, nil
}

func (c *Client) closePC(pc *webrtc.PeerConnection) {
	// Keep its losses in the totals (c.rtp counts the packets) for the
	// summary after Run. Best effort: if the peer closed first, pion may
	// have dropped them already.
	lost := lossesOf(pc)
	c.statsMu.Lock()
	if c.pcs[pc] {
		c.gone.add(lost)
	}
	delete(c.pcs, pc)
	c.statsMu.Unlock()
	go pc.Close() // closing takes a while; never on the owner goroutine's time
}

// addLocalTracks adds the client's tracks to pc and drains their RTCP,
// which runs the interceptors (NACK responder, reports). In a mesh the
// transceivers are sendrecv, so one m-line carries each kind both ways as
// the browsers' addTrack does; towards the SFU they are sendonly.
func (c *Client) addLocalTracks(pc *webrtc.PeerConnection, dir webrtc.RTPTransceiverDirection) error {
	for _, tr := range []*webrtc.TrackLocalStaticSample{c.audio, c.video} {
		if tr == nil {
			continue
		}
		t, err := pc.AddTransceiverFromTrack(tr, webrtc.RTPTransceiverInit{Direction: dir})
		if err != nil {
			return fmt.Errorf("client: add track: %w", err)
		}
		go drainRTCP(t.Sender(), "")
	}
	if len(c.layers) == 0 || dir != webrtc.RTPTransceiverDirectionSendonly {
		return nil // simulcast is for the SFU's publish connection only
	}
	t, err := pc.AddTransceiverFromTrack(c.layers[0], webrtc.RTPTransceiverInit{Direction: dir})
	if err != nil {
		return fmt.Errorf("client: add simulcast track: %w", err)
	}
	for _, l := range c.layers[1:] {
		if err := t.Sender().AddEncoding(l); err != nil {
			return fmt.Errorf("client: add simulcast layer: %w", err)
		}
	}
	for _, l := range c.layers {
		go drainRTCP(t.Sender(), l.RID())
	}
	c.simulcast = t
	return nil
}

// tagSimulcast tells the tagger each layer's SSRC, mid and rid, once the
// publish offer fixed the mid.
func (c *Client) tagSimulcast() {
	if c.simulcast == nil {
		return
	}
	for _, e := range c.simulcast.Sender().GetParameters().Encodings {
		c.tagger.tags.Store(uint32(e.SSRC), [2]string{c.simulcast.Mid(), e.RID})
	}
}

// ridTagger is an interceptor adding the MID and RID header extensions to
// the client's simulcast packets: pion does not, and without them the SFU
// cannot tell the layers' streams apart.
type ridTagger struct {
	interceptor.NoOp
	tags sync.Map // SSRC → [2]string{mid, rid}
}

func (t *ridTagger) NewInterceptor(string) (interceptor.Interceptor, error) { return t, nil }

func (t *ridTagger) BindLocalStream(info *interceptor.StreamInfo, w interceptor.RTPWriter) interceptor.RTPWriter {
	var midID, ridID uint8
	for _, e := range info.RTPHeaderExtensions {
		switch e.URI {
		case sdp.SDESMidURI:
			midID = uint8(e.ID)
		case sdp.SDESRTPStreamIDURI:
			ridID = uint8(e.ID)
		}
	}
	if midID == 0 || ridID == 0 {
		return w
	}
	ssrc := info.SSRC
	return interceptor.RTPWriterFunc(func(h *rtp.Header, payload []byte, a interceptor.Attributes) (int, error) {
		if v, ok := t.tags.Load(ssrc); ok {
			tag := v.([2]string)
			_ = h.SetExtension(midID, []byte(tag[0]))
			_ = h.SetExtension(ridID, []byte(tag[1]))
		}
		return w.Write(h, payload, a)
	})
}

// drainRTCP reads a sender's RTCP (of one simulcast layer if rid is set).
func drainRTCP(s *webrtc.RTPSender, rid string) {
	buf := make([]byte, 1500)
	for {
		var err error
		if rid != "" {
			_, _, err = s.ReadSimulcast(buf, rid)
		} else {
			_, _, err = s.Read(buf)
		}
		if err != nil {
			return
		}
	}
}

// onTrack hands a remote track to the caller, on pion's goroutine.
func (c *Client) onTrack(participant, source string, tr *webrtc.TrackRemote) {
	c.statsMu.Lock()
	if c.first == 0 && !c.joined.IsZero() {
		c.first = time.Since(c.joined)
	}
	c.statsMu.Unlock()
	name := ""
	c.onOwner(func() { name = c.names[participant] })
	if c.cfg.OnTrack == nil {
		buf := make([]byte, 1500)
		for {
			if _, _, err := tr.Read(buf); err != nil {
				return
			}
		}
	}
	c.cfg.OnTrack(Remote{Participant: participant, Name: name, Source: source, Track: tr})
}

func (c *Client) closeAll() {
	for id, p := range c.mesh {
		p.close()
		delete(c.mesh, id)
	}
	if c.sfu != nil {
		c.sfu.close()
		c.sfu = nil
	}
}

func toInit(m *signaling.Candidate) webrtc.ICECandidateInit {
	return webrtc.ICECandidateInit{Candidate: m.Candidate, SDPMid: m.SDPMid, SDPMLineIndex: m.SDPMLineIndex, UsernameFragment: m.UsernameFragment}
}

func fromInit(ci webrtc.ICECandidateInit) *signaling.Candidate {
	return &signaling.Candidate{Candidate: ci.Candidate, SDPMid: ci.SDPMid, SDPMLineIndex: ci.SDPMLineIndex, UsernameFragment: ci.UsernameFragment}
}
