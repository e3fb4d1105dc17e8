package source

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
	"github.com/pion/webrtc/v4/pkg/media/oggreader"
)

// maxOpusPacket bounds one Opus packet: the largest legal one (120 ms of
// 6 frames of 1275 bytes) is under 8 KiB, and a packet spanning many pages
// would otherwise grow without limit on corrupt input.
const maxOpusPacket = 64 << 10

// Ogg is Opus read from an Ogg file or stream.
type Ogg struct {
	path string // file to read; empty for a stream
	loop bool
	// stream is the packet reader of a stream source, positioned after the
	// Opus headers; a stream can be run once.
	stream *oggPackets
	used   atomic.Bool
	// Channels is the channel count from the OpusHead header (1 or 2).
	Channels int
}

// OpenOgg checks that path is an Ogg Opus file with at least one audio
// packet and returns a source that sends it, from the start again at its
// end if loop is set.
func OpenOgg(path string, loop bool) (*Ogg, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	defer f.Close()
	// Read it all once now: a truncated or corrupt page is reported before
	// the call, and a file with no audio cannot make the loop spin.
	p, err := newOggPackets(bufio.NewReader(f))
	if err != nil {
		return nil, fmt.Errorf("source: %s: %w", path, err)
	}
	n := 0
	for ; ; n++ {
		if _, err := p.next(); err == io.EOF {
			break
		} else if err != nil {
			return nil, fmt.Errorf("source: %s: %w", path, err)
		}
	}
	if n == 0 {
		return nil, fmt.Errorf("source: %s: no Opus audio packets", path)
	}
	return &Ogg{path: path, loop: loop, Channels: int(p.head.Channels)}, nil
}

// OggStream reads the Opus headers from r (blocking until they arrive) and
// returns a source that sends the audio that follows, once, ending at EOF.
// Run may return while a read from r is still blocked (a pipe cannot be
// interrupted); that read's data is then dropped.
func OggStream(r io.Reader) (*Ogg, error) {
	p, err := newOggPackets(bufio.NewReader(r))
	if err != nil {
		return nil, fmt.Errorf("source: Ogg stream: %w", err)
	}
	return &Ogg{stream: p, Channels: int(p.head.Channels)}, nil
}

// Codec is Opus as WebRTC negotiates it (always "2 channels" in SDP, RFC
// 7587, whatever the stream holds).
func (o *Ogg) Codec() webrtc.RTPCodecCapability {
	return webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2,
		SDPFmtpLine: "minptime=10;useinbandfec=1"}
}

// Run sends the audio on track in real time. A file source can be run
// again; a stream source only once.
func (o *Ogg) Run(ctx context.Context, track *webrtc.TrackLocalStaticSample) error {
	if o.stream != nil {
		if o.used.Swap(true) {
			return errors.New("source: an Ogg stream can be sent only once")
		}
		return pace(ctx, track, streamSamples(ctx, o.stream))
	}
	next, closeFile, err := o.samples()
	if err != nil {
		return err
	}
	defer closeFile()
	return pace(ctx, track, next)
}

// samples opens the file and returns its samples, looped if asked.
func (o *Ogg) samples() (next func() (media.Sample, error), closeFile func() error, err error) {
	f, err := os.Open(o.path)
	if err != nil {
		return nil, nil, fmt.Errorf("source: %w", err)
	}
	br := bufio.NewReader(f)
	p, err := newOggPackets(br)
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("source: %s: %w", o.path, err)
	}
	return func() (media.Sample, error) {
		s, err := p.sample()
		if err == io.EOF && o.loop {
			if _, err := f.Seek(0, io.SeekStart); err != nil {
				return media.Sample{}, fmt.Errorf("source: %s: %w", o.path, err)
			}
			br.Reset(f)
			if p, err = newOggPackets(br); err != nil {
				return media.Sample{}, fmt.Errorf("source: %s: %w", o.path, err)
			}
			s, err = p.sample()
		}
		if err != nil && err != io.EOF {
			err = fmt.Errorf("source: %s: %w", o.path, err)
		}
		return s, err
	}, f.Close, nil
}

