package cluster

import (
	"encoding/json"
	"testing"
)

// FuzzDecodeEvent: whatever arrives on the events channel, decoding never
// panics, and what it accepts has a kind and a sender and encodes back to
// an event that decodes the same.
func FuzzDecodeEvent(f *testing.F) {
	f.Add(`{"kind":"revoked","user":"u1","key":"s:abc","value":"you logged out","from":"n1"}`)
	f.Add(`{"kind":"mode","channel":"c1","value":"sfu","from":"n2"}`)
	f.Add(`{"kind":""}`)
	f.Add(`[]`)
	f.Fuzz(func(t *testing.T, payload string) {
		ev, ok := decodeEvent(payload)
		if !ok {
			return
		}
		if ev.Kind == "" || ev.From == "" {
			t.Fatalf("accepted %q without kind or sender", payload)
		}
		b, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		if again, ok := decodeEvent(string(b)); !ok || again != ev {
			t.Fatalf("round trip of %+v gave %+v", ev, again)
		}
	})
}
