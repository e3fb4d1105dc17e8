package room_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/parley/parley/internal/room"
	"github.com/parley/parley/internal/signaling"
)

// dialAs opens user's socket with a role in the channel.
func (a *actor) dialAs(user, role string) *peer {
	a.t.Helper()
	return a.dial(user + "&role=" + role)
}

// until returns the messages p receives up to and including the next one
// of type typ.
func (p *peer) until(typ string) []signaling.Message {
	p.t.Helper()
	var got []signaling.Message
	timeout := time.After(10 * time.Second)
	for {
		select {
		case m, ok := <-p.msgs:
			if !ok {
				p.t.Fatalf("socket closed while waiting for %s: %v", typ, <-p.done)
			}
			got = append(got, m)
			if m.Type == typ {
				return got
			}
		case <-timeout:
			p.t.Fatalf("no %s within 10s; got %v", typ, got)
		}
	}
}

// quiet fails the test if p received a message of type typ before the
// server answers a ping p sends now: a room broadcasts what it does in
// order, so anything done before refers to the same queue.
func (p *peer) quiet(typ string) {
	p.t.Helper()
	p.send(signaling.Message{Type: signaling.TypePing, TS: 7})
	for _, m := range p.until(signaling.TypePong) {
		if m.Type == typ {
			p.t.Errorf("got %s %+v, want none", typ, m)
		}
	}
}

func moderate(action, id string) signaling.Message {
	return signaling.Message{Type: signaling.TypeModerate, Action: action, ID: id}
}

// refused waits for p's error about a moderate and checks its code.
func refused(t *testing.T, p *peer, code string) {
	t.Helper()
	m := p.expect(signaling.TypeError)
	if m.Code != code || m.Ref != signaling.TypeModerate {
		t.Fatalf("error %q (ref %q): %s; want %q about moderate", m.Code, m.Ref, m.Human, code)
	}
}

// TestModerationRefusedForMembers: every moderation message from a plain
// member gets an error and changes nothing; a moderator cannot act on the
// owner; a lobby socket cannot moderate at all.
func TestModerationRefusedForMembers(t *testing.T) {
	fm := newFakeMedia(false)
	a := newActor(t, room.ModeSFU, fm)
	ann, bob, cat := a.dialAs("ann", signaling.RoleOwner), a.dial("bob"), a.dialAs("cat", signaling.RoleModerator)
	annID := join(ann).You.ID
	join(bob)
	catID := join(cat).You.ID
	peers := map[string]*fakePeer{}
	for range 3 {
		p := fm.next(t)
		peers[p.id] = p
		p.expect(t, 1, "sending") // its first state
	}
	for _, action := range []string{signaling.ActionMute, signaling.ActionAllowUnmute, signaling.ActionCameraOff, signaling.ActionRemove} {
		for _, target := range []string{annID, catID} {
			bob.send(moderate(action, target))
			refused(t, bob, signaling.CodeForbidden)
		}
	}
	for _, action := range []string{signaling.ActionLock, signaling.ActionUnlock, signaling.ActionEnd} {
		bob.send(moderate(action, ""))
		refused(t, bob, signaling.CodeForbidden)
	}
	// A moderator may not act on the owner.
	for _, action := range []string{signaling.ActionMute, signaling.ActionCameraOff, signaling.ActionRemove} {
		cat.send(moderate(action, annID))
		refused(t, cat, signaling.CodeForbidden)
	}
	// Nothing happened: nobody heard of a moderation, nobody's media
	// was stopped, the call is not locked, everyone is still in it.
	for _, p := range []*peer{ann, bob, cat} {
		p.quiet(signaling.TypeModerated)
	}
	for id, fp := range peers {
		select {
		case c := <-fp.calls:
			t.Errorf("%s's SFU connections were asked %q", id, c)
		default:
		}
	}
	dan := a.dial("dan")
	if j := join(dan); len(j.Participants) != 3 {
		t.Errorf("dan joined a call of %d, want 3 (nobody removed or ended)", len(j.Participants))
	}
	// Not joined: no moderation either.
	eve := a.dialAs("eve", signaling.RoleModerator)
	eve.send(moderate(signaling.ActionLock, ""))
	if m := eve.expect(signaling.TypeError); m.Code != signaling.CodeNotJoined {
		t.Errorf("lobby moderate: error %q, want not-joined", m.Code)
	}
	// Bad moderate messages are refused before the room sees them.
	for _, bad := range []string{`{"type":"moderate"}`, `{"type":"moderate","action":"ban","id":"p_aaaaaaaaaa"}`, `{"type":"moderate","action":"mute"}`} {
		ann.sendRaw(bad)
		if m := ann.expect(signaling.TypeError); m.Code != signaling.CodeInvalid {
			t.Errorf("%s: error %q, want invalid", bad, m.Code)
		}
	}
}

