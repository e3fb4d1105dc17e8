package record

import (
	"encoding/binary"
	"os"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4/pkg/media"
	"github.com/pion/webrtc/v4/pkg/media/samplebuilder"
)

// ivfVP8 writes VP8 frames, reassembled from RTP by pion's samplebuilder
// (which reorders packets and drops incomplete frames), into an IVF file.
//
// It does not use pion's ivfwriter: that writer stores the frame count in
// the header's length field, which ffmpeg reads as a duration in timebase
// units, and with the 1/90000 timebase RTP needs ffprobe then reports a
// 3 s recording as lasting half a millisecond. Here the timebase is the
// RTP clock (pts are RTP timestamps, exact) and the length field holds the
// duration, as ffmpeg's own IVF muxer writes it.
type ivfVP8 struct {
	f  *os.File
	sb *samplebuilder.SampleBuilder

	started       bool   // a keyframe was written
	prevTS        uint32 // RTP timestamp of the last frame written
	pts, lastStep int64  // of the last frame written, in 1/90000 s
	frames        uint32
	width, height uint16
}

const (
	ivfHeaderSize = 32
	rtpVideoClock = 90000
	// maxLate is how many packets a frame may wait for a late one; at
	// most a few video frames' worth.
	maxLate = 128
)

func newIVF(f *os.File) (*ivfVP8, error) {
	v := &ivfVP8{f: f, sb: samplebuilder.New(maxLate, &codecs.VP8Packet{}, rtpVideoClock)}
	if _, err := f.Write(v.header(0)); err != nil {
		f.Close()
		return nil, err
	}
	return v, nil
}

func (v *ivfVP8) header(length uint32) []byte {
	h := make([]byte, ivfHeaderSize)
	copy(h, "DKIF")
	binary.LittleEndian.PutUint16(h[6:], ivfHeaderSize)
	copy(h[8:], "VP80")
	binary.LittleEndian.PutUint16(h[12:], v.width)
	binary.LittleEndian.PutUint16(h[14:], v.height)
	binary.LittleEndian.PutUint32(h[16:], rtpVideoClock) // timebase denominator
	binary.LittleEndian.PutUint32(h[20:], 1)             // timebase numerator
	binary.LittleEndian.PutUint32(h[24:], length)
	return h
}

func (v *ivfVP8) writeRTP(p *rtp.Packet) error {
	v.sb.Push(p)
	for s := v.sb.Pop(); s != nil; s = v.sb.Pop() {
		if err := v.writeFrame(s); err != nil {
			return err
		}
	}
	return nil
}

func (v *ivfVP8) writeFrame(s *media.Sample) error {
	if len(s.Data) == 0 {
		return nil
	}
	if !v.started {
		// A decoder can start only at a keyframe: its frame tag's bit 0 is
		// clear and the frame size follows the start code 9d 01 2a.
		if s.Data[0]&1 != 0 || len(s.Data) < 10 {
			return nil
		}
		v.started = true
		v.width = binary.LittleEndian.Uint16(s.Data[6:]) & 0x3fff
		v.height = binary.LittleEndian.Uint16(s.Data[8:]) & 0x3fff
	} else {
		// Timestamps are 32 bits and wrap; the difference does not. A step
		// back or a jump of more than 10 s (a restarted sender) is written
		// as one frame's time, so pts keep increasing.
		step := int64(int32(s.PacketTimestamp - v.prevTS))
		if step <= 0 || step > 10*rtpVideoClock {
			step = v.lastStep
			if step == 0 {
				step = rtpVideoClock / 30
			}
		}
		v.pts += step
		v.lastStep = step
	}
	v.prevTS = s.PacketTimestamp
	h := make([]byte, 12)
	binary.LittleEndian.PutUint32(h[0:], uint32(len(s.Data)))
	binary.LittleEndian.PutUint64(h[4:], uint64(v.pts))
	if _, err := v.f.Write(append(h, s.Data...)); err != nil {
		return err
	}
	v.frames++
	return nil
}

// close writes the frames still in the sample builder and the header's
// length: up to the end of the last frame, taken to last as long as the
// one before it.
func (v *ivfVP8) close() error {
	v.sb.Flush()
	var err error
	for s := v.sb.Pop(); s != nil && err == nil; s = v.sb.Pop() {
		err = v.writeFrame(s)
	}
	length := uint32(0)
	if v.frames > 0 {
		length = uint32(min(v.pts+max(v.lastStep, rtpVideoClock/30), 1<<32-1))
	}
	if err == nil {
		_, err = v.f.WriteAt(v.header(length), 0)
	}
	if cerr := v.f.Close(); err == nil {
		err = cerr
	}
	return err
}
