package source

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
)

const (
	toneOgg    = "../../testdata/tone.ogg"
	patternIVF = "../../testdata/pattern.ivf"
)

// opus20ms is an Opus packet header for one 20 ms CELT frame (config 31).
const opus20ms = 0xf8

// oggPage builds one Ogg page; lacing is given so tests can split packets
// across pages as encoders do.
func oggPage(headerType byte, serial, seq uint32, lacing, payload []byte) []byte {
	p := make([]byte, 27, 27+len(lacing)+len(payload))
	copy(p, "OggS")
	p[5] = headerType
	binary.LittleEndian.PutUint32(p[14:], serial)
	binary.LittleEndian.PutUint32(p[18:], seq)
	p[26] = byte(len(lacing))
	p = append(append(p, lacing...), payload...)
	var crc uint32 // Ogg's CRC-32: polynomial 0x04c11db7, not reflected
	for _, b := range p {
		crc ^= uint32(b) << 24
		for range 8 {
			if crc&0x80000000 != 0 {
				crc = crc<<1 ^ 0x04c11db7
			} else {
				crc <<= 1
			}
		}
	}
	binary.LittleEndian.PutUint32(p[22:], crc)
	return p
}

// lace is the segment table of one page holding whole packets of these sizes.
func lace(sizes ...int) []byte {
	var l []byte
	for _, n := range sizes {
		for ; n >= 255; n -= 255 {
			l = append(l, 255)
		}
		l = append(l, byte(n))
	}
	return l
}

func opusHead() []byte {
	h := []byte("OpusHead\x01\x01\x38\x01\x80\xbb\x00\x00\x00\x00\x00")
	return h
}

func opusPacket(n int, fill byte) []byte {
	p := bytes.Repeat([]byte{fill}, n)
	p[0] = opus20ms
	return p
}

// headers is the start of a valid mono Ogg Opus stream.
func headers(serial uint32) []byte {
	tags := []byte("OpusTags\x04\x00\x00\x00test\x00\x00\x00\x00")
	return append(oggPage(0x02, serial, 0, lace(len(opusHead())), opusHead()),
		oggPage(0, serial, 1, lace(len(tags)), tags)...)
}

func drainOgg(t *testing.T, p *oggPackets) (pkts [][]byte, total time.Duration) {
	t.Helper()
	for {
		s, err := p.sample()
		if err == io.EOF {
			return pkts, total
		}
		if err != nil {
			t.Fatal(err)
		}
		pkts = append(pkts, s.Data)
		total += s.Duration
	}
}

// TestOggTestdata: the committed tone has 3 s of 20 ms mono packets.
func TestOggTestdata(t *testing.T) {
	o, err := OpenOgg(toneOgg, true)
	if err != nil {
		t.Fatal(err)
	}
	if o.Channels != 1 || o.Codec().MimeType != webrtc.MimeTypeOpus {
		t.Errorf("channels %d, codec %v", o.Channels, o.Codec())
	}
	f, err := os.Open(toneOgg)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p, err := newOggPackets(f)
	if err != nil {
		t.Fatal(err)
	}
	pkts, total := drainOgg(t, p)
	if total < 2980*time.Millisecond || total > 3040*time.Millisecond || len(pkts) < 149 {
		t.Errorf("%d packets lasting %v, want 3 s of 20 ms", len(pkts), total)
	}
}

// TestOggSplitsPackets: several packets in a page, a packet over 255
// bytes, a packet continued on the next page, and pages of another
// logical stream all come out as the packets that were put in.
func TestOggSplitsPackets(t *testing.T) {
	a, b, c, d := opusPacket(10, 'a'), opusPacket(300, 'b'), opusPacket(600, 'c'), opusPacket(5, 'd')
	var s []byte
	s = append(s, headers(7)...)
	s = append(s, oggPage(0x02, 99, 0, lace(3), []byte("xyz"))...) // another stream: skipped
	s = append(s, oggPage(0, 7, 2, lace(len(a), len(b)), append(append([]byte{}, a...), b...))...)
	// c is split after 510 bytes: lacing 255,255 ends the page mid-packet.
	s = append(s, oggPage(0, 7, 3, []byte{255, 255}, c[:510])...)
	s = append(s, oggPage(0x01, 7, 4, append(lace(len(c)-510), lace(len(d))...), append(append([]byte{}, c[510:]...), d...))...)
	s = append(s, oggPage(0, 99, 1, lace(3), []byte("xyz"))...)
	p, err := newOggPackets(bytes.NewReader(s))
	if err != nil {
		t.Fatal(err)
	}
	pkts, total := drainOgg(t, p)
	want := [][]byte{a, b, c, d}
	if len(pkts) != len(want) {
		t.Fatalf("got %d packets, want %d", len(pkts), len(want))
	}
	for i := range want {
		if !bytes.Equal(pkts[i], want[i]) {
			t.Errorf("packet %d: got %d bytes, want %d", i, len(pkts[i]), len(want[i]))
		}
	}
	if total != 80*time.Millisecond {
		t.Errorf("total duration %v, want 80ms", total)
	}
}