// streamSamples reads samples on a goroutine of its own, so that Run can
// stop on ctx while a read from a pipe is blocked.
func streamSamples(ctx context.Context, p *oggPackets) func() (media.Sample, error) {
	type result struct {
		s   media.Sample
		err error
	}
	c := make(chan result, 8)
	go func() {
		for {
			s, err := p.sample()
			select {
			case c <- result{s, err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	return func() (media.Sample, error) {
		select {
		case r := <-c:
			if r.err != nil && r.err != io.EOF {
				r.err = fmt.Errorf("source: Ogg stream: %w", r.err)
			}
			return r.s, r.err
		case <-ctx.Done():
			return media.Sample{}, ctx.Err()
		}
	}
}

// oggPackets splits an Ogg Opus stream into Opus packets. pion's reader
// gives whole pages (checked against their CRC), but encoders such as
// ffmpeg and opusenc put many packets in one page (up to a second's worth
// by default), and only the page's lacing values tell where each packet
// ends; those are taken from the bytes the reader consumed.
type oggPackets struct {
	rd      *oggreader.OggReader
	raw     *captureReader
	head    *oggreader.OggHeader
	serial  uint32   // the Opus logical stream; pages of others are skipped
	partial []byte   // a packet continued on the next page
	ready   [][]byte // complete packets of the current page
	page    int      // pages read, for error messages
}

// newOggPackets reads the OpusHead packet and checks it.
func newOggPackets(r io.Reader) (*oggPackets, error) {
	raw := &captureReader{r: r}
	rd, err := oggreader.NewWithOptions(raw)
	if err != nil {
		return nil, err
	}
	p := &oggPackets{rd: rd, raw: raw}
	payload, bos, serial, err := p.nextPage()
	if err == io.EOF {
		return nil, errors.New("not an Ogg stream (empty or truncated before the first page ends)")
	}
	if err != nil {
		return nil, err
	}
	if !bos || !bytes.HasPrefix(payload, []byte("OpusHead")) {
		return nil, fmt.Errorf("not Opus: the first Ogg stream is %s", describeOggCodec(payload))
	}
	head, err := oggreader.ParseOpusHead(payload)
	if err != nil {
		return nil, fmt.Errorf("bad OpusHead header: %w", err)
	}
	if head.Channels < 1 || head.Channels > 2 || head.ChannelMap > 1 {
		return nil, fmt.Errorf("only mono or stereo Opus can be sent, this has %d channels (mapping family %d)",
			head.Channels, head.ChannelMap)
	}
	p.head, p.serial = head, serial
	return p, nil
}

// describeOggCodec names the codec of an Ogg stream from its first packet.
func describeOggCodec(payload []byte) string {
	for _, c := range []struct{ magic, name string }{
		{"\x01vorbis", "Vorbis"}, {"\x7fFLAC", "FLAC"}, {"Speex   ", "Speex"}, {"\x80theora", "Theora"},
	} {
		if bytes.HasPrefix(payload, []byte(c.magic)) {
			return c.name
		}
	}
	return "of an unknown codec"
}

// next returns the next Opus audio packet (headers skipped), or io.EOF.
func (p *oggPackets) next() ([]byte, error) {
	for len(p.ready) == 0 {
		payload, bos, serial, err := p.nextPage()
		if err != nil {
			return nil, err
		}
		if bos && bytes.HasPrefix(payload, []byte("OpusHead")) {
			// A chained stream (files concatenated): follow the new one.
			p.serial, p.partial = serial, nil
			continue
		}
		if serial != p.serial {
			continue
		}
		lacing := p.raw.lacing()
		if p.raw.continued() != (p.partial != nil) {
			p.partial = nil // a lost page; drop the packet it broke
			if p.raw.continued() {
				// skip the tail of a packet whose start we never saw
				for len(lacing) > 0 {
					n := int(lacing[0])
					payload, lacing = payload[n:], lacing[1:]
					if n < 255 {
						break
					}
				}
			}
		}
		for _, l := range lacing {
			p.partial = append(p.partial, payload[:l]...)
			payload = payload[l:]
			if len(p.partial) > maxOpusPacket {
				return nil, fmt.Errorf("Ogg page %d: Opus packet over %d KiB (corrupt stream?)", p.page, maxOpusPacket>>10)
			}
			if l < 255 {
				pkt := p.partial
				p.partial = nil
				if len(pkt) > 0 && !bytes.HasPrefix(pkt, []byte("OpusTags")) && !bytes.HasPrefix(pkt, []byte("OpusHead")) {
					p.ready = append(p.ready, pkt)
				}
			}
		}
	}
	pkt := p.ready[0]
	p.ready = p.ready[1:]
	return pkt, nil
}

// sample returns the next packet as a sample lasting as long as the
// packet's own frames say (its TOC byte): exact per packet, where the page
// granule position only gives the end of a page of many packets.
func (p *oggPackets) sample() (media.Sample, error) {
	pkt, err := p.next()
	if err != nil {
		return media.Sample{}, err
	}
	d, err := opusDuration(pkt)
	if err != nil {
		return media.Sample{}, fmt.Errorf("Ogg page %d: %w", p.page, err)
	}
	return media.Sample{Data: pkt, Duration: d}, nil
}

// nextPage reads one page and says whether it begins a stream and which
// stream it belongs to. A page cut short at the end of the input ends the
// input: that is what a killed encoder leaves behind.
func (p *oggPackets) nextPage() (payload []byte, bos bool, serial uint32, err error) {
	p.raw.buf = p.raw.buf[:0]
	payload, h, err := p.rd.ParseNextPage()
	raw := p.raw.buf
	if len(raw) == 0 && err == io.EOF {
		return nil, false, 0, io.EOF
	}
	p.page++
	if len(raw) >= 4 && string(raw[:4]) != "OggS" {
		return nil, false, 0, fmt.Errorf("not an Ogg stream (no page header at page %d)", p.page)
	}
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return nil, false, 0, io.EOF
	}
	if err != nil {
		return nil, false, 0, fmt.Errorf("corrupt Ogg page %d: %w", p.page, err)
	}
	return payload, raw[5]&0x02 != 0, h.Serial, nil
}

// captureReader keeps the bytes of the page being read, for the fields
// pion's page header does not expose.
type captureReader struct {
	r   io.Reader
	buf []byte
}

func (c *captureReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.buf = append(c.buf, b[:n]...)
	return n, err
}

// lacing returns the segment table of the page just read.
func (c *captureReader) lacing() []byte { return c.buf[27 : 27+int(c.buf[26])] }

// continued says whether the page just read continues a packet.
func (c *captureReader) continued() bool { return c.buf[5]&0x01 != 0 }

// opusDuration is the length of an Opus packet from its TOC byte (RFC
// 6716 section 3.1).
func opusDuration(pkt []byte) (time.Duration, error) {
	toc := pkt[0]
	var frames int
	switch toc & 0x03 {
	case 0:
		frames = 1
	case 1, 2:
		frames = 2
	case 3:
		if len(pkt) < 2 || pkt[1]&0x3f == 0 {
			return 0, errors.New("corrupt Opus packet (bad frame count)")
		}
		frames = int(pkt[1] & 0x3f)
	}
	var frame time.Duration // 2.5, 5, 10, 20, 40 or 60 ms
	config := toc >> 3
	switch {
	case config < 12: // SILK: 10, 20, 40, 60 ms
		frame = []time.Duration{10, 20, 40, 60}[config&3] * time.Millisecond
	case config < 16: // hybrid: 10, 20 ms
		frame = []time.Duration{10, 20}[config&1] * time.Millisecond
	default: // CELT: 2.5, 5, 10, 20 ms
		frame = []time.Duration{2500, 5000, 10000, 20000}[config&3] * time.Microsecond
	}
	d := time.Duration(frames) * frame
	if d > 120*time.Millisecond {
		return 0, fmt.Errorf("corrupt Opus packet (%v long, over 120 ms)", d)
	}
	return d, nil
}
