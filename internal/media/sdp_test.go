package media

import (
	"errors"
	"strings"
	"testing"
)

// whipOffer is a WHIP encoder's offer: sendonly Opus and VP8.
const whipOffer = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n" +
	"a=group:BUNDLE 0 1\r\n" +
	"m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=ice-ufrag:EsAw\r\na=ice-pwd:P2uYro0UCOQ4zxjKXaWCBui1\r\n" +
	"a=sendonly\r\na=msid:s mic1\r\na=rtpmap:111 opus/48000/2\r\n" +
	"m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\na=ice-ufrag:EsAw\r\na=ice-pwd:P2uYro0UCOQ4zxjKXaWCBui1\r\n" +
	"a=sendonly\r\na=msid:s cam1\r\na=rtpmap:96 VP8/90000\r\n"

// TestParseOffer: what the room and View need of an offer, and a
// ClientError saying what is wrong with one that cannot be used.
func TestParseOffer(t *testing.T) {
	o, err := ParseOffer(whipOffer, Sends)
	if err != nil {
		t.Fatal(err)
	}
	if o.Ufrag != "EsAw" || !o.Audio || !o.Video || o.Sources["mic1"] != sourceMicrophone || o.Sources["cam1"] != sourceCamera {
		t.Errorf("WHIP offer read as %+v", o)
	}
	player := strings.ReplaceAll(whipOffer, "a=sendonly", "a=recvonly")
	if o, err := ParseOffer(player, Receives); err != nil || len(o.receives) != 2 {
		t.Errorf("WHEP offer: %+v, %v", o, err)
	}
	for _, tc := range []struct {
		name, offer string
		dir         OfferDirection
		says        string
	}{
		{"not SDP", "hello", Sends, "not valid SDP"},
		{"WHIP offer that sends nothing", player, Sends, "sends neither audio nor video"},
		{"WHEP offer that receives nothing", whipOffer, Receives, "receives neither audio nor video"},
		{"no ufrag", strings.ReplaceAll(whipOffer, "a=ice-ufrag:EsAw\r\n", ""), Sends, "no a=ice-ufrag"},
	} {
		_, err := ParseOffer(tc.offer, tc.dir)
		if !errors.Is(err, ErrBadOffer) || !strings.Contains(Detail(err), tc.says) {
			t.Errorf("%s: %v (detail %q), want ErrBadOffer saying %q", tc.name, err, Detail(err), tc.says)
		}
	}
}

// FuzzParseOffer: any offer is either refused with ErrBadOffer or has ICE
// credentials and something to send (or receive).
func FuzzParseOffer(f *testing.F) {
	f.Add(whipOffer, true)
	f.Add(strings.ReplaceAll(whipOffer, "a=sendonly", "a=recvonly"), false)
	f.Add("v=0\r\n", true)
	f.Fuzz(func(t *testing.T, offer string, send bool) {
		o, err := ParseOffer(offer, OfferDirection(send))
		if err != nil {
			if !errors.Is(err, ErrBadOffer) || Detail(err) == "" {
				t.Fatalf("refusal %v is not an ErrBadOffer with a detail", err)
			}
			return
		}
		if o.Ufrag == "" {
			t.Fatal("accepted without ice-ufrag")
		}
		if send && !o.Audio && !o.Video || !send && len(o.receives) == 0 {
			t.Fatalf("accepted an offer with nothing to carry: %+v", o)
		}
	})
}
