package main

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestServeHelpDocumentsEveryFlag(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"serve", "--help"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d", code)
	}
	help := errb.String()
	for _, want := range []string{"-addr", "PARLEY_ADDR", "-data-dir", "PARLEY_DATA_DIR", "-database", "PARLEY_DATABASE_URL",
		"-tls", "PARLEY_TLS", "-tls-cert", "-tls-key", "-log-format", "PARLEY_LOG_FORMAT", "-ice-server",
		"-turn", "-turn-addr", "-turn-tls-addr", "-turn-public-ip", "-turn-relay-ports", "-turn-secret", "-turn-url",
		"-turn-allow-private", "PARLEY_TURN_SECRET", "-trusted-proxies", "PARLEY_TRUSTED_PROXIES",
		"-max-connections-per-ip", "PARLEY_MAX_CONNECTIONS_PER_IP", "-read-timeout", "PARLEY_READ_TIMEOUT",
		"-webhook-allow-private", "PARLEY_WEBHOOK_ALLOW_PRIVATE", "-webhook-retry-min", "-webhook-retry-max", "-webhook-timeout"} {
		if !strings.Contains(help, want) {
			t.Errorf("--help does not mention %s", want)
		}
	}
}

func TestServeRefusesBadConfig(t *testing.T) {
	var out, errb bytes.Buffer
	code := run([]string{"serve", "--addr", "nonsense", "--log-format", "xml"}, &out, &errb)
	if code != 2 {
		t.Fatalf("exit %d, want 2", code)
	}
	for _, want := range []string{"--addr", "--log-format"} {
		if !strings.Contains(errb.String(), want) {
			t.Errorf("error output does not explain %s: %s", want, errb.String())
		}
	}
	t.Setenv("PARLEY_LOG_FORMAT", "yaml")
	errb.Reset()
	if code := run([]string{"serve"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "yaml") {
		t.Errorf("environment variable not applied: exit %d, %s", code, errb.String())
	}
}

func TestUnknownCommand(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"dance"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "unknown command") {
		t.Errorf("exit %d: %s", code, errb.String())
	}
}

// TestServeProcess builds the real binary, starts it as a user would, checks
// that it serves, and stops it with SIGTERM: it must exit 0 after a clean
// shutdown.
func TestServeProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "parley")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "serve", "--addr", "127.0.0.1:0", "--data-dir", filepath.Join(dir, "data"), "--log-format", "json",
		"--rtc-udp-port", "0", "--rtc-tcp-port", "0", "--turn-addr", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), "PARLEY_TLS=")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })

	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	urlRe := regexp.MustCompile(`"url":"(http://[^"]+)"`)
	var base string
	timeout := time.After(30 * time.Second)
	for base == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("server exited before it was running")
			}
			if m := urlRe.FindStringSubmatch(l); m != nil {
				base = m[1]
			}
		case <-timeout:
			t.Fatal("server did not log its URL within 30s")
		}
	}
	resp, err := http.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || strings.TrimSpace(string(body)) != "ok" {
		t.Fatalf("healthz: %d %q", resp.StatusCode, body)
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "parley.db")); err != nil {
		t.Errorf("no SQLite database in the data dir: %v", err)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	var stopped bool
	for l := range lines {
		if strings.Contains(l, `"msg":"stopped"`) {
			stopped = true
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("exit after SIGTERM: %v", err)
	}
	if !stopped {
		t.Error("no clean-stop log line")
	}
}

// TestServeEnvMatchesFlags: every serve flag is read from the environment
// variable named after it (PARLEY_ and the flag in capitals), so nobody
// has to look the name up; --database keeps the conventional
// PARLEY_DATABASE_URL and PARLEY_REDIS_URL.
func TestServeEnvMatchesFlags(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"serve", "--help"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d", code)
	}
	flagRE := regexp.MustCompile(`(?m)^  -([a-z0-9-]+)`)
	envRE := regexp.MustCompile(`\(env (PARLEY_[A-Z0-9_]+)\)`)
	help := errb.String()
	starts := flagRE.FindAllStringSubmatchIndex(help, -1)
	if len(starts) < 20 {
		t.Fatalf("found %d flags in --help:\n%s", len(starts), help)
	}
	for i, m := range starts {
		name := help[m[2]:m[3]]
		end := len(help)
		if i+1 < len(starts) {
			end = starts[i+1][0]
		}
		env := envRE.FindStringSubmatch(help[m[0]:end])
		if env == nil {
			continue // not bound to the environment (profiling)
		}
		want := "PARLEY_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
		if name == "database" || name == "redis" {
			want = "PARLEY_" + strings.ToUpper(name) + "_URL"
		}
		if env[1] != want {
			t.Errorf("--%s is read from %s, want %s", name, env[1], want)
		}
	}
}

// TestServeRenamedEnvStillWorks: the earlier names PARLEY_ICE_SERVERS and
// PARLEY_TURN_URLS are still applied, with a warning naming the new one.
func TestServeRenamedEnvStillWorks(t *testing.T) {
	for old, renamed := range map[string]string{"PARLEY_ICE_SERVERS": "PARLEY_ICE_SERVER", "PARLEY_TURN_URLS": "PARLEY_TURN_URL"} {
		t.Run(old, func(t *testing.T) {
			t.Setenv(old, "nonsense://x")
			var out, errb bytes.Buffer
			code := run([]string{"serve"}, &out, &errb)
			if code != 2 || !strings.Contains(errb.String(), "nonsense") {
				t.Errorf("%s not applied: exit %d, %s", old, code, errb.String())
			}
			if !strings.Contains(errb.String(), old+" is deprecated; rename it "+renamed) {
				t.Errorf("no deprecation warning for %s: %s", old, errb.String())
			}
		})
	}
}
func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"1048576": 1 << 20, "500MiB": 500 << 20, "2GiB": 2 << 30, "2 GB": 2e9, "10KB": 10e3, "7B": 7} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "lots", "-1MiB", "1.5GiB", "99999999999TiB"} {
		if _, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) accepted", in)
		}
	}
}
