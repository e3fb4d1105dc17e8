// Package packetcache keeps the newest packets of one RTP stream, indexed
// by sequence number, so that packets a receiver reports lost (NACK) can
// be sent again. It is the SFU's only memory of past media.
//
// A Cache is a fixed ring of Size slots; slot buffers are reused, so once
// they have grown to the stream's packet size, Store does not allocate:
// it runs on the forwarding path, once per received video packet.
package packetcache

import "sync"

// Size is the number of packets a Cache keeps: about a second of
// 2 Mbit/s video, longer than a NACK takes to arrive.
const Size = 512

// Cache keeps the last Size packets of a stream. The zero value is ready
// to use; it is safe for concurrent use (the publisher's reader stores,
// subscribers' RTCP readers get).
type Cache struct {
	mu    sync.Mutex
	slots [Size]slot
}

type slot struct {
	seq   uint16
	valid bool
	buf   []byte
}

// Store copies packet b, of sequence number seq, into the cache, in place
// of the packet Size sequence numbers older.
func (c *Cache) Store(seq uint16, b []byte) {
	c.mu.Lock()
	s := &c.slots[seq%Size]
	if cap(s.buf) < len(b) {
		// Room for a full-size packet at once, so a stream whose packets
		// grow does not reallocate slot by slot.
		s.buf = make([]byte, len(b), max(len(b), 1200))
	}
	s.buf = s.buf[:len(b)]
	copy(s.buf, b)
	s.seq, s.valid = seq, true
	c.mu.Unlock()
}

// Get copies packet seq into dst and returns its length: 0 if it is not
// cached (never stored, or overwritten by a newer packet). A dst shorter
// than the packet gets its start only; the length returned is what was
// copied.
func (c *Cache) Get(seq uint16, dst []byte) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := &c.slots[seq%Size]
	if !s.valid || s.seq != seq {
		return 0
	}
	return copy(dst, s.buf)
}
