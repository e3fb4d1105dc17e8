package studio

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/parley/parley/internal/signaling"
	"github.com/parley/parley/internal/store"
)

// Member is who asks: a member of the channel (the web edge checked), and
// whether they own it.
type Member struct {
	UserID string
	Owner  bool
}

// maxOffsetMS bounds a take's offset and latency: a day of timeline.
const maxOffsetMS = 24 * 3600 * 1000

// CreateTake starts a take on a track of the channel, recorded by m,
// starting at offsetMS on the song's timeline; latencyMS is the recording
// page's input+output latency, compensated on playback.
func (s *Service) CreateTake(ctx context.Context, channelID, trackID string, m Member, offsetMS, latencyMS int64) (store.Take, error) {
	if offsetMS < 0 || offsetMS > maxOffsetMS || latencyMS < 0 || latencyMS > 10_000 {
		return store.Take{}, &InvalidError{Message: "offsetMs must be 0–86400000 and latencyMs 0–10000"}
	}
	k := store.Take{ID: newID("k_"), TrackID: trackID, ChannelID: channelID, UserID: m.UserID, CreatedAt: time.Now().Truncate(time.Millisecond),
		OffsetMS: offsetMS, LatencyMS: latencyMS, State: store.TakeRecording}
	p, err := s.path(channelID, k.ID)
	if err != nil {
		return store.Take{}, err
	}
	if err := s.db.CreateTake(ctx, k); err != nil {
		return store.Take{}, notFound(err)
	}
	// The file exists from the start (empty), so a reader of a take with
	// no chunk yet waits instead of failing; its directory entry is made
	// durable once, here, rather than on every chunk.
	if err := createDurable(p); err != nil {
		s.db.DeleteTake(context.WithoutCancel(ctx), channelID, k.ID)
		return store.Take{}, err
	}
	k, err = s.db.TakeOf(ctx, channelID, k.ID) // with song and user name
	if err != nil {
		return store.Take{}, notFound(err)
	}
	s.mu.Lock()
	s.live[k.ID] = &liveTake{take: k, lastChunk: time.Now(), changed: make(chan struct{})}
	s.mu.Unlock()
	s.notify(channelID, signaling.StudioEvent{Event: signaling.StudioTakeAdded, Song: k.SongID, Track: k.TrackID, Take: k.ID, By: m.UserID, State: k.State})
	return k, nil
}

// createDurable creates an empty file and fsyncs its directory.
func createDurable(p string) error {
	dir := filepath.Dir(p)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("studio: create %s: %w", dir, err)
	}
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("studio: create take file: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("studio: create take file: %w", err)
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("studio: sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("studio: sync %s: %w", dir, err)
	}
	return nil
}

// Ack is the server's answer to a stored chunk.
type Ack struct {
	// Chunks is how many chunks the take has: the next sequence number.
	Chunks int64 `json:"chunks"`
	// Bytes is the take's length in bytes.
	Bytes int64 `json:"bytes"`
}

// Chunk stores chunk number seq of a take m records. It is acknowledged
// (a nil error) only once the bytes are on disk (fsync) and counted in the
// database. durationMS is how long the take is so far, by the recorder's
// clock; levels (from ParseLevels) are passed on to the channel's pages
// with the progress. Errors: ErrNotFound, ErrNotRecorder, ErrFinished, ErrEmptyChunk,
// *OrderError, *TooLargeError, *QuotaError, ErrUnsupported (first chunk).
// A refused chunk leaves what was stored before untouched.
func (s *Service) Chunk(ctx context.Context, channelID, takeID string, m Member, seq int64, data []byte, durationMS int64, levels []float64) (Ack, error) {
	if int64(len(data)) > s.cfg.MaxChunk {
		return Ack{}, &TooLargeError{What: "chunk", Limit: s.cfg.MaxChunk}
	}
	lt, err := s.liveTakeOf(ctx, channelID, takeID)
	if err != nil {
		return Ack{}, err
	}
	k := lt.take
	ack, ev, err := s.appendChunk(ctx, lt, m, seq, data, durationMS)
	lt.mu.Unlock()
	if err != nil {
		return Ack{}, err
	}
	if ev.Event != "" {
		s.notify(channelID, ev)
	}
	s.notify(channelID, signaling.StudioEvent{Event: signaling.StudioTakeProgress, Song: k.SongID, Track: k.TrackID, Take: k.ID, By: m.UserID,
		State: store.TakeRecording, DurationMS: lt.progressDuration(), Bytes: ack.Bytes, Chunks: ack.Chunks, Levels: levels})
	return ack, nil
}

