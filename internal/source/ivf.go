package source

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
	"github.com/pion/webrtc/v4/pkg/media/ivfreader"
)

// maxVP8Frame bounds one IVF frame. pion's reader allocates the size a
// frame header claims before reading it, so a corrupt header could ask
// for 4 GiB; a real VP8 frame, even a 4K keyframe, is far smaller.
const maxVP8Frame = 8 << 20

// defaultFrame is the duration assumed for a frame whose timestamp does not
// say (the last one, or a timestamp that goes backwards).
const defaultFrame = time.Second / 30

// IVF is VP8 video read from an IVF file.
type IVF struct {
	path string
	loop bool
	// Width and Height are the frame size the IVF header announces.
	Width, Height int
}

// OpenIVF checks that path is an IVF file of VP8 with at least one frame
// and returns a source that sends it, from the start again at its end if
// loop is set.
func OpenIVF(path string, loop bool) (*IVF, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	defer f.Close()
	v, err := newIVFFrames(bufio.NewReader(f))
	if err != nil {
		return nil, fmt.Errorf("source: %s: %w", path, err)
	}
	n := 0
	for ; ; n++ {
		if _, err := v.next(); err == io.EOF {
			break
		} else if err != nil {
			return nil, fmt.Errorf("source: %s: %w", path, err)
		}
	}
	if n == 0 {
		return nil, fmt.Errorf("source: %s: no VP8 frames", path)
	}
	return &IVF{path: path, loop: loop, Width: int(v.header.Width), Height: int(v.header.Height)}, nil
}

// Codec is VP8 on the 90 kHz RTP clock.
func (v *IVF) Codec() webrtc.RTPCodecCapability {
	return webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}
}

// Run sends the video on track in real time, paced by the frames'
// timestamps.
func (v *IVF) Run(ctx context.Context, track *webrtc.TrackLocalStaticSample) error {
	next, closeFile, err := v.samples()
	if err != nil {
		return err
	}
	defer closeFile()
	return pace(ctx, track, next)
}

// samples opens the file and returns its frames, looped if asked.
func (v *IVF) samples() (next func() (media.Sample, error), closeFile func() error, err error) {
	f, err := os.Open(v.path)
	if err != nil {
		return nil, nil, fmt.Errorf("source: %w", err)
	}
	br := bufio.NewReader(f)
	frames, err := newIVFFrames(br)
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("source: %s: %w", v.path, err)
	}
	return func() (media.Sample, error) {
		s, err := frames.next()
		if err == io.EOF && v.loop {
			if _, err := f.Seek(0, io.SeekStart); err != nil {
				return media.Sample{}, fmt.Errorf("source: %s: %w", v.path, err)
			}
			br.Reset(f)
			if frames, err = newIVFFrames(br); err != nil {
				return media.Sample{}, fmt.Errorf("source: %s: %w", v.path, err)
			}
			s, err = frames.next()
		}
		if err != nil && err != io.EOF {
			err = fmt.Errorf("source: %s: %w", v.path, err)
		}
		return s, err
	}, f.Close, nil
}

// ivfFrames reads IVF frames as samples. A sample's duration is the time
// to the next frame, so each frame is read one ahead.
type ivfFrames struct {
	br      *bufio.Reader
	header  *ivfreader.IVFFileHeader
	cur     *ivfFrame // read, not yet returned
	lastDur time.Duration
	n       int // frames read, for error messages
}

type ivfFrame struct {
	data []byte
	at   time.Duration // presentation time
}

// newIVFFrames reads and checks the file header.
func newIVFFrames(br *bufio.Reader) (*ivfFrames, error) {
	_, h, err := ivfreader.NewWith(br) // the file header only, see read
	if err != nil {
		return nil, fmt.Errorf("not a usable IVF file: %w", err)
	}
	if h.FourCC != "VP80" {
		return nil, fmt.Errorf("IVF holds %q, not VP8 (VP80)", h.FourCC)
	}
	return &ivfFrames{br: br, header: h, lastDur: defaultFrame}, nil
}

// next returns the next frame, or io.EOF after the last.
func (v *ivfFrames) next() (media.Sample, error) {
	if v.cur == nil {
		f, err := v.read()
		if err != nil {
			return media.Sample{}, err
		}
		v.cur = f
	}
	f, err := v.read()
	if err != nil && err != io.EOF {
		return media.Sample{}, err
	}
	s := media.Sample{Data: v.cur.data, Duration: v.lastDur}
	if f != nil {
		if d := f.at - v.cur.at; d > 0 && d <= time.Second {
			s.Duration, v.lastDur = d, d
		}
	}
	v.cur = f
	return s, nil
}

// read reads one frame. A frame cut short at the end of the file ends the
// file, as a recorder that was killed leaves it. Empty frames are skipped
// (the frame before them lasts until the next one).
func (v *ivfFrames) read() (*ivfFrame, error) {
	for {
		// The frame header is parsed here rather than by pion's reader,
		// which allocates whatever size a header claims before reading and
		// turns the timestamp into a unit of its own.
		var hdr [12]byte
		if _, err := io.ReadFull(v.br, hdr[:]); err == io.EOF || err == io.ErrUnexpectedEOF {
			return nil, io.EOF
		} else if err != nil {
			return nil, fmt.Errorf("IVF frame %d: %w", v.n+1, err)
		}
		v.n++
		size := binary.LittleEndian.Uint32(hdr[0:4])
		pts := binary.LittleEndian.Uint64(hdr[4:12])
		if size > maxVP8Frame {
			return nil, fmt.Errorf("IVF frame %d claims %d bytes, over the %d MiB limit (corrupt file?)", v.n, size, maxVP8Frame>>20)
		}
		// ReadAll grows with the data actually there, so a header claiming
		// more than the file holds costs no big allocation.
		data, err := io.ReadAll(io.LimitReader(v.br, int64(size)))
		if err != nil {
			return nil, fmt.Errorf("IVF frame %d: %w", v.n, err)
		}
		if len(data) < int(size) {
			return nil, io.EOF
		}
		// The timebase is numerator/denominator seconds per tick; float
		// keeps a huge corrupt pts from overflowing the multiplication.
		secs := float64(pts) * float64(v.header.TimebaseNumerator) / float64(v.header.TimebaseDenominator)
		if secs > 1e6 {
			return nil, fmt.Errorf("IVF frame %d: timestamp %.0f s is out of range (corrupt file?)", v.n, secs)
		}
		if size > 0 {
			return &ivfFrame{data: data, at: time.Duration(secs * float64(time.Second))}, nil
		}
	}
}
