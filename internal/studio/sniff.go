package studio

import (
	"errors"
	"fmt"
)

// Content types of takes, decided by Sniff from the first bytes.
const (
	MIMEWebM = "audio/webm"
	MIMEOgg  = "audio/ogg"
)

// ErrUnsupported is returned (wrapped) when a take's first chunk is neither
// WebM nor Ogg.
var ErrUnsupported = errors.New("a take must be WebM (Matroska/EBML) or Ogg audio, as MediaRecorder makes it; this upload starts with neither")

// ebmlMagic is the EBML header element's ID; oggMagic starts every Ogg page.
var (
	ebmlMagic = []byte{0x1A, 0x45, 0xDF, 0xA3}
	oggMagic  = []byte("OggS")
)

// EBML element IDs read from the header.
const (
	idEBML    = 0x1A45DFA3
	idDocType = 0x4282
)

// maxHeaderBytes bounds the EBML header Sniff reads: real ones are about
// 40 bytes, and a header claiming more is not a recording.
const maxHeaderBytes = 4096

// Sniff returns the content type of a take whose first bytes are b: WebM
// when b starts with an EBML header whose DocType is "webm" (or
// "matroska"), Ogg when b starts with an Ogg page (version 0). Anything
// else is an error wrapping ErrUnsupported that says what was found. It
// never reads past b and never panics.
func Sniff(b []byte) (string, error) {
	switch {
	case len(b) >= 5 && string(b[:4]) == string(oggMagic):
		if b[4] != 0 {
			return "", fmt.Errorf("%w (Ogg page version %d; only version 0 exists)", ErrUnsupported, b[4])
		}
		return MIMEOgg, nil
	case len(b) >= 4 && string(b[:4]) == string(ebmlMagic):
		doc, err := ebmlDocType(b)
		if err != nil {
			return "", fmt.Errorf("%w (%v)", ErrUnsupported, err)
		}
		if doc != "webm" && doc != "matroska" {
			return "", fmt.Errorf("%w (EBML document type %q)", ErrUnsupported, doc)
		}
		return MIMEWebM, nil
	}
	return "", ErrUnsupported
}

// ebmlDocType reads the DocType from the EBML header at the start of b.
func ebmlDocType(b []byte) (string, error) {
	id, n, err := readVint(b, true)
	if err != nil || id != idEBML {
		return "", errors.New("no EBML header")
	}
	b = b[n:]
	size, n, err := readVint(b, false)
	if err != nil {
		return "", errors.New("EBML header size unreadable")
	}
	b = b[n:]
	if size > maxHeaderBytes {
		return "", fmt.Errorf("EBML header of %d bytes is too large", size)
	}
	if uint64(len(b)) < size {
		return "", errors.New("EBML header cut short: send it whole in the first chunk")
	}
	body := b[:size]
	for len(body) > 0 {
		id, n, err := readVint(body, true)
		if err != nil {
			return "", errors.New("EBML header element unreadable")
		}
		body = body[n:]
		sz, n, err := readVint(body, false)
		if err != nil || sz > uint64(len(body)-n) {
			return "", errors.New("EBML header element overruns the header")
		}
		body = body[n:]
		if id == idDocType {
			return string(body[:sz]), nil
		}
		body = body[sz:]
	}
	return "", errors.New("EBML header has no DocType")
}

// readVint reads an EBML variable-length integer: the ID form keeps its
// length marker bits (keepMarker), the size form drops them. It returns
// the value and how many bytes it took.
func readVint(b []byte, keepMarker bool) (uint64, int, error) {
	if len(b) == 0 {
		return 0, 0, errors.New("empty")
	}
	first := b[0]
	if first == 0 {
		return 0, 0, errors.New("invalid length marker")
	}
	length := 1
	for mask := byte(0x80); first&mask == 0; mask >>= 1 {
		length++
	}
	if length > 8 || len(b) < length {
		return 0, 0, errors.New("truncated")
	}
	v := uint64(first)
	if !keepMarker {
		v &= uint64(0xFF >> length)
	}
	for i := 1; i < length; i++ {
		v = v<<8 | uint64(b[i])
	}
	return v, length, nil
}