// TestModeratorMute: the server stops forwarding the muted participant's
// audio at once; an update still claiming audio does not undo it, the
// participant's own unmute after acknowledging does; with "ask to unmute"
// even that is refused until a moderator allows it.
func TestModeratorMute(t *testing.T) {
	fm := newFakeMedia(false)
	a := newActor(t, room.ModeSFU, fm)
	ann, bob := a.dialAs("ann", signaling.RoleOwner), a.dial("bob")
	annID := join(ann).You.ID
	bob.send(signaling.Message{Type: signaling.TypeJoin, State: &signaling.State{Audio: true, Video: true}})
	bobID := bob.expect(signaling.TypeJoined).You.ID
	peers := map[string]*fakePeer{}
	for range 2 {
		p := fm.next(t)
		peers[p.id] = p
	}
	bp := peers[bobID]
	bp.expect(t, 1, "sending true true false")

	ann.send(moderate(signaling.ActionMute, bobID))
	bp.expect(t, 1, "sending false true false")
	for _, p := range []*peer{ann, bob} {
		m := p.expect(signaling.TypeModerated)
		if m.Action != signaling.ActionMute || m.ID != bobID || m.By != annID || m.Ask {
			t.Errorf("moderated %+v", m)
		}
		if u := p.expect(signaling.TypeParticipantUpdated); u.Participant.ID != bobID || u.Participant.State.Audio {
			t.Errorf("participant-updated %+v, want bob muted", u.Participant)
		}
	}
	// Sent before bob's page heard of the mute: still muted.
	bob.send(signaling.Message{Type: signaling.TypeUpdate, State: &signaling.State{Audio: true, Video: true}})
	if u := ann.expect(signaling.TypeParticipantUpdated); u.Participant.State.Audio {
		t.Fatal("a stale update unmuted bob")
	}
	bp.expect(t, 1, "sending false true false")
	// The page applied the mute; unmuting now is bob's own choice.
	bob.send(signaling.Message{Type: signaling.TypeUpdate, State: &signaling.State{Video: true}})
	bob.send(signaling.Message{Type: signaling.TypeUpdate, State: &signaling.State{Audio: true, Video: true}})
	bp.expect(t, 2, "sending false true false", "sending true true false")

	// Ask to unmute: bob cannot unmute, even after acknowledging.
	ann.send(signaling.Message{Type: signaling.TypeModerate, Action: signaling.ActionMute, ID: bobID, Ask: true})
	if m := bob.expect(signaling.TypeModerated); !m.Ask {
		t.Errorf("moderated %+v, want ask", m)
	}
	bp.expect(t, 1, "sending false true false")
	bob.send(signaling.Message{Type: signaling.TypeUpdate, State: &signaling.State{Video: true}})
	bob.send(signaling.Message{Type: signaling.TypeUpdate, State: &signaling.State{Audio: true, Video: true}})
	if m := bob.expect(signaling.TypeError); m.Code != signaling.CodeMuted {
		t.Errorf("unmute while held: error %q, want muted", m.Code)
	}
	bp.expect(t, 2, "sending false true false", "sending false true false")
	ann.send(moderate(signaling.ActionAllowUnmute, bobID))
	bob.expect(signaling.TypeModerated)
	bob.send(signaling.Message{Type: signaling.TypeUpdate, State: &signaling.State{Audio: true, Video: true}})
	bp.expect(t, 1, "sending true true false")

	// Camera off works the same way.
	ann.send(moderate(signaling.ActionCameraOff, bobID))
	bp.expect(t, 1, "sending true false false")
	if m := bob.expect(signaling.TypeModerated); m.Action != signaling.ActionCameraOff {
		t.Errorf("moderated %+v, want camera-off", m)
	}
}

// TestMuteMovesMeshToSFU: in a mesh the server cannot stop anyone's
// audio, so a moderator's mute moves the call to the SFU, where it can.
func TestMuteMovesMeshToSFU(t *testing.T) {
	fm := newFakeMedia(false)
	a := newActor(t, room.ModeAuto, fm)
	ann, bob := a.dialAs("ann", signaling.RoleOwner), a.dial("bob")
	join(ann)
	bob.send(signaling.Message{Type: signaling.TypeJoin, State: &signaling.State{Audio: true}})
	j := bob.expect(signaling.TypeJoined)
	if j.Topology != signaling.TopologyMesh {
		t.Fatalf("topology %q, want mesh", j.Topology)
	}
	ann.send(moderate(signaling.ActionMute, j.You.ID))
	if m := bob.expect(signaling.TypeTopology); m.Topology != signaling.TopologySFU {
		t.Fatalf("topology %q after a mute, want sfu", m.Topology)
	}
	for range 2 {
		p := fm.next(t)
		if p.id == j.You.ID {
			p.expect(t, 1, "sending false false false")
		}
	}
}