func (lt *liveTake) progressDuration() int64 {
	lt.mu.Lock()
	defer lt.mu.Unlock()
	return lt.take.DurationMS
}

// appendChunk is Chunk with lt locked; ev is an extra event to send (a
// take that resumes after being marked interrupted).
func (s *Service) appendChunk(ctx context.Context, lt *liveTake, m Member, seq int64, data []byte, durationMS int64) (Ack, signaling.StudioEvent, error) {
	k := lt.take
	var ev signaling.StudioEvent
	switch {
	case k.UserID != m.UserID:
		return Ack{}, ev, ErrNotRecorder
	case k.State == store.TakeDone:
		return Ack{}, ev, ErrFinished
	case seq != k.Chunks:
		return Ack{}, ev, &OrderError{Got: seq, Expected: k.Chunks}
	case len(data) == 0:
		return Ack{}, ev, ErrEmptyChunk
	case k.Bytes+int64(len(data)) > s.cfg.MaxTake:
		return Ack{}, ev, &TooLargeError{What: "take", Limit: s.cfg.MaxTake}
	}
	mime := ""
	if seq == 0 {
		var err error
		if mime, err = Sniff(data); err != nil {
			return Ack{}, ev, err
		}
	}
	n := int64(len(data))
	if err := s.reserve(ctx, k.ChannelID, n); err != nil {
		return Ack{}, ev, err
	}
	p, err := s.path(k.ChannelID, k.ID)
	if err == nil {
		err = writeAt(p, k.Bytes, data)
	}
	if err == nil {
		durationMS = max(min(durationMS, maxOffsetMS), 0)
		err = s.db.AckChunk(ctx, k.ID, seq+1, k.Bytes+n, durationMS, mime)
	}
	if err != nil {
		s.unreserve(k.ChannelID, n)
		return Ack{}, ev, notFound(err)
	}
	if k.State == store.TakeInterrupted {
		ev = signaling.StudioEvent{Event: signaling.StudioTakeAdded, Song: k.SongID, Track: k.TrackID, Take: k.ID, By: m.UserID, State: store.TakeRecording}
	}
	lt.take.Chunks, lt.take.Bytes, lt.take.State = seq+1, k.Bytes+n, store.TakeRecording
	lt.take.DurationMS = max(lt.take.DurationMS, durationMS)
	if mime != "" {
		lt.take.MIME = mime
	}
	lt.lastChunk = time.Now()
	lt.wake()
	return Ack{Chunks: lt.take.Chunks, Bytes: lt.take.Bytes}, ev, nil
}

// writeAt writes data at offset off of the file at p and fsyncs it. The
// file is cut to off first: bytes past the acknowledged length are from a
// write that was never acknowledged (a crash between write and commit),
// and the resent chunk replaces them.
func writeAt(p string, off int64, data []byte) error {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("studio: open take file: %w", err)
	}
	defer f.Close()
	if err := f.Truncate(off); err != nil {
		return fmt.Errorf("studio: truncate take file: %w", err)
	}
	if _, err := f.WriteAt(data, off); err != nil {
		return fmt.Errorf("studio: write take file: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("studio: sync take file: %w", err)
	}
	return f.Close()
}

// Finish ends a take m records; durationMS is its final length.
func (s *Service) Finish(ctx context.Context, channelID, takeID string, m Member, durationMS int64) (store.Take, error) {
	lt, err := s.liveTakeOf(ctx, channelID, takeID)
	if err != nil {
		return store.Take{}, err
	}
	defer lt.mu.Unlock()
	if lt.take.UserID != m.UserID {
		return store.Take{}, ErrNotRecorder
	}
	if lt.take.State == store.TakeDone {
		return lt.take, nil // a retried finish
	}
	durationMS = max(min(durationMS, maxOffsetMS), 0)
	var evs []store.OutboxEvent
	if s.cfg.TakeEvent != nil {
		k := lt.take
		k.State = store.TakeDone
		if durationMS > 0 {
			k.DurationMS = durationMS
		}
		ev, err := s.cfg.TakeEvent(channelID, k)
		if err != nil {
			return store.Take{}, fmt.Errorf("studio: take event: %w", err)
		}
		evs = append(evs, ev)
	}
	if err := s.db.EndTake(ctx, takeID, store.TakeDone, durationMS, evs...); err != nil {
		return store.Take{}, notFound(err)
	}
	lt.take.State = store.TakeDone
	if durationMS > 0 {
		lt.take.DurationMS = durationMS
	}
	s.endLive(lt)
	k := lt.take
	s.notify(channelID, signaling.StudioEvent{Event: signaling.StudioTakeFinished, Song: k.SongID, Track: k.TrackID, Take: k.ID, By: m.UserID, State: k.State, DurationMS: k.DurationMS, Bytes: k.Bytes, Chunks: k.Chunks})
	return k, nil
}

