package recording

import (
	"encoding/binary"
	"testing"
	"time"
)

// BenchmarkWriteRTP is what recording costs per packet, on a real file's
// writer with its goroutine writing an Ogg file to a temporary directory:
//
//   - enqueue: the forwarding goroutine's share, WriteRTP with room in the
//     queue (copy into a preallocated buffer, hand it over). Packets go in
//     batches of half a queue, the timer stopped while the writer drains.
//   - full: WriteRTP when the queue is full (the packet is dropped and
//     counted): what a disk that cannot keep up costs forwarding.
//   - sustained: enqueue plus the writer's own work (parse, Ogg page,
//     write system call), timed until the file has every packet, the
//     sender never letting the queue overflow: the packets per second one
//     file can take (the writer polls its queue every pollInterval).
func BenchmarkWriteRTP(b *testing.B) {
	setup := func(b *testing.B) (*Session, *trackWriter, []byte) {
		s := newService(&testing.T{}, Config{Dir: b.TempDir(), QueuePackets: 1 << 14})
		ss, err := s.Start("bench", Person{UserID: "u"}, nil)
		if err != nil {
			b.Fatal(err)
		}
		return ss, ss.Track(opusTrack).(*trackWriter), rtpBytes(b, 0, 0, false, make([]byte, 1188))
	}
	drained := func(w *trackWriter) {
		for len(w.free) < cap(w.free) {
			time.Sleep(50 * time.Microsecond)
		}
	}
	write := func(w *trackWriter, raw []byte, i int) {
		binary.BigEndian.PutUint16(raw[2:], uint16(i))
		binary.BigEndian.PutUint32(raw[4:], uint32(i)*960)
		w.WriteRTP(0, raw)
	}
	b.Run("enqueue", func(b *testing.B) {
		ss, w, raw := setup(b)
		batch := cap(w.free) / 2
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; {
			for j := 0; j < batch && i < b.N; j++ {
				write(w, raw, i)
				i++
			}
			b.StopTimer()
			drained(w)
			b.StartTimer()
		}
		b.StopTimer()
		if d := w.dropped.Load(); d != 0 {
			b.Fatalf("%d packets dropped", d)
		}
		w.Close()
		ss.Stop(StateFinished, "bench")
	})
	b.Run("full", func(b *testing.B) {
		ss, w, raw := setup(b)
		ss.mu.Lock() // the writer blocks on its first packet: the queue stays full
		for range cap(w.free) {
			write(w, raw, 0)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			write(w, raw, i)
		}
		b.StopTimer()
		ss.mu.Unlock()
		w.Close()
		ss.Stop(StateFinished, "bench")
	})
	b.Run("sustained", func(b *testing.B) {
		ss, w, raw := setup(b)
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			for len(w.free) == 0 { // a paced sender: never drop
				time.Sleep(10 * time.Microsecond)
			}
			write(w, raw, i)
		}
		drained(w)
		b.StopTimer()
		w.Close()
		ss.Stop(StateFinished, "bench")
	})
}
