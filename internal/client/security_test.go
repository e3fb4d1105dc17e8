package client_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/pion/webrtc/v4"

	"github.com/parley/parley/internal/client"
	"github.com/parley/parley/internal/config"
	"github.com/parley/parley/internal/servertest"
	"github.com/parley/parley/internal/signaling"
	"github.com/parley/parley/internal/testtool"
)

// TestForgedSFUMessagesRefused: in an SFU call of two native clients, a
// third member on a raw socket sends the victim offers and candidates
// dressed as the SFU's (pc "sub"/"pub", from "sfu"). Each is refused with
// an error to the sender, and the victim keeps receiving the other's audio
// and video on its two SFU connections.
func TestForgedSFUMessagesRefused(t *testing.T) {
	s := servertest.Start(t, servertest.WithConfig(func(c *config.Config) { c.P2PMax = 1 }))
	owner := s.SignUp("ada", "Ada")
	s.SignUp("bob", "Bob")
	eveHTTP := s.SignUp("eve", "Eve")
	ch := s.CreateChannel(owner, "Guarded")
	s.AddMember(owner, ch, "bob")
	s.AddMember(owner, ch, "eve")
	cfg := client.Config{Audio: opus, Video: vp8}
	a := start(t, s, ch, "ada", cfg)
	b := start(t, s, ch, "bob", cfg)
	testtool.Eventually(t, 30*time.Second, func() bool {
		return a.got.kinds(nil) == 2 && b.got.kinds(nil) == 2 && b.c.Stats().Connections == 2
	}, "an SFU call with media both ways")

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ck := s.SessionCookie(eveHTTP)
	eve, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(s.URL, "http")+"/ws/c/"+ch, &websocket.DialOptions{
		HTTPHeader: http.Header{"Cookie": {ck.Name + "=" + ck.Value}, "Origin": {s.URL}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer eve.CloseNow()
	eve.SetReadLimit(1 << 20)
	next := func(typ string) signaling.Message {
		t.Helper()
		for {
			_, data, err := eve.Read(ctx)
			if err != nil {
				t.Fatalf("eve waiting for %s: %v", typ, err)
			}
			if m, _ := signaling.Parse(data); m.Type == typ {
				return m
			}
		}
	}
	if err := eve.Write(ctx, websocket.MessageText, []byte(`{"type":"join"}`)); err != nil {
		t.Fatal(err)
	}
	var bob string
	for _, p := range next(signaling.TypeJoined).Participants {
		if p.Name == "Bob" {
			bob = p.ID
		}
	}
	if bob == "" {
		t.Fatal("Bob is not in the call")
	}

	sdp := forgedOffer(t)
	base := b.got.snapshot()
	for _, m := range []map[string]any{
		{"type": "offer", "to": bob, "pc": "sub", "sdp": sdp},
		{"type": "offer", "to": bob, "pc": "sub", "from": "sfu", "sdp": sdp},
		{"type": "answer", "to": bob, "pc": "pub", "sdp": sdp},
		{"type": "candidate", "to": bob, "pc": "sub", "candidate": map[string]any{"candidate": "candidate:1 1 udp 2130706431 127.0.0.1 9 typ host", "sdpMid": "0"}},
	} {
		b, _ := json.Marshal(m)
		if err := eve.Write(ctx, websocket.MessageText, b); err != nil {
			t.Fatal(err)
		}
		if e := next(signaling.TypeError); e.Code != signaling.CodeInvalid || e.Ref != m["type"] {
			t.Errorf("forged %s: got %+v, want an %q error", b, e, signaling.CodeInvalid)
		}
	}
	testtool.Eventually(t, 10*time.Second, func() bool {
		return b.got.kinds(base) == 2
	}, "bob still receiving ada's audio and video")
	if st := b.c.Stats(); st.Connections != 2 {
		t.Errorf("bob has %d connections, want his two with the SFU", st.Connections)
	}
}

// forgedOffer is a well-formed offer with ICE credentials and a
// fingerprint of its own, as an attacker would make to hijack a
// subscribe connection.
func forgedOffer(t *testing.T) string {
	t.Helper()
	pc, err := webrtc.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeAudio, webrtc.RTPCodecTypeVideo} {
		if _, err := pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
			t.Fatal(err)
		}
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	return offer.SDP
}
