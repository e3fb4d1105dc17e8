// Package loadtest runs synthetic Parley participants against a server:
// rooms of publishers sending generated audio (and video) and subscribers
// receiving it, all real WebRTC through internal/client. It reports join
// and first-media times, loss, jitter, received bitrates and NACKs, and
// the server's own CPU and memory read from its /metrics, so the CPU cost
// of each forwarded packet can be computed.
package loadtest

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"

	"github.com/parley/parley/internal/client"
)

// Config says what load to make.
type Config struct {
	URL         string // the server, https://HOST
	Token       string // a personal access token; its user owns the test channels
	Rooms       int
	Publishers  int // per room
	Subscribers int // per room
	Duration    time.Duration
	// Video is "none" (audio only) or "720p" (about 1 Mbit/s of generated
	// VP8-shaped frames, 30 per second, a keyframe every 2 s).
	Video string
	// Simulcast sends the video as three layers (320×180 ~150 kbit/s,
	// 640×360 ~500 kbit/s, 1280×720 ~1 Mbit/s), as browsers do; the SFU
	// forwards the one each subscriber's (default) tile size calls for.
	Simulcast    bool
	InsecureTLS  bool
	LoopbackOnly bool // tests: ICE on loopback only
	// JoinSpacing is the pause between two participants joining (default
	// 20 ms), so joins are measured one at a time, not as one burst.
	JoinSpacing time.Duration
	// Metrics lists each node's address (or its /metrics URL) to read
	// CPU, memory and calls from directly, one entry per node of a
	// cluster. Empty: URL's /metrics, which behind a load balancer is
	// whichever node answers that request.
	Metrics []string
	// Progress, if set, gets a line a second.
	Progress func(string)
}

// MaxMetrics bounds Config.Metrics.
const MaxMetrics = 64

// metricsURL is the /metrics URL of a node given as its address or as
// that URL itself.
func metricsURL(s string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", fmt.Errorf("--metrics %q: give a node's address, like http://10.0.0.5:8080, or its /metrics URL", s)
	}
	if !strings.HasSuffix(u.Path, "/metrics") {
		u.Path = strings.TrimRight(u.Path, "/") + "/metrics"
	}
	return u.String(), nil
}

// Validate reports every problem with c at once.
func (c *Config) Validate() error {
	var errs []error
	if u, err := url.Parse(c.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("--url %q: give the server's address, like https://meet.example.org", c.URL))
	}
	if c.Token == "" {
		errs = append(errs, errors.New("--token is required: make a personal access token on the account page"))
	}
	if c.Rooms < 1 || c.Rooms > 1000 {
		errs = append(errs, fmt.Errorf("--rooms %d: use 1 to 1000", c.Rooms))
	}
	if c.Publishers < 1 || c.Publishers > 100 {
		errs = append(errs, fmt.Errorf("--publishers %d: use 1 to 100 per room", c.Publishers))
	}
	if c.Subscribers < 0 || c.Subscribers > 5000 {
		errs = append(errs, fmt.Errorf("--subscribers %d: use 0 to 5000 per room", c.Subscribers))
	}
	if c.Duration < time.Second || c.Duration > 24*time.Hour {
		errs = append(errs, fmt.Errorf("--duration %s: use 1s to 24h", c.Duration))
	}
	if c.Video != "none" && c.Video != "720p" {
		errs = append(errs, fmt.Errorf("--video %q: use none or 720p", c.Video))
	}
	if c.Simulcast && c.Video != "720p" {
		errs = append(errs, errors.New("--simulcast needs --video 720p"))
	}
	if len(c.Metrics) > MaxMetrics {
		errs = append(errs, fmt.Errorf("--metrics given %d times: at most %d nodes", len(c.Metrics), MaxMetrics))
	}
	seen := map[string]bool{}
	for _, m := range c.Metrics {
		u, err := metricsURL(m)
		if err != nil {
			errs = append(errs, err)
		} else if seen[u] {
			errs = append(errs, fmt.Errorf("--metrics %q: given twice", m))
		}
		seen[u] = true
	}
	return errors.Join(errs...)
}

