// Package testtool finds the outside programs some tests need (Chromium,
// ffprobe, coturn, iptables). Missing, such a test skips with a loud
// message; with PARLEY_REQUIRE_ALL=1 (as .ci/run sets) it fails instead,
// so CI can never pass by skipping.
package testtool

import (
	"fmt"
	"os"
	"os/exec"
	"testing"
)

// Find returns the path of the first of names found on PATH. Otherwise it
// skips t, or fails it under PARLEY_REQUIRE_ALL=1, saying how to install
// the program (install is the Debian package).
func Find(t testing.TB, install string, names ...string) string {
	t.Helper()
	for _, name := range names {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := fmt.Sprintf("*** %s not found: %s NOT RUN. Install it with `apt-get install %s`. ***", names[0], t.Name(), install)
	if os.Getenv("PARLEY_REQUIRE_ALL") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}
