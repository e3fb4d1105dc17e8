package main

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/parley/parley/internal/account"
	"github.com/parley/parley/internal/signaling"
	"github.com/parley/parley/internal/store/storetest"
)

// TestChatSurvivesKill9 checks the promise the chat makes: a message whose
// sender saw it come back (the server's broadcast, sent after it is stored)
// is in the history after a crash, as long as it is among the newest
// account.HistorySize of its channel. It runs the real binary, has several
// sockets per channel post bursts over the real WebSocket, kills the process
// with SIGKILL in the middle of the burst, starts it again on the same data
// and reads the history back. Many rounds, on SQLite and (with
// PARLEY_TEST_POSTGRES) on PostgreSQL.
//
// The burst is concurrent on purpose: posts that wait for the database
// behind many others are what once lost an acknowledged message (history
// was ordered and trimmed by the time a post arrived, not by the order
// posts were stored, so a post stored after 100 later-stamped ones deleted
// itself; see docs/security.md, "Durability of chat").
func TestChatSurvivesKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and kills it many times")
	}
	bin := buildParley(t)
	t.Run("sqlite", func(t *testing.T) {
		chatKillRounds(t, bin, "", 10)
	})
	t.Run("postgres", func(t *testing.T) {
		chatKillRounds(t, bin, storetest.PostgresDSN(t), 6)
	})
}

// Shape of each round: per channel, killSocketsPerUser sockets of each of
// the two users post killPerSocket messages each, as fast as killWindow lets
// them (well inside the per-socket burst allowance, so none is
// rate-limited). 24 posts in flight at once is what makes some wait for the
// database behind a hundred others.
const (
	killChannels       = 1
	killSocketsPerUser = 12
	killPerSocket      = 100
	// killWindow is how many messages a socket has written and not yet seen
	// echoed. It keeps the server busy (the next post is already waiting
	// when one is stored) while bounding how many posts the kill can leave
	// stored but not broadcast, which the check must allow for.
	killWindow = 2
)

func chatKillRounds(t *testing.T, bin, dsn string, rounds int) {
	srv := &parleyProcess{t: t, bin: bin, dataDir: t.TempDir(), dsn: dsn}
	srv.start()
	t.Cleanup(srv.kill)

	owner := srv.signUp("kora")
	member := srv.signUp("milo")
	sessions := []string{owner, member}
	var chans []*chanLog
	for i := range killChannels {
		id := srv.createChannel(owner, fmt.Sprintf("burst %d", i))
		srv.addMember(owner, id, "milo")
		chans = append(chans, &chanLog{id: id})
	}

	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 9))
	total := killChannels * len(sessions) * killSocketsPerUser * killPerSocket
	for round := range rounds {
		// Kill somewhere between a fifth and four fifths of the way through.
		killAt := total/5 + rng.IntN(total*3/5)
		acked := new(atomic.Int64)
		enough := make(chan struct{})
		var once sync.Once
		onAck := func() {
			if acked.Add(1) == int64(killAt) {
				once.Do(func() { close(enough) })
			}
		}
		var socks []*chatSocket
		for ci, c := range chans {
			for si, sess := range sessions {
				for k := range killSocketsPerUser {
					prefix := fmt.Sprintf("r%d c%d u%d s%d #", round, ci, si, k)
					socks = append(socks, srv.dialChat(c.id, sess, prefix, onAck))
				}
			}
		}
		for _, s := range socks {
			go s.burst(killPerSocket)
		}
		select {
		case <-enough:
		case <-time.After(30 * time.Second):
			t.Fatalf("round %d: only %d of %d messages acknowledged in 30s", round, acked.Load(), killAt)
		}
		srv.kill()
		for _, s := range socks {
			s.wait()
		}
		for ci, c := range chans {
			c.addRound(t, socks[ci*len(sessions)*killSocketsPerUser:(ci+1)*len(sessions)*killSocketsPerUser])
		}
		crashLog := srv.logs
		srv.start()
		for _, c := range chans {
			if !c.check(t, round, srv.history(owner, c.id)) {
				c.diagnose(t, srv, crashLog)
			}
		}
		if t.Failed() {
			return
		}
	}
}

// chanLog is what the test knows about one channel across rounds.
type chanLog struct {
	id     string
	rounds []roundLog

	history []string  // read after the last restart
	missing []missing // acknowledged messages check found missing
}

