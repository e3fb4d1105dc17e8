package room_test

import (
	"testing"

	"github.com/parley/parley/internal/room"
	"github.com/parley/parley/internal/signal"
)

// TestLobby: a guest who must wait is not in the call until a member
// admits them; members see who waits; a guest cannot admit or moderate;
// a denied guest is told and stays out; one who leaves the lobby drops
// off the list.
func TestLobby(t *testing.T) {
	a := newActor(t, room.ModeAuto, nil)
	ann := a.dialAs("ann", signal.RoleOwner)
	annID := join(ann).You.ID
	gus := a.dial("gus&guest=1&lobby=1")
	gus.send(signal.Message{Type: signal.TypeJoin})
	if m := gus.expect(signal.TypeAdmission); m.Action != signal.AdmissionWaiting {
		t.Fatalf("admission %+v, want waiting", m)
	}
	l := ann.expect(signal.TypeLobby)
	if len(l.Waiting) != 1 || l.Waiting[0].Name != "gus" || l.Waiting[0].Role != signal.RoleGuest {
		t.Fatalf("lobby %+v, want gus the guest", l.Waiting)
	}
	gusWait := l.Waiting[0].ID
	// A member joining later sees the list too.
	bob := a.dial("bob")
	join(bob)
	if l := bob.expect(signal.TypeLobby); len(l.Waiting) != 1 {
		t.Errorf("late member's lobby %+v", l.Waiting)
	}
	// A guest already in (no lobby) cannot let anyone in, nor moderate.
	hal := a.dial("hal&guest=1")
	join(hal)
	hal.send(signal.Message{Type: signal.TypeAdmit, ID: gusWait})
	if m := hal.expect(signal.TypeError); m.Code != signal.CodeForbidden {
		t.Errorf("guest's admit: error %q, want forbidden", m.Code)
	}
	hal.send(moderate(signal.ActionMute, annID))
	refused(t, hal, signal.CodeForbidden)
	if j := hal.hello; j.User != nil && j.User.Role != signal.RoleGuest {
		t.Errorf("guest's hello role %q", j.User.Role)
	}

	ann.send(signal.Message{Type: signal.TypeAdmit, ID: gusWait})
	if m := gus.expect(signal.TypeAdmission); m.Action != signal.AdmissionAdmitted || m.By != annID {
		t.Errorf("admission %+v, want admitted by ann", m)
	}
	j := gus.expect(signal.TypeJoined)
	if j.You.Role != signal.RoleGuest || len(j.Participants) != 3 {
		t.Errorf("gus joined as %+v with %d others, want a guest with 3", j.You, len(j.Participants))
	}
	if l := ann.expect(signal.TypeLobby); len(l.Waiting) != 0 {
		t.Errorf("lobby after admitting %+v, want empty", l.Waiting)
	}

	// Denied: told, not in the call.
	ivy := a.dial("ivy&guest=1&lobby=1")
	ivy.send(signal.Message{Type: signal.TypeJoin})
	ivy.expect(signal.TypeAdmission)
	w := ann.expect(signal.TypeLobby).Waiting
	bob.send(signal.Message{Type: signal.TypeDeny, ID: w[0].ID})
	if m := ivy.expect(signal.TypeAdmission); m.Action != signal.AdmissionDenied {
		t.Errorf("admission %+v, want denied", m)
	}
	ivy.send(signal.Message{Type: signal.TypeUpdate, State: &signal.State{}})
	if m := ivy.expect(signal.TypeError); m.Code != signal.CodeNotJoined {
		t.Errorf("denied guest's update: %q, want not-joined", m.Code)
	}
	ann.send(signal.Message{Type: signal.TypeAdmit, ID: w[0].ID})
	if m := ann.expect(signal.TypeError); m.Code != signal.CodeUnknownPeer {
		t.Errorf("admitting someone already denied: %q, want unknown-peer", m.Code)
	}
	// Leaving the lobby takes them off the list.
	ivy.send(signal.Message{Type: signal.TypeJoin})
	if l := ann.until(signal.TypeLobby); len(l[len(l)-1].Waiting) != 1 {
		t.Fatalf("lobby %+v", l[len(l)-1].Waiting)
	}
	ivy.conn.CloseNow()
	for {
		if l := ann.expect(signal.TypeLobby); len(l.Waiting) == 0 {
			break
		}
	}
}
