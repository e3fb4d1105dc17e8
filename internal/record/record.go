// Package record writes received WebRTC tracks to files: Opus into Ogg,
// VP8 into IVF, both of which ffmpeg and most players read as they are.
//
// A Recorder reads its track itself until the track ends or Close is
// called; Close finalizes the file (the Ogg end-of-stream page, the IVF
// header's length), so a recording is complete only after Close returns.
package record

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// Config says where a recording goes and whose it is.
type Config struct {
	// Dir is the directory the file is made in; it must exist.
	Dir string
	// Participant names who sent the track. It usually comes from the
	// network, so only [A-Za-z0-9._-] of it reaches the file name.
	Participant string
}

// Stats counts what a recorder received.
type Stats struct {
	Packets, Bytes uint64    // RTP packets and their bytes, headers included
	First, Last    time.Time // arrival of the first and the last packet; zero before any
}

// Duration is how long media flowed: from the first packet to the last.
func (s Stats) Duration() time.Duration { return s.Last.Sub(s.First) }

// Recorder writes one remote track to a file.
type Recorder struct {
	path  string
	track *webrtc.TrackRemote
	w     writer
	log   *slog.Logger

	mu    sync.Mutex
	stats Stats

	done      chan struct{} // closed when the read loop has finalized the file
	err       error         // set before done is closed
	closeOnce sync.Once
}

// writer is one container format.
type writer interface {
	writeRTP(p *rtp.Packet) error
	close() error
}

// Start makes the file for track in cfg.Dir and records into it until the
// track ends or Close is called. Only Opus and VP8 can be recorded.
func Start(cfg Config, track *webrtc.TrackRemote, log *slog.Logger) (*Recorder, error) {
	mime := track.Codec().MimeType
	var ext string
	switch {
	case strings.EqualFold(mime, webrtc.MimeTypeOpus):
		ext = ".ogg"
	case strings.EqualFold(mime, webrtc.MimeTypeVP8):
		ext = ".ivf"
	default:
		return nil, fmt.Errorf("record: cannot record %s (only Opus and VP8)", mime)
	}
	f, err := create(cfg.Dir, safeName(cfg.Participant)+"-"+track.Kind().String(), ext, time.Now())
	if err != nil {
		return nil, err
	}
	var w writer
	if ext == ".ogg" {
		channels := track.Codec().Channels
		if channels == 0 {
			channels = 2
		}
		w, err = newOgg(f, channels)
	} else {
		w, err = newIVF(f)
	}
	if err != nil {
		os.Remove(f.Name())
		return nil, fmt.Errorf("record: %s: %w", f.Name(), err)
	}
	r := &Recorder{path: f.Name(), track: track, w: w, done: make(chan struct{}),
		log: log.With("file", f.Name(), "codec", mime)}
	r.log.Info("recording")
	go r.run()
	return r, nil
}

// Path is the recording's file.
func (r *Recorder) Path() string { return r.path }

// Stats returns what has been received so far.
func (r *Recorder) Stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stats
}

// Close stops recording and finalizes the file. It may be called more than
// once and after the track ended by itself.
func (r *Recorder) Close() error {
	r.closeOnce.Do(func() {
		// Unblocks the read loop; an error means the track is gone, in
		// which case the loop ends by itself.
		_ = r.track.SetReadDeadline(time.Now())
	})
	<-r.done
	return r.err
}

// run reads the track until it fails (ended, or Close's deadline) and then
// finalizes the file.
func (r *Recorder) run() {
	defer close(r.done)
	var werr error
	for {
		// A fresh buffer per packet: the VP8 writer keeps packets until
		// their frame is complete.
		buf := make([]byte, 1500)
		n, _, err := r.track.Read(buf)
		if err != nil {
			r.log.Debug("track read ended", "err", err)
			break
		}
		var p rtp.Packet
		if err := p.Unmarshal(buf[:n]); err != nil {
			continue
		}
		now := time.Now()
		r.mu.Lock()
		if r.stats.Packets == 0 {
			r.stats.First = now
		}
		r.stats.Packets++
		r.stats.Bytes += uint64(n)
		r.stats.Last = now
		r.mu.Unlock()
		if err := r.w.writeRTP(&p); err != nil {
			// A bad packet is dropped; a failing disk ends the recording.
			var pe *fs.PathError
			if errors.As(err, &pe) {
				werr = fmt.Errorf("record: %w", err)
				r.log.Error("recording stopped", "err", err)
				break
			}
			r.log.Debug("packet not recorded", "err", err)
		}
	}
	if err := r.w.close(); err != nil {
		werr = errors.Join(werr, fmt.Errorf("record: finalize %s: %w", r.path, err))
	}
	r.err = werr
	s := r.Stats()
	r.log.Info("recording closed", "packets", s.Packets, "bytes", s.Bytes, "duration", s.Duration().Round(time.Millisecond))
}

// create makes a new file named base-TIME.ext in dir, adding -2, -3, ...
// if that name is taken, never overwriting a file.
func create(dir, base, ext string, now time.Time) (*os.File, error) {
	stem := filepath.Join(dir, base+"-"+now.Format("20060102-150405"))
	for i := 1; i < 1000; i++ {
		name := stem + ext
		if i > 1 {
			name = fmt.Sprintf("%s-%d%s", stem, i, ext)
		}
		f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("record: %w", err)
		}
		return f, nil
	}
	return nil, fmt.Errorf("record: too many recordings named %s in this second", stem)
}

// maxName bounds the participant part of a file name.
const maxName = 64

// safeName keeps a participant name's letters, digits, dots, dashes and
// underscores; every run of anything else (slashes included, so no path
// can be formed) becomes one underscore. Leading dots and dashes are
// dropped, so a name can make neither a hidden file nor "..".
func safeName(s string) string {
	var b strings.Builder
	under := false
	for _, c := range s {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_'
		switch {
		case ok:
			b.WriteRune(c)
			under = c == '_'
		case !under:
			b.WriteByte('_')
			under = true
		}
		if b.Len() >= maxName {
			break
		}
	}
	name := strings.Trim(b.String(), "._-")
	if len(name) > maxName {
		name = strings.TrimRight(name[:maxName], "._-")
	}
	if name == "" {
		return "participant"
	}
	return name
}
