package source

import (
	"bytes"
	"io"
	"os"
	"testing"
)

// seeds are the committed media files, whole and cut short, and a small
// hand-made stream, so the fuzzer starts from valid structure.
func seeds(f *testing.F, path string, extra ...[]byte) {
	data, err := os.ReadFile(path)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data[:min(len(data), 4096)])
	f.Add(data[:len(data)/3])
	for _, e := range extra {
		f.Add(e)
	}
}

// FuzzOggStream: arbitrary bytes given as an Ogg stream (OggStream's
// parsing, which OpenOgg shares) end in an error or io.EOF, never a panic
// or an endless loop.
func FuzzOggStream(f *testing.F) {
	p := opusPacket(20, 'p')
	seeds(f, toneOgg, append(headers(3), oggPage(0, 3, 2, lace(len(p), len(p)), append(append([]byte{}, p...), p...))...))
	f.Fuzz(func(t *testing.T, data []byte) {
		o, err := OggStream(bytes.NewReader(data))
		if err != nil {
			return
		}
		for i := 0; ; i++ {
			if i > len(data) {
				t.Fatalf("more packets (%d) than input bytes", i)
			}
			if _, err := o.stream.sample(); err != nil {
				return
			}
		}
	})
}

// FuzzIVF: arbitrary bytes given as an IVF file (the reader OpenIVF uses)
// end in an error or io.EOF, never a panic or a huge allocation.
func FuzzIVF(f *testing.F) {
	seeds(f, patternIVF)
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := newIVFFrames(bufioReader(data))
		if err != nil {
			return
		}
		for i := 0; ; i++ {
			if i > len(data) {
				t.Fatalf("more frames (%d) than input bytes", i)
			}
			if _, err := v.next(); err == io.EOF {
				return
			} else if err != nil {
				return
			}
		}
	})
}