// TestRemoveLockEnd: a removed participant leaves the call and cannot
// rejoin it; a locked call takes nobody new (members included) but
// moderators; ending the call takes everyone out and opens it again.
func TestRemoveLockEnd(t *testing.T) {
	a := newActor(t, room.ModeAuto, nil)
	ann, bob, cat := a.dialAs("ann", signaling.RoleOwner), a.dial("bob"), a.dial("cat")
	join(ann)
	bobID := join(bob).You.ID
	ann.send(moderate(signaling.ActionRemove, bobID))
	if m := bob.expect(signaling.TypeModerated); m.Action != signaling.ActionRemove || m.ID != bobID {
		t.Errorf("moderated %+v", m)
	}
	if m := ann.expect(signaling.TypeParticipantLeft); m.ID != bobID || m.Reason != signaling.ReasonRemoved {
		t.Errorf("participant-left %+v, want bob removed", m)
	}
	bob.send(signaling.Message{Type: signaling.TypeJoin})
	if m := bob.expect(signaling.TypeError); m.Code != signaling.CodeRemoved {
		t.Errorf("rejoin after removal: error %q, want removed", m.Code)
	}

	ann.send(moderate(signaling.ActionLock, ""))
	if m := cat.expect(signaling.TypeModerated); m.Action != signaling.ActionLock {
		t.Errorf("lobby got %+v, want lock", m)
	}
	cat.send(signaling.Message{Type: signaling.TypeJoin})
	if m := cat.expect(signaling.TypeError); m.Code != signaling.CodeLocked {
		t.Errorf("join a locked call: error %q, want locked", m.Code)
	}
	if !a.dial("cat").hello.Locked {
		t.Error("hello does not say the call is locked")
	}
	dan := a.dialAs("dan", signaling.RoleModerator)
	if j := join(dan); !j.Locked {
		t.Error("a moderator could not join the locked call, or joined does not say it is locked")
	}
	ann.send(moderate(signaling.ActionUnlock, ""))
	cat.expect(signaling.TypeModerated)
	catID := join(cat).You.ID

	// A moderator appointed during the call may moderate at once.
	a.m.SetRole("c1", "cat", signaling.RoleModerator)
	if u := ann.expect(signaling.TypeParticipantUpdated); u.Participant.ID != catID || u.Participant.Role != signaling.RoleModerator {
		t.Errorf("participant-updated %+v, want cat a moderator", u.Participant)
	}
	cat.send(moderate(signaling.ActionEnd, ""))
	left := 0
	for _, m := range ann.until(signaling.TypeModerated) {
		if m.Type == signaling.TypeParticipantLeft {
			t.Errorf("participant-left %+v before the end was announced", m)
		}
	}
	for left < 2 {
		if m := ann.expect(signaling.TypeParticipantLeft); m.Reason == signaling.ReasonEnded {
			left++
		}
	}
	// The call is over: the next one is open to everyone, bob included.
	if j := join(bob); len(j.Participants) != 0 {
		t.Errorf("after the end bob joined a call of %d, want a new empty one", len(j.Participants))
	}
}

// TestHandsInOrder: raised hands are numbered in the order they went up.
func TestHandsInOrder(t *testing.T) {
	a := newActor(t, room.ModeAuto, nil)
	ann, bob := a.dial("ann"), a.dial("bob")
	annID := join(ann).You.ID
	join(bob)
	bob.send(signaling.Message{Type: signaling.TypeUpdate, State: &signaling.State{Hand: true}})
	first := ann.expect(signaling.TypeParticipantUpdated).Participant.HandSeq
	ann.send(signaling.Message{Type: signaling.TypeUpdate, State: &signaling.State{Hand: true}})
	var second int
	for second == 0 {
		if u := bob.expect(signaling.TypeParticipantUpdated); u.Participant.ID == annID {
			second = u.Participant.HandSeq
		}
	}
	if first == 0 || second <= first {
		t.Errorf("hands numbered %d then %d, want increasing from 1", first, second)
	}
	ann.send(signaling.Message{Type: signaling.TypeUpdate, State: &signaling.State{}})
	for {
		if u := bob.expect(signaling.TypeParticipantUpdated); u.Participant.ID == annID {
			if u.Participant.HandSeq != 0 {
				t.Errorf("lowered hand keeps number %d", u.Participant.HandSeq)
			}
			break
		}
	}
}

