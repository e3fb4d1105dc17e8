package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestP2PFlagValidation: wrong p2p command lines are refused (exit 2)
// with a message naming the problem, before anything listens or dials.
func TestP2PFlagValidation(t *testing.T) {
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"p2p"}, 2, "parley p2p listen"},
		{[]string{"p2p", "--help"}, 0, "-send-audio"},
		{[]string{"p2p", "call"}, 2, `unknown mode "call"`},
		{[]string{"p2p", "dial"}, 2, "dial needs the listening peer's address"},
		{[]string{"p2p", "dial", "nohost"}, 2, `"nohost" is not HOST:PORT`},
		{[]string{"p2p", "dial", "a:1", "b:2"}, 2, "dial needs the listening peer's address"},
		{[]string{"p2p", "dial", "a:1", "--addr", ":7000"}, 2, "--addr is for listen"},
		{[]string{"p2p", "listen", "a:1"}, 2, "listen takes no address argument"},
		{[]string{"p2p", "listen", "--addr", "7000"}, 2, `--addr "7000" is not [HOST]:PORT`},
		{[]string{"p2p", "listen", "--duration", "-3s"}, 2, "must not be negative"},
		{[]string{"p2p", "listen", "--duration", "soon"}, 2, "invalid value"},
		{[]string{"p2p", "dial", "127.0.0.1:9", "--send-audio", "/nonexistent/a.ogg"}, 1, "no such file"},
		{[]string{"p2p", "dial", "127.0.0.1:9", "--send-audio", "../../testdata/pattern.ivf"}, 1, "not an Ogg stream"},
	} {
		var out, errb bytes.Buffer
		code := run(c.args, &out, &errb)
		if code != c.code || !strings.Contains(errb.String(), c.want) {
			t.Errorf("%q: exit %d, want %d with %q in:\n%s", c.args, code, c.code, c.want, errb.String())
		}
	}
}
