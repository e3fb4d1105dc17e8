package web_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/parley/parley/internal/servertest"
	"github.com/parley/parley/internal/signaling"
	"github.com/parley/parley/internal/testtool"
)

// This file holds a minimal WHIP (RFC 9725) / WHEP client written from the
// specifications, with plain net/http and pion, and the tests that drive
// the server with it.

// mediaAPI is the WebRTC stack of the test's WHIP/WHEP clients: pion's
// defaults (codecs, NACK, reports, TWCC) on loopback only.
func mediaAPI(t testing.TB) *webrtc.API {
	t.Helper()
	me := &webrtc.MediaEngine{}
	if err := me.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	ir := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(me, ir); err != nil {
		t.Fatal(err)
	}
	var se webrtc.SettingEngine
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	return webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(ir), webrtc.WithSettingEngine(se))
}

// httpc is the client the WHIP/WHEP requests go through; closing its idle
// connections lets the goroutine counts settle.
var httpc = &http.Client{Timeout: 30 * time.Second}

// request sends one WHIP/WHEP request; auth is a bearer token ("" for
// none) and the response body is read whole.
func request(t testing.TB, method, u, auth, contentType, body string, hdr ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", "Bearer "+auth)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := httpc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

// token makes a personal access token for the user logged in on c.
func token(t testing.TB, s *servertest.Server, c *http.Client, name string) string {
	t.Helper()
	ctx := context.Background()
	u, err := s.Accounts().Authenticate(ctx, s.SessionCookie(c).Value)
	if err != nil {
		t.Fatal(err)
	}
	_, secret, err := s.Accounts().CreateToken(ctx, u, name)
	if err != nil {
		t.Fatal(err)
	}
	return secret
}

// whipSession is one WHIP publisher or WHEP player of the test.
type whipSession struct {
	t        testing.TB
	pc       *webrtc.PeerConnection
	location string // absolute URL of the session resource
	etag     string
	cands    chan string // our trickled candidates, "" = gathering done

	// publisher
	video, audio *webrtc.TrackLocalStaticRTP
	stop         chan struct{}
	sending      sync.WaitGroup

	// player
	videoPkts, audioPkts atomic.Int64
	streamID             atomic.Value // of the first track received
}

// newPublisher is an encoder as OBS is one: a sendonly VP8 camera and a
// sendonly Opus microphone, no simulcast.
func newPublisher(t testing.TB) *whipSession {
	t.Helper()
	w := newWHIPPeer(t)
	var err error
	if w.video, err = webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8}, "obs-video", "obs"); err != nil {
		t.Fatal(err)
	}
	if w.audio, err = webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus}, "obs-audio", "obs"); err != nil {
		t.Fatal(err)
	}
	for _, tr := range []*webrtc.TrackLocalStaticRTP{w.audio, w.video} {
		if _, err := w.pc.AddTransceiverFromTrack(tr, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
			t.Fatal(err)
		}
	}
	return w
}

// newPlayer is a WHEP player: one recvonly video and one recvonly audio
// m-line; it counts the RTP packets it receives.
func newPlayer(t testing.TB) *whipSession {
	t.Helper()
	w := newWHIPPeer(t)
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
		if _, err := w.pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			t.Fatal(err)
		}
	}
	w.pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		w.streamID.CompareAndSwap(nil, tr.StreamID())
		n := &w.audioPkts
		if tr.Kind() == webrtc.RTPCodecTypeVideo {
			n = &w.videoPkts
		}
		for {
			if _, _, err := tr.ReadRTP(); err != nil {
				return
			}
			n.Add(1)
		}
	})
	return w
}

func newWHIPPeer(t testing.TB) *whipSession {
	t.Helper()
	pc, err := mediaAPI(t).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	w := &whipSession{t: t, pc: pc, cands: make(chan string, 64), stop: make(chan struct{})}
	pc.OnICECandidate(func(c *webrtc.ICECandidate) {
		if c == nil {
			w.cands <- ""
			return
		}
		w.cands <- c.ToJSON().Candidate
	})
	t.Cleanup(w.close)
	return w
}

// offer creates the local offer. It is sent at once, before gathering
// (RFC 9725 §4.3: candidates follow with PATCH).
func (w *whipSession) offer() string {
	w.t.Helper()
	o, err := w.pc.CreateOffer(nil)
	if err == nil {
		err = w.pc.SetLocalDescription(o)
	}
	if err != nil {
		w.t.Fatal(err)
	}
	return o.SDP
}

