package media

import (
	"strings"

	"github.com/pion/webrtc/v4"
)

// codecKind is what the forwarding path needs to know about a codec: how to
// find the first packet of a keyframe.
type codecKind uint8

const (
	codecOther codecKind = iota // audio, or video we cannot parse: every packet is a switch point
	codecVP8
	codecH264
)

func kindOfCodec(mime string) codecKind {
	switch {
	case strings.EqualFold(mime, webrtc.MimeTypeVP8):
		return codecVP8
	case strings.EqualFold(mime, webrtc.MimeTypeH264):
		return codecH264
	}
	return codecOther
}

// keyframeStart reports whether an RTP payload begins a keyframe, and for
// VP8 the frame size the keyframe header carries (0 when unknown). A
// subscriber can only start decoding, or switch layers, on such a packet.
func keyframeStart(c codecKind, payload []byte) (kf bool, width, height int) {
	switch c {
	case codecVP8:
		return vp8KeyframeStart(payload)
	case codecH264:
		return h264KeyframeStart(payload), 0, 0
	}
	return false, 0, 0
}

// vp8KeyframeStart parses the VP8 payload descriptor (RFC 7741 §4.2) and,
// at the start of partition 0, the frame tag and keyframe header (RFC 6386
// §9.1).
func vp8KeyframeStart(p []byte) (bool, int, int) {
	if len(p) < 1 {
		return false, 0, 0
	}
	b0 := p[0]
	start := b0&0x10 != 0 // S
	pid := b0 & 0x07
	i := 1
	if b0&0x80 != 0 { // X: extension byte follows
		if len(p) < 2 {
			return false, 0, 0
		}
		x := p[1]
		i = 2
		if x&0x80 != 0 { // I: picture id
			if len(p) <= i {
				return false, 0, 0
			}
			if p[i]&0x80 != 0 { // M: 15-bit picture id
				i++
			}
			i++
		}
		if x&0x40 != 0 { // L: TL0PICIDX
			i++
		}
		if x&0x20 != 0 || x&0x10 != 0 { // T or K
			i++
		}
	}
	if !start || pid != 0 || len(p) <= i {
		return false, 0, 0
	}
	h := p[i:]
	if h[0]&0x01 != 0 { // P bit: 1 = interframe
		return false, 0, 0
	}
	if len(h) >= 10 && h[3] == 0x9d && h[4] == 0x01 && h[5] == 0x2a {
		w := int(h[6]) | int(h[7]&0x3f)<<8
		ht := int(h[8]) | int(h[9]&0x3f)<<8
		return true, w, ht
	}
	return true, 0, 0
}

// h264KeyframeStart reports whether an H.264 RTP payload (RFC 6184)
// carries a sequence parameter set or the start of an IDR slice.
func h264KeyframeStart(p []byte) bool {
	if len(p) < 1 {
		return false
	}
	switch t := p[0] & 0x1f; {
	case t == 5 || t == 7:
		return true
	case t == 24: // STAP-A
		for i := 1; i+2 < len(p); {
			n := int(p[i])<<8 | int(p[i+1])
			i += 2
			if n == 0 || i+n > len(p) {
				return false
			}
			if nt := p[i] & 0x1f; nt == 5 || nt == 7 {
				return true
			}
			i += n
		}
	case t == 28: // FU-A
		if len(p) < 2 {
			return false
		}
		return p[1]&0x80 != 0 && (p[1]&0x1f == 5 || p[1]&0x1f == 7)
	}
	return false
}
