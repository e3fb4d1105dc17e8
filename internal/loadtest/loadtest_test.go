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
// room for 10 s on loopback: every join succeeds, loss stays under 1%,
// and the report carries the server's own usage from /metrics.
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
	if rep.PacketsRecv == 0 || rep.LossPercent >= 1 {
		t.Errorf("received %d packets with %.2f%% loss; want packets and under 1%% loss", rep.PacketsRecv, rep.LossPercent)
	}
	// Each subscriber gets two publishers' ~1 Mbit/s video and audio;
	// each publisher the other's.
	if rep.RecvKbpsPerReceiver.N != 8 || rep.RecvKbpsPerReceiver.P50 < 1000 {
		t.Errorf("received bitrate per receiver %+v, want 8 receivers at over 1000 kbit/s", rep.RecvKbpsPerReceiver)
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
// keyframes, then h for the default 640×360 tile): between the q layer's
// ~200 kbit/s with audio and the h layer's ~550, never all three layers'
// 1.7 Mbit/s.
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
	if rep.FailedJoins != 0 || rep.LossPercent >= 1 {
		t.Errorf("%d failed joins, %.2f%% loss", rep.FailedJoins, rep.LossPercent)
	}
	if k := rep.RecvKbpsPerReceiver; k.N != 3 || k.P50 < 150 || k.P50 > 700 {
		t.Errorf("received %+v kbit/s per subscriber, want one layer's worth (150 to 700)", k)
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
