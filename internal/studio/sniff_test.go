package studio

import (
	"errors"
	"strings"
	"testing"
)

// webmHeader is the EBML header Chromium's MediaRecorder writes.
var webmHeader = []byte{0x1A, 0x45, 0xDF, 0xA3, 0x9F, 0x42, 0x86, 0x81, 0x01, 0x42, 0xF7, 0x81, 0x01, 0x42, 0xF2, 0x81, 0x04, 0x42, 0xF3, 0x81, 0x08, 0x42, 0x82, 0x84, 'w', 'e', 'b', 'm', 0x42, 0x87, 0x81, 0x04, 0x42, 0x85, 0x81, 0x02}

func TestSniff(t *testing.T) {
	cases := []struct {
		name string
		b    []byte
		want string
	}{
		{"webm", append(append([]byte{}, webmHeader...), 0x18, 0x53, 0x80, 0x67), MIMEWebM},
		{"ogg", []byte("OggS\x00\x02\x00\x00"), MIMEOgg},
		{"wav", []byte("RIFF\x24\x00\x00\x00WAVEfmt "), ""},
		{"mp3", []byte("ID3\x04\x00\x00"), ""},
		{"empty", nil, ""},
		{"ebml cut short", webmHeader[:20], ""},
		{"ebml other doctype", []byte{0x1A, 0x45, 0xDF, 0xA3, 0x87, 0x42, 0x82, 0x84, 'h', 't', 'm', 'l'}, ""},
		{"ogg bad version", []byte("OggS\x01"), ""},
	}
	for _, c := range cases {
		got, err := Sniff(c.b)
		if got != c.want {
			t.Errorf("%s: Sniff = %q, %v; want %q", c.name, got, err, c.want)
		}
		if c.want == "" && !errors.Is(err, ErrUnsupported) {
			t.Errorf("%s: error %v does not wrap ErrUnsupported", c.name, err)
		}
	}
}

// FuzzSniff: any bytes give a known type or ErrUnsupported, never a panic;
// a WebM answer always has the magic and a DocType inside the input.
func FuzzSniff(f *testing.F) {
	f.Add(webmHeader)
	f.Add([]byte("OggS\x00\x02"))
	f.Add([]byte{0x1A, 0x45, 0xDF, 0xA3, 0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF})
	f.Add([]byte{0x1A, 0x45, 0xDF, 0xA3, 0x84, 0x42, 0x82, 0x88, 'w'})
	f.Fuzz(func(t *testing.T, b []byte) {
		mime, err := Sniff(b)
		switch mime {
		case MIMEWebM:
			if len(b) < 4 || string(b[:4]) != string(ebmlMagic) {
				t.Fatalf("WebM without the EBML magic: %x", b)
			}
		case MIMEOgg:
			if len(b) < 5 || string(b[:4]) != "OggS" {
				t.Fatalf("Ogg without the page magic: %x", b)
			}
		case "":
			if !errors.Is(err, ErrUnsupported) {
				t.Fatalf("refusal %v does not wrap ErrUnsupported", err)
			}
		default:
			t.Fatalf("unknown type %q", mime)
		}
	})
}

func TestParseLevels(t *testing.T) {
	got, err := ParseLevels("0,0.123,1")
	if err != nil || len(got) != 3 || got[1] != 0.12 || got[2] != 1 {
		t.Errorf("ParseLevels = %v, %v", got, err)
	}
	if got, err := ParseLevels(""); err != nil || got != nil {
		t.Errorf("empty: %v, %v", got, err)
	}
	for _, bad := range []string{"x", "1.5", "-0.1", "NaN", "0,,1", strings.Repeat("0,", 64) + "0", "Inf"} {
		if _, err := ParseLevels(bad); !errors.Is(err, ErrLevels) {
			t.Errorf("ParseLevels(%q) = %v, want ErrLevels", bad, err)
		}
	}
}

// FuzzParseLevels: any text gives at most MaxLevels values in [0, 1] or
// ErrLevels, never a panic.
func FuzzParseLevels(f *testing.F) {
	f.Add("0.1,0.5,1")
	f.Add("1e-3,0")
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseLevels(s)
		if err != nil {
			if !errors.Is(err, ErrLevels) {
				t.Fatalf("error %v does not wrap ErrLevels", err)
			}
			return
		}
		if len(v) > MaxLevels {
			t.Fatalf("%d levels", len(v))
		}
		for _, x := range v {
			if !(x >= 0 && x <= 1) {
				t.Fatalf("level %v out of range", x)
			}
		}
	})
}
