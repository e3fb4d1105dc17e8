package loadtest_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/parley/parley/internal/loadtest"
	"github.com/parley/parley/internal/servertest"
)

// TestSmallLoad: 2 publishers (audio and video) and 6 subscribers in one
// room for 10 s on loopback: every join succeeds, every receiver gets
// media, and the report carries the server's own usage from /metrics.
// How much is lost and at what bitrate depends on the machine's load:
// BenchmarkLoad measures that, this test does not judge it.
func TestSmallLoad(t *testing.T) {
	s := servertest.Start(t)
	s.SignUp("loader", "Load Tester")
	var lines []string
	rep, err := loadtest.Run(context.Background(), loadtest.Config{
		URL: s.URL, Token: s.Token("loader"),
		Rooms: 1, Publishers: 2, Subscribers: 6, Duration: 10 * time.Second,
		Video: "720p", LoopbackOnly: true,
		Progress: func(l string) { lines = append(lines, l) },
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("report: %+v", *rep)
	if rep.FailedJoins != 0 || rep.Joined != 8 {
		t.Errorf("%d joined, %d failed (%v); want 8 and 0", rep.Joined, rep.FailedJoins, rep.Errors)
	}
	if rep.PacketsRecv == 0 {
		t.Errorf("received no packets (%.2f%% lost)", rep.LossPercent)
	}
	// Each subscriber gets two publishers' video and audio; each
	// publisher the other's.
	if k := rep.RecvKbpsPerReceiver; k.N != 8 || k.P50 <= 0 {
		t.Errorf("received bitrate per receiver %+v, want 8 receivers getting media", k)
	}
	if rep.JoinMs.N != 8 || rep.FirstMediaMs.N != 8 {
		t.Errorf("join times %+v, first media %+v; want 8 measurements of each", rep.JoinMs, rep.FirstMediaMs)
	}
	if u := rep.Server; !u.Available || u.PacketsForwarded == 0 || u.CPUSeconds <= 0 || u.ResidentMB <= 0 {
		t.Errorf("server usage %+v, want CPU, memory and forwarded packets from /metrics", u)
	}
	if len(lines) < 5 || !strings.Contains(lines[len(lines)-1], "joined 8/8") {
		t.Errorf("progress lines: %q", lines)
	}
}

// TestSimulcastLoad: publishers send three simulcast layers; each
// subscriber gets one layer (q until the layer sizes are known from
// keyframes, then h for the default 640×360 tile): at most the h layer's
// ~550 kbit/s with audio, never all three layers' 1.7 Mbit/s. (A loaded
// machine can only lower the rate, so the bound cannot flake;
// BenchmarkLoad reports the rate itself.)
func TestSimulcastLoad(t *testing.T) {
	s := servertest.Start(t)
	s.SignUp("loader", "Load Tester")
	rep, err := loadtest.Run(context.Background(), loadtest.Config{
		URL: s.URL, Token: s.Token("loader"),
		Rooms: 1, Publishers: 1, Subscribers: 3, Duration: 5 * time.Second,
		Video: "720p", Simulcast: true, LoopbackOnly: true,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.FailedJoins != 0 || rep.PacketsRecv == 0 {
		t.Errorf("%d failed joins, %d packets received", rep.FailedJoins, rep.PacketsRecv)
	}
	if k := rep.RecvKbpsPerReceiver; k.N != 3 || k.P50 <= 0 || k.P50 > 700 {
		t.Errorf("received %+v kbit/s per subscriber, want one layer's worth (up to 700)", k)
	}
}

func TestConfigValidation(t *testing.T) {
	err := (&loadtest.Config{URL: "nope", Rooms: 0, Publishers: 0, Subscribers: -1, Duration: 0, Video: "4k", Simulcast: true}).Validate()
	if err == nil {
		t.Fatal("bad config accepted")
	}
	for _, want := range []string{"--url", "--token", "--rooms", "--publishers", "--subscribers", "--duration", "--video", "--simulcast"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("validation error does not mention %s: %v", want, err)
		}
	}
}

// BenchmarkLoad runs the calls of TestSmallLoad ("720p") and
// TestSimulcastLoad ("simulcast") and reports what depends on the
// machine rather than on the code being right: loss, received bitrate per
// receiver, first-media time and the server's CPU. Compare runs on one
// machine (benchstat), e.g. go test -run '^$' -bench Load -benchtime 1x
// ./internal/loadtest. The thresholds the unit tests asserted before
// they moved here, for comparison: under 1% loss; over 1000 kbit/s per
// receiver for 720p; 150 to 700 for simulcast (one layer). A busy shared
// machine falls short of them without anything being wrong.
func BenchmarkLoad(b *testing.B) {
	for _, bc := range []struct {
		name string
		cfg  loadtest.Config
	}{
		{"720p", loadtest.Config{Rooms: 1, Publishers: 2, Subscribers: 6, Duration: 10 * time.Second, Video: "720p"}},
		{"simulcast", loadtest.Config{Rooms: 1, Publishers: 1, Subscribers: 3, Duration: 5 * time.Second, Video: "720p", Simulcast: true}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for range b.N {
				s := servertest.Start(b)
				s.SignUp("loader", "Load Tester")
				cfg := bc.cfg
				cfg.URL, cfg.Token, cfg.LoopbackOnly = s.URL, s.Token("loader"), true
				rep, err := loadtest.Run(context.Background(), cfg, nil)
				if err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(rep.LossPercent, "loss-%")
				b.ReportMetric(rep.RecvKbpsPerReceiver.P50, "kbit/s-p50")
				b.ReportMetric(rep.FirstMediaMs.P95, "first-media-ms-p95")
				b.ReportMetric(rep.Server.CPUSeconds, "server-cpu-s")
				s.Stop()
			}
		})
	}
}

// TestRunRecorders drives the studio load against a real server: every
// recorder's chunks are acknowledged and the report counts them.
func TestRunRecorders(t *testing.T) {
	s := servertest.Start(t)
	s.SignUp("loader", "Loader")
	rep, err := loadtest.RunRecorders(context.Background(), loadtest.RecorderConfig{URL: s.URL, Token: s.Token("loader"), Recorders: 3, Duration: 1200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Failed != 0 || rep.Chunks < 3*4 || rep.AckMs.N != rep.Chunks || !rep.Server.Available {
		t.Errorf("report %+v", rep)
	}
}
