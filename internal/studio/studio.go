// Package studio keeps a channel's studio: songs, their tracks, and the
// takes members record on them. Metadata lives in the store; take audio in
// files under Config.Dir (one per take: <dir>/<channel>/<take>).
//
// How to drive it: the web edge checks membership, then calls the Service
// with the channel and the user. Takes are uploaded in numbered chunks
// (Chunk): each is checked (order, size, the channel's quota, the
// container on the first), written and fsynced, then counted in the
// database, and only then acknowledged, so an acknowledged chunk survives a
// crash. Readers (ServeAudio) get a finished take with range requests and a
// take in progress as a stream that grows until the take ends. A take whose
// uploader goes quiet for Config.Idle is marked interrupted, with all it
// received kept. Every change is passed to the Notify callback.
package studio

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/parley/parley/internal/signaling"
	"github.com/parley/parley/internal/store"
)

// Defaults of Config's zero fields.
const (
	DefaultMaxChunk = 1 << 20   // 1 MiB: half a second of Opus is ~8 KB
	DefaultMaxTake  = 512 << 20 // 512 MiB: hours of Opus at music bitrates
	DefaultQuota    = 2 << 30   // 2 GiB per channel
	DefaultIdle     = 15 * time.Second
	maxNameRunes    = 100
)

// Config tunes the studio.
type Config struct {
	// Dir holds the take files (the data directory's studio/; call
	// recordings live apart, in recordings/).
	Dir string
	// MaxChunk and MaxTake bound one chunk and one take, in bytes.
	MaxChunk int64
	MaxTake  int64
	// Quota bounds the bytes of all takes of one channel.
	Quota int64
	// Idle is how long a take may go without a chunk before it is marked
	// interrupted.
	Idle time.Duration
	// TakeEvent, if set, builds the webhook outbox event of a take its
	// recorder finished; it is written in the same transaction as the
	// take's new state. An error refuses the finish.
	TakeEvent func(channelID string, k store.Take) (store.OutboxEvent, error)
}

func (c Config) withDefaults() Config {
	if c.MaxChunk <= 0 {
		c.MaxChunk = DefaultMaxChunk
	}
	if c.MaxTake <= 0 {
		c.MaxTake = DefaultMaxTake
	}
	if c.Quota <= 0 {
		c.Quota = DefaultQuota
	}
	if c.Idle <= 0 {
		c.Idle = DefaultIdle
	}
	return c
}

// Notify receives every studio change of a channel, to pass on to the
// channel's open pages. It must not block for long.
type Notify func(channelID string, ev signaling.StudioEvent)

// Errors; their text is meant for the user.
var (
	ErrNotFound    = errors.New("no such song, track or take in this channel: it may have been deleted; reload the studio")
	ErrNotRecorder = errors.New("only the member who records this take can upload to it or finish it")
	ErrNotAllowed  = errors.New("only the member who recorded it or the channel's owner can delete this")
	ErrFinished    = errors.New("this take is finished and takes no more chunks: start a new take")
	ErrEmptyChunk  = errors.New("the chunk is empty: send the bytes MediaRecorder produced")
)

// InvalidError is a bad field (a name that is empty or too long).
type InvalidError struct{ Message string }

func (e *InvalidError) Error() string { return e.Message }

// OrderError is a chunk whose sequence number is not the one the server
// expects; Expected is how many chunks the server has: resend from there.
type OrderError struct{ Got, Expected int64 }

func (e *OrderError) Error() string {
	return fmt.Sprintf("chunk %d is out of order: the server has %d chunks of this take; send chunk %d next", e.Got, e.Expected, e.Expected)
}

// TooLargeError is a chunk or a take over its size limit.
type TooLargeError struct {
	What  string // "chunk" or "take"
	Limit int64
}

func (e *TooLargeError) Error() string {
	if e.What == "chunk" {
		return fmt.Sprintf("the chunk is larger than the limit of %d bytes: record with a shorter timeslice (250–500 ms)", e.Limit)
	}
	return fmt.Sprintf("the take would grow past the limit of %d bytes: stop it and start a new take", e.Limit)
}

// QuotaError is an upload that would take the channel past its quota.
type QuotaError struct{ Used, Quota int64 }

