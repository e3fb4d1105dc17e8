package packetcache_test

import (
	"bytes"
	"encoding/binary"
	"sync"
	"testing"

	"github.com/parley/parley/internal/packetcache"
)

// packet is a recognisable n-byte packet for seq.
func packet(seq uint16, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(seq) ^ byte(i)
	}
	binary.BigEndian.PutUint16(b, seq)
	return b
}

// TestStoreGet: a stored packet comes back byte for byte; one never
// stored does not.
func TestStoreGet(t *testing.T) {
	var c packetcache.Cache
	buf := make([]byte, 1500)
	if n := c.Get(7, buf); n != 0 {
		t.Fatalf("empty cache returned %d bytes", n)
	}
	for seq := uint16(0); seq < 10; seq++ {
		c.Store(seq, packet(seq, 100+int(seq)))
	}
	for seq := uint16(0); seq < 10; seq++ {
		n := c.Get(seq, buf)
		if want := packet(seq, 100+int(seq)); !bytes.Equal(buf[:n], want) {
			t.Errorf("packet %d: got %d bytes, want the %d stored", seq, n, len(want))
		}
	}
	if n := c.Get(10, buf); n != 0 {
		t.Errorf("packet never stored: got %d bytes", n)
	}
}

// TestOverwritten: a packet Size sequence numbers newer takes the slot of
// an old one, which is then reported missing rather than returned as the
// new one; across the 16-bit wrap too.
func TestOverwritten(t *testing.T) {
	var c packetcache.Cache
	buf := make([]byte, 1500)
	start := uint16(65535 - packetcache.Size/2) // the run wraps
	for i := range packetcache.Size + 10 {
		c.Store(start+uint16(i), packet(start+uint16(i), 200))
	}
	for i := range 10 {
		if n := c.Get(start+uint16(i), buf); n != 0 {
			t.Errorf("packet %d (overwritten) returned %d bytes", start+uint16(i), n)
		}
	}
	for i := 10; i < packetcache.Size+10; i++ {
		seq := start + uint16(i)
		if n := c.Get(seq, buf); !bytes.Equal(buf[:n], packet(seq, 200)) {
			t.Fatalf("packet %d: got %d bytes, want it whole", seq, n)
		}
	}
}

// TestSlotReuse: a smaller packet in a slot that held a larger one comes
// back at its own length, with none of the old packet's tail; a short
// dst gets the packet's start.
func TestSlotReuse(t *testing.T) {
	var c packetcache.Cache
	buf := make([]byte, 1500)
	c.Store(1, packet(1, 1400))
	c.Store(1+packetcache.Size, packet(1+packetcache.Size, 60))
	if n := c.Get(1+packetcache.Size, buf); !bytes.Equal(buf[:n], packet(1+packetcache.Size, 60)) {
		t.Fatalf("got %d bytes, want the 60 of the newer packet", n)
	}
	short := make([]byte, 10)
	if n := c.Get(1+packetcache.Size, short); n != 10 || !bytes.Equal(short, packet(1+packetcache.Size, 60)[:10]) {
		t.Errorf("short dst: got %d bytes %x", n, short[:n])
	}
}

// TestNoAllocations: once the slots have grown, storing and getting do
// not allocate (the forwarding path must not).
func TestNoAllocations(t *testing.T) {
	var c packetcache.Cache
	p, buf := packet(0, 1200), make([]byte, 1500)
	for seq := range uint16(packetcache.Size) {
		c.Store(seq, p)
	}
	seq := uint16(0)
	if a := testing.AllocsPerRun(1000, func() {
		seq++
		c.Store(seq, p)
		c.Get(seq-3, buf)
	}); a != 0 {
		t.Errorf("%v allocations per Store and Get, want 0", a)
	}
}

// TestConcurrent: a writer and readers at once (run with -race) never see
// a packet torn between two stores.
func TestConcurrent(t *testing.T) {
	var c packetcache.Cache
	var wg sync.WaitGroup
	const n = 5000
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := range n {
			c.Store(uint16(i), packet(uint16(i), 300))
		}
	}()
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 1500)
			for i := range n {
				if m := c.Get(uint16(i), buf); m > 0 && !bytes.Equal(buf[:m], packet(uint16(i), 300)) {
					t.Errorf("packet %d torn", i)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// BenchmarkStore is the forwarding path's cost of keeping a packet.
func BenchmarkStore(b *testing.B) {
	var c packetcache.Cache
	p := packet(0, 1200)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		c.Store(uint16(i), p)
	}
}
