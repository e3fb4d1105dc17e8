package room_test

import (
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/parley/parley/internal/signaling"
)

// pionAPI is a WebRTC stack restricted to loopback, as every test peer is.
func pionAPI(t *testing.T) *webrtc.API {
	t.Helper()
	var se webrtc.SettingEngine
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(0)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	return webrtc.NewAPI(webrtc.WithSettingEngine(se), webrtc.WithMediaEngine(m))
}

// sfuClient is a participant speaking the SFU part of the protocol with
// real pion peer connections: it publishes one VP8 track and counts the
// RTP packets it receives per stream id.
type sfuClient struct {
	t   *testing.T
	sig *peer
	id  string
	pub *webrtc.PeerConnection
	sub *webrtc.PeerConnection
	vid *webrtc.TrackLocalStaticRTP

	mu       sync.Mutex
	received map[string]int // stream id → packets
}

func newSFUClient(t *testing.T, sig *peer, id string) *sfuClient {
	api := pionAPI(t)
	c := &sfuClient{t: t, sig: sig, id: id, received: map[string]int{}}
	var err error
	if c.pub, err = api.NewPeerConnection(webrtc.Configuration{}); err != nil {
		t.Fatal(err)
	}
	if c.sub, err = api.NewPeerConnection(webrtc.Configuration{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.pub.Close(); c.sub.Close() })
	c.vid, err = webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8}, "cam-"+id, "stream-"+id)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.pub.AddTransceiverFromTrack(c.vid, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
		t.Fatal(err)
	}
	for pc, name := range map[*webrtc.PeerConnection]string{c.pub: signaling.PCPublish, c.sub: signaling.PCSubscribe} {
		name := name
		pc.OnICECandidate(func(ci *webrtc.ICECandidate) {
			m := signaling.Message{Type: signaling.TypeCandidate, To: signaling.SFU, PC: name}
			if ci == nil {
				m.EndOfICE = true
			} else {
				init := ci.ToJSON()
				m.Candidate = &signaling.Candidate{Candidate: init.Candidate, SDPMid: init.SDPMid, SDPMLineIndex: init.SDPMLineIndex}
			}
			c.sig.sendAsync(m)
		})
	}
	c.sub.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		for {
			if _, _, err := tr.ReadRTP(); err != nil {
				return
			}
			c.mu.Lock()
			c.received[tr.StreamID()]++
			c.mu.Unlock()
		}
	})
	return c
}

// publish sends the publish offer.
func (c *sfuClient) publish() {
	offer, err := c.pub.CreateOffer(nil)
	if err != nil {
		c.t.Fatal(err)
	}
	if err := c.pub.SetLocalDescription(offer); err != nil {
		c.t.Fatal(err)
	}
	c.sig.send(signaling.Message{Type: signaling.TypeOffer, To: signaling.SFU, PC: signaling.PCPublish, SDP: offer.SDP,
		Sources: map[string]string{c.vid.ID(): signaling.SourceCamera}})
}

// handle applies one server message to the peer connections.
func (c *sfuClient) handle(m signaling.Message) {
	switch {
	case m.Type == signaling.TypeAnswer && m.PC == signaling.PCPublish:
		if err := c.pub.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: m.SDP}); err != nil {
			c.t.Errorf("%s: publish answer: %v", c.id, err)
		}
	case m.Type == signaling.TypeOffer && m.PC == signaling.PCSubscribe:
		if err := c.sub.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: m.SDP}); err != nil {
			c.t.Errorf("%s: subscribe offer: %v", c.id, err)
			return
		}
		ans, err := c.sub.CreateAnswer(nil)
		if err == nil {
			err = c.sub.SetLocalDescription(ans)
		}
		if err != nil {
			c.t.Errorf("%s: subscribe answer: %v", c.id, err)
			return
		}
		c.sig.sendAsync(signaling.Message{Type: signaling.TypeAnswer, To: signaling.SFU, PC: signaling.PCSubscribe, SDP: ans.SDP})
	case m.Type == signaling.TypeCandidate && m.From == signaling.SFU && m.Candidate != nil:
		pc := c.pub
		if m.PC == signaling.PCSubscribe {
			pc = c.sub
		}
		pc.AddICECandidate(webrtc.ICECandidateInit{Candidate: m.Candidate.Candidate, SDPMid: m.Candidate.SDPMid, SDPMLineIndex: m.Candidate.SDPMLineIndex})
	}
}

