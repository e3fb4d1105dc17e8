package recording

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/at-wat/ebml-go"
	"github.com/at-wat/ebml-go/webm"
)

// Recover finds recordings a crash interrupted (their manifest still
// says "recording"), repairs their files and marks them interrupted with
// their real duration. Call it at startup, before any recording starts.
// It returns the ids it repaired.
func (s *Service) Recover() ([]string, error) {
	manifests, err := filepath.Glob(filepath.Join(s.cfg.Dir, "*", "*", "manifest.json"))
	if err != nil {
		return nil, fmt.Errorf("recording: recover: %w", err)
	}
	var ids []string
	for _, mf := range manifests {
		dir := filepath.Dir(mf)
		m, err := readManifest(dir)
		if err != nil || m.State != StateRecording {
			continue
		}
		s.mu.Lock()
		_, live := s.active[m.ChannelID]
		s.mu.Unlock()
		if live {
			continue
		}
		s.repair(dir, &m)
		if err := writeManifest(dir, &m); err != nil {
			return ids, err
		}
		s.log.Warn("recording interrupted by a server stop: files repaired", "channel_id", m.ChannelID, "recording", m.ID, "duration", time.Duration(m.DurationMS)*time.Millisecond)
		ids = append(ids, m.ID)
	}
	s.used.Store(dirSize(s.cfg.Dir))
	return ids, nil
}

func (s *Service) repair(dir string, m *Manifest) {
	var end int64
	kept := m.Files[:0]
	for _, f := range m.Files {
		p := filepath.Join(dir, f.Name)
		var dur int64
		var err error
		switch filepath.Ext(f.Name) {
		case ".ogg":
			dur, err = repairOgg(p)
		case ".webm", ".mkv":
			dur, err = repairWebM(s, p)
		default:
			err = errors.New("unknown kind of file")
		}
		if err != nil {
			s.log.Warn("recording file could not be repaired: dropped", "file", p, "err", err)
			os.Remove(p)
			continue
		}
		f.DurationMS, f.Repaired = dur, true
		if fi, err := os.Stat(p); err == nil {
			f.Bytes = fi.Size()
		}
		end = max(end, f.StartMS+dur)
		kept = append(kept, f)
	}
	m.Files = kept
	m.State = StateInterrupted
	m.StopReason = "the server stopped while recording"
	m.DurationMS = end
	t := m.StartedAt.Add(time.Duration(end) * time.Millisecond)
	m.EndedAt = &t
}

// repairOgg cuts an Ogg file after its last complete page (Ogg pages are
// self-contained, so what comes before plays) and returns its duration
// from that page's granule position (48 kHz samples for Opus).
func repairOgg(path string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	good, granule := oggPages(b)
	if good == 0 {
		return 0, errors.New("no complete Ogg page")
	}
	if good < len(b) {
		if err := os.Truncate(path, int64(good)); err != nil {
			return 0, err
		}
	}
	return int64(granule) * 1000 / 48000, nil
}

// oggPages walks b's Ogg pages: the end of the last complete one, and
// the last granule position seen.
func oggPages(b []byte) (end int, granule uint64) {
	off := 0
	for off+27 <= len(b) {
		if !bytes.Equal(b[off:off+4], []byte("OggS")) {
			break
		}
		n := int(b[off+26])
		if off+27+n > len(b) {
			break
		}
		size := 27 + n
		for _, l := range b[off+27 : off+27+n] {
			size += int(l)
		}
		if off+size > len(b) {
			break
		}
		if g := binary.LittleEndian.Uint64(b[off+6:]); g != ^uint64(0) {
			granule = g
		}
		off += size
		end = off
	}
	return end, granule
}

// repairWebM rewrites a WebM file the crash left without its final size,
// duration and the rest: every complete block is copied into a new file
// that the writer finishes properly. It returns the duration (the last
// block's time).
func repairWebM(svc *Service, path string) (dur int64, err error) {
	in, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer in.Close()
	var head struct {
		Segment struct {
			Tracks webm.Tracks `ebml:"Tracks,stop"`
		}
	}
	if err := ebml.Unmarshal(in, &head); !errors.Is(err, ebml.ErrReadStopped) {
		return 0, fmt.Errorf("read header: %v", err)
	}
	if len(head.Segment.Tracks.TrackEntry) != 1 {
		return 0, errors.New("no video track")
	}
	te := head.Segment.Tracks.TrackEntry[0]
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	blocks := scanBlocks(data)
	if len(blocks) == 0 {
		return 0, errors.New("no complete frame")
	}
	tmp := path + ".repair"
	out, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return 0, err
	}
	cf := &countingFile{f: out, svc: svc}
	wm, err := newWebM(cf, te, svc.log)
	if err != nil {
		out.Close()
		os.Remove(tmp)
		return 0, err
	}
	for _, b := range blocks {
		wm.Write(b.key, b.ts, b.data)
		dur = b.ts
	}
	wm.Close()
	if err := cf.failed(); err != nil {
		os.Remove(tmp)
		return 0, err
	}
	return dur, os.Rename(tmp, path)
}

// block is one SimpleBlock of a WebM file.
type block struct {
	key  bool
	ts   int64 // milliseconds
	data []byte
}

// EBML ids walked by scanBlocks.
const (
	idSegment     = 0x18538067
	idCluster     = 0x1F43B675
	idTimecode    = 0xE7
	idSimpleBlock = 0xA3
)

// scanBlocks reads the SimpleBlocks of a WebM file as far as it is
// whole: a file cut short by a crash ends in the middle of an element,
// which is where the scan stops. Segments and clusters of unknown size
// (a live file) are entered; every other element is skipped by its size.
func scanBlocks(b []byte) []block {
	var out []block
	var cluster int64
	for off := 0; off < len(b); {
		id, n := readVint(b[off:], true)
		if n == 0 {
			break
		}
		size, m := readVint(b[off+n:], false)
		if m == 0 {
			break
		}
		body := off + n + m
		unknown := size == (1<<(7*uint(m)))-1
		switch id {
		case idSegment, idCluster:
			off = body // enter
			continue
		}
		if unknown || body+int(size) > len(b) || size < 0 {
			break // truncated here
		}
		el := b[body : body+int(size)]
		switch id {
		case idTimecode:
			cluster = 0
			for _, x := range el {
				cluster = cluster<<8 | int64(x)
			}
		case idSimpleBlock:
			_, tn := readVint(el, false)
			if tn == 0 || len(el) < tn+3 {
				break
			}
			rel := int16(uint16(el[tn])<<8 | uint16(el[tn+1]))
			out = append(out, block{key: el[tn+2]&0x80 != 0, ts: cluster + int64(rel), data: el[tn+3:]})
		}
		off = body + int(size)
	}
	return out
}

// readVint reads an EBML variable-length integer: an element id (the
// length marker kept) or a size (marker removed). n is 0 if b is short.
func readVint(b []byte, keepMarker bool) (v int64, n int) {
	if len(b) == 0 || b[0] == 0 {
		return 0, 0
	}
	n = 1
	for mask := byte(0x80); b[0]&mask == 0; mask >>= 1 {
		n++
	}
	if n > 8 || len(b) < n {
		return 0, 0
	}
	v = int64(b[0])
	if !keepMarker {
		v &= int64(0xff >> n)
	}
	for _, x := range b[1:n] {
		v = v<<8 | int64(x)
	}
	return v, n
}
