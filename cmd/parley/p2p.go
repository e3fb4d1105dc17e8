package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/parley/parley/internal/p2p"
)

const p2pUsage = `Usage:
  parley p2p listen [--addr :7000] [flags]   wait for one peer
  parley p2p dial HOST:7000 [flags]          call a listening peer

Two copies of Parley talk directly, with no server: the TCP connection to
--addr carries the call setup, then audio flows peer to peer over UDP. Each
side sends --send-audio and records what it receives into --record. A
status line is printed every second; Ctrl-C or --duration hangs up and
closes the recordings so they play.

A microphone, through ffmpeg:
  ffmpeg -f alsa -i default -c:a libopus -page_duration 20000 -f ogg - | parley p2p dial HOST:7000 --send-audio -

Flags:
`

func p2pCmd(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, p2pUsage)
		newP2PFlags(stderr, &p2p.Config{}, new(string)).PrintDefaults()
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	mode, args := args[0], args[1:]
	if mode != "listen" && mode != "dial" {
		fmt.Fprintf(stderr, "parley p2p: unknown mode %q: use listen or dial\n\n%s", mode, p2pUsage)
		return 2
	}
	cfg := p2p.Config{Stdin: stdin, Status: stderr}
	var addr string
	fs := newP2PFlags(stderr, &cfg, &addr)
	fs.Usage = func() {
		fmt.Fprint(stderr, p2pUsage)
		fs.PrintDefaults()
	}
	positional, err := parseInterspersed(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	addrSet := false
	fs.Visit(func(f *flag.Flag) { addrSet = addrSet || f.Name == "addr" })
	var problems []string
	switch {
	case mode == "listen" && len(positional) > 0:
		problems = append(problems, fmt.Sprintf("listen takes no address argument (got %q); use --addr to choose where to listen", positional))
	case mode == "listen":
		if _, port, err := net.SplitHostPort(addr); err != nil || port == "" {
			problems = append(problems, fmt.Sprintf("--addr %q is not [HOST]:PORT, like :7000", addr))
		}
		cfg.Listen = addr
	case len(positional) != 1:
		problems = append(problems, "dial needs the listening peer's address, like: parley p2p dial 192.168.1.20:7000")
	default:
		if host, port, err := net.SplitHostPort(positional[0]); err != nil || host == "" || port == "" {
			problems = append(problems, fmt.Sprintf("%q is not HOST:PORT, like 192.168.1.20:7000", positional[0]))
		}
		if addrSet {
			problems = append(problems, "--addr is for listen; dial takes the peer's HOST:PORT")
		}
		cfg.Dial = positional[0]
	}
	if cfg.Duration < 0 {
		problems = append(problems, fmt.Sprintf("--duration %v must not be negative", cfg.Duration))
	}
	if len(problems) > 0 {
		fmt.Fprintf(stderr, "parley p2p %s:\n  %s\n", mode, strings.Join(problems, "\n  "))
		return 2
	}

	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	peer, err := p2p.New(cfg, log)
	if err != nil {
		fmt.Fprintf(stderr, "parley p2p %s: %v\n", mode, err)
		return 1
	}
	if peer.Addr() != nil && !cfg.Loopback {
		fmt.Fprintf(stderr, "waiting for a peer; on the other machine run: parley p2p dial %s\n", dialHint(peer.Addr()))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if _, err := peer.Run(ctx); err != nil {
		return 1 // Run has told the user why, on stderr
	}
	return 0
}

func newP2PFlags(stderr io.Writer, cfg *p2p.Config, addr *string) *flag.FlagSet {
	fs := flag.NewFlagSet("parley p2p", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(addr, "addr", ":7000", "listen: TCP address to wait on for the peer")
	fs.StringVar(&cfg.SendAudio, "send-audio", "", "Opus in Ogg to send: a file (looped), or - for a stream on stdin")
	fs.StringVar(&cfg.RecordDir, "record", "", "directory to record what the peer sends into (made if missing)")
	fs.DurationVar(&cfg.Duration, "duration", 0, "hang up this long after connecting (0 = until Ctrl-C or the peer hangs up)")
	fs.BoolVar(&cfg.Loopback, "loopback", false, "loopback addresses only: for tests and two copies on one machine")
	return fs
}

// parseInterspersed parses flags before and after positional arguments
// (the flag package stops at the first one), returning the positionals.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return positional, nil
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// dialHint names this machine by an address the peer can dial: the first
// non-loopback address of an interface that is up, when listening on all.
func dialHint(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsUnspecified() {
		return a.String()
	}
	host = "THIS-MACHINE-IP"
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, ad := range addrs {
			if ipn, ok := ad.(*net.IPNet); ok && ipn.IP.To4() != nil && !ipn.IP.IsLoopback() && !ipn.IP.IsLinkLocalUnicast() {
				host = ipn.IP.String()
				break
			}
		}
	}
	return net.JoinHostPort(host, port)
}
