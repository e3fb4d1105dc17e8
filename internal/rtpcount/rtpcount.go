// Package rtpcount counts the RTP packets and bytes a pion API's peer
// connections send and receive. pion's GetStats reports only what is
// received, and the native tools' status lines need both directions.
package rtpcount

import (
	"fmt"
	"sync/atomic"

	"github.com/pion/interceptor"
	"github.com/pion/rtp"
)

// Counts are RTP packets and bytes (headers included).
type Counts struct {
	Packets, Bytes uint64
}

// String formats counts for status lines: "150 packets (12.3 kB)".
func (c Counts) String() string {
	return fmt.Sprintf("%d packets (%.1f kB)", c.Packets, float64(c.Bytes)/1000)
}

// Counter is an interceptor factory: add it to an interceptor.Registry
// and every connection of that API is counted in it.
type Counter struct {
	outPackets, outBytes atomic.Uint64
	inPackets, inBytes   atomic.Uint64
}

// Out is what was sent so far.
func (c *Counter) Out() Counts { return Counts{c.outPackets.Load(), c.outBytes.Load()} }

// In is what was received so far.
func (c *Counter) In() Counts { return Counts{c.inPackets.Load(), c.inBytes.Load()} }

// NewInterceptor implements interceptor.Factory.
func (c *Counter) NewInterceptor(string) (interceptor.Interceptor, error) {
	return &counting{c: c}, nil
}

type counting struct {
	interceptor.NoOp
	c *Counter
}

func (i *counting) BindLocalStream(_ *interceptor.StreamInfo, w interceptor.RTPWriter) interceptor.RTPWriter {
	return interceptor.RTPWriterFunc(func(h *rtp.Header, payload []byte, a interceptor.Attributes) (int, error) {
		n, err := w.Write(h, payload, a)
		if err == nil {
			i.c.outPackets.Add(1)
			i.c.outBytes.Add(uint64(h.MarshalSize() + len(payload)))
		}
		return n, err
	})
}

func (i *counting) BindRemoteStream(_ *interceptor.StreamInfo, r interceptor.RTPReader) interceptor.RTPReader {
	return interceptor.RTPReaderFunc(func(b []byte, a interceptor.Attributes) (int, interceptor.Attributes, error) {
		n, a, err := r.Read(b, a)
		if err == nil {
			i.c.inPackets.Add(1)
			i.c.inBytes.Add(uint64(n))
		}
		return n, a, err
	})
}
