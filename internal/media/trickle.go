package media

// Trickle ICE for WHIP and WHEP sessions (RFC 9725 §4.3): the SDP
// fragments of PATCH (RFC 8840) and the state of a session's ICE: its
// current ice-ufrag, the ones ICE restarts replaced, and the ETag that
// names it. The HTTP edge only maps ICESession.Patch's errors to status
// codes.

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/pion/webrtc/v4"
)

const (
	// MaxFragmentCandidates bounds the candidates of one fragment.
	MaxFragmentCandidates = 64
	// MaxCandidateLen bounds one candidate, as the signaling protocol
	// does.
	MaxCandidateLen = 1024
	// maxRetired bounds the earlier ICE sessions a session remembers to
	// refuse late fragments of.
	maxRetired = 16
)

// Fragment is what Parley uses of a trickle ICE fragment (RFC 8840).
type Fragment struct {
	Ufrag, Pwd string
	// Candidates carry the a=candidate value ("candidate:…") and the mid
	// of the m-line they were listed under (nil if none).
	Candidates []webrtc.ICECandidateInit
	// End: a=end-of-candidates.
	End bool
}

// ParseFragment reads a trickle ICE SDP fragment: a=ice-ufrag,
// a=ice-pwd, a=mid (which m-line the candidates that follow belong to),
// a=candidate and a=end-of-candidates lines; other lines are ignored.
// Lines end in CRLF or LF. Errors wrap ErrBadFragment.
func ParseFragment(body string) (Fragment, error) {
	var f Fragment
	bad := func(format string, args ...any) (Fragment, error) {
		return Fragment{}, &ClientError{Err: ErrBadFragment, Detail: fmt.Sprintf(format, args...)}
	}
	mid := ""
	for n, line := range strings.Split(body, "\n") {
		line = strings.TrimSuffix(line, "\r")
		if line == "" {
			continue
		}
		if len(line) < 2 || line[1] != '=' {
			return bad("line %d is not an SDP line (x=value)", n+1)
		}
		for _, c := range line {
			if c < 0x20 || c == 0x7f {
				return bad("line %d has a control character", n+1)
			}
		}
		switch line[0] {
		case 'm':
			mid = "" // a new media section: its a=mid follows
			continue
		case 'a':
		default:
			continue
		}
		key, val, _ := strings.Cut(line[2:], ":")
		switch key {
		case "mid":
			mid = val
		case "ice-ufrag":
			if !ValidICEChars(val, 4) {
				return bad("line %d: ice-ufrag must be 4 to 256 letters, digits, + or /", n+1)
			}
			if f.Ufrag != "" && f.Ufrag != val {
				return bad("line %d: a second, different ice-ufrag", n+1)
			}
			f.Ufrag = val
		case "ice-pwd":
			if !ValidICEChars(val, 22) {
				return bad("line %d: ice-pwd must be 22 to 256 letters, digits, + or /", n+1)
			}
			f.Pwd = val
		case "candidate":
			if val == "" || len(val) > MaxCandidateLen {
				return bad("line %d: a candidate must have 1 to %d characters", n+1, MaxCandidateLen)
			}
			if len(f.Candidates) == MaxFragmentCandidates {
				return bad("more than %d candidates in one fragment", MaxFragmentCandidates)
			}
			ci := webrtc.ICECandidateInit{Candidate: "candidate:" + val}
			if mid != "" {
				m := mid
				ci.SDPMid = &m
			}
			f.Candidates = append(f.Candidates, ci)
		case "end-of-candidates":
			f.End = true
		}
	}
	if f.Pwd != "" && f.Ufrag == "" {
		return bad("ice-pwd without ice-ufrag")
	}
	return f, nil
}

// ValidICEChars checks an ice-ufrag or ice-pwd (RFC 8839: ice-char =
// ALPHA / DIGIT / "+" / "/", at least minLen and at most 256 of them).
func ValidICEChars(s string, minLen int) bool {
	if len(s) < minLen || len(s) > 256 {
		return false
	}
	for _, c := range s {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '+' || c == '/') {
			return false
		}
	}
	return true
}