// Report is what a run measured.
type Report struct {
	Rooms, Publishers, Subscribers int
	Joined, FailedJoins            int
	JoinMs                         Percentiles // join sent → joined
	FirstMediaMs                   Percentiles // join sent → first remote packet, per receiver
	PacketsRecv, PacketsLost       uint64
	LossPercent                    float64
	JitterMsMax                    float64
	RecvKbpsPerReceiver            Percentiles // subscribers, and publishers that receive others
	NACKs                          uint64
	// Receivers are the participants that should get media (subscribers,
	// and publishers when a room has several); ReceiversComplete those of
	// them that got media from every publisher of their room.
	Receivers, ReceiversComplete int
	MeasuredSeconds              float64 // the measured stretch
	// Server is the server's usage: with Config.Metrics, the sum over the
	// nodes (CPU, packets, memory), each node in Nodes.
	Server ServerUsage
	Nodes  []NodeUsage `json:",omitempty"`
	Errors []string    `json:",omitempty"`
}

// NodeUsage is one node's usage, read from its own /metrics
// (Config.Metrics).
type NodeUsage struct {
	Metrics string // the /metrics URL read
	NodeID  string `json:",omitempty"` // from parley_node_info; "" when not a cluster
	// Calls and Participants running on the node at the end of the
	// measured stretch (parley_node_calls, or parley_rooms outside a
	// cluster; parley_participants).
	Calls, Participants float64
	ServerUsage
	Error string `json:",omitempty"` // why the node's figures are missing
}

// Percentiles of a set of measurements.
type Percentiles struct {
	N             int
	P50, P95, P99 float64
}

func percentiles(xs []float64) Percentiles {
	if len(xs) == 0 {
		return Percentiles{}
	}
	slices.Sort(xs)
	at := func(q float64) float64 { return xs[min(len(xs)-1, int(q*float64(len(xs))))] }
	return Percentiles{N: len(xs), P50: at(0.50), P95: at(0.95), P99: at(0.99)}
}

// ServerUsage is read from the server's /metrics before and after the
// measured stretch.
type ServerUsage struct {
	Available          bool    // /metrics answered
	CPUSeconds         float64 // process CPU during the measured stretch
	ResidentMB         float64 // at the end
	ResidentMBAtStart  float64 // before anyone joined
	PacketsForwarded   float64 // SFU packets out during the stretch
	CPUPercent         float64 // CPUSeconds over the stretch's length, in % of one core
	MicrosPerForwarded float64 // CPUSeconds / PacketsForwarded, in µs
	ResidentKBPerPart  float64 // (end - start) / participants
}

// participant is one synthetic client.
type participant struct {
	c         *client.Client
	publisher bool
	done      chan error

	mu   sync.Mutex
	from map[string]bool // participants whose media arrived
}

// onTrack notes whose media arrived and reads the track to its end.
func (p *participant) onTrack(r client.Remote) {
	buf := make([]byte, 1500)
	noted := false
	for {
		if _, _, err := r.Track.Read(buf); err != nil {
			return
		}
		if !noted {
			noted = true
			p.mu.Lock()
			p.from[r.Participant] = true
			p.mu.Unlock()
		}
	}
}

func (p *participant) heard() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.from)
}

