package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/parley/parley/internal/client"
	"github.com/parley/parley/internal/record"
	"github.com/parley/parley/internal/signaling"
	"github.com/parley/parley/internal/source"
)

const joinUsage = `Usage: parley join https://HOST/c/CHANNEL [flags]

Joins a channel's call as a native participant: publishes Opus from an Ogg
file (looped) or stream (--send-audio -), VP8 from an IVF file, records what
it receives, prints a status line each second and a summary at the end.
Ctrl-C leaves cleanly and closes the recordings so they play.

A microphone, through ffmpeg:
  ffmpeg -f alsa -i default -c:a libopus -page_duration 20000 -f ogg - | parley join URL --send-audio -

Flags:
`

func join(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("parley join", flag.ContinueOnError)
	fs.SetOutput(stderr)
	f := &envFlags{fs: fs, envs: map[string]string{}}
	var cfg client.Config
	var sendAudio, sendVideo, recordDir string
	var duration time.Duration
	f.string(&cfg.Token, "token", "PARLEY_TOKEN", "personal access token (make one on the account page)")
	f.string(&cfg.Username, "user", "PARLEY_USER", "username, to log in with a password instead of a token")
	f.string(&cfg.Password, "password", "PARLEY_PASSWORD", "password for --user")
	fs.StringVar(&sendAudio, "send-audio", "", "Opus in Ogg to publish: a file (looped) or - for stdin")
	fs.StringVar(&sendVideo, "send-video", "", "VP8 in IVF to publish (looped)")
	fs.StringVar(&recordDir, "record", "", "directory to record every received track into (Ogg for audio, IVF for video)")
	fs.DurationVar(&duration, "duration", 0, "leave after this long (0 = until Ctrl-C)")
	fs.BoolVar(&cfg.InsecureTLS, "insecure", false, "accept any TLS certificate (a self-signed LAN server)")
	fs.BoolVar(&cfg.LoopbackOnly, "loopback", false, "loopback ICE candidates only (server on this machine; tests)")
	fs.Usage = func() {
		fmt.Fprint(stderr, joinUsage)
		fs.PrintDefaults()
	}
	// The URL may come before the flags, as in the usage line.
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cfg.URL, args = args[0], args[1:]
	}
	if err := f.parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if cfg.URL == "" && fs.NArg() == 1 {
		cfg.URL = fs.Arg(0)
	} else if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "parley join: unexpected arguments %q\n", fs.Args())
		return 2
	}
	var problems []string
	if cfg.URL == "" {
		problems = append(problems, "give the channel's URL, like https://meet.example.org/c/CHANNEL")
	}
	if cfg.Token == "" && (cfg.Username == "" || cfg.Password == "") {
		problems = append(problems, "give --token (make one on the account page), or --user and --password")
	}
	if duration < 0 {
		problems = append(problems, "--duration must not be negative")
	}
	var err error
	if sendAudio == "-" {
		if cfg.Audio, err = source.OggStream(stdin); err != nil {
			problems = append(problems, fmt.Sprintf("--send-audio -: %v", err))
		}
	} else if sendAudio != "" {
		if cfg.Audio, err = source.OpenOgg(sendAudio, true); err != nil {
			problems = append(problems, fmt.Sprintf("--send-audio: %v", err))
		}
	}
	if sendVideo != "" {
		if cfg.Video, err = source.OpenIVF(sendVideo, true); err != nil {
			problems = append(problems, fmt.Sprintf("--send-video: %v", err))
		}
	}
	var rec *recordings
	if recordDir != "" {
		if rec, err = newRecordings(recordDir, slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))); err != nil {
			problems = append(problems, fmt.Sprintf("--record: %v", err))
		}
	}
	if len(problems) > 0 {
		fmt.Fprintf(stderr, "parley join:\n  %s\n", strings.Join(problems, "\n  "))
		return 2
	}

	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	cfg.OnEvent = func(e string) { fmt.Fprintf(stderr, "\r\033[K%s\n", e) }
	if rec != nil {
		cfg.OnTrack = rec.track
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, duration)
		defer cancel()
	}
	dctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	c, err := client.Dial(dctx, cfg, log)
	cancel()
	if err != nil {
		fmt.Fprintf(stderr, "parley join: %v\n", err)
		return 1
	}
	fmt.Fprintf(stderr, "connected as %s\n", c.User().Name)
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var last client.Stats
	var runErr error
loop:
	for {
		select {
		case runErr = <-done:
			break loop
		case <-tick.C:
			st := c.Stats()
			fmt.Fprintf(stderr, "\r\033[K%s", statusLine(st, last, time.Second))
			last = st
		}
	}
	fmt.Fprint(stderr, "\r\033[K")
	files := rec.close()
	st := c.Stats()
	fmt.Fprintf(stdout, "in the call %s: sent %d packets (%s), received %d packets (%s), lost %d\n",
		time.Since(start).Round(time.Second), st.PacketsSent, bytesText(st.BytesSent), st.PacketsRecv, bytesText(st.BytesRecv), st.PacketsLost)
	for _, f := range files {
		fmt.Fprintf(stdout, "recorded %s\n", f)
	}
	if runErr != nil {
		fmt.Fprintf(stderr, "parley join: %v\n", runErr)
		return 1
	}
	return 0
}

// statusLine is the live line: connections, bitrates in and out over the
// last interval, loss so far.
func statusLine(st, last client.Stats, every time.Duration) string {
	kbps := func(now, before uint64) float64 { return float64(now-before) * 8 / 1000 / every.Seconds() }
	loss := 0.0
	if total := float64(st.PacketsRecv) + float64(st.PacketsLost); total > 0 {
		loss = 100 * float64(st.PacketsLost) / total
	}
	return fmt.Sprintf("connections %d/%d  out %.0f kbit/s  in %.0f kbit/s  loss %.1f%%",
		st.Connected, st.Connections, kbps(st.BytesSent, last.BytesSent), kbps(st.BytesRecv, last.BytesRecv), loss)
}

func bytesText(n uint64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// recordings writes every received track into its own file.
type recordings struct {
	dir string
	log *slog.Logger
	mu  sync.Mutex
	all []*record.Recorder
}

func newRecordings(dir string, log *slog.Logger) (*recordings, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	return &recordings{dir: dir, log: log}, nil
}

// track records one remote track until it ends (client.Config.OnTrack).
func (r *recordings) track(rt client.Remote) {
	name := rt.Name
	if name == "" {
		name = rt.Participant
	}
	if rt.Source == signaling.SourceScreen {
		name += "-screen"
	}
	rec, err := record.Start(record.Config{Dir: r.dir, Participant: name}, rt.Track, r.log)
	if err != nil {
		r.log.Warn("not recording a track", "participant", name, "err", err)
		drain(rt.Track)
		return
	}
	r.mu.Lock()
	r.all = append(r.all, rec)
	r.mu.Unlock()
}

// close finalizes every file and describes each: path, codec kind and how
// long media flowed.
func (r *recordings) close() []string {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, rec := range r.all {
		if err := rec.Close(); err != nil {
			r.log.Warn("recording", "file", rec.Path(), "err", err)
		}
		st := rec.Stats()
		out = append(out, fmt.Sprintf("%s (%.2f s, %d packets)", rec.Path(), st.Duration().Seconds(), st.Packets))
	}
	return out
}

func drain(tr *webrtc.TrackRemote) {
	buf := make([]byte, 1500)
	for {
		if _, _, err := tr.Read(buf); err != nil {
			return
		}
	}
}