// missing is where an acknowledged, missing message was broadcast.
type missing struct {
	round, index int // its round and place in that round's broadcast order
	after        int // how many messages check counted as possibly newer
}

// roundLog is one round on one channel: the order the server broadcast
// messages in (every socket of a channel receives the same sequence, so the
// longest one received is the most of it seen), which of them the sender
// saw come back, and how many were written but never seen broadcast
// (perhaps stored just before the kill, perhaps not).
type roundLog struct {
	order   []string
	acked   map[string]bool
	unknown int
	sent    int
}

func (c *chanLog) addRound(t *testing.T, socks []*chatSocket) {
	t.Helper()
	r := roundLog{acked: map[string]bool{}}
	for _, s := range socks {
		if len(s.received) > len(r.order) {
			r.order = s.received
		}
		r.sent += s.written
		for _, text := range s.received {
			if strings.HasPrefix(text, s.prefix) {
				r.acked[text] = true
			}
		}
	}
	for i, s := range socks {
		// Each socket's view must be a prefix of the longest: one room
		// goroutine broadcasts in one order to all.
		if !slices.Equal(s.received, r.order[:len(s.received)]) {
			t.Errorf("channel %s: socket %d saw the broadcasts in another order than its neighbours", c.id, i)
		}
	}
	r.unknown = r.sent - len(r.order)
	var stamps []time.Time
	for _, s := range socks {
		if len(s.stamps) > len(stamps) {
			stamps = s.stamps
		}
	}
	// The condition that used to lose messages, logged to show the burst
	// brings it about: a post stored behind HistorySize later-stamped ones.
	refused := 0
	for _, s := range socks {
		refused += s.refused
	}
	t.Logf("channel %s: %d written, %d broadcast, %d refused, %d stored behind %d or more later-stamped posts",
		c.id, r.sent, len(r.order), refused, storedLate(stamps, account.HistorySize), account.HistorySize)
	c.rounds = append(c.rounds, r)
}

// storedLate counts the posts, in broadcast order, that follow at least n
// posts with a later timestamp.
func storedLate(stamps []time.Time, n int) int {
	late := 0
	for i, at := range stamps {
		newer := 0
		for _, before := range stamps[:i] {
			if before.After(at) {
				newer++
			}
		}
		if newer >= n {
			late++
		}
	}
	return late
}

// check compares the history read after a restart with what the clients
// saw. Every acknowledged message that fewer than HistorySize messages can
// have followed must be there; a message counts as possibly later if it was
// broadcast after it, written in the same round but never seen broadcast,
// or written in a later round.
func (c *chanLog) check(t *testing.T, round int, history []string) bool {
	t.Helper()
	c.history = history
	ok := true
	have := map[string]bool{}
	for _, text := range history {
		if have[text] {
			t.Errorf("round %d: %q is twice in the history", round, text)
		}
		have[text] = true
	}
	if len(history) > account.HistorySize {
		t.Errorf("round %d: history holds %d messages, more than %d", round, len(history), account.HistorySize)
	}
	// The history is in the order of storing, which the live chat must
	// follow (so "the newest 100" means the same on screen as in the
	// database): what the clients saw of it, they saw in that order.
	seen := map[string]int{}
	for _, r := range c.rounds {
		for _, text := range r.order {
			seen[text] = len(seen)
		}
	}
	prev, prevText := -1, ""
	for _, text := range history {
		at, known := seen[text]
		if !known {
			continue
		}
		if at < prev {
			ok = false
			t.Errorf("round %d, channel %s: history holds %q after %q, but they were broadcast the other way round", round, c.id, text, prevText)
			break
		}
		prev, prevText = at, text
	}
	ackedTotal, later := 0, 0
	for ri := len(c.rounds) - 1; ri >= 0; ri-- {
		r := c.rounds[ri]
		for i, text := range r.order {
			if !r.acked[text] {
				continue
			}
			ackedTotal++
			after := later + r.unknown + len(r.order) - 1 - i
			if after < account.HistorySize && !have[text] {
				ok = false
				c.missing = append(c.missing, missing{round: ri, index: i, after: after})
				t.Errorf("round %d, channel %s: acknowledged message %q (at most %d newer) is missing after kill -9 (round %d: %d written, %d broadcast)",
					round, c.id, text, after, ri, r.sent, len(r.order))
			}
		}
		later += r.sent
	}
	if ackedTotal >= account.HistorySize && len(history) != account.HistorySize {
		t.Errorf("round %d: %d messages acknowledged in all, yet the history holds %d, not %d", round, ackedTotal, len(history), account.HistorySize)
		ok = false
	}
	return ok && !t.Failed()
}

