package room_test

// The room alone: a Manager with a fake media layer, its sockets
// in-memory websocket pairs over net.Pipe (no TCP, no SFU, no database).
// These tests drive the actor's ordering rules directly and each runs in
// milliseconds.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/pion/webrtc/v4"

	"github.com/parley/parley/internal/media"
	"github.com/parley/parley/internal/room"
	"github.com/parley/parley/internal/signaling"
	"github.com/parley/parley/internal/testtool"
)

// pipeListener hands the server ends of net.Pipe pairs to an http.Server.
type pipeListener struct {
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error   { l.once.Do(func() { close(l.closed) }); return nil }
func (l *pipeListener) Addr() net.Addr { return pipeAddr{} }

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "memory" }

// actor is a Manager serving channel "c1" over in-memory sockets.
type actor struct {
	t      *testing.T
	m      *room.Manager
	client *http.Client
}

// newActor starts a Manager whose channel c1 has mode; fm (nil: no media
// server) is its media layer.
func newActor(t *testing.T, mode string, fm *fakeMedia) *actor {
	t.Helper()
	postChat := func(_ context.Context, u signaling.User, _, text string) (signaling.ChatMessage, error) {
		return signaling.ChatMessage{UserID: u.UserID, Text: text}, nil
	}
	return newChatActor(t, mode, fm, postChat)
}

// newChatActor is newActor storing chat with postChat.
func newChatActor(t *testing.T, mode string, fm *fakeMedia, postChat room.PostChat) *actor {
	t.Helper()
	cfg := room.Config{}
	if fm != nil {
		cfg.Media = fm
	}
	m := room.NewManager(cfg, slog.New(slog.DiscardHandler), postChat)
	l := &pipeListener{conns: make(chan net.Conn), closed: make(chan struct{})}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		u := r.URL.Query().Get("user")
		user := signaling.User{UserID: u, Name: u, Role: r.URL.Query().Get("role")}
		if r.URL.Query().Has("guest") {
			user.Role = signaling.RoleGuest
			m.ServeGuest(context.Background(), conn, "c1", mode, "parley.test", user, room.Auth{UserID: u}, r.URL.Query().Has("lobby"))
			return
		}
		if r.URL.Query().Has("grants") {
			serveToken(m, conn, mode, user, r.URL.Query())
			return
		}
		if cp := r.URL.Query().Get("cap"); cp != "" {
			n, _ := strconv.Atoi(cp)
			m.ServeCapped(context.Background(), conn, "q1", "parley.test", user, room.Auth{UserID: u}, n)
			return
		}
		m.Serve(context.Background(), conn, "c1", mode, "parley.test", user, room.Auth{UserID: u})
	})}
	go srv.Serve(l)
	t.Cleanup(func() {
		if fm != nil {
			fm.open() // a room stuck in Join would never close
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := m.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		srv.Close()
	})
	dial := func(ctx context.Context, _, _ string) (net.Conn, error) {
		mine, theirs := net.Pipe()
		select {
		case l.conns <- theirs:
			return mine, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return &actor{t: t, m: m, client: &http.Client{Transport: &http.Transport{DialContext: dial}}}
}

// dial opens user's socket and reads its hello.
func (a *actor) dial(user string) *peer {
	a.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, "ws://memory/ws?user="+user, &websocket.DialOptions{HTTPClient: a.client})
	if err != nil {
		a.t.Fatalf("dial: %v", err)
	}
	p := newPeer(a.t, conn)
	p.hello = p.expect(signaling.TypeHello)
	return p
}

// join joins p to the call and returns joined.
func join(p *peer) signaling.Message {
	p.t.Helper()
	p.send(signaling.Message{Type: signaling.TypeJoin})
	return p.expect(signaling.TypeJoined)
}

// sync returns once the server's reader has handled everything p sent
// before: it answers pings in order.
func (p *peer) sync() {
	p.t.Helper()
	p.send(signaling.Message{Type: signaling.TypePing, TS: 42})
	p.expect(signaling.TypePong)
}

// fakeMedia is a media layer that records what the room asks of it.
type fakeMedia struct {
	gate     chan struct{} // Join waits until it is closed
	gateOnce sync.Once
	joined   chan *fakePeer // every peer Join made, in order
	room     chan media.RoomEvents
}

func newFakeMedia(gated bool) *fakeMedia {
	fm := &fakeMedia{gate: make(chan struct{}), joined: make(chan *fakePeer, 64), room: make(chan media.RoomEvents, 64)}
	if !gated {
		fm.open()
	}
	return fm
}

// open lets Join return.
func (fm *fakeMedia) open() { fm.gateOnce.Do(func() { close(fm.gate) }) }

func (fm *fakeMedia) Join(_, id string, re media.RoomEvents, pe media.PeerEvents) (room.MediaPeer, error) {
	<-fm.gate
	fm.room <- re
	p := &fakePeer{id: id, ev: pe, calls: make(chan string, 1024), done: make(chan struct{})}
	fm.joined <- p
	return p, nil
}

func (fm *fakeMedia) JoinPublisher(string, string, media.RoomEvents, media.PeerEvents) (room.MediaPeer, error) {
	return nil, errors.New("fake media: no WHIP")
}

func (fm *fakeMedia) View(string, string, string) (room.MediaViewer, string, error) {
	return nil, "", errors.New("fake media: no WHEP")
}

// next is the next peer Join made.
func (fm *fakeMedia) next(t *testing.T) *fakePeer {
	t.Helper()
	select {
	case p := <-fm.joined:
		return p
	case <-time.After(5 * time.Second):
		t.Fatal("no SFU connections made within 5s")
		return nil
	}
}

// fakePeer records the calls made on it, one line each.
type fakePeer struct {
	id    string
	ev    media.PeerEvents
	calls chan string
	done  chan struct{}
	once  sync.Once
}

func (p *fakePeer) record(format string, args ...any) { p.calls <- fmt.Sprintf(format, args...) }

func (p *fakePeer) Publish(offer string, _ map[string]string) (string, error) {
	p.record("publish %s", offer)
	return "v=0 answer to " + offer, nil
}

func (p *fakePeer) AnswerSubscriber(answer string) error {
	p.record("answer %s", answer)
	return nil
}

func (p *fakePeer) AddCandidate(pc string, c webrtc.ICECandidateInit) error {
	p.record("candidate %s %s", pc, c.Candidate)
	return nil
}

func (p *fakePeer) RestartICE(string, string, []webrtc.ICECandidateInit) (media.ICEParams, error) {
	return media.ICEParams{}, errors.New("fake media: no ICE restart")
}

func (p *fakePeer) SetLayout(tiles []media.Tile) { p.record("layout %d", len(tiles)) }
func (p *fakePeer) SetSending(a, v, s bool)      { p.record("sending %t %t %t", a, v, s) }
func (p *fakePeer) Done() <-chan struct{}        { return p.done }
func (p *fakePeer) Close()                       { p.once.Do(func() { close(p.done) }) }

// expect returns the next n calls whose text starts with one of
// prefixes, skipping others.
func (p *fakePeer) expect(t *testing.T, n int, prefixes ...string) []string {
	t.Helper()
	var got []string
	timeout := time.After(5 * time.Second)
	for len(got) < n {
		select {
		case c := <-p.calls:
			for _, pre := range prefixes {
				if strings.HasPrefix(c, pre) {
					got = append(got, c)
					break
				}
			}
		case <-timeout:
			t.Fatalf("%s: %d of %d calls within 5s: %q", p.id, len(got), n, got)
		}
	}
	return got
}

// closed fails t unless p is closed within 5s.
func (p *fakePeer) closed(t *testing.T) {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: SFU connections not closed within 5s", p.id)
	}
}

