package web_test

import (
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"

	"github.com/parley/parley/internal/servertest"
	"github.com/parley/parley/internal/signaling"
)

// TestWHIPOfferWithoutUsableCodec: a WHIP offer whose only m-line carries
// a codec the SFU does not forward (PCMU) is refused with 400 saying so,
// as docs/api.md documents, and leaves no participant in the call (it
// used to be answered 201 with m=audio 0, and the publisher lingered in
// the call until ICE gave up).
func TestWHIPOfferWithoutUsableCodec(t *testing.T) {
	s := servertest.Start(t)
	ann := s.SignUp("ann", "Ann")
	ch := s.CreateChannel(ann, "Stage")
	tok := token(t, s, ann, "encoder")
	sock := dialLobby(t, s, ann, ch) // keeps the room running, as an open channel page would
	sock.expect(signaling.TypeHello)

	me := &webrtc.MediaEngine{}
	if err := me.RegisterCodec(webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMU, ClockRate: 8000}, PayloadType: 0,
	}, webrtc.RTPCodecTypeAudio); err != nil {
		t.Fatal(err)
	}
	var se webrtc.SettingEngine
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	pc, err := webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithSettingEngine(se)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	tr, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMU, ClockRate: 8000}, "a", "s")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pc.AddTransceiverFromTrack(tr, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
		t.Fatal(err)
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}

	resp, body := request(t, http.MethodPost, s.URL+"/whip/"+ch, tok, "application/sdp", offer.SDP)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "codecs") {
		t.Errorf("offer with PCMU only: %d %q, want 400 saying no codec is usable", resp.StatusCode, body)
	}
	// Publish adds the participant before it answers, so one would be
	// counted by now.
	if v := metric(t, s, "parley_participants"); v != "0" {
		t.Errorf("parley_participants = %q after the refused offer, want 0", v)
	}
	if v := metric(t, s, "parley_sfu_peers"); v != "" && v != "0" {
		t.Errorf("parley_sfu_peers = %q after the refused offer, want 0", v)
	}
}