// Run makes the load for cfg.Duration after everyone joined, then leaves
// and reports.
func Run(ctx context.Context, cfg Config, log *slog.Logger) (*Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.JoinSpacing == 0 {
		cfg.JoinSpacing = 20 * time.Millisecond
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	hc := &http.Client{Timeout: 15 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	if cfg.InsecureTLS {
		hc.Transport = &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	}
	base := strings.TrimRight(cfg.URL, "/")
	rep := &Report{Rooms: cfg.Rooms, Publishers: cfg.Publishers, Subscribers: cfg.Subscribers}
	sources := []string{base + "/metrics"}
	if len(cfg.Metrics) > 0 {
		sources = sources[:0]
		for _, m := range cfg.Metrics {
			u, _ := metricsURL(m) // validated
			sources = append(sources, u)
		}
	}
	before := scrapeAll(ctx, hc, sources)

	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	var parts []*participant
	var mu sync.Mutex
	fail := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		rep.FailedJoins++
		if len(rep.Errors) < 20 {
			rep.Errors = append(rep.Errors, fmt.Sprintf(format, args...))
		}
	}
	chans := make([]string, cfg.Rooms)
	for r := range chans {
		ch, err := createChannel(ctx, hc, base, cfg.Token, fmt.Sprintf("loadtest %s #%d", time.Now().Format("15:04:05"), r+1))
		if err != nil {
			return nil, err
		}
		chans[r] = ch
	}
	// Participants join room by room in turn (the first of every room,
	// then the second of every room, …), so the first sockets of the
	// calls are consecutive connections: a round-robin load balancer in
	// front of a cluster spreads the calls over its nodes (a call runs on
	// the node its first socket reaches), whatever the room size.
	for i := range cfg.Publishers + cfg.Subscribers {
		for r, ch := range chans {
			pub := i < cfg.Publishers
			p := &participant{publisher: pub, done: make(chan error, 1), from: map[string]bool{}}
			ccfg := client.Config{URL: base + "/c/" + ch, Token: cfg.Token, InsecureTLS: cfg.InsecureTLS, LoopbackOnly: cfg.LoopbackOnly, OnTrack: p.onTrack}
			if pub {
				ccfg.Audio = synthetic{codec: audioCodec, every: 20 * time.Millisecond, size: 160}
				switch {
				case cfg.Simulcast:
					for _, l := range []struct{ w, h, size int }{{320, 180, 600}, {640, 360, 2000}, {1280, 720, 4000}} {
						ccfg.VideoLayers = append(ccfg.VideoLayers,
							synthetic{codec: videoCodec, every: time.Second / 30, size: l.size, keyEvery: 60, w: l.w, h: l.h})
					}
				case cfg.Video == "720p":
					// ~1 Mbit/s: 30 frames of ~4 KB a second.
					ccfg.Video = synthetic{codec: videoCodec, every: time.Second / 30, size: 4000, keyEvery: 60, w: 1280, h: 720}
				}
			}
			dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
			c, err := client.Dial(dctx, ccfg, log)
			cancel()
			if err != nil {
				fail("room %d participant %d: %v", r+1, i+1, err)
				continue
			}
			p.c = c
			parts = append(parts, p)
			go func() { p.done <- c.Run(runCtx) }()
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(cfg.JoinSpacing):
			}
		}
	}

	// Everyone joined (or failed): wait until every receiver gets media
	// from every publisher of its room, then measure for Duration.
	settle := time.Now().Add(15 * time.Second)
	for time.Now().Before(settle) && !allReceiving(parts, cfg.Publishers) {
		time.Sleep(100 * time.Millisecond)
	}
	mid := scrapeAll(ctx, hc, sources)
	start := map[*participant]client.Stats{}
	for _, p := range parts {
		start[p] = p.c.Stats()
	}
	t0 := time.Now()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	deadline := time.After(cfg.Duration)
measure:
	for {
		select {
		case <-ctx.Done():
			break measure
		case <-deadline:
			break measure
		case <-tick.C:
			if cfg.Progress != nil {
				cfg.Progress(progress(parts, start, time.Since(t0)))
			}
		}
	}
	elapsed := time.Since(t0)
	rep.MeasuredSeconds = elapsed.Seconds()
	end := scrapeAll(ctx, hc, sources)

	var joins, firsts, kbps []float64
	for _, p := range parts {
		st := p.c.Stats()
		if st.Joined > 0 {
			rep.Joined++
			joins = append(joins, ms(st.Joined))
		} else {
			fail("a participant never got joined")
		}
		// Subscribers always count; publishers count when they receive
		// (the others' media in a meeting).
		if p.publisher && cfg.Publishers > 1 {
			rep.Receivers++
			if p.heard() >= cfg.Publishers-1 {
				rep.ReceiversComplete++
			}
		} else if !p.publisher {
			rep.Receivers++
			if p.heard() >= cfg.Publishers {
				rep.ReceiversComplete++
			}
		}
		if p.publisher && (cfg.Publishers == 1 || st.PacketsRecv == 0) {
			continue
		}
		if st.FirstMedia > 0 {
			firsts = append(firsts, ms(st.FirstMedia))
		}
		s0 := start[p]
		recv := st.PacketsRecv - s0.PacketsRecv
		lost := uint64(max(0, st.PacketsLost-s0.PacketsLost))
		rep.PacketsRecv += recv
		rep.PacketsLost += lost
		rep.NACKs += uint64(st.NACKsSent - s0.NACKsSent)
		rep.JitterMsMax = max(rep.JitterMsMax, st.JitterSeconds*1000)
		kbps = append(kbps, float64(st.BytesRecv-s0.BytesRecv)*8/1000/elapsed.Seconds())
	}
	rep.JoinMs, rep.FirstMediaMs, rep.RecvKbpsPerReceiver = percentiles(joins), percentiles(firsts), percentiles(kbps)
	if total := rep.PacketsRecv + rep.PacketsLost; total > 0 {
		rep.LossPercent = 100 * float64(rep.PacketsLost) / float64(total)
	}
	rep.Server, rep.Nodes = usage(sources, before, mid, end, len(parts), elapsed)
	if len(cfg.Metrics) == 0 {
		rep.Nodes = nil
	}

	stop()
	for _, p := range parts {
		select {
		case err := <-p.done:
			if err != nil {
				log.Warn("participant ended with an error", "err", err)
			}
		case <-time.After(10 * time.Second):
			log.Warn("participant did not leave in time")
		}
	}
	return rep, nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// allReceiving reports whether every subscriber gets media from every
// publisher of its room, and in meetings every publisher from the others.
func allReceiving(parts []*participant, publishers int) bool {
	for _, p := range parts {
		want := publishers
		if p.publisher {
			want--
		}
		if p.heard() < want {
			return false
		}
	}
	return true
}

func progress(parts []*participant, start map[*participant]client.Stats, since time.Duration) string {
	var joined, connected int
	var recv, lost, bytes uint64
	for _, p := range parts {
		st := p.c.Stats()
		if st.Joined > 0 {
			joined++
		}
		if st.Connections > 0 && st.Connected == st.Connections {
			connected++
		}
		s0 := start[p]
		recv += st.PacketsRecv - s0.PacketsRecv
		lost += uint64(max(0, st.PacketsLost-s0.PacketsLost))
		bytes += st.BytesRecv - s0.BytesRecv
	}
	loss := 0.0
	if recv+lost > 0 {
		loss = 100 * float64(lost) / float64(recv+lost)
	}
	return fmt.Sprintf("%4.0fs  joined %d/%d  connected %d  received %d packets (%.1f Mbit/s)  loss %.2f%%",
		since.Seconds(), joined, len(parts), connected, recv, float64(bytes)*8/1e6/max(since.Seconds(), 0.001), loss)
}

// createChannel makes a channel owned by the token's user and pins it to
// the SFU, so rooms of any size measure the SFU.
func createChannel(ctx context.Context, hc *http.Client, base, token, name string) (string, error) {
	post := func(path string, form url.Values) (*http.Response, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+path, strings.NewReader(form.Encode()))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := hc.Do(req)
		if err != nil {
			return nil, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp, nil
	}
	resp, err := post("/channels", url.Values{"name": {name}})
	if err != nil {
		return "", fmt.Errorf("loadtest: create a channel: %w", err)
	}
	loc := resp.Header.Get("Location")
	id, ok := strings.CutPrefix(loc, "/c/")
	if resp.StatusCode != http.StatusSeeOther || !ok {
		if strings.HasPrefix(loc, "/login") {
			return "", errors.New("loadtest: the server refused the token: make a new one on the account page")
		}
		return "", fmt.Errorf("loadtest: create a channel: status %d", resp.StatusCode)
	}
	if resp, err = post("/c/"+id+"/mode", url.Values{"mode": {"sfu"}}); err != nil || resp.StatusCode != http.StatusSeeOther {
		return "", fmt.Errorf("loadtest: pin the channel to the SFU: %v", err)
	}
	return id, nil
}

// sample is what one node's /metrics said.
type sample struct {
	vals   map[string]float64
	nodeID string // parley_node_info's node_id label
	err    error
}

// scrapeAll reads every source at once.
func scrapeAll(ctx context.Context, hc *http.Client, sources []string) []sample {
	out := make([]sample, len(sources))
	var wg sync.WaitGroup
	for i, src := range sources {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i].vals, out[i].nodeID, out[i].err = scrape(ctx, hc, src)
		}()
	}
	wg.Wait()
	return out
}

