package room_test

import (
	"testing"

	"github.com/parley/parley/internal/room"
	"github.com/parley/parley/internal/signaling"
)

// TestLobby: a guest who must wait is not in the call until a member
// admits them; members see who waits; a guest cannot admit or moderate;
// a denied guest is told and stays out; one who leaves the lobby drops
// off the list.
func TestLobby(t *testing.T) {
	a := newActor(t, room.ModeAuto, nil)
	ann := a.dialAs("ann", signaling.RoleOwner)
	annID := join(ann).You.ID
	gus := a.dial("gus&guest=1&lobby=1")
	gus.send(signaling.Message{Type: signaling.TypeJoin})
	if m := gus.expect(signaling.TypeAdmission); m.Action != signaling.AdmissionWaiting {
		t.Fatalf("admission %+v, want waiting", m)
	}
	l := ann.expect(signaling.TypeLobby)
	if len(l.Waiting) != 1 || l.Waiting[0].Name != "gus" || l.Waiting[0].Role != signaling.RoleGuest {
		t.Fatalf("lobby %+v, want gus the guest", l.Waiting)
	}
	gusWait := l.Waiting[0].ID
	// A member joining later sees the list too.
	bob := a.dial("bob")
	join(bob)
	if l := bob.expect(signaling.TypeLobby); len(l.Waiting) != 1 {
		t.Errorf("late member's lobby %+v", l.Waiting)
	}
	// A guest already in (no lobby) cannot let anyone in, nor moderate.
	hal := a.dial("hal&guest=1")
	join(hal)
	hal.send(signaling.Message{Type: signaling.TypeAdmit, ID: gusWait})
	if m := hal.expect(signaling.TypeError); m.Code != signaling.CodeForbidden {
		t.Errorf("guest's admit: error %q, want forbidden", m.Code)
	}
	hal.send(moderate(signaling.ActionMute, annID))
	refused(t, hal, signaling.CodeForbidden)
	if j := hal.hello; j.User != nil && j.User.Role != signaling.RoleGuest {
		t.Errorf("guest's hello role %q", j.User.Role)
	}

	ann.send(signaling.Message{Type: signaling.TypeAdmit, ID: gusWait})
	if m := gus.expect(signaling.TypeAdmission); m.Action != signaling.AdmissionAdmitted || m.By != annID {
		t.Errorf("admission %+v, want admitted by ann", m)
	}
	j := gus.expect(signaling.TypeJoined)
	if j.You.Role != signaling.RoleGuest || len(j.Participants) != 3 {
		t.Errorf("gus joined as %+v with %d others, want a guest with 3", j.You, len(j.Participants))
	}
	if l := ann.expect(signaling.TypeLobby); len(l.Waiting) != 0 {
		t.Errorf("lobby after admitting %+v, want empty", l.Waiting)
	}

	// Denied: told, not in the call.
	ivy := a.dial("ivy&guest=1&lobby=1")
	ivy.send(signaling.Message{Type: signaling.TypeJoin})
	ivy.expect(signaling.TypeAdmission)
	w := ann.expect(signaling.TypeLobby).Waiting
	bob.send(signaling.Message{Type: signaling.TypeDeny, ID: w[0].ID})
	if m := ivy.expect(signaling.TypeAdmission); m.Action != signaling.AdmissionDenied {
		t.Errorf("admission %+v, want denied", m)
	}
	ivy.send(signaling.Message{Type: signaling.TypeUpdate, State: &signaling.State{}})
	if m := ivy.expect(signaling.TypeError); m.Code != signaling.CodeNotJoined {
		t.Errorf("denied guest's update: %q, want not-joined", m.Code)
	}
	ann.send(signaling.Message{Type: signaling.TypeAdmit, ID: w[0].ID})
	if m := ann.expect(signaling.TypeError); m.Code != signaling.CodeUnknownPeer {
		t.Errorf("admitting someone already denied: %q, want unknown-peer", m.Code)
	}
	// Leaving the lobby takes them off the list.
	ivy.send(signaling.Message{Type: signaling.TypeJoin})
	if l := ann.until(signaling.TypeLobby); len(l[len(l)-1].Waiting) != 1 {
		t.Fatalf("lobby %+v", l[len(l)-1].Waiting)
	}
	ivy.conn.CloseNow()
	for {
		if l := ann.expect(signaling.TypeLobby); len(l.Waiting) == 0 {
			break
		}
	}
}
