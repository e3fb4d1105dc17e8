package api_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/parley/parley/internal/apitest"
	"github.com/parley/parley/internal/servertest"
	"github.com/parley/parley/internal/signaling"
	"github.com/parley/parley/internal/testtool"
)

// sock is a signaling socket of a test user.
type sock struct {
	t    *testing.T
	conn *websocket.Conn
	msgs chan signaling.Message
}

func dialCall(t *testing.T, s *servertest.Server, channelID, token string) *sock {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(s.URL, "http")+"/ws/c/"+channelID, &websocket.DialOptions{
		HTTPHeader: http.Header{"Authorization": {"Bearer " + token}}, Subprotocols: []string{signaling.Subprotocol}})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	k := &sock{t: t, conn: conn, msgs: make(chan signaling.Message, 256)}
	go func() {
		defer close(k.msgs)
		for {
			_, data, err := conn.Read(context.Background())
			if err != nil {
				return
			}
			if m, err := signaling.Parse(data); err == nil {
				k.msgs <- m
			}
		}
	}()
	t.Cleanup(func() { conn.CloseNow() })
	return k
}

func (k *sock) send(m signaling.Message) {
	k.t.Helper()
	b, err := signaling.Encode(m)
	if err != nil {
		k.t.Fatal(err)
	}
	if err := k.conn.Write(context.Background(), websocket.MessageText, b); err != nil {
		k.t.Fatal(err)
	}
}

// expect waits for the next message of type typ that pass accepts.
func (k *sock) expect(typ string, pass func(signaling.Message) bool) signaling.Message {
	k.t.Helper()
	timeout := time.After(15 * time.Second)
	for {
		select {
		case m, ok := <-k.msgs:
			if !ok {
				k.t.Fatalf("socket closed while waiting for %s", typ)
			}
			if m.Type == typ && (pass == nil || pass(m)) {
				return m
			}
		case <-timeout:
			k.t.Fatalf("no %s within 15s", typ)
		}
	}
}

func (k *sock) join() string {
	k.t.Helper()
	k.send(signaling.Message{Type: signaling.TypeJoin, State: &signaling.State{Audio: true, Video: true}})
	return k.expect(signaling.TypeJoined, nil).You.ID
}

type callOut struct {
	Participants []struct {
		ID, UserID, Name, Role string
		Audio, Video           bool
	}
	Locked bool
}

func TestCallAPI(t *testing.T) {
	s := servertest.Start(t)
	doc := apitest.Load(t)
	ann := newUser(t, s, doc, "ann")
	bob := newUser(t, s, doc, "bob")
	cat := newUser(t, s, doc, "cat")
	eve := newUser(t, s, doc, "eve")
	var ch channelOut
	ann.json(201, "POST", "/api/v1/channels", map[string]any{"name": "Design"}, &ch)
	base := "/api/v1/channels/" + ch.ID
	ann.json(201, "POST", base+"/members", map[string]any{"username": "bob"}, nil)
	ann.json(201, "POST", base+"/members", map[string]any{"username": "cat"}, nil)

	// Nobody in the call.
	var call callOut
	bob.json(200, "GET", base+"/call", nil, &call)
	if len(call.Participants) != 0 || call.Locked {
		t.Fatalf("empty call = %+v", call)
	}
	ann.problem(409, "POST", base+"/call/lock", nil)
	ann.problem(404, "POST", base+"/call/participants/p_nobody/mute", nil)
	eve.problem(403, "GET", base+"/call", nil)
	ann.problem(404, "GET", "/api/v1/channels/nope/call", nil)

	bs := dialCall(t, s, ch.ID, bob.bearer)
	bobID := bs.join()
	as := dialCall(t, s, ch.ID, ann.bearer)
	annID := as.join()
	ann.json(200, "GET", base+"/call", nil, &call)
	if len(call.Participants) != 2 || call.Participants[0].ID != annID || call.Participants[0].Role != "owner" ||
		call.Participants[1].ID != bobID || call.Participants[1].Role != "member" || !call.Participants[1].Audio {
		t.Fatalf("call = %+v", call)
	}

	// Members may not moderate; moderators may, but not against the owner.
	cat.problem(403, "POST", base+"/call/participants/"+bobID+"/mute", nil)
	eve.problem(403, "POST", base+"/call/participants/"+bobID+"/mute", nil)
	ann.problem(404, "POST", base+"/call/participants/p_nobody/mute", nil)
	ann.problem(400, "POST", base+"/call/participants/"+bobID+"/mute", map[string]any{"ask": "yes"})

	ann.do(204, "POST", base+"/call/participants/"+bobID+"/mute", map[string]any{"ask": true})
	m := bs.expect(signaling.TypeModerated, nil)
	if m.Action != signaling.ActionMute || m.ID != bobID || !m.Ask || m.By != annID {
		t.Fatalf("bob was told %+v", m)
	}
	testtool.Eventually(t, 10*time.Second, func() bool {
		ann.json(200, "GET", base+"/call", nil, &call)
		return !call.Participants[1].Audio
	}, "bob's audio stays on after the mute")
	ann.do(204, "POST", base+"/call/participants/"+bobID+"/allow-unmute", nil)
	bs.expect(signaling.TypeModerated, func(m signaling.Message) bool { return m.Action == signaling.ActionAllowUnmute })
	ann.do(204, "POST", base+"/call/participants/"+bobID+"/camera-off", nil)
	bs.expect(signaling.TypeModerated, func(m signaling.Message) bool { return m.Action == signaling.ActionCameraOff })

	if err := s.Accounts().SetModerator(context.Background(), ann.user(), ch.ID, cat.user().ID, true); err != nil {
		t.Fatal(err)
	}
	cat.problem(403, "POST", base+"/call/participants/"+annID+"/mute", nil)
	cat.do(204, "POST", base+"/call/lock", nil)
	if m := bs.expect(signaling.TypeModerated, func(m signaling.Message) bool { return m.Action == signaling.ActionLock }); m.By != "" {
		t.Fatalf("a moderator outside the call is named: %+v", m)
	}
	bob.json(200, "GET", base+"/call", nil, &call)
	if !call.Locked {
		t.Fatal("not locked")
	}
	ann.do(204, "POST", base+"/call/unlock", nil)

	// Remove: bob's socket is told, and he is out of the call.
	ann.do(204, "DELETE", base+"/call/participants/"+bobID, nil)
	bs.expect(signaling.TypeModerated, func(m signaling.Message) bool { return m.Action == signaling.ActionRemove })
	ann.json(200, "GET", base+"/call", nil, &call)
	if len(call.Participants) != 1 {
		t.Fatalf("after removing bob: %+v", call)
	}
	ann.problem(404, "DELETE", base+"/call/participants/"+bobID, nil)

	// End: everyone leaves.
	cat.do(204, "POST", base+"/call/end", nil)
	as.expect(signaling.TypeModerated, func(m signaling.Message) bool { return m.Action == signaling.ActionEnd })
	testtool.Eventually(t, 10*time.Second, func() bool {
		ann.json(200, "GET", base+"/call", nil, &call)
		return len(call.Participants) == 0
	}, "the call did not end")
}
