package e2e_test

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// TestSixPersonCall is the soak check behind docs/performance.md: six
// browsers on this machine in one SFU call, each page's frame rate for
// every remote video measured over ten seconds. Six Chromiums encoding and
// decoding video take the whole machine for a minute, so the test runs
// only when asked: PARLEY_E2E_LARGE=1 (or a number of people, 2 to 6).
func TestSixPersonCall(t *testing.T) {
	if os.Getenv("PARLEY_E2E_LARGE") == "" {
		t.Skip("set PARLEY_E2E_LARGE=1 to run the six-browser call (about a minute of both cores)")
	}
	names := []string{"Ada", "Bob", "Cyd", "Dan", "Eve", "Fay"}
	if n, err := strconv.Atoi(os.Getenv("PARLEY_E2E_LARGE")); err == nil && n >= 2 && n <= len(names) {
		names = names[:n] // PARLEY_E2E_LARGE=3: a smaller call, for comparison
	}
	c := startCall(t, names...)
	// Everyone's tiles fill the window (TestCallRoom checks 2 and 3).
	for _, u := range c.users {
		u.checkRoom(t, fmt.Sprintf("%d people", len(names)), len(names))
	}
	const window = 10 * time.Second
	base := make([]map[string]int, len(c.users))
	for i, u := range c.users {
		base[i] = eval[map[string]int](u, remoteFrames)
	}
	cpu0 := processCPU(t)
	start := time.Now()
	time.Sleep(window) // a measurement window, not a wait for an event
	elapsed := time.Since(start).Seconds()
	serverCPU := (processCPU(t) - cpu0).Seconds() / elapsed
	var all []float64
	for i, u := range c.users {
		now := eval[map[string]int](u, remoteFrames)
		for _, id := range c.others(i) {
			fps := float64(now[id]-base[i][id]) / elapsed
			all = append(all, fps)
			if fps < 5 {
				t.Errorf("%s: video from %s at %.1f frames/s over %v, want at least 5", u.name, id, fps, window)
			}
		}
	}
	slices.Sort(all)
	t.Logf("remote video frame rates over %v, %d streams: min %.1f, median %.1f, max %.1f frames/s; server (this process) %.0f%% of one core",
		window, len(all), all[0], all[len(all)/2], all[len(all)-1], 100*serverCPU)
}

// processCPU is the user and system CPU time this process (the server,
// plus the test's chromedp client) has used.
func processCPU(t *testing.T) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