// DeleteTake deletes a take and its file: its recorder or the channel's
// owner may.
func (s *Service) DeleteTake(ctx context.Context, channelID, takeID string, m Member) error {
	k, err := s.db.TakeOf(ctx, channelID, takeID)
	if err != nil {
		return notFound(err)
	}
	if k.UserID != m.UserID && !m.Owner {
		return ErrNotAllowed
	}
	if err := s.removeTakes(ctx, channelID, []store.Take{k}, func() error { return s.db.DeleteTake(ctx, channelID, takeID) }); err != nil {
		return notFound(err)
	}
	s.notify(channelID, signaling.StudioEvent{Event: signaling.StudioTakeDeleted, Song: k.SongID, Track: k.TrackID, Take: k.ID, By: m.UserID})
	return nil
}

// removeTakes runs del (which deletes the takes' rows) with the takes'
// uploads held off, then removes their files and gives their bytes back.
func (s *Service) removeTakes(ctx context.Context, channelID string, takes []store.Take, del func() error) error {
	var held []*liveTake
	s.mu.Lock()
	for _, k := range takes {
		if lt := s.live[k.ID]; lt != nil {
			held = append(held, lt)
		}
	}
	s.mu.Unlock()
	// One order for every caller, so two deletes never wait on each other.
	slices.SortFunc(held, func(a, b *liveTake) int { return strings.Compare(a.take.ID, b.take.ID) })
	for _, lt := range held {
		lt.mu.Lock()
	}
	defer func() {
		for _, lt := range held {
			lt.mu.Unlock()
		}
	}()
	if err := del(); err != nil {
		return err
	}
	// Give the bytes back: a held take's own count is current (its uploads
	// wait on its lock); the others' rows were read before and take no
	// uploads.
	freed := map[string]int64{}
	for _, k := range takes {
		freed[k.ID] = k.Bytes
	}
	for _, lt := range held {
		freed[lt.take.ID] = lt.take.Bytes
		if !lt.ended {
			s.endLive(lt)
		}
	}
	var n int64
	for _, b := range freed {
		n += b
	}
	s.unreserve(channelID, n)
	var errs []error
	for _, k := range takes {
		p, err := s.path(channelID, k.ID)
		if err == nil {
			err = os.Remove(p)
		}
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		// The rows are gone; a file left behind costs disk, not data.
		s.log.Error("remove take files", "channel", channelID, "err", err)
	}
	return nil
}

// ChooseTake makes takeID ("" for none) the track's chosen take.
func (s *Service) ChooseTake(ctx context.Context, channelID, trackID, takeID string, m Member) error {
	t, err := s.db.TrackOf(ctx, channelID, trackID)
	if err != nil {
		return notFound(err)
	}
	if err := s.db.ChooseTake(ctx, channelID, trackID, takeID); err != nil {
		return notFound(err)
	}
	s.notify(channelID, signaling.StudioEvent{Event: signaling.StudioTakeChosen, Song: t.SongID, Track: trackID, Take: takeID, By: m.UserID})
	return nil
}

// ChannelDeleted removes the take files of a deleted channel (its rows
// went with the channel) and forgets its takes in progress.
func (s *Service) ChannelDeleted(channelID string) {
	if !safeID.MatchString(channelID) {
		return
	}
	s.mu.Lock()
	var gone []*liveTake
	for _, lt := range s.live {
		if lt.take.ChannelID == channelID {
			gone = append(gone, lt)
		}
	}
	delete(s.usage, channelID)
	s.mu.Unlock()
	for _, lt := range gone {
		lt.mu.Lock()
		if !lt.ended {
			s.endLive(lt)
		}
		lt.mu.Unlock()
	}
	if err := os.RemoveAll(filepath.Join(s.cfg.Dir, channelID)); err != nil {
		s.log.Error("remove a deleted channel's take files", "channel", channelID, "err", err)
	}
}
