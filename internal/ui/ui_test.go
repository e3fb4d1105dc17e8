package ui

import (
	"bufio"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestJavaScriptHelpers runs the node tests of the call page's modules
// (jstest/: pure helpers, the lifecycle state machine, the mesh ↔ SFU
// switch against fake peers, the message types against docs/protocol.md);
// the browser tests in internal/e2e cover the rest.
func TestJavaScriptHelpers(t *testing.T) {
	node := need(t, "node", "Install Node.js (apt-get install nodejs).")
	out, err := exec.Command(node, "--test", "jstest/").CombinedOutput()
	if err != nil {
		t.Fatalf("node --test: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}

// TestJavaScriptChecks type-checks the call page's modules (tsc --noEmit
// with jsconfig.json: every module is // @ts-check) and lints them
// (eslint), with the versions pinned in _check/package-lock.json. It needs
// `npm ci` in internal/ui/_check first (.ci/run does it).
func TestJavaScriptChecks(t *testing.T) {
	need(t, "node", "Install Node.js (apt-get install nodejs).")
	bin := filepath.Join("_check", "node_modules", ".bin")
	if _, err := os.Stat(bin); err != nil {
		skipOrFail(t, "*** internal/ui/_check/node_modules missing: tsc and eslint NOT RUN. Run `npm ci` in internal/ui/_check (.ci/run does). ***")
	}
	for _, c := range [][]string{
		{filepath.Join(bin, "tsc"), "--noEmit", "-p", "jsconfig.json"},
		{filepath.Join(bin, "eslint"), "-c", filepath.Join("_check", "eslint.config.js"), "--max-warnings", "0", "."},
	} {
		out, err := exec.Command(c[0], c[1:]...).CombinedOutput()
		if err != nil {
			t.Errorf("%s: %v\n%s", strings.Join(c, " "), err, out)
		}
	}
}

// TestModulesAreChecked keeps every module of the page under the type
// checker (a module without // @ts-check would only be checked because of
// jsconfig.json's checkJs, and an editor without it would not) and every
// import embedded, so a module split cannot leave a file unserved.
func TestModulesAreChecked(t *testing.T) {
	imp := regexp.MustCompile(`(?m)^(?:import|export) [^"]*"(\.{1,2}/[a-z/]+\.js)";`)
	err := fs.WalkDir(Static(), ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(name, ".js") {
			return err
		}
		b, err := fs.ReadFile(Static(), name)
		if err != nil {
			return err
		}
		if first, _, _ := strings.Cut(string(b), "\n"); first != "// @ts-check" {
			t.Errorf("static/%s: first line is %q, want // @ts-check", name, first)
		}
		if n := lines(string(b)); n > 550 {
			t.Errorf("static/%s has %d lines: split it (modules of a few hundred lines, one job each)", name, n)
		}
		for _, m := range imp.FindAllStringSubmatch(string(b), -1) {
			if _, err := fs.Stat(Static(), path.Join(path.Dir(name), m[1])); err != nil {
				t.Errorf("static/%s imports %s, which is not embedded: %v", name, m[1], err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestEmbeddedAssets checks that what the pages load is in the binary.
func TestEmbeddedAssets(t *testing.T) {
	for _, name := range []string{"app.css", "call.js", "manage.js", "notices.js", "signaling.js", "peer.js", "media.js", "chat.js", "ui.js", "status.js",
		"studio/main.js", "studio/api.js", "studio/uploader.js", "studio/recorder.js", "studio/player.js", "studio/render.js", "studio/mixdown.js", "studio/waveform.js", "studio/live.js", "studio/dom.js", "studio/studio.css"} {
		if _, err := fs.Stat(Static(), name); err != nil {
			t.Errorf("static/%s not embedded: %v", name, err)
		}
	}
	for _, name := range []string{"layout.html", "channel.html", "error.html", "studio.html"} {
		if _, err := fs.Stat(Templates(), name); err != nil {
			t.Errorf("templates/%s not embedded: %v", name, err)
		}
	}
}

// need returns the path of a command, or skips (fails under
// PARLEY_REQUIRE_ALL=1) when it is not installed.
func need(t *testing.T, cmd, install string) string {
	t.Helper()
	p, err := exec.LookPath(cmd)
	if err != nil {
		skipOrFail(t, "*** "+cmd+" not found: JavaScript tests NOT RUN. "+install+" ***")
	}
	return p
}

func skipOrFail(t *testing.T, msg string) {
	t.Helper()
	if os.Getenv("PARLEY_REQUIRE_ALL") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

func lines(s string) int {
	n := 0
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		n++
	}
	return n
}