// TestIVFTestdata: the committed pattern is 45 VP8 frames at 15 fps.
func TestIVFTestdata(t *testing.T) {
	v, err := OpenIVF(patternIVF, false)
	if err != nil {
		t.Fatal(err)
	}
	if v.Width != 320 || v.Height != 240 || v.Codec().MimeType != webrtc.MimeTypeVP8 {
		t.Errorf("%dx%d %v", v.Width, v.Height, v.Codec())
	}
	data, err := os.ReadFile(patternIVF)
	if err != nil {
		t.Fatal(err)
	}
	frames, err := newIVFFrames(bufioReader(data))
	if err != nil {
		t.Fatal(err)
	}
	n, total := 0, time.Duration(0)
	for {
		s, err := frames.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if d := s.Duration - time.Second/15; d < -time.Millisecond || d > time.Millisecond {
			t.Errorf("frame %d lasts %v, want 1/15 s", n, s.Duration)
		}
		n++
		total += s.Duration
	}
	if n != 45 || total < 2990*time.Millisecond || total > 3010*time.Millisecond {
		t.Errorf("%d frames lasting %v, want 45 lasting 3 s", n, total)
	}
}

// TestOpenErrors: missing files, wrong containers and wrong codecs are
// refused with an error that says what is wrong.
func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ivf, err := os.ReadFile(patternIVF)
	if err != nil {
		t.Fatal(err)
	}
	vp9 := append([]byte{}, ivf...)
	copy(vp9[8:], "VP90")
	vorbis := []byte("\x01vorbis\x00\x00\x00\x00\x01\x44\xac\x00\x00\x00\x00\x00\x00\x00\xee\x02\x00\x00\x00\x00\x00\xb8\x01")
	surround := opusHead()
	surround[9] = 6
	surround[18] = 1
	surround = append(surround, 4, 2, 0, 4, 1, 2, 3, 5)
	corrupt := append([]byte{}, headers(1)...)
	corrupt[60] ^= 0xff // in the second page (the first is 47 bytes)

	missing := filepath.Join(dir, "nope.ogg")
	if _, err := OpenOgg(missing, false); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "nope.ogg") {
		t.Errorf("missing Ogg: %v", err)
	}
	if _, err := OpenIVF(missing, false); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing IVF: %v", err)
	}
	for _, c := range []struct {
		name string
		open func(string, bool) error
		data []byte
		want string
	}{
		{"ivf.ogg", openOgg, ivf, "not an Ogg stream"},
		{"empty.ogg", openOgg, nil, "not an Ogg stream"},
		{"vorbis.ogg", openOgg, oggPage(0x02, 1, 0, lace(len(vorbis)), vorbis), "not Opus: the first Ogg stream is Vorbis"},
		{"surround.ogg", openOgg, oggPage(0x02, 1, 0, lace(len(surround)), surround), "only mono or stereo"},
		{"headers-only.ogg", openOgg, headers(1), "no Opus audio packets"},
		{"corrupt.ogg", openOgg, corrupt, "corrupt Ogg page 2"},
		{"ogg.ivf", openIVF, headers(1), "not a usable IVF file"},
		{"vp9.ivf", openIVF, vp9, `"VP90", not VP8`},
		{"empty.ivf", openIVF, ivf[:32], "no VP8 frames"},
	} {
		err := c.open(write(c.name, c.data), false)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), c.name) {
			t.Errorf("%s: got %v, want an error naming the file and saying %q", c.name, err, c.want)
		}
	}
}