func sfuCandidate(i int) signaling.Message {
	return signaling.Message{Type: signaling.TypeCandidate, To: signaling.SFU, PC: signaling.PCPublish,
		Candidate: &signaling.Candidate{Candidate: fmt.Sprintf("candidate:%d 1 udp 1 127.0.0.1 9 typ host", i)}}
}

// TestEarlyOfferKeepsOrder: a client that offers and trickles as soon as
// joined says "sfu", before the room has made its SFU connections, has
// its offer and every candidate applied in the order it sent them, and
// the candidates it sends while the waiting ones are applied come after.
func TestEarlyOfferKeepsOrder(t *testing.T) {
	fm := newFakeMedia(true) // the room blocks in Join until opened
	a := newActor(t, room.ModeSFU, fm)
	ann := a.dial("ann")
	if j := join(ann); j.Topology != signaling.TopologySFU {
		t.Fatalf("joined topology %q, want sfu", j.Topology)
	}
	ann.send(signaling.Message{Type: signaling.TypeOffer, To: signaling.SFU, PC: signaling.PCPublish, SDP: "v=0 offer"})
	for i := 1; i <= 5; i++ {
		ann.send(sfuCandidate(i))
	}
	ann.sync() // all of it reached the room package before it had a peer
	fm.open()
	for i := 6; i <= 10; i++ {
		ann.send(sfuCandidate(i))
	}
	want := []string{"publish v=0 offer"}
	for i := 1; i <= 10; i++ {
		want = append(want, fmt.Sprintf("candidate pub candidate:%d 1 udp 1 127.0.0.1 9 typ host", i))
	}
	got := fm.next(t).expect(t, len(want), "publish", "candidate")
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("the SFU got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if m := ann.expect(signaling.TypeAnswer); m.From != signaling.SFU || m.PC != signaling.PCPublish || m.SDP != "v=0 answer to v=0 offer" {
		t.Errorf("answer %+v", m)
	}
}