// TestModeratorAppointedByOwner runs the whole path on the real server:
// the socket's role comes from the channel (owner, moderator), only the
// owner appoints moderators, and an appointment reaches a call in
// progress at once.
func TestModeratorAppointedByOwner(t *testing.T) {
	s, ch, owner, bob := setup(t)
	po, pb := dial(t, s, owner, ch), dial(t, s, bob, ch)
	if h := po.expect(signaling.TypeHello); h.User.Role != signaling.RoleOwner {
		t.Errorf("owner's hello role %q", h.User.Role)
	}
	hb := pb.expect(signaling.TypeHello)
	if hb.User.Role != signaling.RoleMember {
		t.Errorf("member's hello role %q", hb.User.Role)
	}
	join(po)
	bobID := join(pb).You.ID
	pb.send(moderate(signaling.ActionLock, ""))
	refused(t, pb, signaling.CodeForbidden)

	path := "/c/" + ch + "/members/" + hb.User.UserID + "/moderator"
	if resp, _ := s.PostForm(bob, path, url.Values{"on": {"1"}}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("a member appointing a moderator: status %d, want 403", resp.StatusCode)
	}
	if resp, _ := s.PostForm(owner, path, url.Values{"on": {"1"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("owner appointing a moderator: status %d", resp.StatusCode)
	}
	for {
		if u := po.expect(signaling.TypeParticipantUpdated); u.Participant.ID == bobID {
			if u.Participant.Role != signaling.RoleModerator {
				t.Fatalf("bob's role %q, want moderator", u.Participant.Role)
			}
			break
		}
	}
	pb.send(moderate(signaling.ActionLock, ""))
	if m := po.expect(signaling.TypeModerated); m.Action != signaling.ActionLock || m.By != bobID {
		t.Errorf("moderated %+v, want bob's lock", m)
	}
	if _, body := s.Get(owner, "/c/"+ch); !strings.Contains(body, "· moderator") {
		t.Error("the members list does not show bob as a moderator")
	}
	// A new socket of bob's starts as a moderator too.
	if h := dial(t, s, bob, ch).expect(signaling.TypeHello); h.User.Role != signaling.RoleModerator {
		t.Errorf("bob's new socket: role %q, want moderator", h.User.Role)
	}
	if resp, _ := s.PostForm(owner, "/c/"+ch+"/members/"+hb.User.UserID+"/moderator", url.Values{"on": {"0"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("owner unmaking a moderator: status %d", resp.StatusCode)
	}
	for {
		if u := po.expect(signaling.TypeParticipantUpdated); u.Participant.ID == bobID && u.Participant.Role == signaling.RoleMember {
			break
		}
	}
	pb.send(moderate(signaling.ActionUnlock, ""))
	refused(t, pb, signaling.CodeForbidden)
}

// TestCappedRoomFull: a 1:1 room takes two; the third gets "full", and
// gets in once one of the two has left. The same participant coming back
// on a new socket is not a third.
func TestCappedRoomFull(t *testing.T) {
	a := newActor(t, room.ModeAuto, nil)
	ann, bob, cat := a.dial("ann&cap=2"), a.dial("bob&cap=2"), a.dial("cat&cap=2")
	join(ann)
	j := join(bob)
	cat.send(signaling.Message{Type: signaling.TypeJoin})
	if m := cat.expect(signaling.TypeError); m.Code != signaling.CodeFull || m.Ref != signaling.TypeJoin {
		t.Fatalf("third join: error %q (%s), want full", m.Code, m.Human)
	}
	// Bob's new socket takes over his id: still two.
	bob2 := a.dial("bob&cap=2")
	bob2.send(signaling.Message{Type: signaling.TypeJoin, Resume: j.You.ID, ResumeToken: j.ResumeToken})
	if got := bob2.expect(signaling.TypeJoined); got.You.ID != j.You.ID {
		t.Fatalf("bob's resume got %s, want %s", got.You.ID, j.You.ID)
	}
	bob2.send(signaling.Message{Type: signaling.TypeLeave})
	ann.expect(signaling.TypeParticipantLeft)
	if got := join(cat); len(got.Participants) != 1 {
		t.Errorf("cat joined a call of %d, want 1", len(got.Participants))
	}
}
