package web

import (
	"slices"
	"strings"
	"testing"

	"github.com/parley/parley/internal/room"
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

func TestParseSDPFrag(t *testing.T) {
	f, err := parseSDPFrag(rfcFragment)
	if err != nil {
		t.Fatal(err)
	}
	if f.ufrag != "EsAw" || f.pwd != "P2uYro0UCOQ4zxjKXaWCBui1" || !f.end || len(f.candidates) != 4 {
		t.Fatalf("parsed %+v", f)
	}
	if c := f.candidates[0]; c.Mid != "0" || !strings.HasPrefix(c.Candidate, "candidate:1387637174 1 udp") {
		t.Errorf("first candidate %+v", c)
	}
	// LF line ends, no credentials, a candidate before any m-line.
	f, err = parseSDPFrag("a=candidate:1 1 udp 1 127.0.0.1 9 typ host\n")
	if err != nil || len(f.candidates) != 1 || f.candidates[0].Mid != "" || f.ufrag != "" {
		t.Errorf("minimal fragment: %+v, %v", f, err)
	}
	if f, err := parseSDPFrag(""); err != nil || len(f.candidates) != 0 {
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
		"long candidate":   "a=candidate:" + strings.Repeat("x", maxCandidateLen+1) + "\r\n",
		"many candidates":  strings.Repeat("a=candidate:1 1 udp 1 127.0.0.1 9 typ host\r\n", maxFragCandidates+1),
	} {
		if _, err := parseSDPFrag(bad); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestICEFragment: the answer to an ICE restart is laid out as RFC 9725
// §4.3.2's example, and reads back as what it was made from.
func TestICEFragment(t *testing.T) {
	ice := room.ICESession{
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
	got := iceFragment(ice)
	if got != want {
		t.Fatalf("fragment:\n%s\nwant:\n%s", got, want)
	}
	checkRoundTrip(t, ice)
	// Gathering cut short: no end-of-candidates; no group or m-line.
	ice = room.ICESession{Ufrag: "abcd", Pwd: "P2uYro0UCOQ4zxjKXaWCBui1"}
	if got := iceFragment(ice); got != "a=ice-ufrag:abcd\r\na=ice-pwd:P2uYro0UCOQ4zxjKXaWCBui1\r\n" {
		t.Errorf("fragment without candidates: %q", got)
	}
}

// checkRoundTrip fails t unless iceFragment(ice) parses back as ice.
func checkRoundTrip(t *testing.T, ice room.ICESession) {
	t.Helper()
	body := iceFragment(ice)
	f, err := parseSDPFrag(body)
	if err != nil {
		t.Fatalf("iceFragment(%+v) does not parse: %v\n%s", ice, err, body)
	}
	var cands []string
	for _, c := range f.candidates {
		mid := ""
		if ice.Media != "" || ice.Mid != "" {
			mid = ice.Mid
		}
		if c.Mid != mid {
			t.Fatalf("candidate %q read under mid %q, want %q\n%s", c.Candidate, c.Mid, mid, body)
		}
		cands = append(cands, c.Candidate)
	}
	if f.ufrag != ice.Ufrag || f.pwd != ice.Pwd || f.end != ice.Complete || !slices.Equal(cands, ice.Candidates) {
		t.Fatalf("iceFragment(%+v) reads back as %+v\n%s", ice, f, body)
	}
}

// FuzzParseSDPFrag: any body either is refused or yields candidates that
// are single "candidate:" lines within the limits; what it yields, written
// back with iceFragment, reads back the same.
func FuzzParseSDPFrag(f *testing.F) {
	f.Add(rfcFragment)
	f.Add("a=ice-ufrag:abcd\na=candidate:1 1 udp 1 ::1 9 typ host\na=end-of-candidates")
	f.Add("m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:1\r\na=candidate:x\r\n")
	f.Fuzz(func(t *testing.T, body string) {
		fr, err := parseSDPFrag(body)
		if err != nil {
			return
		}
		if len(fr.candidates) > maxFragCandidates {
			t.Fatalf("%d candidates", len(fr.candidates))
		}
		if fr.pwd != "" && fr.ufrag == "" {
			t.Fatal("pwd without ufrag accepted")
		}
		for _, c := range fr.candidates {
			if !strings.HasPrefix(c.Candidate, "candidate:") || len(c.Candidate) > len("candidate:")+maxCandidateLen ||
				strings.ContainsAny(c.Candidate+c.Mid, "\r\n\x00") {
				t.Fatalf("bad candidate %q (mid %q)", c.Candidate, c.Mid)
			}
		}
		if fr.ufrag != "" && !validICEChars(fr.ufrag, 4) {
			t.Fatalf("bad ufrag %q", fr.ufrag)
		}
		ice := room.ICESession{Ufrag: fr.ufrag, Pwd: fr.pwd, Complete: fr.end,
			Mid: "0", Media: "audio 9 UDP/TLS/RTP/SAVPF 111", Group: "BUNDLE 0 1"}
		for _, c := range fr.candidates {
			ice.Candidates = append(ice.Candidates, c.Candidate)
		}
		checkRoundTrip(t, ice)
	})
}