// post sends the offer to endpoint and, on 201, applies the answer.
func (w *whipSession) post(endpoint, auth, offer string) (*http.Response, string) {
	w.t.Helper()
	resp, body := request(w.t, http.MethodPost, endpoint, auth, "application/sdp", offer)
	if resp.StatusCode != http.StatusCreated {
		return resp, body
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/sdp" {
		w.t.Errorf("answer Content-Type %q", ct)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || loc.Path == "" {
		w.t.Fatalf("bad Location %q", resp.Header.Get("Location"))
	}
	base, _ := url.Parse(endpoint)
	w.location = base.ResolveReference(loc).String()
	w.etag = resp.Header.Get("ETag")
	if w.etag == "" {
		w.t.Error("201 without ETag")
	}
	if err := w.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: body}); err != nil {
		w.t.Fatalf("answer: %v", err)
	}
	return resp, body
}

// trickle sends our candidates in one trickle ICE fragment (RFC 8840)
// once gathering is done, as RFC 9725 §4.3.1 shows it.
func (w *whipSession) trickle(auth string) {
	w.t.Helper()
	resp, body := request(w.t, http.MethodPatch, w.location, auth, "application/trickle-ice-sdpfrag", w.fragment(), "If-Match", w.etag)
	if resp.StatusCode != http.StatusNoContent {
		w.t.Fatalf("PATCH candidates: %d %s", resp.StatusCode, body)
	}
}

// fragment waits for the end of gathering and returns our ICE
// credentials and candidates as a trickle ICE fragment.
func (w *whipSession) fragment() string {
	w.t.Helper()
	var lines []string
	timeout := time.After(10 * time.Second)
gather:
	for {
		select {
		case c := <-w.cands:
			if c == "" {
				break gather
			}
			lines = append(lines, "a="+c)
		case <-timeout:
			w.t.Fatal("ICE gathering did not finish")
		}
	}
	ufrag, pwd := iceCredentials(w.pc.LocalDescription().SDP)
	return "a=ice-ufrag:" + ufrag + "\r\na=ice-pwd:" + pwd + "\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\n" +
		strings.Join(lines, "\r\n") + "\r\na=end-of-candidates\r\n"
}

// restartICE restarts ICE from the client's side as RFC 9725 §4.3.2 has
// it: a local offer with new ICE credentials (which is never sent), a
// PATCH with them and the new candidates, and, on 200, the server's new
// fragment applied as an answer: its previous answer with the new
// credentials and candidates. It returns the PATCH's response.
func (w *whipSession) restartICE(auth, ifMatch string) (*http.Response, string) {
	w.t.Helper()
	prev := w.pc.CurrentRemoteDescription().SDP
	o, err := w.pc.CreateOffer(&webrtc.OfferOptions{ICERestart: true})
	if err == nil {
		err = w.pc.SetLocalDescription(o)
	}
	if err != nil {
		w.t.Fatal(err)
	}
	resp, body := request(w.t, http.MethodPatch, w.location, auth, "application/trickle-ice-sdpfrag", w.fragment(), "If-Match", ifMatch)
	if resp.StatusCode != http.StatusOK {
		return resp, body
	}
	ufrag, pwd := iceCredentials(body)
	var cands []string
	var answer []string
	for _, l := range strings.Split(body, "\r\n") {
		if c, ok := strings.CutPrefix(l, "a="); ok && strings.HasPrefix(c, "candidate:") {
			cands = append(cands, c)
		}
	}
	for _, l := range strings.Split(prev, "\r\n") {
		switch {
		case strings.HasPrefix(l, "a=ice-ufrag:"):
			l = "a=ice-ufrag:" + ufrag
		case strings.HasPrefix(l, "a=ice-pwd:"):
			l = "a=ice-pwd:" + pwd
		case strings.HasPrefix(l, "a=candidate:"), l == "a=end-of-candidates":
			continue
		}
		answer = append(answer, l)
	}
	if err := w.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: strings.Join(answer, "\r\n")}); err != nil {
		w.t.Fatalf("answer after the ICE restart: %v", err)
	}
	for _, c := range cands {
		if err := w.pc.AddICECandidate(webrtc.ICECandidateInit{Candidate: c}); err != nil {
			w.t.Fatalf("server candidate %q: %v", c, err)
		}
	}
	w.etag = resp.Header.Get("ETag")
	return resp, body
}

