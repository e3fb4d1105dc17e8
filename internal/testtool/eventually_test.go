package testtool_test

import (
	"fmt"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/parley/parley/internal/testtool"
)

// TestEventuallyWaits: Eventually returns once another goroutine makes
// the condition true, without waiting out the timeout.
func TestEventuallyWaits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var done atomic.Bool
		go func() {
			time.Sleep(time.Second)
			done.Store(true)
		}()
		start := time.Now()
		testtool.Eventually(t, time.Minute, done.Load, "the flag")
		if d := time.Since(start); d < time.Second || d > time.Second+50*time.Millisecond {
			t.Errorf("returned after %v, want just after 1s", d)
		}
	})
}

// fatalRecorder records Fatalf instead of ending the test.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (f *fatalRecorder) Helper() {}
func (f *fatalRecorder) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	panic(f)
}

// TestEventuallyTimesOut: a condition that never holds fails the test
// after the timeout, naming what was awaited.
func TestEventuallyTimesOut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &fatalRecorder{TB: t}
		start := time.Now()
		func() {
			defer func() {
				if r := recover(); r != rec {
					t.Fatalf("Eventually did not fail: %v", r)
				}
			}()
			testtool.Eventually(rec, 3*time.Second, func() bool { return false }, "the answer")
		}()
		if d := time.Since(start); d < 3*time.Second {
			t.Errorf("gave up after %v, before the 3s timeout", d)
		}
		if want := "timed out after 3s waiting for the answer"; rec.msg != want {
			t.Errorf("failure %q, want %q", rec.msg, want)
		}
	})
}