// sendVideo writes n synthetic VP8 keyframe packets.
func (c *sfuClient) sendVideo(seq *uint16, n int) {
	for i := 0; i < n; i++ {
		*seq++
		// VP8 payload descriptor (S=1, partition 0) + keyframe header bits.
		payload := []byte{0x10, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xf0, 0x00}
		pkt := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: *seq, Timestamp: uint32(*seq) * 3000, Marker: true}, Payload: payload}
		if err := c.vid.WriteRTP(pkt); err != nil {
			c.t.Fatalf("%s: write: %v", c.id, err)
		}
	}
}

func (c *sfuClient) got(stream string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.received[stream]
}

// TestThirdParticipantMovesCallToSFU: two participants stay in the mesh;
// when a third joins everyone is told to switch, and media published by
// each reaches the two others through the SFU with stream ids
// PARTICIPANT:camera.
func TestThirdParticipantMovesCallToSFU(t *testing.T) {
	s, ch, a, b := setup(t)
	c3 := s.SignUp("carol", "Carol")
	s.AddMember(a, ch, "carol")

	var sigs []*peer
	var ids []string
	for i, hc := range []*http.Client{a, b, c3} {
		p := dial(t, s, hc, ch)
		p.expect(signaling.TypeHello)
		p.send(signaling.Message{Type: signaling.TypeJoin, State: &signaling.State{Video: true}})
		j := p.expect(signaling.TypeJoined)
		want := signaling.TopologyMesh
		if i == 2 {
			want = signaling.TopologySFU
		}
		if j.Topology != want {
			t.Fatalf("participant %d joined with topology %q, want %q", i+1, j.Topology, want)
		}
		sigs = append(sigs, p)
		ids = append(ids, j.You.ID)
	}
	for i := 0; i < 2; i++ {
		if m := sigs[i].expect(signaling.TypeTopology); m.Topology != signaling.TopologySFU {
			t.Fatalf("participant %d told topology %q", i+1, m.Topology)
		}
	}

	clients := make([]*sfuClient, 3)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for i := range clients {
		clients[i] = newSFUClient(t, sigs[i], ids[i])
		clients[i].publish()
		wg.Add(1)
		go func(c *sfuClient) {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				case m, ok := <-c.sig.msgs:
					if !ok {
						return
					}
					c.handle(m)
				}
			}
		}(clients[i])
	}
	defer func() { close(stop); wg.Wait() }()

	seqs := make([]uint16, 3)
	deadline := time.Now().Add(20 * time.Second)
	for {
		for i, c := range clients {
			c.sendVideo(&seqs[i], 5)
		}
		done := true
		for i, c := range clients {
			for j, id := range ids {
				if i != j && c.got(id+":camera") < 20 {
					done = false
				}
			}
		}
		if done {
			break
		}
		if time.Now().After(deadline) {
			for i, c := range clients {
				c.mu.Lock()
				t.Logf("client %d received %v", i+1, c.received)
				c.mu.Unlock()
			}
			t.Fatal("media did not flow through the SFU to everyone within 20s")
		}
		time.Sleep(20 * time.Millisecond) // pacing of the synthetic sender, not synchronisation
	}
	for i, c := range clients {
		c.mu.Lock()
		for stream := range c.received {
			if !strings.HasSuffix(stream, ":camera") || strings.HasPrefix(stream, ids[i]) {
				t.Errorf("client %d got unexpected stream %q", i+1, stream)
			}
		}
		c.mu.Unlock()
	}
}
