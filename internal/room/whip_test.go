package room_test

import (
	"errors"
	"log/slog"
	"testing"

	"github.com/parley/parley/internal/room"
	"github.com/parley/parley/internal/signaling"
)

// TestWHIPWithoutSFU: a server without a media server refuses WHIP and
// WHEP (the edge answers 503), before looking at the offer.
func TestWHIPWithoutSFU(t *testing.T) {
	m := room.NewManager(room.Config{}, slog.New(slog.DiscardHandler), nil)
	u := signaling.User{UserID: "u1", Name: "Ann"}
	if _, _, err := m.Publish("c1", room.ModeAuto, u, room.Auth{}, "v=0\r\n"); !errors.Is(err, room.ErrNoSFU) {
		t.Errorf("Publish: %v, want ErrNoSFU", err)
	}
	if _, _, err := m.View("c1", room.ModeAuto, u, room.Auth{}, "", "v=0\r\n"); !errors.Is(err, room.ErrNoSFU) {
		t.Errorf("View: %v, want ErrNoSFU", err)
	}
	if r, s, p := m.Counts(); r != 0 || s != 0 || p != 0 {
		t.Errorf("counts %d %d %d after refusals", r, s, p)
	}
}
