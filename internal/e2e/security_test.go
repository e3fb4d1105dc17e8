package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/coder/websocket"

	"github.com/parley/parley/internal/config"
	"github.com/parley/parley/internal/servertest"
	"github.com/parley/parley/internal/signaling"
)

// hostile is a member of the channel on a raw signaling socket, speaking
// the protocol by hand: the attacker of docs/security.md.
type hostile struct {
	t    *testing.T
	conn *websocket.Conn
	msgs chan signaling.Message
}

// dialHostile opens a signaling socket as the user of c, reads its
// messages on a goroutine (so it answers pings) and waits for hello.
func dialHostile(t *testing.T, s *servertest.Server, c *http.Client, channelID string) *hostile {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ck := s.SessionCookie(c)
	conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(s.URL, "http")+"/ws/c/"+channelID, &websocket.DialOptions{
		HTTPHeader:   http.Header{"Cookie": {ck.Name + "=" + ck.Value}, "Origin": {s.URL}},
		Subprotocols: []string{signaling.Subprotocol},
	})
	if err != nil {
		t.Fatalf("hostile dial: %v", err)
	}
	conn.SetReadLimit(1 << 20)
	h := &hostile{t: t, conn: conn, msgs: make(chan signaling.Message, 256)}
	go func() {
		defer close(h.msgs)
		for {
			_, data, err := conn.Read(context.Background())
			if err != nil {
				return
			}
			if m, err := signaling.Parse(data); err == nil {
				select {
				case h.msgs <- m:
				default: // nobody is waiting for this much
				}
			}
		}
	}()
	t.Cleanup(func() { conn.CloseNow() })
	h.expect(signaling.TypeHello)
	return h
}

func (h *hostile) send(m map[string]any) {
	h.t.Helper()
	b, _ := json.Marshal(m)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := h.conn.Write(ctx, websocket.MessageText, b); err != nil {
		h.t.Fatalf("hostile send: %v", err)
	}
}

// expect waits for the next message of type typ, skipping others.
func (h *hostile) expect(typ string) signaling.Message {
	h.t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case m, ok := <-h.msgs:
			if !ok {
				h.t.Fatalf("hostile socket closed while waiting for %s", typ)
			}
			if m.Type == typ {
				return m
			}
		case <-timeout:
			h.t.Fatalf("hostile: no %s within 10s", typ)
		}
	}
}

// twoInACall is Ada and Bob (browsers, signed up through the forms) in a
// call with video both ways, and Eve, a member of the channel on no
// browser. before runs on Bob's window before he opens the channel.
func twoInACall(t *testing.T, s *servertest.Server, before ...chromedp.Action[chromedp.Void]) (ch string, ada, bob *user, eve *http.Client, ids []string) {
	t.Helper()
	browser := newBrowser(t)
	ada, bob = newUser(t, browser, s, "Ada"), newUser(t, browser, s, "Bob")
	ada.signUp("ada", "Ada")
	bob.signUp("bob", "Bob")
	eve = s.SignUp("eve", "Eve")
	ch = ada.createChannel("Guarded")
	ada.addMember(ch, "bob")
	ada.addMember(ch, "eve")
	if len(before) > 0 {
		bob.do(before...)
	}
	ada.joinCall(ch)
	bob.joinCall(ch)
	ids = []string{ada.myID(), bob.myID()}
	ada.waitRemoteVideos(ids[1:], 45*time.Second)
	bob.waitRemoteVideos(ids[:1], 45*time.Second)
	return ch, ada, bob, eve, ids
}

