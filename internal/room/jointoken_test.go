package room_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/parley/parley/internal/room"
	"github.com/parley/parley/internal/signaling"
)

// serveToken serves the test socket as a join token's (actor_test.go's
// handler, with ?grants=): grants comma-separated, ttl in milliseconds
// (default an hour), revoke: renewing fails as if the token was revoked.
func serveToken(m *room.Manager, conn *websocket.Conn, mode string, user signaling.User, q url.Values) {
	var g signaling.Grants
	for _, x := range strings.Split(q.Get("grants"), ",") {
		switch x {
		case "publish":
			g.Publish = true
		case "subscribe":
			g.Subscribe = true
		case "chat":
			g.Chat = true
		case "moderate":
			g.Moderate = true
		case "record":
			g.Record = true
		}
	}
	ttl := time.Hour
	if ms, err := strconv.Atoi(q.Get("ttl")); err == nil {
		ttl = time.Duration(ms) * time.Millisecond
	}
	var n atomic.Int32
	now := time.Now()
	tok := room.JoinToken{Grants: g, Issued: now, Expires: now.Add(ttl), Renew: func(context.Context) (string, time.Time, error) {
		if q.Has("revoke") {
			return "", time.Time{}, fmt.Errorf("%w: revoked in the test", room.ErrTokenEnded)
		}
		if q.Has("fail") {
			return "", time.Time{}, errors.New("the database is down (test)")
		}
		return fmt.Sprintf("fresh-%d", n.Add(1)), time.Now().Add(ttl), nil
	}}
	user.Role = signaling.RoleGuest
	m.ServeJoinToken(context.Background(), conn, "c1", mode, "parley.test", user, room.Auth{UserID: user.UserID}, tok)
}

// dialToken opens a join token's socket for user with query q.
func (a *actor) dialToken(user, q string) *peer {
	a.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, "ws://memory/ws?user="+user+"&"+q, &websocket.DialOptions{HTTPClient: a.client})
	if err != nil {
		a.t.Fatalf("dial: %v", err)
	}
	p := newPeer(a.t, conn)
	p.hello = p.expect(signaling.TypeHello)
	return p
}

// TestJoinTokenGrants: without publish, the call goes to the SFU, the
// holder's state is forced off and its media offers refused; without
// subscribe, or on a peer-to-peer channel without publish, join is
// refused; hello carries the grants.
func TestJoinTokenGrants(t *testing.T) {
	fm := newFakeMedia(false)
	a := newActor(t, room.ModeAuto, fm)
	ann := a.dial("ann")
	annID := join(ann).You.ID
	viewer := a.dialToken("vic", "grants=subscribe,chat")
	if g := viewer.hello.User.Grants; g == nil || g.Publish || !g.Subscribe || !g.Chat {
		t.Fatalf("hello grants %+v", viewer.hello.User.Grants)
	}
	viewer.send(signaling.Message{Type: signaling.TypeJoin, State: &signaling.State{Audio: true, Video: true}})
	j := viewer.expect(signaling.TypeJoined)
	if j.Topology != signaling.TopologySFU || j.You.State.Audio || j.You.State.Video {
		t.Errorf("receive-only joined: topology %q, state %+v; want sfu, all off", j.Topology, j.You.State)
	}
	fm.next(t) // ann's SFU connections
	vp := fm.next(t)
	vp.expect(t, 1, "sending false false false")
	viewer.send(signaling.Message{Type: signaling.TypeUpdate, State: &signaling.State{Audio: true, Screen: true}})
	if u := viewer.expect(signaling.TypeParticipantUpdated); u.Participant.State.Audio || u.Participant.State.Screen {
		t.Errorf("receive-only update: %+v", u.Participant.State)
	}
	viewer.send(signaling.Message{Type: signaling.TypeOffer, To: signaling.SFU, PC: signaling.PCPublish, SDP: "v=0 offer"})
	if e := viewer.expect(signaling.TypeError); e.Code != signaling.CodeForbidden || !strings.Contains(e.Human, "publish") {
		t.Errorf("publish offer: %+v", e)
	}
	viewer.send(signaling.Message{Type: signaling.TypeOffer, To: annID, SDP: "v=0 offer"})
	if e := viewer.expect(signaling.TypeError); e.Code != signaling.CodeForbidden {
		t.Errorf("offer to a participant: %+v", e)
	}

	noSub := a.dialToken("sam", "grants=publish")
	noSub.send(signaling.Message{Type: signaling.TypeJoin})
	if e := noSub.expect(signaling.TypeError); e.Code != signaling.CodeForbidden || !strings.Contains(e.Human, "subscribe") {
		t.Errorf("join without subscribe: %+v", e)
	}

	p2p := newActor(t, room.ModeP2P, newFakeMedia(false))
	v2 := p2p.dialToken("vic", "grants=subscribe")
	v2.send(signaling.Message{Type: signaling.TypeJoin})
	if e := v2.expect(signaling.TypeError); e.Code != signaling.CodeForbidden || !strings.Contains(e.Human, "peer-to-peer") {
		t.Errorf("receive-only join on a p2p channel: %+v", e)
	}
}

// TestJoinTokenSameIdentityReplaces: a second socket of the same
// identity takes over the first one's participant.
func TestJoinTokenSameIdentityReplaces(t *testing.T) {
	a := newActor(t, room.ModeAuto, nil)
	first := a.dialToken("ext1", "grants=publish,subscribe")
	id := join(first).You.ID
	second := a.dialToken("ext1", "grants=publish,subscribe")
	if got := join(second).You.ID; got != id {
		t.Errorf("second socket joined as %s, want %s", got, id)
	}
	if code := first.closed(); code != room.CloseReplaced {
		t.Errorf("first socket closed with %d, want %d", code, room.CloseReplaced)
	}
}

// TestJoinTokenRenewal: fresh tokens arrive at half each lifetime; a
// token that cannot be renewed ends the socket with 4001.
func TestJoinTokenRenewal(t *testing.T) {
	a := newActor(t, room.ModeAuto, nil)
	p := a.dialToken("ext1", "grants=publish,subscribe&ttl=400")
	start := time.Now()
	for i := 1; i <= 3; i++ {
		if m := p.expect(signaling.TypeJoinToken); m.Token != fmt.Sprintf("fresh-%d", i) || m.ExpiresAt.IsZero() {
			t.Fatalf("renewal %d: %+v", i, m)
		}
	}
	if d := time.Since(start); d < 500*time.Millisecond {
		t.Errorf("three renewals of a 400 ms token in %v: too early", d)
	}
	gone := a.dialToken("ext2", "grants=publish,subscribe&ttl=300&revoke")
	if code := gone.closed(); code != room.CloseRevoked {
		t.Errorf("revoked token's socket closed with %d, want 4001", code)
	}
	// Renewal failing for another reason is retried until the token
	// expires; then the socket closes, saying so.
	start = time.Now()
	expired := a.dialToken("ext3", "grants=publish,subscribe&ttl=600&fail")
	for range expired.msgs { // until it closes
	}
	var ce websocket.CloseError
	if err := <-expired.done; !errors.As(err, &ce) || ce.Code != room.CloseRevoked || !strings.Contains(ce.Reason, "expired") || time.Since(start) < 500*time.Millisecond {
		t.Errorf("unrenewable token's socket ended with %v after %v, want 4001 saying it expired, at its expiry", err, time.Since(start))
	}
}
