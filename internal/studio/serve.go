package studio

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/parley/parley/internal/store"
)

// ServeAudio answers a request for a take's audio. A take that is not
// being recorded is served whole with range requests (seeking) and its
// content type; a take in progress is streamed from its first byte as it
// grows, until it ends or the reader goes away. The caller has checked
// membership. An error is returned only before anything was written
// (ErrNotFound for an unknown take); the caller turns it into a status.
func (s *Service) ServeAudio(w http.ResponseWriter, r *http.Request, channelID, takeID string) error {
	k, err := s.db.TakeOf(r.Context(), channelID, takeID)
	if err != nil {
		return notFound(err)
	}
	p, err := s.path(channelID, takeID)
	if err != nil {
		return err
	}
	s.mu.Lock()
	lt := s.live[takeID]
	s.mu.Unlock()
	if r.URL.Query().Get("download") != "" {
		ext := ".webm"
		if k.MIME == MIMEOgg {
			ext = ".ogg"
		}
		w.Header().Set("Content-Disposition", `attachment; filename="take-`+strings.TrimPrefix(k.ID, "k_")+ext+`"`)
	}
	if lt != nil {
		lt.mu.Lock()
		live := !lt.ended && lt.take.State == store.TakeRecording
		lt.mu.Unlock()
		if live {
			s.stream(r.Context(), w, p, lt)
			return nil
		}
		// It ended between the two looks: read its final row.
		if k, err = s.db.TakeOf(r.Context(), channelID, takeID); err != nil {
			return notFound(err)
		}
	}
	f, err := os.Open(p)
	if err != nil {
		return fmt.Errorf("studio: open take file: %w", err)
	}
	defer f.Close()
	w.Header().Set("Content-Type", contentType(k.MIME))
	w.Header().Set("X-Take-State", k.State)
	w.Header().Set("Cache-Control", "private, no-cache")
	// The length names the content: an interrupted take that resumes
	// grows, so a cached copy must not be revalidated by time.
	w.Header().Set("ETag", fmt.Sprintf(`"%s-%d-%s"`, k.ID, k.Bytes, k.State))
	// Only acknowledged bytes: anything past them is an unacknowledged
	// write that a resent chunk will replace.
	http.ServeContent(w, r, "", time.Time{}, io.NewSectionReader(f, 0, k.Bytes))
	return nil
}

func contentType(mime string) string {
	if mime == "" {
		return "application/octet-stream"
	}
	return mime
}

// stream sends a take in progress as it grows: whatever is stored, then
// each new chunk as it is acknowledged, until the take ends (finished,
// interrupted, deleted) or ctx ends. It ignores Range: a growing take has
// no length yet, so it is always sent from its first byte (status 200,
// no Content-Length), which media elements play as a live stream.
func (s *Service) stream(ctx context.Context, w http.ResponseWriter, p string, lt *liveTake) {
	rc := http.NewResponseController(w)
	var f *os.File
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	var pos int64
	started := false
	for {
		lt.mu.Lock()
		bytes, mime, ended, changed := lt.take.Bytes, lt.take.MIME, lt.ended || lt.take.State != store.TakeRecording, lt.changed
		lt.mu.Unlock()
		if !started && (bytes > 0 || ended) {
			// Headers wait for the first chunk, whose bytes decide the type.
			h := w.Header()
			h.Set("Content-Type", contentType(mime))
			h.Set("Cache-Control", "no-store")
			h.Set("X-Take-State", store.TakeRecording)
			w.WriteHeader(http.StatusOK)
			started = true
		}
		if pos < bytes {
			if f == nil {
				var err error
				if f, err = os.Open(p); err != nil {
					s.log.Warn("stream take: open", "err", err)
					return
				}
			}
			if _, err := io.Copy(w, io.NewSectionReader(f, pos, bytes-pos)); err != nil {
				return // the reader went away
			}
			pos = bytes
			if err := rc.Flush(); err != nil {
				return
			}
		}
		if ended {
			return
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return
		case <-s.stop:
			return
		}
	}
}
