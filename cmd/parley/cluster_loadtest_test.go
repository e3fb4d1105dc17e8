package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/parley/parley/internal/loadtest"
)

// TestClusterLoadtest runs `parley loadtest` (the binary) through a
// round-robin proxy in front of two nodes, reading each node's /metrics
// directly (--metrics): the calls are spread over both nodes (a call's
// lease goes to the node its first socket lands on), every participant
// gets media from every other one in its call, and each node's CPU and
// calls are reported.
//
// PARLEY_CLUSTER_LOADTEST_ARGS replaces the load (default: 4 calls of 3
// publishers, audio only, 8 s), and PARLEY_CLUSTER_LOADTEST_ONE_NODE=1
// first runs the same load through a proxy to the first node alone, for
// the comparison in docs/performance.md.
func TestClusterLoadtest(t *testing.T) {
	bin, dsn, redisURL, prefix := clusterSetup(t, "runs two servers and a load")
	n1 := startNode(t, bin, "n1", dsn, redisURL, prefix, "--max-connections-per-user", "100000")
	n2 := startNode(t, bin, "n2", dsn, redisURL, prefix, "--max-connections-per-user", "100000")
	lb := startProxy(t, n1.addr, n2.addr)
	web := &parleyProcess{t: t, base: lb.url()}
	token := makeToken(t, web, web.signUp("loader"))

	load := []string{"--rooms", "4", "--publishers", "3", "--subscribers", "0", "--video", "none", "--duration", "8s"}
	if a := os.Getenv("PARLEY_CLUSTER_LOADTEST_ARGS"); a != "" {
		load = strings.Fields(a)
	}
	if os.Getenv("PARLEY_CLUSTER_LOADTEST_ONE_NODE") == "1" {
		one := startProxy(t, n1.addr)
		rep := runLoadtest(t, bin, one.url(), token, load, n1, n2)
		logNodes(t, "one node (n1 alone behind the proxy; n2 idle)", rep)
	}
	rep := runLoadtest(t, bin, lb.url(), token, load, n1, n2)
	logNodes(t, "two nodes behind the round-robin proxy", rep)

	parts := rep.Rooms * (rep.Publishers + rep.Subscribers)
	if rep.Joined != parts || rep.FailedJoins != 0 {
		t.Errorf("%d of %d joined, %d failed: %v", rep.Joined, parts, rep.FailedJoins, rep.Errors)
	}
	if rep.Receivers == 0 || rep.ReceiversComplete != rep.Receivers {
		t.Errorf("%d of %d receivers got media from every publisher of their call", rep.ReceiversComplete, rep.Receivers)
	}
	if len(rep.Nodes) != 2 {
		t.Fatalf("report has %d nodes, want 2: %+v", len(rep.Nodes), rep.Nodes)
	}
	calls := 0.0
	for i, n := range rep.Nodes {
		want := []string{"n1", "n2"}[i]
		if !n.Available || n.NodeID != want {
			t.Errorf("node %d: %+v; want %s's figures", i+1, n, want)
			continue
		}
		if n.Calls < 1 {
			t.Errorf("node %s ran %v calls; the proxy should spread calls over both nodes", n.NodeID, n.Calls)
		}
		if n.CPUSeconds <= 0 || n.ResidentMB <= 0 || n.PacketsForwarded <= 0 {
			t.Errorf("node %s: CPU %.2f s, resident %.1f MB, %v packets forwarded; want each measured", n.NodeID, n.CPUSeconds, n.ResidentMB, n.PacketsForwarded)
		}
		calls += n.Calls
	}
	if int(calls) != rep.Rooms {
		t.Errorf("the nodes ran %v calls between them, want %d", calls, rep.Rooms)
	}
	if !rep.Server.Available || rep.Server.CPUSeconds <= 0 {
		t.Errorf("summed server usage %+v", rep.Server)
	}
}

// makeToken makes a personal access token through the account page.
func makeToken(t *testing.T, p *parleyProcess, session string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, p.base+"/account/tokens", strings.NewReader(url.Values{"name": {"loadtest"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", p.base)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	req.Header.Set("Cookie", "parley_session="+session)
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := regexp.MustCompile(`<code id="new-token" class="token">(parley_[A-Za-z0-9_-]+)</code>`).FindSubmatch(body)
	if m == nil {
		t.Fatalf("no token on the account page (status %d)", resp.StatusCode)
	}
	return string(m[1])
}

// runLoadtest runs `parley loadtest --json` against base with the nodes'
// /metrics read directly, and returns its report.
func runLoadtest(t *testing.T, bin, base, token string, load []string, nodes ...*clusterNode) *loadtest.Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	args := append([]string{"loadtest", "--url", base, "--token", token, "--loopback", "--json"}, load...)
	for _, n := range nodes {
		args = append(args, "--metrics", n.base)
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	err := cmd.Run()
	t.Logf("parley loadtest --url %s %s --metrics …: exit %v, took %v", base, strings.Join(load, " "), err, time.Since(start).Round(time.Millisecond))
	var rep loadtest.Report
	if jerr := json.Unmarshal(out.Bytes(), &rep); jerr != nil {
		t.Fatalf("parley loadtest: %v, report %v:\nstdout: %s\nstderr: %s", err, jerr, out.String(), errb.String())
	}
	if err != nil {
		t.Errorf("parley loadtest: %v\nstderr: %s", err, errb.String())
	}
	return &rep
}

func logNodes(t *testing.T, what string, r *loadtest.Report) {
	t.Helper()
	t.Logf("%s: %d calls × (%d publishers + %d subscribers), %d joined; %d/%d receivers got every publisher; loss %.3f%%; received p50 %.0f kbit/s; measured %.1f s",
		what, r.Rooms, r.Publishers, r.Subscribers, r.Joined, r.ReceiversComplete, r.Receivers, r.LossPercent, r.RecvKbpsPerReceiver.P50, r.MeasuredSeconds)
	u := r.Server
	t.Logf("  all nodes: %.2f CPU s (%.1f%% of a core), %.0f packets forwarded, %.2f µs per packet", u.CPUSeconds, u.CPUPercent, u.PacketsForwarded, u.MicrosPerForwarded)
	for _, n := range r.Nodes {
		t.Logf("  node %s: %.0f calls, %.0f participants; %.2f CPU s (%.1f%% of a core), %.0f packets forwarded, %.2f µs per packet; resident %.1f MB",
			n.NodeID, n.Calls, n.Participants, n.CPUSeconds, n.CPUPercent, n.PacketsForwarded, n.MicrosPerForwarded, n.ResidentMB)
	}
}
