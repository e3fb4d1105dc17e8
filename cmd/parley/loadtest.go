package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/parley/parley/internal/loadtest"
)

func loadTest(args []string, stdout, stderr io.Writer) int {
	cfg := loadtest.Config{Rooms: 1, Publishers: 1, Subscribers: 10, Duration: 30 * time.Second, Video: "720p"}
	fs := flag.NewFlagSet("parley loadtest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	f := &envFlags{fs: fs, envs: map[string]string{}}
	f.string(&cfg.URL, "url", "PARLEY_URL", "the server, e.g. https://meet.example.org")
	f.string(&cfg.Token, "token", "PARLEY_TOKEN", "a personal access token (account page); its user owns the test channels")
	f.int(&cfg.Rooms, "rooms", "PARLEY_LOADTEST_ROOMS", "rooms (channels pinned to the SFU) to make")
	f.int(&cfg.Publishers, "publishers", "PARLEY_LOADTEST_PUBLISHERS", "publishers per room (generated audio, and video unless --video none)")
	f.int(&cfg.Subscribers, "subscribers", "PARLEY_LOADTEST_SUBSCRIBERS", "subscribers per room (receive only)")
	f.duration(&cfg.Duration, "duration", "PARLEY_LOADTEST_DURATION", "how long to measure once everyone joined")
	f.string(&cfg.Video, "video", "PARLEY_LOADTEST_VIDEO", "publishers' video: 720p (about 1 Mbit/s) or none")
	f.duration(&cfg.JoinSpacing, "join-spacing", "PARLEY_LOADTEST_JOIN_SPACING", "pause between two joins")
	fs.BoolVar(&cfg.Simulcast, "simulcast", false, "send video as three simulcast layers (q 320×180, h 640×360, f 1280×720), as browsers do")
	fs.BoolVar(&cfg.InsecureTLS, "insecure", false, "accept any TLS certificate (self-signed servers)")
	fs.BoolVar(&cfg.LoopbackOnly, "loopback", false, "use loopback ICE candidates only (server on this machine)")
	fs.Var((*urlList)(&cfg.Metrics), "metrics", "a node's address (or /metrics URL) to read its CPU, memory and calls from directly; repeat it (or separate with commas) for each node of a cluster, since the load balancer at --url hands /metrics to any one node (env PARLEY_LOADTEST_METRICS)")
	f.envs["metrics"] = "PARLEY_LOADTEST_METRICS"
	recorders := 0
	f.int(&recorders, "recorders", "PARLEY_LOADTEST_RECORDERS", "studio load instead of a call: this many members recording takes at once in one channel (chunks of 4 kB every 250 ms)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: parley loadtest --url URL --token TOKEN [flags]\n\nJoins synthetic publishers and subscribers and reports join and first-media\ntimes, loss, jitter, bitrates and the server's CPU and memory (from /metrics;\nwith --metrics, each node's own: CPU, memory and calls per node).\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := f.parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	if recorders > 0 {
		return recorderLoad(loadtest.RecorderConfig{URL: cfg.URL, Token: cfg.Token, Recorders: recorders, Duration: cfg.Duration, InsecureTLS: cfg.InsecureTLS}, *asJSON, stdout, stderr)
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(stderr, "parley loadtest:\n%v\n", err)
		return 2
	}
	cfg.Progress = func(line string) { fmt.Fprintln(stderr, line) }
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	rep, err := loadtest.Run(ctx, cfg, log)
	if err != nil {
		fmt.Fprintf(stderr, "parley loadtest: %v\n", err)
		return 1
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(rep)
	} else {
		printReport(stdout, rep)
	}
	if rep.FailedJoins > 0 {
		return 1
	}
	return 0
}

func printReport(w io.Writer, r *loadtest.Report) {
	fmt.Fprintf(w, "rooms %d × (%d publishers + %d subscribers): %d joined, %d failed\n",
		r.Rooms, r.Publishers, r.Subscribers, r.Joined, r.FailedJoins)
	for _, e := range r.Errors {
		fmt.Fprintf(w, "  error: %s\n", e)
	}
	p := func(name string, x loadtest.Percentiles, unit string) {
		fmt.Fprintf(w, "%-28s p50 %8.1f  p95 %8.1f  p99 %8.1f %s (n=%d)\n", name, x.P50, x.P95, x.P99, unit, x.N)
	}
	p("join", r.JoinMs, "ms")
	p("join to first media", r.FirstMediaMs, "ms")
	p("received per receiver", r.RecvKbpsPerReceiver, "kbit/s")
	fmt.Fprintf(w, "packets received %d, lost %d (%.3f%%), NACKs %d, max jitter %.1f ms\n",
		r.PacketsRecv, r.PacketsLost, r.LossPercent, r.NACKs, r.JitterMsMax)
	fmt.Fprintf(w, "media: %d of %d receivers got every publisher of their room\n", r.ReceiversComplete, r.Receivers)
	name := "server"
	if len(r.Nodes) > 0 {
		name = fmt.Sprintf("all %d nodes", len(r.Nodes))
	}
	if u := r.Server; u.Available {
		fmt.Fprintf(w, "%s: %.2f CPU seconds (%.0f%% of a core) for %.0f forwarded packets = %.2f µs per packet; resident %.1f MB (%.1f MB before, %.0f kB per participant)\n",
			name, u.CPUSeconds, u.CPUPercent, u.PacketsForwarded, u.MicrosPerForwarded, u.ResidentMB, u.ResidentMBAtStart, u.ResidentKBPerPart)
	} else {
		fmt.Fprintf(w, "%s: /metrics not reachable, no CPU or memory figures\n", name)
	}
	for _, n := range r.Nodes {
		id := n.NodeID
		if id == "" {
			id = "(not a cluster node)"
		}
		if !n.Available {
			fmt.Fprintf(w, "  node %s %s: %s\n", id, n.Metrics, n.Error)
			continue
		}
		fmt.Fprintf(w, "  node %s %s: %.0f calls, %.0f participants; %.2f CPU seconds (%.0f%% of a core) for %.0f forwarded packets = %.2f µs per packet; resident %.1f MB (%.1f MB before)\n",
			id, n.Metrics, n.Calls, n.Participants, n.CPUSeconds, n.CPUPercent, n.PacketsForwarded, n.MicrosPerForwarded, n.ResidentMB, n.ResidentMBAtStart)
	}
}

// urlList is a repeatable flag whose values may also be comma-separated.
type urlList []string

func (l *urlList) String() string { return strings.Join(*l, ",") }

func (l *urlList) Set(v string) error {
	for _, u := range strings.Split(v, ",") {
		if u = strings.TrimSpace(u); u != "" {
			*l = append(*l, u)
		}
	}
	return nil
}

// recorderLoad runs `parley loadtest --recorders N`: studio uploads.
func recorderLoad(cfg loadtest.RecorderConfig, asJSON bool, stdout, stderr io.Writer) int {
	if cfg.URL == "" || cfg.Token == "" {
		fmt.Fprintln(stderr, "parley loadtest: --url and --token are needed")
		return 2
	}
	cfg.Progress = func(line string) { fmt.Fprintln(stderr, line) }
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := loadtest.RunRecorders(ctx, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "parley loadtest: %v\n", err)
		return 1
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(rep)
	} else {
		fmt.Fprintf(stdout, "%d recorders for %.0f s: %d chunks (%.1f MB) acknowledged, %d failed\n", rep.Recorders, rep.WallSeconds, rep.Chunks, rep.MegaBytes, rep.Failed)
		for _, e := range rep.Errors {
			fmt.Fprintf(stdout, "  error: %s\n", e)
		}
		fmt.Fprintf(stdout, "chunk acknowledgement        p50 %8.1f  p95 %8.1f  p99 %8.1f ms (n=%d)\n", rep.AckMs.P50, rep.AckMs.P95, rep.AckMs.P99, rep.AckMs.N)
		if u := rep.Server; u.Available {
			fmt.Fprintf(stdout, "server: %.2f CPU seconds (%.1f%% of one core); resident %.1f MB (%.1f MB before)\n",
				u.CPUSeconds, 100*u.CPUSeconds/rep.WallSeconds, u.ResidentMB, u.ResidentMBAtStart)
		} else {
			fmt.Fprintln(stdout, "server: /metrics not reachable, no CPU or memory figures")
		}
	}
	if rep.Failed > 0 {
		return 1
	}
	return 0
}