// usage computes each node's usage from the three readings (before
// anyone joined, at the start and at the end of the measured stretch),
// and their sum.
func usage(sources []string, before, mid, end []sample, parts int, elapsed time.Duration) (ServerUsage, []NodeUsage) {
	var sum ServerUsage
	sum.Available = true
	nodes := make([]NodeUsage, len(sources))
	for i, src := range sources {
		n := &nodes[i]
		n.Metrics = src
		if err := errors.Join(before[i].err, mid[i].err, end[i].err); err != nil {
			n.Error = err.Error()
			sum.Available = false
			continue
		}
		b, m, e := before[i].vals, mid[i].vals, end[i].vals
		n.NodeID = end[i].nodeID
		n.Calls = e["parley_rooms"]
		if c, ok := e["parley_node_calls"]; ok {
			n.Calls = c
		}
		n.Participants = e["parley_participants"]
		u := &n.ServerUsage
		u.Available = true
		u.CPUSeconds = e["process_cpu_seconds_total"] - m["process_cpu_seconds_total"]
		u.ResidentMB = e["process_resident_memory_bytes"] / 1e6
		u.ResidentMBAtStart = b["process_resident_memory_bytes"] / 1e6
		u.PacketsForwarded = e["parley_sfu_packets_out_total"] - m["parley_sfu_packets_out_total"]
		sum.CPUSeconds += u.CPUSeconds
		sum.ResidentMB += u.ResidentMB
		sum.ResidentMBAtStart += u.ResidentMBAtStart
		sum.PacketsForwarded += u.PacketsForwarded
		if parts > 0 {
			sum.ResidentKBPerPart += (u.ResidentMB - u.ResidentMBAtStart) * 1e3 / float64(parts)
		}
		u.derive(elapsed)
	}
	if !sum.Available {
		return ServerUsage{}, nodes
	}
	sum.derive(elapsed)
	return sum, nodes
}

