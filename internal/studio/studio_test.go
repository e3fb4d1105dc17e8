package studio_test

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/parley/parley/internal/signaling"
	"github.com/parley/parley/internal/store"
	"github.com/parley/parley/internal/store/storetest"
	"github.com/parley/parley/internal/studio"
)

var webm = []byte{0x1A, 0x45, 0xDF, 0xA3, 0x87, 0x42, 0x82, 0x84, 'w', 'e', 'b', 'm'}

// events records what the studio announced.
type events struct {
	mu  sync.Mutex
	got []signaling.StudioEvent
	ch  chan signaling.StudioEvent
}

func (e *events) notify(_ string, ev signaling.StudioEvent) {
	e.mu.Lock()
	e.got = append(e.got, ev)
	e.mu.Unlock()
	select {
	case e.ch <- ev:
	default:
	}
}

func newStudio(t *testing.T, cfg studio.Config) (*studio.Service, *events, string, studio.Member) {
	t.Helper()
	ctx := context.Background()
	db := storetest.Open(t)
	u := store.User{ID: "u_ann", Username: "ann", DisplayName: "Ann", Email: "ann@example.org", PasswordHash: "x", CreatedAt: time.Now()}
	if err := db.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	c := store.Channel{ID: "c_band", Name: "band", OwnerID: u.ID, CreatedAt: time.Now(), Mode: store.ModeAuto}
	if err := db.CreateChannel(ctx, c); err != nil {
		t.Fatal(err)
	}
	cfg.Dir = t.TempDir()
	ev := &events{ch: make(chan signaling.StudioEvent, 64)}
	s, err := studio.New(ctx, cfg, slog.New(slog.DiscardHandler), db, ev.notify)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s, ev, c.ID, studio.Member{UserID: u.ID, Owner: true}
}

func newTake(t *testing.T, s *studio.Service, ch string, m studio.Member) store.Take {
	t.Helper()
	ctx := context.Background()
	song, err := s.CreateSong(ctx, ch, m, "Tune")
	if err != nil {
		t.Fatal(err)
	}
	tr, err := s.CreateTrack(ctx, ch, song.ID, m, "Bass")
	if err != nil {
		t.Fatal(err)
	}
	k, err := s.CreateTake(ctx, ch, tr.ID, m, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestTakeSizeLimit: a chunk that would take a take past MaxTake is
// refused, and the take keeps what it had.
func TestTakeSizeLimit(t *testing.T) {
	s, _, ch, m := newStudio(t, studio.Config{MaxTake: 100})
	k := newTake(t, s, ch, m)
	ctx := context.Background()
	if _, err := s.Chunk(ctx, ch, k.ID, m, 0, append(append([]byte{}, webm...), make([]byte, 80)...), 250, nil); err != nil {
		t.Fatal(err)
	}
	_, err := s.Chunk(ctx, ch, k.ID, m, 1, make([]byte, 20), 500, nil)
	var large *studio.TooLargeError
	if !errors.As(err, &large) || large.What != "take" || large.Limit != 100 {
		t.Fatalf("chunk past the take limit: %v", err)
	}
	ack, err := s.Chunk(ctx, ch, k.ID, m, 1, make([]byte, 8), 500, nil)
	if err != nil || ack.Chunks != 2 || ack.Bytes != int64(len(webm)+80+8) {
		t.Errorf("a chunk that fits: %+v, %v", ack, err)
	}
}

// TestFinishedTakeIsNotInterrupted: a finished take that an upload
// touches again is not marked interrupted by the idle watch.
func TestFinishedTakeIsNotInterrupted(t *testing.T) {
	s, ev, ch, m := newStudio(t, studio.Config{Idle: 100 * time.Millisecond})
	k := newTake(t, s, ch, m)
	ctx := context.Background()
	if _, err := s.Chunk(ctx, ch, k.ID, m, 0, webm, 250, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Finish(ctx, ch, k.ID, m, 250); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Chunk(ctx, ch, k.ID, m, 1, []byte("late"), 500, nil); !errors.Is(err, studio.ErrFinished) {
		t.Fatalf("chunk after finish: %v", err)
	}
	// A second take, left idle, is interrupted: once its event is seen,
	// the watch has run over the finished one too.
	k2 := newTake(t, s, ch, m)
	for e := range ev.ch {
		if e.Event == signaling.StudioTakeInterrupted {
			if e.Take != k2.ID {
				t.Fatalf("take %s interrupted, want only %s", e.Take, k2.ID)
			}
			break
		}
	}
	v, err := s.View(ctx, ch)
	if err != nil {
		t.Fatal(err)
	}
	for _, sg := range v.Songs {
		for _, tr := range sg.Tracks {
			for _, tk := range tr.Takes {
				if tk.ID == k.ID && tk.State != store.TakeDone {
					t.Errorf("finished take is %s", tk.State)
				}
			}
		}
	}
}
