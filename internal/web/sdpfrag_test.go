package web

import (
	"strings"
	"testing"
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

// FuzzParseSDPFrag: any body either is refused or yields candidates that
// are single "candidate:" lines within the limits.
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
	})
}