func (e *QuotaError) Error() string {
	return fmt.Sprintf("the channel's studio storage is full (%d of %d bytes used): delete takes you no longer need, or ask the server's operator to raise --studio-quota", e.Used, e.Quota)
}

// Service is the studio of every channel on this server. It is safe for
// concurrent use.
type Service struct {
	cfg    Config
	log    *slog.Logger
	db     *store.DB
	notify Notify

	mu    sync.Mutex
	live  map[string]*liveTake // takes that are recording, by id
	usage map[string]int64     // bytes used (and reserved) per channel, loaded on first use

	stop chan struct{}
	done sync.WaitGroup
}

// liveTake is a take being recorded. mu serialises its uploads; changed is
// closed (and replaced) whenever bytes arrive or the take ends, waking the
// readers that stream it.
type liveTake struct {
	mu        sync.Mutex
	take      store.Take
	lastChunk time.Time
	changed   chan struct{}
	ended     bool // finished, interrupted or deleted: no longer in Service.live
}

func (lt *liveTake) wake() {
	close(lt.changed)
	lt.changed = make(chan struct{})
}

// New returns the studio and starts its watch over takes in progress
// (those left recording by a previous run included). Close stops it.
func New(ctx context.Context, cfg Config, log *slog.Logger, db *store.DB, notify Notify) (*Service, error) {
	cfg = cfg.withDefaults()
	if cfg.Dir == "" {
		return nil, errors.New("studio: a directory for take files is needed")
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("studio: create %s: %w", cfg.Dir, err)
	}
	if notify == nil {
		notify = func(string, signaling.StudioEvent) {}
	}
	s := &Service{cfg: cfg, log: log, db: db, notify: notify, live: map[string]*liveTake{}, usage: map[string]int64{}, stop: make(chan struct{})}
	recording, err := db.TakesInState(ctx, store.TakeRecording)
	if err != nil {
		return nil, fmt.Errorf("studio: %w", err)
	}
	now := time.Now()
	for _, k := range recording {
		// The uploader gets a full idle period from now to come back.
		s.live[k.ID] = &liveTake{take: k, lastChunk: now, changed: make(chan struct{})}
	}
	s.done.Add(1)
	go s.watch()
	return s, nil
}

// Close stops the watch over idle takes.
func (s *Service) Close() {
	close(s.stop)
	s.done.Wait()
}

// Quota is the per-channel quota in bytes.
func (s *Service) Quota() int64 { return s.cfg.Quota }

// MaxChunk is the largest chunk accepted, in bytes.
func (s *Service) MaxChunk() int64 { return s.cfg.MaxChunk }

var idEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

func newID(prefix string) string {
	b := make([]byte, 10)
	rand.Read(b)
	return prefix + strings.ToLower(idEncoding.EncodeToString(b))
}

// safeID accepts the ids that may name a file: the store's channel ids and
// the studio's own.
var safeID = regexp.MustCompile(`^[a-z0-9_]{1,64}$`)

func (s *Service) path(channelID, takeID string) (string, error) {
	if !safeID.MatchString(channelID) || !safeID.MatchString(takeID) {
		return "", fmt.Errorf("studio: id %q/%q cannot name a file", channelID, takeID)
	}
	return filepath.Join(s.cfg.Dir, channelID, takeID), nil
}

func cleanName(what, name string) (string, error) {
	name = strings.TrimSpace(name)
	switch {
	case name == "":
		return "", &InvalidError{Message: "give the " + what + " a name"}
	case !utf8.ValidString(name) || utf8.RuneCountInString(name) > maxNameRunes:
		return "", &InvalidError{Message: fmt.Sprintf("a %s name has at most %d characters", what, maxNameRunes)}
	}
	return name, nil
}

func notFound(err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("%w (%v)", ErrNotFound, err)
	}
	return err
}

// watch marks takes interrupted when their uploader has been quiet for
// Config.Idle.
func (s *Service) watch() {
	defer s.done.Done()
	every := max(s.cfg.Idle/4, 50*time.Millisecond)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case now := <-t.C:
			s.mu.Lock()
			var idle []*liveTake
			for _, lt := range s.live {
				idle = append(idle, lt)
			}
			s.mu.Unlock()
			for _, lt := range idle {
				s.interruptIfIdle(lt, now)
			}
		}
	}
}

