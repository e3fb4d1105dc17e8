package recording

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzScanBlocks: the WebM repair scanner never panics or loops on
// whatever a crash (or a disk) left in a file.
func FuzzScanBlocks(f *testing.F) {
	f.Add([]byte{0x1a, 0x45, 0xdf, 0xa3, 0x80, 0x18, 0x53, 0x80, 0x67, 0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0x1f, 0x43, 0xb6, 0x75, 0xff, 0xe7, 0x81, 0x00, 0xa3, 0x85, 0x81, 0x00, 0x00, 0x80, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, bl := range scanBlocks(b) {
			if len(bl.data) > len(b) {
				t.Fatal("block larger than its file")
			}
		}
	})
}

// FuzzOggPages: the Ogg repair never claims more than the file has.
func FuzzOggPages(f *testing.F) {
	if b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "tone.ogg")); err == nil {
		f.Add(b[:min(len(b), 4000)])
	}
	f.Add([]byte("OggS\x00\x02\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x05hello"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if end, _ := oggPages(b); end < 0 || end > len(b) {
			t.Fatalf("end %d of %d", end, len(b))
		}
	})
}

// FuzzKeyframe: frame headers from the network never panic the parser.
func FuzzKeyframe(f *testing.F) {
	f.Add([]byte{0x82, 0x49, 0x83, 0x42, 0x00, 0x13, 0xf0, 0x0b, 0x38, 0x04})
	f.Add([]byte{0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0xe0, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		keyframe(true, b)
		keyframe(false, b)
		h264Frame(b)
		spsSize(b)
	})
}