// TestSFUMessageInMeshRefused: with no SFU connections coming (the call
// is in the mesh), an offer to the SFU is refused and a candidate
// silently dropped, in order, after the room had its say.
func TestSFUMessageInMeshRefused(t *testing.T) {
	a := newActor(t, room.ModeAuto, newFakeMedia(false))
	ann := a.dial("ann")
	if j := join(ann); j.Topology != signaling.TopologyMesh {
		t.Fatalf("joined topology %q, want mesh", j.Topology)
	}
	ann.send(sfuCandidate(1))
	ann.send(signaling.Message{Type: signaling.TypeOffer, To: signaling.SFU, PC: signaling.PCPublish, SDP: "v=0 offer"})
	if e := ann.expect(signaling.TypeError); e.Ref != signaling.TypeOffer || e.Code != signaling.CodeInvalid || !strings.Contains(e.Human, "mesh") {
		t.Errorf("first error %+v, want the offer refused (the candidate dropped)", e)
	}
}

// TestThirdParticipantMovesToSFUAlone: the topology rules and the SFU
// connections' lifecycle, against the fake media layer.
func TestThirdParticipantMovesToSFUAlone(t *testing.T) {
	fm := newFakeMedia(false)
	a := newActor(t, room.ModeAuto, fm)
	ann, bob, cat := a.dial("ann"), a.dial("bob"), a.dial("cat")
	annID := join(ann).You.ID
	join(bob)
	j := join(cat)
	if j.Topology != signaling.TopologySFU {
		t.Fatalf("third participant's topology %q, want sfu", j.Topology)
	}
	catID := j.You.ID
	for _, p := range []*peer{ann, bob} {
		if m := p.expect(signaling.TypeTopology); m.Topology != signaling.TopologySFU {
			t.Fatalf("topology %q, want sfu", m.Topology)
		}
	}
	peers := map[string]*fakePeer{}
	for range 3 {
		p := fm.next(t)
		peers[p.id] = p
	}
	annPeer := peers[annID]
	if annPeer == nil {
		t.Fatalf("no SFU connections for ann (%s): %v", annID, peers)
	}
	// The media layer's offers reach the socket; the client's answer
	// and mute state reach the media layer.
	annPeer.ev.Offer("v=0 sub offer")
	if m := ann.expect(signaling.TypeOffer); m.From != signaling.SFU || m.PC != signaling.PCSubscribe || m.SDP != "v=0 sub offer" {
		t.Errorf("subscriber offer %+v", m)
	}
	ann.send(signaling.Message{Type: signaling.TypeAnswer, To: signaling.SFU, PC: signaling.PCSubscribe, SDP: "v=0 sub answer"})
	ann.send(signaling.Message{Type: signaling.TypeUpdate, State: &signaling.State{Audio: true}})
	// The answer goes through the SFU worker, the update through the
	// room: either may come first.
	got := annPeer.expect(t, 2, "answer", "sending true")
	slices.Sort(got)
	if want := []string{"answer v=0 sub answer", "sending true false false"}; !slices.Equal(got, want) {
		t.Errorf("calls %q, want %q", got, want)
	}
	// Back to two: the mesh, and the leaver's connections are closed.
	cat.send(signaling.Message{Type: signaling.TypeLeave})
	for _, p := range []*peer{ann, bob} {
		if m := p.expect(signaling.TypeTopology); m.Topology != signaling.TopologyMesh {
			t.Fatalf("topology %q after a leave, want mesh", m.Topology)
		}
	}
	peers[catID].closed(t)
	select {
	case <-annPeer.Done():
		t.Error("ann's SFU connections closed at once on the switch to the mesh, want them kept for a grace period")
	default:
	}
}

// TestNewcomerHearsCurrentSpeaker: the speaker is broadcast when it
// changes, and someone who joins while that person talks is told at once
// (a fourth participant's page highlighted nobody before).
func TestNewcomerHearsCurrentSpeaker(t *testing.T) {
	fm := newFakeMedia(false)
	a := newActor(t, room.ModeAuto, fm)
	ann, bob, cat := a.dial("ann"), a.dial("bob"), a.dial("cat")
	annID := join(ann).You.ID
	join(bob)
	join(cat)
	var re media.RoomEvents
	select {
	case re = <-fm.room:
	case <-time.After(5 * time.Second):
		t.Fatal("no SFU join within 5s")
	}
	re.Speaker(annID)
	for _, p := range []*peer{ann, bob, cat} {
		if m := p.expect(signaling.TypeSpeaker); m.ID != annID {
			t.Fatalf("speaker %q, want ann (%s)", m.ID, annID)
		}
	}
	dan := a.dial("dan")
	join(dan)
	if m := dan.expect(signaling.TypeSpeaker); m.ID != annID {
		t.Fatalf("newcomer told speaker %q, want ann (%s)", m.ID, annID)
	}
}