// chatSocket is one signaling socket that posts chat and records every chat
// broadcast it receives.
type chatSocket struct {
	conn   *websocket.Conn
	prefix string
	onAck  func()

	hello    chan struct{} // closed when the room has attached the socket
	window   chan struct{} // one token per message written and not yet echoed
	written  int           // messages handed to the socket (set by burst)
	refused  int           // posts answered with an error (set by read)
	received []string      // texts of chat broadcasts, in order (set by read)
	stamps   []time.Time   // their timestamps
	sendDone chan struct{}
	readDone chan struct{}
}

func (s *chatSocket) burst(n int) {
	defer close(s.sendDone)
	for i := range n {
		select {
		case s.window <- struct{}{}:
		case <-s.readDone:
			return
		}
		b, _ := json.Marshal(map[string]string{"type": signaling.TypeChat, "text": fmt.Sprintf("%s%d", s.prefix, i)})
		// Counted before the write: a write cut short by the kill may
		// still have reached the server.
		s.written++
		if err := s.conn.Write(context.Background(), websocket.MessageText, b); err != nil {
			return
		}
	}
}

func (s *chatSocket) read() {
	defer close(s.readDone)
	for {
		_, data, err := s.conn.Read(context.Background())
		if err != nil {
			return
		}
		var m struct {
			Type    string          `json:"type"`
			Message json.RawMessage `json:"message"`
		}
		if json.Unmarshal(data, &m) != nil {
			continue
		}
		switch m.Type {
		case signaling.TypeHello:
			close(s.hello)
			continue
		case signaling.TypeError:
			// A refused post (the server could not store it in time, say)
			// is answered but not acknowledged: it frees its slot.
			s.refused++
			<-s.window
			continue
		case signaling.TypeChat:
		default:
			continue
		}
		var c signaling.ChatMessage
		if err := json.Unmarshal(m.Message, &c); err != nil {
			continue
		}
		s.received = append(s.received, c.Text)
		s.stamps = append(s.stamps, c.At)
		if strings.HasPrefix(c.Text, s.prefix) {
			<-s.window
			s.onAck()
		}
	}
}

// wait returns once the socket is dead (the server was killed) and both
// goroutines have stopped, so their fields may be read.
func (s *chatSocket) wait() {
	<-s.readDone
	<-s.sendDone
	s.conn.CloseNow()
}

// parleyProcess is `parley serve` run as a child process.
type parleyProcess struct {
	t       *testing.T
	bin     string
	dataDir string
	dsn     string

	cmd  *exec.Cmd
	base string
	logs *logTail
}

// buildParley builds the binary once for the test.
func buildParley(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "parley")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func (p *parleyProcess) start() {
	t := p.t
	t.Helper()
	cmd := exec.Command(p.bin, "serve", "--addr", "127.0.0.1:0", "--data-dir", p.dataDir, "--log-format", "json",
		"--rtc-udp-port", "0", "--rtc-tcp-port", "0", "--rtc-listen-ip", "127.0.0.1", "--turn", "off")
	cmd.Env = append(os.Environ(), "PARLEY_TLS=", "PARLEY_DATABASE_URL="+p.dsn)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p.cmd = cmd
	p.logs = &logTail{}
	urlRe := regexp.MustCompile(`"url":"(http://[^"]+)"`)
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			p.logs.add(sc.Text())
			if m := urlRe.FindStringSubmatch(sc.Text()); m != nil {
				found <- m[1]
			}
		}
		close(found)
	}()
	select {
	case base, ok := <-found:
		if !ok {
			cmd.Wait()
			t.Fatalf("server exited before it was running:\n%s", p.logs)
		}
		p.base = base
	case <-time.After(30 * time.Second):
		t.Fatalf("server did not log its URL within 30s:\n%s", p.logs)
	}
}

// kill ends the process with SIGKILL, as a crash would, and reaps it.
func (p *parleyProcess) kill() {
	if p.cmd == nil {
		return
	}
	p.cmd.Process.Kill()
	p.cmd.Wait()
	p.cmd = nil
}