// Fragment writes ip as a trickle ICE fragment (RFC 8840), laid out as
// RFC 9725 §4.3.2's answer to an ICE restart: credentials, the bundle
// group, the m-line the candidates belong to with its mid, the
// candidates and, when gathering finished, a=end-of-candidates. Empty
// values are left out.
func (ip ICEParams) Fragment() string {
	var b strings.Builder
	line := func(prefix, v string) {
		if v != "" {
			b.WriteString(prefix + v + "\r\n")
		}
	}
	line("a=ice-ufrag:", ip.Ufrag)
	line("a=ice-pwd:", ip.Pwd)
	line("a=group:", ip.Group)
	line("m=", ip.Media)
	line("a=mid:", ip.Mid)
	for _, c := range ip.Candidates {
		line("a=", c)
	}
	if ip.Complete {
		b.WriteString("a=end-of-candidates\r\n")
	}
	return b.String()
}

// ICESession is the ICE state of one WHIP or WHEP session: the client's
// current ice-ufrag, the ones ICE restarts replaced (to refuse their late
// fragments), and the ETag that names the current ICE session (RFC 9725
// §4.3). Its methods may be called from overlapping HTTP requests.
type ICESession struct {
	add     func(webrtc.ICECandidateInit) error
	restart func(ufrag, pwd string, cands []webrtc.ICECandidateInit) (ICEParams, error)

	// mu serializes Patch, so If-Match is checked against, and
	// candidates go to, the ICE session the request acts on.
	mu      sync.Mutex
	ufrag   string
	retired []string // earlier ufrags, newest last
	etag    string
}

// NewICESession starts the ICE state of a session whose offer had ufrag.
// add trickles a candidate, restart restarts ICE (Peer.AddCandidate and
// Peer.RestartICE, or a Viewer's).
func NewICESession(ufrag string, add func(webrtc.ICECandidateInit) error,
	restart func(ufrag, pwd string, cands []webrtc.ICECandidateInit) (ICEParams, error)) *ICESession {
	return &ICESession{add: add, restart: restart, ufrag: ufrag, etag: newETag()}
}

// ETag names the current ICE session, as a strong entity-tag.
func (s *ICESession) ETag() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.etag
}

// Restarted is the outcome of a Patch that restarted ICE: the server's
// side of the new ICE session and the ETag that now names it.
type Restarted struct {
	Local ICEParams
	ETag  string
}

// Patch applies a PATCH body (a trickle ICE fragment) sent with If-Match
// ifMatch ("" or "*" match any ICE session). A fragment of the current
// ICE session (or with no ice-ufrag) trickles its candidates and returns
// nil; one with a new ice-ufrag and ice-pwd restarts ICE (RFC 9725
// §4.3.2) and returns the server's new side. Errors wrap ErrETag,
// ErrBadFragment, ErrStaleICE, ErrBadRestart, ErrBadCandidate or
// ErrClosed.
func (s *ICESession) Patch(ifMatch, body string) (*Restarted, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ifMatch != "" && ifMatch != "*" && ifMatch != s.etag {
		return nil, &ClientError{Err: ErrETag, Detail: "its ETag is " + s.etag}
	}
	f, err := ParseFragment(body)
	if err != nil {
		return nil, err
	}
	switch {
	case f.Ufrag == "" || f.Ufrag == s.ufrag:
		for _, c := range f.Candidates {
			if err := s.add(c); err != nil {
				if errors.Is(err, ErrClosed) {
					return nil, ErrClosed
				}
				return nil, &ClientError{Err: ErrBadCandidate, Detail: fmt.Sprintf("%q", c.Candidate), Cause: err}
			}
		}
		return nil, nil
	case slices.Contains(s.retired, f.Ufrag):
		return nil, ErrStaleICE
	case f.Pwd == "":
		return nil, &ClientError{Err: ErrBadRestart, Detail: "the fragment has a new a=ice-ufrag but no a=ice-pwd; send both (a restart changes both)"}
	}
	local, err := s.restart(f.Ufrag, f.Pwd, f.Candidates)
	if err != nil {
		return nil, err
	}
	s.retired = append(s.retired, s.ufrag)
	if len(s.retired) > maxRetired {
		s.retired = s.retired[1:]
	}
	s.ufrag = f.Ufrag
	s.etag = newETag()
	return &Restarted{Local: local, ETag: s.etag}, nil
}

// newETag returns a fresh strong entity-tag: 64 random bits.
func newETag() string {
	b := make([]byte, 8)
	rand.Read(b) // never fails (crypto/rand, Go 1.24+)
	return `"` + hex.EncodeToString(b) + `"`
}
