package media

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/pion/webrtc/v4"
)

// rfcFragment is the trickle fragment of RFC 9725 §4.3.1's example.
const rfcFragment = "a=group:BUNDLE 0 1\r\n" +
	"m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n" +
	"a=mid:0\r\n" +
	"a=ice-ufrag:EsAw\r\n" +
	"a=ice-pwd:P2uYro0UCOQ4zxjKXaWCBui1\r\n" +
	"a=candidate:1387637174 1 udp 2122260223 192.0.2.1 61764 typ host generation 0 ufrag EsAw network-id 1\r\n" +
	"a=candidate:3471623853 1 udp 2122194687 198.51.100.2 61765 typ host generation 0 ufrag EsAw network-id 2\r\n" +
	"a=candidate:473322822 1 tcp 1518280447 192.0.2.1 9 typ host tcptype active generation 0 ufrag EsAw network-id 1\r\n" +
	"a=candidate:2154773085 1 tcp 1518214911 198.51.100.2 9 typ host tcptype active generation 0 ufrag EsAw network-id 2\r\n" +
	"a=end-of-candidates\r\n"

func TestParseFragment(t *testing.T) {
	f, err := ParseFragment(rfcFragment)
	if err != nil {
		t.Fatal(err)
	}
	if f.Ufrag != "EsAw" || f.Pwd != "P2uYro0UCOQ4zxjKXaWCBui1" || !f.End || len(f.Candidates) != 4 {
		t.Fatalf("parsed %+v", f)
	}
	if c := f.Candidates[0]; midOf(c) != "0" || !strings.HasPrefix(c.Candidate, "candidate:1387637174 1 udp") {
		t.Errorf("first candidate %+v", c)
	}
	// LF line ends, no credentials, a candidate before any m-line.
	f, err = ParseFragment("a=candidate:1 1 udp 1 127.0.0.1 9 typ host\n")
	if err != nil || len(f.Candidates) != 1 || midOf(f.Candidates[0]) != "" || f.Ufrag != "" {
		t.Errorf("minimal fragment: %+v, %v", f, err)
	}
	if f, err := ParseFragment(""); err != nil || len(f.Candidates) != 0 {
		t.Errorf("empty fragment: %+v, %v", f, err)
	}
	for name, bad := range map[string]string{
		"not SDP":          "hello\r\n",
		"control char":     "a=candidate:1 1 udp 1 127.0.0.1 9 typ host\x00\r\n",
		"empty candidate":  "a=candidate:\r\n",
		"short ufrag":      "a=ice-ufrag:ab\r\n",
		"bad ufrag char":   "a=ice-ufrag:ab cd\r\n",
		"two ufrags":       "a=ice-ufrag:abcd\r\na=ice-ufrag:efgh\r\n",
		"pwd without frag": "a=ice-pwd:P2uYro0UCOQ4zxjKXaWCBui1\r\n",
		"long candidate":   "a=candidate:" + strings.Repeat("x", MaxCandidateLen+1) + "\r\n",
		"many candidates":  strings.Repeat("a=candidate:1 1 udp 1 127.0.0.1 9 typ host\r\n", MaxFragmentCandidates+1),
	} {
		if _, err := ParseFragment(bad); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestICEParamsFragment: the answer to an ICE restart is laid out as RFC 9725
// §4.3.2's example, and reads back as what it was made from.
func TestICEParamsFragment(t *testing.T) {
	ice := ICEParams{
		Ufrag: "289b31b754eaa438", Pwd: "0b66f472495ef0ccac7bda653ab6be49ea13114472a5d10a",
		Candidates: []string{"candidate:1 1 udp 2130706431 198.51.100.1 39132 typ host"},
		Complete:   true, Mid: "0", Media: "audio 9 UDP/TLS/RTP/SAVPF 111", Group: "BUNDLE 0 1",
	}
	const want = "a=ice-ufrag:289b31b754eaa438\r\n" +
		"a=ice-pwd:0b66f472495ef0ccac7bda653ab6be49ea13114472a5d10a\r\n" +
		"a=group:BUNDLE 0 1\r\n" +
		"m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n" +
		"a=mid:0\r\n" +
		"a=candidate:1 1 udp 2130706431 198.51.100.1 39132 typ host\r\n" +
		"a=end-of-candidates\r\n"
	got := ice.Fragment()
	if got != want {
		t.Fatalf("fragment:\n%s\nwant:\n%s", got, want)
	}
	checkRoundTrip(t, ice)
	// Gathering cut short: no end-of-candidates; no group or m-line.
	ice = ICEParams{Ufrag: "abcd", Pwd: "P2uYro0UCOQ4zxjKXaWCBui1"}
	if got := ice.Fragment(); got != "a=ice-ufrag:abcd\r\na=ice-pwd:P2uYro0UCOQ4zxjKXaWCBui1\r\n" {
		t.Errorf("fragment without candidates: %q", got)
	}
}

// checkRoundTrip fails t unless ice.Fragment() parses back as ice.
func checkRoundTrip(t *testing.T, ice ICEParams) {
	t.Helper()
	body := ice.Fragment()
	f, err := ParseFragment(body)
	if err != nil {
		t.Fatalf("Fragment of %+v does not parse: %v\n%s", ice, err, body)
	}
	var cands []string
	for _, c := range f.Candidates {
		mid := ""
		if ice.Media != "" || ice.Mid != "" {
			mid = ice.Mid
		}
		if midOf(c) != mid {
			t.Fatalf("candidate %q read under mid %q, want %q\n%s", c.Candidate, midOf(c), mid, body)
		}
		cands = append(cands, c.Candidate)
	}
	if f.Ufrag != ice.Ufrag || f.Pwd != ice.Pwd || f.End != ice.Complete || !slices.Equal(cands, ice.Candidates) {
		t.Fatalf("Fragment of %+v reads back as %+v\n%s", ice, f, body)
	}
}

// FuzzParseFragment: any body either is refused or yields candidates that
// are single "candidate:" lines within the limits; what it yields, written
// back with ICEParams.Fragment, reads back the same.
func FuzzParseFragment(f *testing.F) {
	f.Add(rfcFragment)
	f.Add("a=ice-ufrag:abcd\na=candidate:1 1 udp 1 ::1 9 typ host\na=end-of-candidates")
	f.Add("m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:1\r\na=candidate:x\r\n")
	f.Fuzz(func(t *testing.T, body string) {
		fr, err := ParseFragment(body)
		if err != nil {
			return
		}
		if len(fr.Candidates) > MaxFragmentCandidates {
			t.Fatalf("%d candidates", len(fr.Candidates))
		}
		if fr.Pwd != "" && fr.Ufrag == "" {
			t.Fatal("pwd without ufrag accepted")
		}
		for _, c := range fr.Candidates {
			if !strings.HasPrefix(c.Candidate, "candidate:") || len(c.Candidate) > len("candidate:")+MaxCandidateLen ||
				strings.ContainsAny(c.Candidate+midOf(c), "\r\n\x00") {
				t.Fatalf("bad candidate %q (mid %q)", c.Candidate, midOf(c))
			}
		}
		if fr.Ufrag != "" && !ValidICEChars(fr.Ufrag, 4) {
			t.Fatalf("bad ufrag %q", fr.Ufrag)
		}
		ice := ICEParams{Ufrag: fr.Ufrag, Pwd: fr.Pwd, Complete: fr.End,
			Mid: "0", Media: "audio 9 UDP/TLS/RTP/SAVPF 111", Group: "BUNDLE 0 1"}
		for _, c := range fr.Candidates {
			ice.Candidates = append(ice.Candidates, c.Candidate)
		}
		checkRoundTrip(t, ice)
	})
}

// midOf is the mid a candidate was read under ("" for none).
func midOf(c webrtc.ICECandidateInit) string {
	if c.SDPMid == nil {
		return ""
	}
	return *c.SDPMid
}

// fakeICE records what an ICESession asks of the connection.
type fakeICE struct {
	added    []string
	restarts int
	addErr   error
}

func (f *fakeICE) session() *ICESession {
	return NewICESession("EsAw", func(c webrtc.ICECandidateInit) error {
		if f.addErr != nil {
			return f.addErr
		}
		f.added = append(f.added, c.Candidate)
		return nil
	}, func(ufrag, pwd string, cands []webrtc.ICECandidateInit) (ICEParams, error) {
		f.restarts++
		return ICEParams{Ufrag: "srv" + ufrag, Pwd: "serverPasswordOf22Chars+"}, nil
	})
}

// TestICESessionPatch: If-Match, trickle, ICE restart (a new ETag), and
// refusal of the replaced ICE session's ETag and ufrag, each with its
// sentinel.
func TestICESessionPatch(t *testing.T) {
	f := &fakeICE{}
	s := f.session()
	etag := s.ETag()
	cand := "a=candidate:1 1 udp 2130706431 127.0.0.1 9 typ host\r\n"
	if r, err := s.Patch(etag, "a=ice-ufrag:EsAw\r\n"+cand); r != nil || err != nil || len(f.added) != 1 {
		t.Fatalf("trickle: %v %v, added %q", r, err, f.added)
	}
	if _, err := s.Patch(`"other"`, cand); !errors.Is(err, ErrETag) || !strings.Contains(Detail(err), etag) {
		t.Errorf("wrong If-Match: %v, want ErrETag naming %s", err, etag)
	}
	if _, err := s.Patch("*", "garbage"); !errors.Is(err, ErrBadFragment) {
		t.Errorf("garbage: %v, want ErrBadFragment", err)
	}
	if _, err := s.Patch("*", "a=ice-ufrag:newU\r\n"); !errors.Is(err, ErrBadRestart) || !strings.Contains(Detail(err), "no a=ice-pwd") {
		t.Errorf("restart without pwd: %v, want ErrBadRestart", err)
	}
	r, err := s.Patch("*", "a=ice-ufrag:newU\r\na=ice-pwd:aNewPasswordOf22Chars+/\r\n")
	if err != nil || r == nil || r.ETag == etag || r.ETag != s.ETag() || r.Local.Ufrag != "srvnewU" || f.restarts != 1 {
		t.Fatalf("restart: %+v, %v (old ETag %s)", r, err, etag)
	}
	if _, err := s.Patch(etag, cand); !errors.Is(err, ErrETag) {
		t.Errorf("the replaced ETag: %v, want ErrETag", err)
	}
	if _, err := s.Patch("", "a=ice-ufrag:EsAw\r\n"+cand); !errors.Is(err, ErrStaleICE) {
		t.Errorf("the replaced ufrag: %v, want ErrStaleICE", err)
	}
	f.addErr = errors.New("pion says no")
	if _, err := s.Patch("", cand); !errors.Is(err, ErrBadCandidate) || !strings.Contains(Detail(err), "pion says no") {
		t.Errorf("unusable candidate: %v, want ErrBadCandidate with the cause", err)
	}
	f.addErr = ErrClosed
	if _, err := s.Patch("", cand); !errors.Is(err, ErrClosed) {
		t.Errorf("closed: %v, want ErrClosed", err)
	}
}