func iceCredentials(sdp string) (ufrag, pwd string) {
	for _, l := range strings.Split(sdp, "\r\n") {
		if v, ok := strings.CutPrefix(l, "a=ice-ufrag:"); ok && ufrag == "" {
			ufrag = v
		}
		if v, ok := strings.CutPrefix(l, "a=ice-pwd:"); ok && pwd == "" {
			pwd = v
		}
	}
	return ufrag, pwd
}

// send paces synthetic media like a camera and a microphone until stop:
// VP8 keyframe packets (the SFU starts forwarding video on a keyframe)
// and Opus packets.
func (w *whipSession) send() {
	w.sending.Add(1)
	go func() {
		defer w.sending.Done()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		var seq uint16
		for {
			select {
			case <-w.stop:
				return
			case <-tick.C:
			}
			seq++
			vp8 := []byte{0x10, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0x68, 0x01, 0, 0, 0, 0}
			_ = w.video.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: seq,
				Timestamp: uint32(seq) * 1800, Marker: true}, Payload: vp8})
			_ = w.audio.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 111, SequenceNumber: seq,
				Timestamp: uint32(seq) * 960}, Payload: []byte{0xf8, 0xff, 0xfe}})
		}
	}()
}

func (w *whipSession) close() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	w.sending.Wait()
	_ = w.pc.Close()
}

// lobby is a signaling socket that has not joined: it hears
// participant-joined and participant-left.
type lobby struct {
	t    testing.TB
	conn *websocket.Conn
	msgs chan signaling.Message
}

func dialLobby(t testing.TB, s *servertest.Server, c *http.Client, ch string) *lobby {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ck := s.SessionCookie(c)
	conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(s.URL, "http")+"/ws/c/"+ch, &websocket.DialOptions{
		HTTPHeader:   http.Header{"Cookie": {ck.Name + "=" + ck.Value}, "Origin": {s.URL}},
		Subprotocols: []string{signaling.Subprotocol},
	})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	l := &lobby{t: t, conn: conn, msgs: make(chan signaling.Message, 256)}
	go func() {
		defer close(l.msgs)
		for {
			_, data, err := conn.Read(context.Background())
			if err != nil {
				return
			}
			if m, err := signaling.Parse(data); err == nil {
				l.msgs <- m
			}
		}
	}()
	t.Cleanup(func() { conn.CloseNow() })
	return l
}