func openOgg(p string, loop bool) error { _, err := OpenOgg(p, loop); return err }
func openIVF(p string, loop bool) error { _, err := OpenIVF(p, loop); return err }

// unboundTrack is a track in no peer connection: WriteSample accepts and
// drops samples, which is all pacing tests need.
func unboundTrack(t *testing.T, s Source) *webrtc.TrackLocalStaticSample {
	t.Helper()
	track, err := webrtc.NewTrackLocalStaticSample(s.Codec(), "test", "test")
	if err != nil {
		t.Fatal(err)
	}
	return track
}

// TestPaceRealTime: ten 20 ms samples take about 180 ms to send (the first
// goes at once), not a burst; cancelling stops at once.
func TestPaceRealTime(t *testing.T) {
	track := unboundTrack(t, &IVF{})
	n := 0
	next := func() (media.Sample, error) {
		if n == 10 {
			return media.Sample{}, io.EOF
		}
		n++
		return media.Sample{Data: []byte{0}, Duration: 20 * time.Millisecond}, nil
	}
	start := time.Now()
	if err := pace(context.Background(), track, next); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 175*time.Millisecond || d > 2*time.Second {
		t.Errorf("10 samples of 20 ms sent in %v, want about 180 ms", d)
	}

	ctx, cancel := context.WithCancel(context.Background())
	n = 0
	slow := func() (media.Sample, error) {
		if n++; n == 2 {
			cancel()
		}
		return media.Sample{Data: []byte{0}, Duration: time.Hour}, nil
	}
	if err := pace(ctx, track, slow); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled pace returned %v", err)
	}
}

// TestOggStreamEndsAtEOF: a stream (a pipe) is sent once and Run returns
// nil at its end; a truncated last page is the end, not an error.
func TestOggStreamEndsAtEOF(t *testing.T) {
	data, err := os.ReadFile(toneOgg)
	if err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	go func() {
		pw.Write(data[:6000]) // ffmpeg's first audio page (1 s) and part of the next
		pw.Close()
	}()
	o, err := OggStream(pr)
	if err != nil {
		t.Fatal(err)
	}
	track := unboundTrack(t, o)
	start := time.Now()
	if err := o.Run(context.Background(), track); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 900*time.Millisecond {
		t.Errorf("stream sent in %v: not paced", d)
	}
	if err := o.Run(context.Background(), track); err == nil {
		t.Error("a stream ran twice")
	}
}

// TestOggStreamCancelWhileBlocked: Run returns on cancel even while the
// pipe it reads from has nothing to give.
func TestOggStreamCancelWhileBlocked(t *testing.T) {
	pr, pw := io.Pipe()
	defer pw.Close()
	go pw.Write(headers(1))
	o, err := OggStream(pr)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- o.Run(ctx, unboundTrack(t, o)) }()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Run returned %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

// TestFileLoops: looped file sources go on past their end, unlooped ones
// stop there.
func TestFileLoops(t *testing.T) {
	ogg, err := OpenOgg(toneOgg, true)
	if err != nil {
		t.Fatal(err)
	}
	ivf, err := OpenIVF(patternIVF, true)
	if err != nil {
		t.Fatal(err)
	}
	once, err := OpenIVF(patternIVF, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name    string
		samples func() (func() (media.Sample, error), func() error, error)
		read    int
		end     bool
	}{
		{"looped Ogg", ogg.samples, 3 * 151, false},
		{"looped IVF", ivf.samples, 3 * 45, false},
		{"IVF once", once.samples, 45, true},
	} {
		next, closeFile, err := c.samples()
		if err != nil {
			t.Fatal(err)
		}
		var total time.Duration
		for i := 0; i < c.read; i++ {
			s, err := next()
			if err != nil {
				t.Fatalf("%s: sample %d: %v", c.name, i, err)
			}
			total += s.Duration
		}
		if _, err := next(); c.end != (err == io.EOF) {
			t.Errorf("%s: after %d samples (%v): %v", c.name, c.read, total, err)
		}
		closeFile()
	}
}

func bufioReader(b []byte) *bufio.Reader { return bufio.NewReader(bytes.NewReader(b)) }
