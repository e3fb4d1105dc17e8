package testtool

import (
	"testing"
	"time"
)

// pollEvery is how often Eventually checks its condition: often enough
// that a test waits little past the event, rarely enough that polling
// costs nothing next to the work it waits for.
const pollEvery = 10 * time.Millisecond

// Eventually waits until cond holds, checking it now and every 10 ms, and
// fails t (t.Fatalf, so from the test's goroutine only) if it still does
// not hold after timeout. what names the awaited event for the failure
// message: "timed out after 10s waiting for " + what.
// It is how tests wait for something another goroutine makes true; a
// test that must show something does NOT happen waits for an event that
// proves it (a counter, a sequence number) instead of sleeping.
func Eventually(t testing.TB, timeout time.Duration, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(pollEvery)
	}
}