func (l *lobby) send(m signaling.Message) {
	l.t.Helper()
	b, err := signaling.Encode(m)
	if err != nil {
		l.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := l.conn.Write(ctx, websocket.MessageText, b); err != nil {
		l.t.Fatal(err)
	}
}

// expect waits for the next message of type typ, skipping others.
func (l *lobby) expect(typ string) signaling.Message {
	l.t.Helper()
	timeout := time.After(15 * time.Second)
	for {
		select {
		case m, ok := <-l.msgs:
			if !ok {
				l.t.Fatalf("socket closed while waiting for %s", typ)
			}
			if m.Type == typ {
				return m
			}
		case <-timeout:
			l.t.Fatalf("no %s within 15s", typ)
		}
	}
}

// play starts a WHEP player of endpoint, retrying while there is nothing
// to play yet (409: the publisher's tracks appear once its media flows).
func play(t testing.TB, endpoint, auth string) *whipSession {
	t.Helper()
	p := newPlayer(t)
	offer := p.offer()
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, body := p.post(endpoint, auth, offer)
		if resp.StatusCode == http.StatusCreated {
			break
		}
		if resp.StatusCode != http.StatusConflict || time.Now().After(deadline) {
			t.Fatalf("WHEP POST: %d %s", resp.StatusCode, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.trickle(auth)
	return p
}

// metric reads one sample of /metrics.
func metric(t testing.TB, s *servertest.Server, name string) string {
	t.Helper()
	_, body := s.Get(s.Client(), "/metrics")
	for _, l := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(l, name+" "); ok {
			return v
		}
	}
	return ""
}

// TestWHIPPublishWHEPPlay: an encoder publishing with WHIP and a personal
// access token shows up in the channel's call as "<name> (WHIP)" for a
// member's socket, moves the call to the SFU, and its media reaches a
// WHEP player; DELETE makes it leave the call.
func TestWHIPPublishWHEPPlay(t *testing.T) {
	s := servertest.Start(t)
	ann := s.SignUp("ann", "Ann")
	bob := s.SignUp("bob", "Bob")
	ch := s.CreateChannel(ann, "Stage")
	s.AddMember(ann, ch, "bob")
	annTok, bobTok := token(t, s, ann, "obs"), token(t, s, bob, "player")

	sock := dialLobby(t, s, bob, ch)
	sock.expect(signaling.TypeHello)

	pub := newPublisher(t)
	resp, body := pub.post(s.URL+"/whip/"+ch, annTok, pub.offer())
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("WHIP POST: %d %s", resp.StatusCode, body)
	}
	if !strings.HasPrefix(resp.Header.Get("Location"), "/whip/"+ch+"/") {
		t.Errorf("Location %q", resp.Header.Get("Location"))
	}
	joined := sock.expect(signaling.TypeParticipantJoined).Participant
	if joined.Name != "Ann (WHIP)" || !signaling.ValidParticipantID(joined.ID) || !joined.State.Video || !joined.State.Audio {
		t.Fatalf("participant-joined: %+v", joined)
	}
	pub.trickle(annTok)
	pub.send()

	// Bob joins the call: two participants, but the WHIP one's media
	// only goes through the SFU.
	sock.send(signaling.Message{Type: signaling.TypeJoin})
	j := sock.expect(signaling.TypeJoined)
	if j.Topology != signaling.TopologySFU || len(j.Participants) != 1 || j.Participants[0].ID != joined.ID {
		t.Fatalf("joined with a WHIP participant: topology %q, participants %+v", j.Topology, j.Participants)
	}

	// Bob watches with WHEP (no ?participant: the only one sending video).
	player := play(t, s.URL+"/whep/"+ch, bobTok)
	testtool.Eventually(t, 15*time.Second, func() bool {
		return player.videoPkts.Load() > 50 && player.audioPkts.Load() > 20
	}, "RTP at the WHEP player")
	if got := player.streamID.Load(); got != joined.ID+":camera" {
		t.Errorf("player got stream %v, want %s:camera", got, joined.ID)
	}
	if v := metric(t, s, "parley_sfu_viewers"); v != "1" {
		t.Errorf("parley_sfu_viewers = %q while a player watches, want 1", v)
	}
	if v := metric(t, s, "parley_participants"); v != "2" {
		t.Errorf("parley_participants = %q, want 2 (Bob and the WHIP publisher)", v)
	}

	// A player may also name the participant.
	named := play(t, s.URL+"/whep/"+ch+"?participant="+joined.ID, bobTok)
	testtool.Eventually(t, 15*time.Second, func() bool { return named.videoPkts.Load() > 10 }, "RTP at the second player")

	if resp, body := request(t, http.MethodDelete, player.location, bobTok, "", ""); resp.StatusCode != http.StatusOK {
		t.Errorf("WHEP DELETE: %d %s", resp.StatusCode, body)
	}
	if resp, body := request(t, http.MethodDelete, pub.location, annTok, "", ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("WHIP DELETE: %d %s", resp.StatusCode, body)
	}
	if left := sock.expect(signaling.TypeParticipantLeft); left.ID != joined.ID || left.Reason != signaling.ReasonLeft {
		t.Errorf("participant-left: %+v", left)
	}
	if resp, _ := request(t, http.MethodDelete, pub.location, annTok, "", ""); resp.StatusCode != http.StatusNotFound {
		t.Errorf("second DELETE: %d, want 404", resp.StatusCode)
	}
	// The named player's publisher is gone: the server ended it too.
	testtool.Eventually(t, 10*time.Second, func() bool {
		resp, _ := request(t, http.MethodDelete, named.location, bobTok, "", "")
		return resp.StatusCode == http.StatusNotFound
	}, "the second player's session to end")
	if v := metric(t, s, "parley_sfu_viewers"); v != "0" {
		t.Errorf("parley_sfu_viewers = %q after the players ended, want 0", v)
	}
}

// TestWHIPICERestart: a WHIP publisher and then a WHEP player restart
// ICE with PATCH (RFC 9725 §4.3.2): the server answers 200 with its new
// ICE fragment and a new ETag, both connections go through ICE again,
// and the player keeps receiving the same tracks; fragments and ETags
// of the replaced ICE session are refused.
func TestWHIPICERestart(t *testing.T) {
	s := servertest.Start(t)
	ann := s.SignUp("ann", "Ann")
	ch := s.CreateChannel(ann, "Stage")
	tok := token(t, s, ann, "obs")

	pub := newPublisher(t)
	if resp, body := pub.post(s.URL+"/whip/"+ch, tok, pub.offer()); resp.StatusCode != http.StatusCreated {
		t.Fatalf("WHIP POST: %d %s", resp.StatusCode, body)
	}
	pub.trickle(tok)
	pub.send()
	player := play(t, s.URL+"/whep/"+ch, tok)
	testtool.Eventually(t, 15*time.Second, func() bool {
		return player.videoPkts.Load() > 20 && player.audioPkts.Load() > 20
	}, "RTP at the player")

	for _, side := range []struct {
		name    string
		w       *whipSession
		ifMatch string // RFC 9725 has "*"; the current ETag is taken too
	}{
		{"WHIP", pub, "*"},
		{"WHEP", player, player.etag},
	} {
		w := side.w
		var mu sync.Mutex
		var states []webrtc.ICEConnectionState
		w.pc.OnICEConnectionStateChange(func(st webrtc.ICEConnectionState) {
			mu.Lock()
			states = append(states, st)
			mu.Unlock()
		})
		oldETag := w.etag
		oldUfrag, _ := iceCredentials(w.pc.CurrentRemoteDescription().SDP) // the server's
		// A late fragment of the client's ICE session before the restart.
		myUfrag, myPwd := iceCredentials(w.pc.LocalDescription().SDP)
		oldFrag := "a=ice-ufrag:" + myUfrag + "\r\na=ice-pwd:" + myPwd + "\r\na=candidate:1 1 udp 2130706431 127.0.0.1 9 typ host\r\n"

		resp, body := w.restartICE(tok, side.ifMatch)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s ICE restart: %d %s", side.name, resp.StatusCode, body)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "application/trickle-ice-sdpfrag" {
			t.Errorf("%s ICE restart: Content-Type %q", side.name, ct)
		}
		if e := resp.Header.Get("ETag"); e == "" || e == oldETag {
			t.Errorf("%s ICE restart: ETag %q, want a new one (was %q)", side.name, e, oldETag)
		}
		newUfrag, newPwd := iceCredentials(body)
		if newUfrag == "" || newUfrag == oldUfrag || newPwd == "" ||
			!strings.Contains(body, "\r\na=candidate:") || !strings.HasSuffix(body, "a=end-of-candidates\r\n") {
			t.Errorf("%s ICE restart answer (server ufrag was %q):\n%s", side.name, oldUfrag, body)
		}
		// ICE started over and connected again.
		testtool.Eventually(t, 15*time.Second, func() bool {
			mu.Lock()
			defer mu.Unlock()
			checking := slices.Index(states, webrtc.ICEConnectionStateChecking)
			return checking >= 0 && slices.Contains(states[checking:], webrtc.ICEConnectionStateConnected)
		}, side.name+" ICE to connect again")
		v, a := player.videoPkts.Load(), player.audioPkts.Load()
		testtool.Eventually(t, 15*time.Second, func() bool {
			return player.videoPkts.Load() > v+50 && player.audioPkts.Load() > a+50
		}, "RTP at the player after the "+side.name+" ICE restart")
		if got := w.pc.ConnectionState(); got != webrtc.PeerConnectionStateConnected {
			t.Errorf("%s connection %s after the restart", side.name, got)
		}

		// The replaced ICE session's ETag and ufrag are refused; the
		// new ones trickle.
		ufrag, pwd := iceCredentials(w.pc.LocalDescription().SDP)
		frag := "a=ice-ufrag:" + ufrag + "\r\na=ice-pwd:" + pwd + "\r\na=end-of-candidates\r\n"
		for _, tc := range []struct {
			name, body, ifMatch string
			want                int
		}{
			{"old ETag", frag, oldETag, http.StatusPreconditionFailed},
			{"old ufrag", oldFrag, "*", http.StatusPreconditionFailed},
			{"trickle", frag, w.etag, http.StatusNoContent},
		} {
			resp, body := request(t, http.MethodPatch, w.location, tok, "application/trickle-ice-sdpfrag", tc.body, "If-Match", tc.ifMatch)
			if resp.StatusCode != tc.want {
				t.Errorf("%s PATCH after the restart, %s: %d %s, want %d", side.name, tc.name, resp.StatusCode, body, tc.want)
			}
		}
	}
	if v := metric(t, s, "parley_sfu_viewers"); v != "1" {
		t.Errorf("parley_sfu_viewers = %q after the restarts, want 1 (the same session)", v)
	}
	if v := metric(t, s, "parley_participants"); v != "1" {
		t.Errorf("parley_participants = %q after the restarts, want 1", v)
	}
}