func (p *parleyProcess) form(session, path string, form url.Values) *http.Response {
	p.t.Helper()
	req, err := http.NewRequest(http.MethodPost, p.base+path, strings.NewReader(form.Encode()))
	if err != nil {
		p.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", p.base)
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	if session != "" {
		req.Header.Set("Cookie", "parley_session="+session)
	}
	c := &http.Client{Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		p.t.Fatalf("POST %s: %v", path, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		p.t.Fatalf("POST %s: status %d, want 303", path, resp.StatusCode)
	}
	return resp
}

// signUp creates a user through the sign-up form and returns its session.
func (p *parleyProcess) signUp(username string) string {
	p.t.Helper()
	resp := p.form("", "/signup", url.Values{"username": {username}, "display_name": {username},
		"email": {username + "@example.org"}, "password": {"correct horse battery staple"}})
	for _, c := range resp.Cookies() {
		if c.Name == "parley_session" {
			return c.Value
		}
	}
	p.t.Fatalf("sign up %s: no session cookie", username)
	return ""
}

func (p *parleyProcess) createChannel(session, name string) string {
	p.t.Helper()
	loc := p.form(session, "/channels", url.Values{"name": {name}}).Header.Get("Location")
	if !strings.HasPrefix(loc, "/c/") {
		p.t.Fatalf("create channel: redirected to %q", loc)
	}
	return strings.TrimPrefix(loc, "/c/")
}

func (p *parleyProcess) addMember(session, channelID, username string) {
	p.t.Helper()
	p.form(session, "/c/"+channelID+"/members", url.Values{"username": {username}})
}

// history reads the channel's chat history through the JSON API.
func (p *parleyProcess) history(session, channelID string) []string {
	p.t.Helper()
	req, err := http.NewRequest(http.MethodGet, p.base+"/api/channels/"+channelID+"/messages", nil)
	if err != nil {
		p.t.Fatal(err)
	}
	req.Header.Set("Cookie", "parley_session="+session)
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		p.t.Fatalf("history: %v", err)
	}
	defer resp.Body.Close()
	var body struct {
		Messages []signaling.ChatMessage `json:"messages"`
	}
	if resp.StatusCode != http.StatusOK {
		p.t.Fatalf("history: status %d", resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		p.t.Fatalf("history: %v", err)
	}
	var out []string
	for _, m := range body.Messages {
		out = append(out, m.Text)
	}
	return out
}

// dialChat opens a signaling socket on the channel and waits for the
// room's hello; it posts when burst is called.
func (p *parleyProcess) dialChat(channelID, session, prefix string, onAck func()) *chatSocket {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(p.base, "http")+"/ws/c/"+channelID, &websocket.DialOptions{
		HTTPHeader:   http.Header{"Cookie": {"parley_session=" + session}, "Origin": {p.base}},
		Subprotocols: []string{signaling.Subprotocol},
	})
	if err != nil {
		p.t.Fatalf("dial: %v", err)
	}
	conn.SetReadLimit(signaling.MaxMessageBytes)
	s := &chatSocket{conn: conn, prefix: prefix, onAck: onAck,
		hello: make(chan struct{}), window: make(chan struct{}, killWindow), sendDone: make(chan struct{}), readDone: make(chan struct{})}
	go s.read()
	// Every chat broadcast after hello reaches this socket, so all sockets
	// of a channel see the same sequence from the first burst on.
	select {
	case <-s.hello:
	case <-s.readDone:
		p.t.Fatal("socket closed before hello")
	case <-time.After(10 * time.Second):
		p.t.Fatal("no hello within 10s")
	}
	return s
}

// logTail keeps the last lines a child process logged, for failure output.
type logTail struct {
	mu    sync.Mutex
	lines []string
}

func (l *logTail) add(line string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, line)
	if len(l.lines) > 50 {
		l.lines = l.lines[1:]
	}
}

