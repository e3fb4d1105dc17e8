package record

import (
	"os"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4/pkg/media/oggwriter"
)

// oggOpus is pion's Ogg writer: it needs the file by name so that Close
// can go back and mark the last page end-of-stream.
type oggOpus struct{ w *oggwriter.OggWriter }

func newOgg(f *os.File, channels uint16) (*oggOpus, error) {
	// The name was reserved with O_EXCL; pion opens it again itself.
	name := f.Name()
	if err := f.Close(); err != nil {
		return nil, err
	}
	w, err := oggwriter.New(name, 48000, channels)
	if err != nil {
		return nil, err
	}
	return &oggOpus{w: w}, nil
}

func (o *oggOpus) writeRTP(p *rtp.Packet) error { return o.w.WriteRTP(p) }

func (o *oggOpus) close() error { return o.w.Close() }
