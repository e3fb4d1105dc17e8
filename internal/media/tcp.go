package media

import (
	"net"
	"sync"
)

// tcpQueueLen bounds the packets waiting to be written to one ICE-TCP
// connection (about a second of video for one subscriber).
const tcpQueueLen = 512

// tcpListener hands pion's ICE-TCP mux connections whose writes never
// block. pion writes each packet to the TCP connection from the
// forwarding goroutine; a subscriber whose TCP window is closed would
// otherwise stall every other subscriber of the same publisher.
type tcpListener struct {
	net.Listener
	m *metrics
}

func (l tcpListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	q := &queuedConn{Conn: c, m: l.m, q: make(chan []byte, tcpQueueLen), done: make(chan struct{})}
	go q.writeLoop()
	return q, nil
}

// queuedConn queues writes (whole ICE-TCP frames, so dropping one keeps
// the framing intact) and writes them from its own goroutine, dropping
// when the queue is full.
type queuedConn struct {
	net.Conn
	m         *metrics
	q         chan []byte
	done      chan struct{}
	closeOnce sync.Once
}

func (c *queuedConn) Write(b []byte) (int, error) {
	buf := append([]byte(nil), b...)
	select {
	case <-c.done:
		return 0, net.ErrClosed
	default:
	}
	select {
	case c.q <- buf:
	default:
		c.m.drop(dropTCPQueueFull)
	}
	return len(b), nil
}

func (c *queuedConn) writeLoop() {
	for {
		select {
		case <-c.done:
			return
		case b := <-c.q:
			if _, err := c.Conn.Write(b); err != nil {
				_ = c.Close()
				return
			}
		}
	}
}

func (c *queuedConn) Close() error {
	c.closeOnce.Do(func() { close(c.done) })
	return c.Conn.Close()
}