func (s *Service) interruptIfIdle(lt *liveTake, now time.Time) {
	lt.mu.Lock()
	if lt.ended || now.Sub(lt.lastChunk) < s.cfg.Idle {
		lt.mu.Unlock()
		return
	}
	if lt.take.State != store.TakeRecording {
		// Loaded for an upload that was refused (a finished take, or an
		// interrupted one that did not resume): nothing to mark.
		s.endLive(lt)
		lt.mu.Unlock()
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.db.EndTake(ctx, lt.take.ID, store.TakeInterrupted, 0); err != nil && !errors.Is(err, store.ErrNotFound) {
		lt.mu.Unlock()
		s.log.Warn("mark take interrupted", "take", lt.take.ID, "err", err)
		return
	}
	lt.take.State = store.TakeInterrupted
	s.endLive(lt)
	k := lt.take
	lt.mu.Unlock()
	s.log.Info("take interrupted: no chunk for a while", "channel", k.ChannelID, "take", k.ID, "bytes", k.Bytes, "idle", s.cfg.Idle)
	s.notify(k.ChannelID, signaling.StudioEvent{Event: signaling.StudioTakeInterrupted, Song: k.SongID, Track: k.TrackID, Take: k.ID, State: k.State, DurationMS: k.DurationMS, Bytes: k.Bytes, Chunks: k.Chunks})
}

// endLive forgets a live take and wakes its readers. Called with lt.mu held.
func (s *Service) endLive(lt *liveTake) {
	lt.ended = true
	lt.wake()
	s.mu.Lock()
	if s.live[lt.take.ID] == lt {
		delete(s.live, lt.take.ID)
	}
	s.mu.Unlock()
}

// liveTakeOf returns the live state of a take of the channel, loading it
// from the store for a take that is not recording now (an interrupted take
// may resume). It returns ErrNotFound for an unknown take.
func (s *Service) liveTakeOf(ctx context.Context, channelID, takeID string) (*liveTake, error) {
	for {
		s.mu.Lock()
		lt := s.live[takeID]
		s.mu.Unlock()
		if lt != nil {
			lt.mu.Lock()
			if lt.take.ChannelID != channelID {
				lt.mu.Unlock()
				return nil, ErrNotFound
			}
			if !lt.ended {
				return lt, nil // locked
			}
			lt.mu.Unlock()
			continue // it just ended: reload
		}
		k, err := s.db.TakeOf(ctx, channelID, takeID)
		if err != nil {
			return nil, notFound(err)
		}
		lt = &liveTake{take: k, lastChunk: time.Now(), changed: make(chan struct{})}
		lt.mu.Lock()
		s.mu.Lock()
		if s.live[takeID] != nil {
			s.mu.Unlock()
			lt.mu.Unlock()
			continue // someone else loaded it first
		}
		s.live[takeID] = lt
		s.mu.Unlock()
		return lt, nil // locked
	}
}

// reserve counts n more bytes against the channel's quota, or refuses.
func (s *Service) reserve(ctx context.Context, channelID string, n int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	used, ok := s.usage[channelID]
	if !ok {
		var err error
		if used, err = s.db.StudioBytes(ctx, channelID); err != nil {
			return err
		}
	}
	if used+n > s.cfg.Quota {
		s.usage[channelID] = used
		return &QuotaError{Used: used, Quota: s.cfg.Quota}
	}
	s.usage[channelID] = used + n
	return nil
}

// unreserve gives n bytes back to the channel.
func (s *Service) unreserve(channelID string, n int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if used, ok := s.usage[channelID]; ok {
		s.usage[channelID] = max(used-n, 0)
	}
}

// Usage returns the bytes the channel's takes use.
func (s *Service) Usage(ctx context.Context, channelID string) (int64, error) {
	s.mu.Lock()
	used, ok := s.usage[channelID]
	s.mu.Unlock()
	if ok {
		return used, nil
	}
	return s.db.StudioBytes(ctx, channelID)
}