func (l *logTail) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// diagnose logs what a failed check needs to be understood: for each
// missing message, its neighbours in broadcast order with their seq (when
// still stored), the kept messages that were broadcast before it (if
// broadcast order were storage order there could be none), how many of its
// round's messages were acknowledged after it; then how far the history's
// order (seq) departs from the broadcast order, and the killed server's log
// tail.
func (c *chanLog) diagnose(t *testing.T, p *parleyProcess, crashLog *logTail) {
	t.Helper()
	seqs, last := p.storedSeqs(c.id)
	seqOf := func(text string) string {
		if s, ok := seqs[text]; ok {
			return fmt.Sprint(s)
		}
		return "-"
	}
	type place struct{ round, index int }
	pos := map[string]place{}
	for ri, r := range c.rounds {
		for i, text := range r.order {
			pos[text] = place{ri, i}
		}
	}
	before := func(a, b place) bool { return a.round < b.round || a.round == b.round && a.index < b.index }
	var b strings.Builder
	fmt.Fprintf(&b, "channel %s: last seq handed out %d; history holds %d\n", c.id, last, len(c.history))
	inHistory := map[string]bool{}
	for _, text := range c.history {
		inHistory[text] = true
	}
	for _, m := range c.missing {
		r := c.rounds[m.round]
		text := r.order[m.index]
		ackedAfter := 0
		for _, later := range r.order[m.index+1:] {
			if r.acked[later] {
				ackedAfter++
			}
		}
		fmt.Fprintf(&b, "missing %q: round %d, broadcast %d of %d; %d acknowledged after it in its round; counted at most %d newer (%d written but never seen broadcast)\n",
			text, m.round, m.index+1, len(r.order), ackedAfter, m.after, r.unknown)
		var keptEarlier []string
		for _, h := range c.history {
			if hp, ok := pos[h]; ok && before(hp, place{m.round, m.index}) {
				keptEarlier = append(keptEarlier, fmt.Sprintf("%q (broadcast %d, seq %s)", h, hp.index+1, seqOf(h)))
			}
		}
		fmt.Fprintf(&b, "  kept although broadcast before it: %d %v\n", len(keptEarlier), keptEarlier)
		for i := max(0, m.index-6); i < min(len(r.order), m.index+7); i++ {
			mark := " "
			if i == m.index {
				mark = ">"
			}
			fmt.Fprintf(&b, "  %s broadcast %4d seq %5s acked %-5v in history %-5v %q\n", mark, i+1, seqOf(r.order[i]), r.acked[r.order[i]], inHistory[r.order[i]], r.order[i])
		}
	}
	// The history comes in seq order; count pairs whose broadcast order is
	// the other way round.
	inversions := 0
	var worst []string
	for i, a := range c.history {
		pa, ok := pos[a]
		if !ok {
			continue
		}
		for _, z := range c.history[i+1:] {
			if pz, ok := pos[z]; ok && before(pz, pa) {
				inversions++
				if len(worst) < 10 {
					worst = append(worst, fmt.Sprintf("%q seq %s broadcast %d before %q seq %s broadcast %d",
						z, seqOf(z), pz.index+1, a, seqOf(a), pa.index+1))
				}
			}
		}
	}
	fmt.Fprintf(&b, "history (seq order) vs broadcast order: %d inverted pairs, e.g.:\n  %s\n", inversions, strings.Join(worst, "\n  "))
	fmt.Fprintf(&b, "log tail of the killed server:\n%s", crashLog)
	t.Log(b.String())
}

// storedSeqs reads each stored message's seq of the channel, keyed by text,
// and the channel's last seq, straight from the database (the API does not
// show seq). Errors are logged, not fatal: this only adds detail to a
// failure.
func (p *parleyProcess) storedSeqs(channelID string) (map[string]int64, int64) {
	out := map[string]int64{}
	if !regexp.MustCompile(`^[A-Za-z0-9_-]+$`).MatchString(channelID) {
		return out, 0
	}
	driver, dsn := "sqlite", "file:"+filepath.Join(p.dataDir, "parley.db")+"?mode=ro&_pragma=busy_timeout(5000)"
	if p.dsn != "" {
		driver, dsn = "pgx", p.dsn
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		p.t.Logf("diagnose: open database: %v", err)
		return out, 0
	}
	defer db.Close()
	rows, err := db.Query(`SELECT body, seq FROM messages WHERE channel_id = '` + channelID + `'`)
	if err != nil {
		p.t.Logf("diagnose: read seq: %v", err)
		return out, 0
	}
	defer rows.Close()
	for rows.Next() {
		var body string
		var seq int64
		if rows.Scan(&body, &seq) == nil {
			out[body] = seq
		}
	}
	var last int64
	if err := db.QueryRow(`SELECT message_seq FROM channels WHERE id = '` + channelID + `'`).Scan(&last); err != nil {
		p.t.Logf("diagnose: read last seq: %v", err)
	}
	return out, last
}
