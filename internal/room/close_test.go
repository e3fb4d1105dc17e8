package room_test

import (
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/parley/parley/internal/room"
	"github.com/parley/parley/internal/signaling"
)

// TestCleanCloseIsLeave: a joined socket the client closes cleanly (1000:
// the page left for good; 1001: the browser closed the tab) has left, and
// the others are told "left" at once, so they drop the tile instead of
// keeping it for a resume. A socket that drops without a close frame
// (network loss, a crash) or closes with another code (the page's own
// reconnect, 4000) is "disconnected", and can resume its id (issue 14:
// Firefox often cuts off the leave message a closing tab sends, and the
// others kept a frozen tile for the dead-socket timeout).
func TestCleanCloseIsLeave(t *testing.T) {
	a := newActor(t, room.ModeP2P, nil)
	ada := a.dial("ada")
	join(ada)

	cases := []struct {
		name   string
		close  func(c *websocket.Conn)
		reason string
	}{
		{"tab closed (1001)", func(c *websocket.Conn) { c.Close(websocket.StatusGoingAway, "") }, signaling.ReasonLeft},
		{"page left (1000)", func(c *websocket.Conn) { c.Close(websocket.StatusNormalClosure, "bye") }, signaling.ReasonLeft},
		{"dropped (no close frame)", func(c *websocket.Conn) { c.CloseNow() }, signaling.ReasonDisconnected},
		{"client restart (4000)", func(c *websocket.Conn) { c.Close(4000, "client restart") }, signaling.ReasonDisconnected},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			bob := a.dial("bob")
			jb := join(bob)
			if got := ada.expect(signaling.TypeParticipantJoined); got.Participant.ID != jb.You.ID {
				t.Fatalf("participant-joined %+v", got.Participant)
			}
			start := time.Now()
			go tc.close(bob.conn) // Close waits for the server's answer
			l := ada.expect(signaling.TypeParticipantLeft)
			if l.ID != jb.You.ID || l.Reason != tc.reason {
				t.Fatalf("participant-left %+v, want id %s reason %q", l, jb.You.ID, tc.reason)
			}
			t.Logf("told %q %s after the close", l.Reason, time.Since(start).Round(time.Microsecond))
			if tc.reason != signaling.ReasonDisconnected {
				return
			}
			// An unclean drop keeps resume working: the same user gets
			// the same id back with the token.
			again := a.dial("bob")
			again.send(signaling.Message{Type: signaling.TypeJoin, Resume: jb.You.ID, ResumeToken: jb.ResumeToken})
			if j := again.expect(signaling.TypeJoined); j.You.ID != jb.You.ID {
				t.Fatalf("resume after %s gave %s, want %s", tc.name, j.You.ID, jb.You.ID)
			}
			ada.expect(signaling.TypeParticipantJoined)
			again.send(signaling.Message{Type: signaling.TypeLeave})
			if l := ada.expect(signaling.TypeParticipantLeft); l.Reason != signaling.ReasonLeft {
				t.Fatalf("leave: %+v", l)
			}
		})
	}
}
