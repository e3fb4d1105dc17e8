package main

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
)

// TestJoinKeysCommand: rotate makes a current key, list shows it, revoke
// refuses an unknown kid and revokes a known one; bad usage exits 2.
func TestJoinKeysCommand(t *testing.T) {
	dir := t.TempDir()
	cmd := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		rc := run(append([]string{"join-keys", "--data-dir", dir}, args...), &out, &errb)
		return rc, out.String(), errb.String()
	}
	rc, out, _ := cmd("rotate")
	m := regexp.MustCompile(`new signing key (\S+);`).FindStringSubmatch(out)
	if rc != 0 || m == nil {
		t.Fatalf("rotate: %d %q", rc, out)
	}
	if rc, out, _ := cmd("list"); rc != 0 || !strings.Contains(out, m[1]+"\t") || !strings.Contains(out, "current") {
		t.Errorf("list: %d %q", rc, out)
	}
	if rc, _, errs := cmd("revoke", "nope"); rc != 1 || !strings.Contains(errs, "no such join key") {
		t.Errorf("revoke nope: %d %q", rc, errs)
	}
	if rc, out, _ := cmd("revoke", m[1]); rc != 0 || !strings.Contains(out, "revoked "+m[1]) {
		t.Errorf("revoke: %d %q", rc, out)
	}
	if rc, _, _ := cmd("bogus"); rc != 2 {
		t.Errorf("bogus: %d", rc)
	}
	if rc, _, _ := cmd("revoke"); rc != 2 {
		t.Errorf("revoke without a kid: %d", rc)
	}
}