// TestForgedSFUOfferRefused (issue 9, item 2): in an SFU call, a member
// sends a real browser an offer and candidates dressed as the SFU's (pc
// "sub"/"pub", from "sfu"). The server refuses each with an error to the
// sender, and the victim's video from the SFU keeps decoding new frames.
func TestForgedSFUOfferRefused(t *testing.T) {
	s := servertest.Start(t)
	ch, ada, _, eveHTTP, ids := twoInACall(t, s)

	// Eve joining makes three: the call moves to the SFU.
	eve := dialHostile(t, s, eveHTTP, ch)
	eve.send(map[string]any{"type": "join"})
	eve.expect(signaling.TypeJoined)
	// The forgery: the SFU's real subscribe offer to Eve, which she passes
	// on to Ada as if the SFU had sent it to her.
	forged := eve.expect(signaling.TypeOffer).SDP
	ada.waitFor("Bob's video through the SFU", fmt.Sprintf(`(() => { const s = window.parley.state;
		return s.topology === "sfu" && s.shown[%q] === "sfu" && s.sfu?.sub === "connected"; })()`, ids[1]), 30*time.Second)
	ada.waitFramesRise(ids[1:], 10, 15*time.Second)

	cand := map[string]any{"candidate": "candidate:1 1 udp 2130706431 127.0.0.1 9 typ host", "sdpMid": "0", "sdpMLineIndex": 0}
	for _, m := range []map[string]any{
		{"type": "offer", "to": ids[0], "pc": "sub", "sdp": forged},
		{"type": "offer", "to": ids[0], "pc": "sub", "from": "sfu", "sdp": forged},
		{"type": "candidate", "to": ids[0], "pc": "sub", "candidate": cand},
		{"type": "answer", "to": ids[0], "pc": "pub", "sdp": forged},
	} {
		eve.send(m)
		if e := eve.expect(signaling.TypeError); e.Code != signaling.CodeInvalid || e.Ref != m["type"] || e.Human == "" {
			t.Errorf("forged %v: got %+v, want an %q error that says why", m["type"], e, signaling.CodeInvalid)
		}
	}
	// For 5 s after the forgery Ada keeps decoding Bob's video (rounds of
	// at least 5 new frames), on the same, still connected, subscription.
	for start := time.Now(); time.Since(start) < 5*time.Second; {
		ada.waitFramesRise(ids[1:], 5, 3*time.Second)
	}
	if st := ada.pageState(); st.SFU == nil || st.SFU.Sub != "connected" || st.Shown[ids[1]] != "sfu" {
		t.Errorf("Ada's SFU connections after the forgery: %+v", st)
	}
}

// signalingTrap replaces the page's WebSocket so the test can drop the
// signaling socket and hold reconnects back (a network outage of the
// socket only: peer-to-peer media keeps flowing).
const signalingTrap = `(() => {
	const Real = window.WebSocket;
	const open = [];
	let blocked = false;
	window.WebSocket = class extends Real {
		constructor(...args) {
			if (blocked) throw new DOMException("blocked by the test", "NetworkError");
			super(...args);
			open.push(this);
		}
	};
	window.__dropSignaling = () => { blocked = true; for (const ws of open.splice(0)) ws.close(); };
	window.__allowSignaling = () => { blocked = false; };
})()`

func addScript(js string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: js})
		return err
	})
}

// TestResumeSquattingRefused (issue 9, item 6): Bob's signaling socket
// drops in a peer-to-peer call; Eve, another member, joins with resume set
// to Bob's id. She gets a fresh id, Ada's tile for Bob keeps his name and
// video, and Bob, back, resumes his own id.
func TestResumeSquattingRefused(t *testing.T) {
	// Three in the mesh stay in the mesh: the test is about the P2P call.
	s := servertest.Start(t, servertest.WithConfig(func(c *config.Config) { c.P2PMax = 3 }))
	ch, ada, bob, eveHTTP, ids := twoInACall(t, s, addScript(signalingTrap))
	eve := dialHostile(t, s, eveHTTP, ch) // in the lobby: hears who leaves

	eval[any](bob, `window.__dropSignaling()`)
	if l := eve.expect(signaling.TypeParticipantLeft); l.ID != ids[1] || l.Reason != signaling.ReasonDisconnected {
		t.Fatalf("Bob's drop: %+v", l)
	}
	eve.send(map[string]any{"type": "join", "resume": ids[1]})
	if j := eve.expect(signaling.TypeJoined); j.You.ID == ids[1] {
		t.Fatal("Eve took over Bob's participant id")
	} else {
		ada.waitFor("Eve's own tile", fmt.Sprintf(`!!document.querySelector('%s')`, tileSel(j.You.ID)), 10*time.Second)
	}
	bobLabel := fmt.Sprintf(`(document.querySelector('%s')?.getAttribute("aria-label") || "")`, tileSel(ids[1]))
	if l := eval[string](ada, bobLabel); !strings.Contains(l, "Bob") || strings.Contains(l, "Eve") {
		t.Errorf("Ada's tile for Bob's id is labelled %q", l)
	}
	ada.waitFramesRise(ids[1:], 5, 10*time.Second)

	eval[any](bob, `window.__allowSignaling()`)
	if pj := eve.expect(signaling.TypeParticipantJoined); pj.Participant.ID != ids[1] || pj.Participant.Name != "Bob" {
		t.Errorf("Bob came back as %+v, want his own id %s", pj.Participant, ids[1])
	}
	bob.waitFor("Bob's page to keep its id", fmt.Sprintf(`window.parley.myId === %q`, ids[1]), 5*time.Second)
	ada.waitFor("Bob's tile still his", bobLabel+`.includes("Bob")`, 5*time.Second)
	ada.waitFramesRise(ids[1:], 10, 10*time.Second)
}
