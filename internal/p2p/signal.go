package p2p

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"
)

// The signaling channel is the TCP connection itself: one JSON object per
// line (SDP's line breaks are escaped inside JSON strings). The dialer
// offers, the listener answers, both trickle candidates, and either says
// bye before hanging up.
const (
	typeOffer     = "offer"
	typeAnswer    = "answer"
	typeCandidate = "candidate"
	typeBye       = "bye"

	// maxMessage bounds one message; an audio offer is about 1 KiB.
	maxMessage = 64 << 10
	// writeTimeout bounds one message write, so a peer that stopped
	// reading cannot hang a hang-up.
	writeTimeout = 5 * time.Second
)

type message struct {
	Type      string                   `json:"type"`
	SDP       string                   `json:"sdp,omitempty"`
	Candidate *webrtc.ICECandidateInit `json:"candidate,omitempty"`
}

// signalConn reads and writes messages on the connection. Reads happen on
// one goroutine; writes come from the call loop and from pion's candidate
// callback, hence the lock.
type signalConn struct {
	conn net.Conn
	sc   *bufio.Scanner
	wmu  sync.Mutex
}

func newSignalConn(conn net.Conn) *signalConn {
	return &signalConn{conn: conn, sc: newScanner(conn)}
}

func newScanner(r io.Reader) *bufio.Scanner {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxMessage+1) // +1: the newline
	return sc
}

// readMessage reads and checks one message; io.EOF when the peer closed
// the connection between messages.
func readMessage(sc *bufio.Scanner) (message, error) {
	if !sc.Scan() {
		err := sc.Err()
		if errors.Is(err, bufio.ErrTooLong) {
			return message{}, fmt.Errorf("p2p: the peer sent a signaling message over the %d KiB limit: %w", maxMessage>>10, err)
		}
		if err == nil {
			err = io.EOF
		}
		return message{}, err
	}
	var m message
	if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
		return message{}, fmt.Errorf("p2p: the peer sent something that is not a parley p2p message (is another program on that port?): %w", err)
	}
	switch {
	case m.Type != typeOffer && m.Type != typeAnswer && m.Type != typeCandidate && m.Type != typeBye:
		return message{}, fmt.Errorf("p2p: the peer sent an unknown signaling message type %q", m.Type)
	case (m.Type == typeOffer || m.Type == typeAnswer) && m.SDP == "":
		return message{}, fmt.Errorf("p2p: the peer sent an %s without SDP", m.Type)
	case m.Type == typeCandidate && m.Candidate == nil:
		return message{}, errors.New("p2p: the peer sent a candidate message without a candidate")
	}
	return m, nil
}

func (s *signalConn) read() (message, error) { return readMessage(s.sc) }

func (s *signalConn) write(m message) error {
	b, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("p2p: encode %s: %w", m.Type, err)
	}
	if len(b) > maxMessage {
		return fmt.Errorf("p2p: %s message is %d bytes, over the %d KiB limit", m.Type, len(b), maxMessage>>10)
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	if _, err := s.conn.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("p2p: send %s: %w", m.Type, err)
	}
	return nil
}
