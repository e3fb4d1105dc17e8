package ui

import (
	"io/fs"
	"os"
	"os/exec"
	"testing"
)

// TestJavaScriptHelpers runs the node tests of the call page's pure
// helpers (the browser tests in internal/e2e cover the rest).
func TestJavaScriptHelpers(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		msg := "*** node not found: JavaScript unit tests NOT RUN. Install Node.js (apt-get install nodejs). ***"
		if os.Getenv("PARLEY_REQUIRE_ALL") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	out, err := exec.Command(node, "--test", "jstest/").CombinedOutput()
	if err != nil {
		t.Fatalf("node --test: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}

// TestEmbeddedAssets checks that what the pages load is in the binary.
func TestEmbeddedAssets(t *testing.T) {
	for _, name := range []string{"app.css", "call.js", "signaling.js", "peer.js", "media.js", "chat.js", "ui.js", "status.js",
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
