package media

// The SDP of WHIP (RFC 9725) and WHEP: this file is the one place that
// reads a WHIP or WHEP offer, checks what an answer accepted, and reads
// and rewrites ICE credentials. trickle.go has the trickle ICE fragments
// (RFC 8840) and the ICE session state; both share this file's error
// vocabulary, which the room passes through unchanged and the HTTP edge
// (internal/web/whip.go) turns into status codes.

import (
	"errors"
	"fmt"
	"strings"

	"github.com/pion/ice/v4"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// Errors about what a WHIP or WHEP client sent. They come wrapped in a
// *ClientError whose Detail says, for the client, what exactly is wrong.
var (
	// ErrBadOffer: the offer does not parse or cannot be used (it sends or
	// receives nothing, or shares no codec with the SFU or the publisher).
	ErrBadOffer = errors.New("media: unusable SDP offer")
	// ErrBadCandidate: a trickled ICE candidate does not parse.
	ErrBadCandidate = errors.New("media: bad ICE candidate")
	// ErrBadFragment: a trickle ICE fragment (RFC 8840) does not parse.
	ErrBadFragment = errors.New("media: bad trickle ICE fragment")
	// ErrETag: If-Match names an ICE session that is not the current one.
	ErrETag = errors.New("media: If-Match does not name the current ICE session")
	// ErrStaleICE: a fragment names an ICE session (ice-ufrag) that an
	// ICE restart already replaced.
	ErrStaleICE = errors.New("media: the fragment is for an earlier ICE session")
	// ErrBadRestart: an ICE restart without both a new ice-ufrag and an
	// ice-pwd.
	ErrBadRestart = errors.New("media: an ICE restart needs a new ice-ufrag and its ice-pwd")
)

// ClientError is an error in what a WHIP or WHEP client sent: Err is one
// of the sentinels above, Detail what is wrong, worded for the client,
// and Cause the underlying error, if any. errors.Is sees both Err and
// Cause; Detail keeps what the client is told apart from what is logged.
type ClientError struct {
	Err    error
	Detail string
	Cause  error
}

func (e *ClientError) Error() string {
	s := e.Err.Error()
	if d := e.detail(); d != "" {
		s += ": " + d
	}
	return s
}

// detail is Detail, else the cause's message.
func (e *ClientError) detail() string {
	switch {
	case e.Detail != "" && e.Cause != nil:
		return e.Detail + ": " + e.Cause.Error()
	case e.Detail != "":
		return e.Detail
	case e.Cause != nil:
		return e.Cause.Error()
	}
	return ""
}

// Unwrap returns Err and Cause.
func (e *ClientError) Unwrap() []error {
	if e.Cause == nil {
		return []error{e.Err}
	}
	return []error{e.Err, e.Cause}
}

// Detail is what err says, for the client, about what it sent: a
// ClientError's detail and cause, or "" when err is no ClientError.
func Detail(err error) string {
	var ce *ClientError
	if errors.As(err, &ce) {
		return ce.detail()
	}
	return ""
}

// badOffer is an ErrBadOffer saying detail.
func badOffer(detail string, cause error) error {
	return &ClientError{Err: ErrBadOffer, Detail: detail, Cause: cause}
}

// OfferError is err, an error of Publish with a WHIP publisher's offer,
// as an ErrBadOffer: the offer is all the client sent. ErrClosed and
// errors that already are ClientErrors are returned as they are.
func OfferError(err error) error {
	var ce *ClientError
	if err == nil || errors.Is(err, ErrClosed) || errors.As(err, &ce) {
		return err
	}
	return badOffer("", err)
}

// OfferDirection says which way a WHIP or WHEP offer's media goes.
type OfferDirection bool

// The directions of ParseOffer.
const (
	// Sends: a WHIP publisher's offer (sendonly or sendrecv m-lines).
	Sends OfferDirection = true
	// Receives: a WHEP player's offer (recvonly or sendrecv m-lines).
	Receives OfferDirection = false
)

// Offer is what Parley needs from a WHIP or WHEP offer.
type Offer struct {
	// Ufrag is the client's ICE username fragment.
	Ufrag string
	// Audio, Video: a WHIP offer sends audio, video.
	Audio, Video bool
	// Sources maps a WHIP offer's track ids to sources (the first audio
	// is the microphone, the first video the camera), for Peer.Publish.
	Sources map[string]string
	// receives lists, for a WHEP offer, the codecs of the first m-line of
	// each kind it receives.
	receives map[webrtc.RTPCodecType][]string
}

// ParseOffer checks that offer is SDP with ICE credentials and at least
// one audio or video m-line that sends (WHIP) or receives (WHEP), so the
// common mistakes get a clear answer before any connection is made.
// Errors wrap ErrBadOffer.
func ParseOffer(offer string, dir OfferDirection) (Offer, error) {
	var sd sdp.SessionDescription
	if err := sd.UnmarshalString(offer); err != nil {
		return Offer{}, badOffer("it is not valid SDP", err)
	}
	o := Offer{Sources: map[string]string{}, receives: map[webrtc.RTPCodecType][]string{}}
	o.Ufrag, _ = sd.Attribute("ice-ufrag")
	sessionDir := direction(sd.Attributes, "sendrecv")
	usable := 0
	for _, md := range sd.MediaDescriptions {
		kind := webrtc.NewRTPCodecType(md.MediaName.Media)
		if kind == 0 || md.MediaName.Port.Value == 0 {
			continue
		}
		if o.Ufrag == "" {
			o.Ufrag, _ = md.Attribute("ice-ufrag")
		}
		d := direction(md.Attributes, sessionDir)
		if dir == Sends && d != "sendonly" && d != "sendrecv" || dir == Receives && d != "recvonly" && d != "sendrecv" {
			continue
		}
		usable++
		if dir == Receives {
			if _, seen := o.receives[kind]; !seen {
				o.receives[kind] = codecNames(md)
			}
			continue
		}
		source, first := sourceCamera, !o.Video
		if kind == webrtc.RTPCodecTypeAudio {
			source, first = sourceMicrophone, !o.Audio
		}
		if id := trackID(md); first && id != "" {
			o.Sources[id] = source
		}
		o.Audio = o.Audio || kind == webrtc.RTPCodecTypeAudio
		o.Video = o.Video || kind == webrtc.RTPCodecTypeVideo
	}
	switch {
	case usable == 0 && dir == Sends:
		return Offer{}, badOffer("it sends neither audio nor video (WHIP needs sendonly audio or video m-lines)", nil)
	case usable == 0:
		return Offer{}, badOffer("it receives neither audio nor video (WHEP needs recvonly audio or video m-lines)", nil)
	case o.Ufrag == "":
		return Offer{}, badOffer("it has no a=ice-ufrag (ICE credentials)", nil)
	}
	return o, nil
}

// codecNames are the encoding names of an m-line's rtpmap lines.
func codecNames(md *sdp.MediaDescription) []string {
	codecs := []string{}
	for _, a := range md.Attributes {
		if a.Key != "rtpmap" {
			continue
		}
		// "96 VP8/90000"
		if _, enc, ok := strings.Cut(a.Value, " "); ok {
			name, _, _ := strings.Cut(enc, "/")
			codecs = append(codecs, name)
		}
	}
	return codecs
}

// noCodecMessage says what a WHIP offer whose every m-line was rejected
// lacks.
const noCodecMessage = "none of its audio or video codecs is one this server forwards (Opus audio; VP8 or H.264 video)"

// AcceptedMedia reports which kinds of media the SFU's answer to a WHIP
// offer accepts (an audio or video m-line with a port other than 0 that
// is not inactive). The SFU rejects each m-line whose codecs it does not
// forward; with none left it returns an ErrBadOffer.
func AcceptedMedia(answer string) (audio, video bool, err error) {
	var sd sdp.SessionDescription
	if err := sd.UnmarshalString(answer); err != nil {
		return false, false, fmt.Errorf("media: our own answer does not parse: %w", err)
	}
	for _, md := range sd.MediaDescriptions {
		if md.MediaName.Port.Value == 0 {
			continue
		}
		if _, inactive := md.Attribute("inactive"); inactive {
			continue
		}
		switch md.MediaName.Media {
		case "audio":
			audio = true
		case "video":
			video = true
		}
	}
	if !audio && !video {
		return false, false, badOffer(noCodecMessage, nil)
	}
	return audio, video, nil
}

// direction is the direction attribute among attrs, else def.
func direction(attrs []sdp.Attribute, def string) string {
	for _, a := range attrs {
		switch a.Key {
		case "sendrecv", "sendonly", "recvonly", "inactive":
			return a.Key
		}
	}
	return def
}

// trackID is the track id of an m-line, as pion reports it for the track
// received on it: from a=msid, else from an a=ssrc … msid: line.
func trackID(md *sdp.MediaDescription) string {
	if v, ok := md.Attribute("msid"); ok {
		if _, id, ok := strings.Cut(v, " "); ok {
			return id
		}
	}
	for _, a := range md.Attributes {
		if a.Key != "ssrc" {
			continue
		}
		if _, rest, ok := strings.Cut(a.Value, " msid:"); ok {
			if _, id, ok := strings.Cut(rest, " "); ok {
				return id
			}
		}
	}
	return ""
}

// ICEParams is one side of an ICE session, as a trickle ICE fragment
// (RFC 8840) carries it.
type ICEParams struct {
	Ufrag, Pwd string
	// Candidates are a=candidate values ("candidate:…").
	Candidates []string
	// Complete: gathering finished, no candidate follows
	// (a=end-of-candidates).
	Complete bool
	// Mid is the m-section the candidates belong to (the first, which
	// tags the bundle), Media its m= line ("audio 9 UDP/TLS/RTP/SAVPF
	// 111") and Group the a=group value ("" if none).
	Mid, Media, Group string
}

// checkCandidates refuses candidates that do not parse, as pion's
// AddICECandidate would, before anything changes: unknown types and
// networks are skipped by pion, not refused.
func checkCandidates(cands []webrtc.ICECandidateInit) error {
	for _, c := range cands {
		v := strings.TrimPrefix(c.Candidate, "candidate:")
		if v == "" {
			continue
		}
		if _, err := ice.UnmarshalCandidate(v); err != nil &&
			!errors.Is(err, ice.ErrUnknownCandidateTyp) && !errors.Is(err, ice.ErrDetermineNetworkType) {
			return &ClientError{Err: ErrBadCandidate, Detail: fmt.Sprintf("%q", c.Candidate), Cause: err}
		}
	}
	return nil
}

// withICE is offer with ufrag and pwd as its ICE credentials, wherever it
// had them (session level, each m-section), without its candidates, which
// belonged to the old ICE session, and with the next session version.
func withICE(offer, ufrag, pwd string) (string, error) {
	var sd sdp.SessionDescription
	if err := sd.UnmarshalString(offer); err != nil {
		return "", fmt.Errorf("media: ICE restart: the last offer: %w", err)
	}
	replace := func(attrs []sdp.Attribute) []sdp.Attribute {
		out := make([]sdp.Attribute, 0, len(attrs))
		for _, a := range attrs {
			switch a.Key {
			case "ice-ufrag":
				a.Value = ufrag
			case "ice-pwd":
				a.Value = pwd
			case "candidate", "end-of-candidates":
				continue
			}
			out = append(out, a)
		}
		return out
	}
	sd.Attributes = replace(sd.Attributes)
	for _, m := range sd.MediaDescriptions {
		m.Attributes = replace(m.Attributes)
	}
	sd.Origin.SessionVersion++ // RFC 3264 §8: a new offer
	b, err := sd.Marshal()
	if err != nil {
		return "", fmt.Errorf("media: ICE restart: offer: %w", err)
	}
	return string(b), nil
}

// iceParams reads a local description's ICE session: pion puts its
// credentials in every m-section and its candidates in the first.
func iceParams(local string) (ICEParams, error) {
	var sd sdp.SessionDescription
	if err := sd.UnmarshalString(local); err != nil {
		return ICEParams{}, err
	}
	if len(sd.MediaDescriptions) == 0 {
		return ICEParams{}, errors.New("no m-section")
	}
	var ip ICEParams
	ip.Ufrag, _ = sd.Attribute("ice-ufrag")
	ip.Pwd, _ = sd.Attribute("ice-pwd")
	ip.Group, _ = sd.Attribute("group")
	m := sd.MediaDescriptions[0]
	ip.Mid, _ = m.Attribute("mid")
	ip.Media = m.MediaName.String()
	for _, a := range m.Attributes {
		switch a.Key {
		case "ice-ufrag":
			if ip.Ufrag == "" {
				ip.Ufrag = a.Value
			}
		case "ice-pwd":
			if ip.Pwd == "" {
				ip.Pwd = a.Value
			}
		case "candidate":
			ip.Candidates = append(ip.Candidates, "candidate:"+a.Value)
		case "end-of-candidates":
			ip.Complete = true
		}
	}
	if ip.Ufrag == "" || ip.Pwd == "" {
		return ICEParams{}, errors.New("no ICE credentials")
	}
	return ip, nil
}