// TestFailedMediaRestarts: SFU connections that close by themselves are
// replaced, and the client told to start afresh (sfu-restart).
func TestFailedMediaRestarts(t *testing.T) {
	fm := newFakeMedia(false)
	a := newActor(t, room.ModeSFU, fm)
	ann := a.dial("ann")
	id := join(ann).You.ID
	first := fm.next(t)
	first.Close() // its connection failed
	ann.expect(signaling.TypeSFURestart)
	if again := fm.next(t); again.id != id {
		t.Errorf("new SFU connections for %s, want %s", again.id, id)
	}
	// A leave closes the new ones.
	ann.send(signaling.Message{Type: signaling.TypeLeave})
}

// TestManagerDoesNotPostUnderLock: a room whose queue is full (its
// goroutine busy) stalls the callers that post to it, but never the
// Manager: other channels' sockets and Counts go on.
func TestManagerDoesNotPostUnderLock(t *testing.T) {
	fm := newFakeMedia(true)
	a := newActor(t, room.ModeSFU, fm)
	ann := a.dial("ann")
	join(ann) // the room goroutine is now stuck in Join
	var posted atomic.Int32
	go func() {
		for range 200 { // more than the room's queue holds
			a.m.SetMode("c1", room.ModeSFU)
			posted.Add(1)
		}
	}()
	// Once 64 have returned the queue is full: the next SetMode waits.
	testtool.Eventually(t, 5*time.Second, func() bool { return posted.Load() >= 64 }, "SetMode to fill the room's queue")
	counted := make(chan struct{})
	go func() { a.m.Counts(); close(counted) }()
	select {
	case <-counted:
	case <-time.After(2 * time.Second):
		t.Fatal("Counts blocked behind a SetMode waiting on a full room queue")
	}
	if n := posted.Load(); n >= 200 {
		t.Fatalf("all %d SetMode calls returned while the room was stuck", n)
	}
	fm.open()
	fm.next(t)
}

// TestChatBroadcastInStoredOrder checks that the live chat is broadcast in
// the order messages were stored, the order the history keeps and trims
// by (issue 9, item 12). The first post is stored, then its reader stalls
// before queueing the broadcast, as one descheduled right after its COMMIT
// under load does; a second post from another socket arrives meanwhile. It
// must not be stored and broadcast ahead of the first: seen live as older,
// the first would be trimmed as if it were newer than it looked.
func TestChatBroadcastInStoredOrder(t *testing.T) {
	var (
		mu          sync.Mutex
		stored      int
		firstStored = make(chan struct{})
		overtaken   = make(chan struct{}) // the second was broadcast first
	)
	postChat := func(_ context.Context, u signaling.User, _, text string) (signaling.ChatMessage, error) {
		mu.Lock()
		stored++
		seq := stored
		mu.Unlock()
		if text == "first" {
			close(firstStored)
			// Hold the stall until the second post has overtaken this
			// one; with the fix it cannot, and the stall ends after a
			// second (the only way to wait for something that must not
			// happen).
			select {
			case <-overtaken:
			case <-time.After(time.Second):
			}
		}
		return signaling.ChatMessage{UserID: u.UserID, Text: fmt.Sprintf("%d:%s", seq, text)}, nil
	}
	a := newChatActor(t, room.ModeAuto, nil, postChat)
	observer := a.dial("observer")
	first, second := a.dial("alice"), a.dial("bob")

	first.send(signaling.Message{Type: signaling.TypeChat, Text: "first"})
	select {
	case <-firstStored:
	case <-time.After(10 * time.Second):
		t.Fatal("the first post was not stored within 10s")
	}
	second.send(signaling.Message{Type: signaling.TypeChat, Text: "second"})

	var got []string
	for range 2 {
		m := observer.expect(signaling.TypeChat)
		got = append(got, m.Chat.Text)
		if strings.HasSuffix(m.Chat.Text, ":second") && len(got) == 1 {
			close(overtaken)
		}
	}
	if want := []string{"1:first", "2:second"}; !slices.Equal(got, want) {
		t.Errorf("chat broadcast as %q, want %q: the live order must be the stored order", got, want)
	}
}