// TestWHIPErrors: every refusal has its status and a body that says why.
func TestWHIPErrors(t *testing.T) {
	s := servertest.Start(t)
	ann := s.SignUp("ann", "Ann")
	bob := s.SignUp("bob", "Bob")
	eve := s.SignUp("eve", "Eve")
	ch := s.CreateChannel(ann, "Stage")
	s.AddMember(ann, ch, "bob")
	annTok, bobTok, eveTok := token(t, s, ann, "obs"), token(t, s, bob, "obs"), token(t, s, eve, "obs")
	whip, whep := s.URL+"/whip/"+ch, s.URL+"/whep/"+ch
	offer := newPublisher(t).offer()
	playerOffer := newPlayer(t).offer()

	for _, tc := range []struct {
		name, url, auth, ctype, body string
		want                         int
		says                         string
	}{
		{"no token", whip, "", "application/sdp", offer, 401, "no access token"},
		{"bad token", whip, "parley_forged", "application/sdp", offer, 401, "invalid or revoked access token"},
		{"unknown channel", s.URL + "/whip/nosuchchannel", annTok, "application/sdp", offer, 404, "no such channel"},
		{"not a member", whip, eveTok, "application/sdp", offer, 403, "not a member"},
		{"wrong content type", whip, annTok, "text/plain", offer, 415, "Content-Type: application/sdp"},
		{"malformed SDP", whip, annTok, "application/sdp", "hello, server", 400, "unusable SDP offer"},
		{"WHIP offer that sends nothing", whip, annTok, "application/sdp", playerOffer, 400, "sends neither audio nor video"},
		{"WHEP offer that receives nothing", whep, annTok, "application/sdp", offer, 400, "receives neither audio nor video"},
		{"oversized", whip, annTok, "application/sdp", offer + strings.Repeat("a=x\r\n", 12000), 413, "larger than 60000 bytes"},
		{"nothing to play", whep, annTok, "application/sdp", playerOffer, 409, "nothing to play"},
		{"unknown participant", whep + "?participant=p_nobodyhere1", annTok, "application/sdp", playerOffer, 404, "is not sending media"},
	} {
		resp, body := request(t, http.MethodPost, tc.url, tc.auth, tc.ctype, tc.body)
		if resp.StatusCode != tc.want || !strings.Contains(body, tc.says) {
			t.Errorf("%s: %d %q, want %d saying %q", tc.name, resp.StatusCode, body, tc.want, tc.says)
		}
		if tc.want == 401 && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("%s: WWW-Authenticate %q", tc.name, resp.Header.Get("WWW-Authenticate"))
		}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
			t.Errorf("%s: error body is %q, want plain text", tc.name, ct)
		}
	}
	if resp, _ := request(t, http.MethodGet, whip, annTok, "", ""); resp.StatusCode != http.StatusMethodNotAllowed || !strings.Contains(resp.Header.Get("Allow"), "POST") {
		t.Errorf("GET: %d Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}
	if resp, _ := request(t, http.MethodOptions, whip, "", "", ""); resp.StatusCode != http.StatusNoContent || !strings.Contains(resp.Header.Get("Allow"), "POST") {
		t.Errorf("OPTIONS: %d Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}

	// A live session (it need not connect) is Ann's alone.
	pub := newPublisher(t)
	if resp, body := pub.post(whip, annTok, pub.offer()); resp.StatusCode != http.StatusCreated {
		t.Fatalf("WHIP POST: %d %s", resp.StatusCode, body)
	}
	ufrag, pwd := iceCredentials(pub.pc.LocalDescription().SDP)
	cand := "a=candidate:1 1 udp 2130706431 127.0.0.1 9 typ host\r\n"
	frag := "a=ice-ufrag:" + ufrag + "\r\na=ice-pwd:" + pwd + "\r\n" + cand
	for _, tc := range []struct {
		name, method, url, auth, ctype, body string
		hdr                                  []string
		want                                 int
		says                                 string
	}{
		{"another member's DELETE", http.MethodDelete, pub.location, bobTok, "", "", nil, 404, "no such WHIP session"},
		{"another member's PATCH", http.MethodPatch, pub.location, bobTok, "application/trickle-ice-sdpfrag", frag, nil, 404, "no such WHIP session"},
		{"DELETE without token", http.MethodDelete, pub.location, "", "", "", nil, 401, "no access token"},
		{"the session under WHEP", http.MethodDelete, strings.Replace(pub.location, "/whip/", "/whep/", 1), annTok, "", "", nil, 404, "no such WHEP session"},
		{"unknown session", http.MethodDelete, whip + "/0123456789abcdef0123456789abcdef", annTok, "", "", nil, 404, "no such WHIP session"},
		{"PATCH content type", http.MethodPatch, pub.location, annTok, "application/sdp", frag, nil, 415, "application/trickle-ice-sdpfrag"},
		{"PATCH If-Match", http.MethodPatch, pub.location, annTok, "application/trickle-ice-sdpfrag", frag, []string{"If-Match", `"other"`}, 412, "ETag"},
		{"PATCH garbage", http.MethodPatch, pub.location, annTok, "application/trickle-ice-sdpfrag", "garbage", nil, 400, "not an SDP line"},
		{"PATCH bad candidate", http.MethodPatch, pub.location, annTok, "application/trickle-ice-sdpfrag", "a=candidate:nonsense\r\n", nil, 400, "bad ICE candidate"},
		{"ICE restart without pwd", http.MethodPatch, pub.location, annTok, "application/trickle-ice-sdpfrag",
			"a=ice-ufrag:newU\r\n" + cand, []string{"If-Match", "*"}, 400, "no a=ice-pwd"},
		{"ICE restart, bad candidate", http.MethodPatch, pub.location, annTok, "application/trickle-ice-sdpfrag",
			"a=ice-ufrag:newU\r\na=ice-pwd:aNewPasswordOf22Chars+/\r\na=candidate:nonsense\r\n", []string{"If-Match", "*"}, 400, "bad ICE candidate"},
		{"trickle", http.MethodPatch, pub.location, annTok, "application/trickle-ice-sdpfrag", frag + "a=end-of-candidates\r\n", []string{"If-Match", pub.etag}, 204, ""},
		{"DELETE", http.MethodDelete, pub.location, annTok, "", "", nil, 200, ""},
		{"DELETE again", http.MethodDelete, pub.location, annTok, "", "", nil, 404, "no such WHIP session"},
	} {
		resp, body := request(t, tc.method, tc.url, tc.auth, tc.ctype, tc.body, tc.hdr...)
		if resp.StatusCode != tc.want || !strings.Contains(body, tc.says) {
			t.Errorf("%s: %d %q, want %d saying %q", tc.name, resp.StatusCode, body, tc.want, tc.says)
		}
	}

	// Removing a member from the channel ends their WHIP session.
	bobs := newPublisher(t)
	if resp, body := bobs.post(whip, bobTok, bobs.offer()); resp.StatusCode != http.StatusCreated {
		t.Fatalf("Bob's WHIP POST: %d %s", resp.StatusCode, body)
	}
	bobUser, err := s.Accounts().Authenticate(context.Background(), s.SessionCookie(bob).Value)
	if err != nil {
		t.Fatal(err)
	}
	if resp, _ := s.PostForm(ann, "/c/"+ch+"/members/"+bobUser.ID+"/remove", nil); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("remove Bob: %d", resp.StatusCode)
	}
	testtool.Eventually(t, 5*time.Second, func() bool {
		resp, _ := request(t, http.MethodDelete, bobs.location, bobTok, "", "")
		return resp.StatusCode == http.StatusNotFound
	}, "the removed member's WHIP session to end")
	s.AddMember(ann, ch, "bob")

	// Pinning the channel to p2p ends a WHIP session, and refuses new ones.
	live := newPublisher(t)
	if resp, body := live.post(whip, annTok, live.offer()); resp.StatusCode != http.StatusCreated {
		t.Fatalf("WHIP POST: %d %s", resp.StatusCode, body)
	}
	sock := dialLobby(t, s, bob, ch) // keeps the room running, as any open channel page would
	sock.expect(signaling.TypeHello)
	if resp, _ := s.PostForm(ann, "/c/"+ch+"/mode", url.Values{"mode": {"p2p"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("set mode: %d", resp.StatusCode)
	}
	sock.expect(signaling.TypeParticipantLeft)
	testtool.Eventually(t, 5*time.Second, func() bool {
		resp, _ := request(t, http.MethodDelete, live.location, annTok, "", "")
		return resp.StatusCode == http.StatusNotFound
	}, "the WHIP session to end")
	resp, body := request(t, http.MethodPost, whip, annTok, "application/sdp", offer)
	if resp.StatusCode != http.StatusConflict || !strings.Contains(body, "peer-to-peer") {
		t.Errorf("p2p channel: %d %q, want 409", resp.StatusCode, body)
	}
	if resp, _ := request(t, http.MethodPost, whep, annTok, "application/sdp", playerOffer); resp.StatusCode != http.StatusConflict {
		t.Errorf("WHEP on a p2p channel: %d, want 409", resp.StatusCode)
	}
}

// TestWHIPNoGoroutineLeak: once every session ended (DELETE, the server
// ending it at shutdown, the client vanishing) and the server stopped,
// the goroutines are back to what they were.
func TestWHIPNoGoroutineLeak(t *testing.T) {
	// A first round warms up what starts once per process (pion, sqlite,
	// net/http), so the count before the second round is the baseline.
	for round := range 2 {
		settleGoroutines()
		before := runtime.NumGoroutine()
		whipRound(t, round)
		httpc.CloseIdleConnections()
		if round == 0 {
			continue
		}
		deadline := time.Now().Add(15 * time.Second)
		for runtime.NumGoroutine() > before {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				t.Fatalf("%d goroutines, %d before the sessions:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
			}
			time.Sleep(50 * time.Millisecond)
			httpc.CloseIdleConnections()
		}
	}
}

// whipRound runs a server with a publisher, a player and a session left
// open, ends them all, and stops the server.
func whipRound(t *testing.T, round int) {
	// A distinct name per round: the data directory is named after it.
	t.Run(fmt.Sprintf("round%d", round), func(t *testing.T) {
		s := servertest.Start(t)
		ann := s.SignUp("ann", "Ann")
		ch := s.CreateChannel(ann, "Leaks")
		tok := token(t, s, ann, "obs")

		pub := newPublisher(t)
		if resp, body := pub.post(s.URL+"/whip/"+ch, tok, pub.offer()); resp.StatusCode != http.StatusCreated {
			t.Fatalf("WHIP POST: %d %s", resp.StatusCode, body)
		}
		pub.trickle(tok)
		pub.send()
		player := play(t, s.URL+"/whep/"+ch, tok)
		testtool.Eventually(t, 15*time.Second, func() bool { return player.videoPkts.Load() > 10 }, "RTP at the player")
		// The player goes without DELETE: the server notices its
		// connection closing and ends the session by itself.
		player.close()
		testtool.Eventually(t, 10*time.Second, func() bool {
			return metric(t, s, "parley_sfu_viewers") == "0"
		}, "the closed player's session to end")
		if resp, _ := request(t, http.MethodDelete, pub.location, tok, "", ""); resp.StatusCode != http.StatusOK {
			t.Errorf("DELETE: %d", resp.StatusCode)
		}
		// A publisher that goes without DELETE leaves the call too.
		gone := newPublisher(t)
		if resp, body := gone.post(s.URL+"/whip/"+ch, tok, gone.offer()); resp.StatusCode != http.StatusCreated {
			t.Fatalf("WHIP POST: %d %s", resp.StatusCode, body)
		}
		gone.trickle(tok)
		testtool.Eventually(t, 10*time.Second, func() bool {
			return gone.pc.ConnectionState() == webrtc.PeerConnectionStateConnected
		}, "the publisher to connect")
		if v := metric(t, s, "parley_participants"); v != "1" {
			t.Errorf("parley_participants = %q with one publisher, want 1", v)
		}
		gone.close()
		testtool.Eventually(t, 10*time.Second, func() bool {
			return metric(t, s, "parley_participants") == "0"
		}, "the closed publisher to leave the call")
		// A last publisher is still live when the server stops.
		open := newPublisher(t)
		if resp, body := open.post(s.URL+"/whip/"+ch, tok, open.offer()); resp.StatusCode != http.StatusCreated {
			t.Fatalf("WHIP POST: %d %s", resp.StatusCode, body)
		}
		s.Stop()
		pub.close()
		open.close()
	})
	if t.Failed() {
		t.FailNow()
	}
}

// settleGoroutines waits, bounded, for goroutines of earlier tests to
// wind down, so the baseline is not inflated by them.
func settleGoroutines() {
	last := -1
	for range 40 {
		n := runtime.NumGoroutine()
		if n == last {
			return
		}
		last = n
		time.Sleep(100 * time.Millisecond)
	}
}
