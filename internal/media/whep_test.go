package media

import (
	"errors"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/parley/parley/internal/testtool"
)

// loopbackPC is a client peer connection on its own loopback socket.
func loopbackPC(t *testing.T) *webrtc.PeerConnection {
	t.Helper()
	udp, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	pc, err := newClientAPI(t, packetConn{&lossyConn{UDPConn: udp}}).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = pc.Close()
		_ = udp.Close()
	})
	return pc
}

// completeOffer makes pc's offer and waits for its candidates.
func completeOffer(t *testing.T, pc *webrtc.PeerConnection) string {
	t.Helper()
	o, err := pc.CreateOffer(nil)
	if err == nil {
		err = pc.SetLocalDescription(o)
	}
	if err != nil {
		t.Fatal(err)
	}
	<-webrtc.GatheringCompletePromise(pc)
	return pc.LocalDescription().SDP
}

// TestWHIPPublisherAndViewer: a publish-only peer (WHIP) gets nothing
// forwarded to it; a viewer (WHEP) that offered recvonly m-lines gets its
// camera and microphone, keeps its choice when others publish, and ends
// when the publisher leaves.
func TestWHIPPublisherAndViewer(t *testing.T) {
	s := newTestSFU(t, nil)
	if _, _, err := s.View("room", "", "v=0\r\n"); !errors.Is(err, ErrBadOffer) {
		t.Fatalf("garbage offer: %v, want ErrBadOffer", err)
	}
	viewerPC := loopbackPC(t)
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
		if _, err := viewerPC.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			t.Fatal(err)
		}
	}
	viewOffer := completeOffer(t, viewerPC)
	if _, _, err := s.View("room", "", viewOffer); !errors.Is(err, ErrNoPublisher) {
		t.Fatalf("empty room: %v, want ErrNoPublisher", err)
	}

	// The publisher: VP8 and Opus, no sources given (guessed).
	pubPC := loopbackPC(t)
	video, _ := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "v", "obs")
	audio, _ := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "a", "obs")
	for _, tr := range []*webrtc.TrackLocalStaticRTP{video, audio} {
		if _, err := pubPC.AddTransceiverFromTrack(tr, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
			t.Fatal(err)
		}
	}
	pub, err := s.JoinPublisher("room", "WHIP", RoomEvents{}, PeerEvents{})
	if err != nil {
		t.Fatal(err)
	}
	pubOffer := completeOffer(t, pubPC)
	answer, err := pub.Publish(pubOffer, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := pubPC.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var sending sync.WaitGroup
	sending.Add(1)
	go func() {
		defer sending.Done()
		for seq := uint16(1); ; seq++ {
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
			kf := []byte{0x10, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0x68, 0x01, 0, 0, 0}
			_ = video.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: seq, Timestamp: uint32(seq) * 900, Marker: true}, Payload: kf})
			_ = audio.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 111, SequenceNumber: seq, Timestamp: uint32(seq) * 480}, Payload: []byte{1, 2, 3}})
		}
	}()
	defer func() { close(stop); sending.Wait() }()
	testtool.Eventually(t, 10*time.Second, func() bool { return s.Stats().PublishedTracks == 2 }, "WHIP tracks published")

	if _, _, err := s.View("room", "", pubOffer); !errors.Is(err, ErrBadOffer) {
		t.Errorf("sendonly offer to View: %v, want ErrBadOffer", err)
	}
	if _, _, err := s.View("room", "nobody", viewOffer); !errors.Is(err, ErrNoPublisher) {
		t.Errorf("unknown participant: %v, want ErrNoPublisher", err)
	}

	// A player that only takes H.264 cannot be given this VP8 camera.
	me := &webrtc.MediaEngine{}
	if err := me.RegisterCodec(webrtc.RTPCodecParameters{PayloadType: 102, RTPCodecCapability: webrtc.RTPCodecCapability{
		MimeType: webrtc.MimeTypeH264, ClockRate: 90000, SDPFmtpLine: "packetization-mode=1;profile-level-id=42e01f"}}, webrtc.RTPCodecTypeVideo); err != nil {
		t.Fatal(err)
	}
	h264PC, err := webrtc.NewAPI(webrtc.WithMediaEngine(me)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer h264PC.Close()
	if _, err := h264PC.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		t.Fatal(err)
	}
	h264Offer, err := h264PC.CreateOffer(nil) // not applied: no gathering
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.View("room", "", h264Offer.SDP); !errors.Is(err, ErrBadOffer) || !strings.Contains(err.Error(), "VP8") {
		t.Errorf("H.264-only player: %v, want ErrBadOffer naming VP8", err)
	}
	if st := s.Stats(); st.Viewers != 0 || st.ForwardedTracks != 0 {
		t.Errorf("refused viewers left viewers %d, forwarded tracks %d", st.Viewers, st.ForwardedTracks)
	}

	var videoPkts, audioPkts atomic.Int64
	streams := make(chan string, 2)
	viewerPC.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		streams <- tr.StreamID() + " " + tr.ID()
		n := &audioPkts
		if tr.Kind() == webrtc.RTPCodecTypeVideo {
			n = &videoPkts
		}
		for {
			if _, _, err := tr.ReadRTP(); err != nil {
				return
			}
			n.Add(1)
		}
	})
	v, viewAnswer, err := s.View("room", "", viewOffer)
	if err != nil {
		t.Fatal(err)
	}
	if v.Participant() != "WHIP" {
		t.Errorf("viewer watches %q, want WHIP", v.Participant())
	}
	if err := viewerPC.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: viewAnswer}); err != nil {
		t.Fatal(err)
	}
	testtool.Eventually(t, 10*time.Second, func() bool { return videoPkts.Load() > 30 && audioPkts.Load() > 30 }, "media at the viewer")
	for range 2 {
		if got := <-streams; got != "WHIP:camera WHIP:camera" && got != "WHIP:camera WHIP:microphone" {
			t.Errorf("viewer got track %q", got)
		}
	}
	if st := s.Stats(); st.Viewers != 1 || st.Peers != 1 || st.ForwardedTracks != 2 {
		t.Errorf("stats with one viewer: viewers %d peers %d forwarded %d", st.Viewers, st.Peers, st.ForwardedTracks)
	}

	// A participant publishing later reaches neither the WHIP peer nor
	// the viewer (its choice is fixed).
	c := newTestClient(t, s, "room", "B", RoomEvents{})
	cam := c.addVideo("cam", "b")
	c.publish(map[string]string{"cam": "camera"})
	cam.negotiated()
	warmUp(t, "B's camera", cam, nil, func() bool { return s.Stats().PublishedTracks == 3 })
	if n := len(pub.subscriptions()); n != 0 {
		t.Errorf("the WHIP peer was subscribed to %d tracks", n)
	}
	if n := len(v.p.subscriptions()); n != 2 {
		t.Errorf("the viewer has %d subscriptions, want its 2", n)
	}

	pub.Close()
	select {
	case <-v.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the viewer did not end with its publisher")
	}
	testtool.Eventually(t, 5*time.Second, func() bool { return s.Stats().Viewers == 0 }, "viewer gone from stats")
	v.Close() // idempotent after it ended by itself
}