// derive fills the per-packet and per-second figures.
func (u *ServerUsage) derive(elapsed time.Duration) {
	if u.PacketsForwarded > 0 {
		u.MicrosPerForwarded = u.CPUSeconds * 1e6 / u.PacketsForwarded
	}
	if elapsed > 0 {
		u.CPUPercent = 100 * u.CPUSeconds / elapsed.Seconds()
	}
}

var nodeIDLabel = regexp.MustCompile(`node_id="([^"\\]*)"`)

// scrape reads the unlabelled samples of a /metrics page, and the
// cluster's node_id-labelled ones (parley_node_info, parley_node_calls)
// by their bare names.
func scrape(ctx context.Context, hc *http.Client, src string) (map[string]float64, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, src, nil)
	if err != nil {
		return nil, "", err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, "", fmt.Errorf("loadtest: metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, "", fmt.Errorf("loadtest: metrics %s: status %d", src, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return nil, "", fmt.Errorf("loadtest: metrics: %w", err)
	}
	m, node := parseMetrics(string(body))
	return m, node, nil
}

// parseMetrics reads Prometheus text: unlabelled samples by name, plus
// parley_node_info and parley_node_calls (labelled by node_id) by their
// bare names, and the node_id itself.
func parseMetrics(body string) (map[string]float64, string) {
	m := map[string]float64{}
	node := ""
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, "#") {
			continue
		}
		name, val, ok := strings.Cut(line, " ")
		if i := strings.IndexByte(line, '{'); i >= 0 {
			j := strings.LastIndexByte(line, '}')
			name = line[:i]
			if j < i || (name != "parley_node_info" && name != "parley_node_calls") {
				continue
			}
			if name == "parley_node_info" {
				if l := nodeIDLabel.FindStringSubmatch(line[i:j]); l != nil {
					node = l[1]
				}
			}
			val, ok = strings.TrimSpace(line[j+1:]), true
		}
		if !ok {
			continue
		}
		val, _, _ = strings.Cut(strings.TrimSpace(val), " ") // a timestamp may follow
		if f, err := strconv.ParseFloat(val, 64); err == nil {
			m[name] = f
		}
	}
	return m, node
}

var (
	audioCodec = webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}
	videoCodec = webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}
)

// synthetic is generated media: samples of a fixed size at a fixed rate.
// Video samples are shaped like w×h VP8 frames (the SFU reads the
// keyframe bit and the size from the payload header), one keyframe every
// keyEvery frames.
type synthetic struct {
	codec    webrtc.RTPCodecCapability
	every    time.Duration
	size     int
	keyEvery int
	w, h     int
}

func (s synthetic) Codec() webrtc.RTPCodecCapability { return s.codec }

func (s synthetic) Run(ctx context.Context, track *webrtc.TrackLocalStaticSample) error {
	t := time.NewTicker(s.every)
	defer t.Stop()
	frame := make([]byte, s.size)
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if s.keyEvery > 0 {
			frame[0] = 0x01 // interframe
			if i%s.keyEvery == 0 {
				frame[0] = 0x00
				copy(frame[3:], []byte{0x9d, 0x01, 0x2a}) // start code, then the size
				binary.LittleEndian.PutUint16(frame[6:], uint16(s.w))
				binary.LittleEndian.PutUint16(frame[8:], uint16(s.h))
			}
		}
		if err := track.WriteSample(media.Sample{Data: frame, Duration: s.every}); err != nil {
			return err
		}
	}
}
