// Package mailtest is a tiny SMTP server for tests: it accepts every
// message (EHLO/HELO, MAIL FROM, RCPT TO, DATA, RSET, NOOP, QUIT, and
// STARTTLS or implicit TLS when started so; no authentication) and hands
// it to the test. It stands in for the mail
// provider a real deployment talks to, so that tests exercise the real
// SMTP client end to end.
package mailtest

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"io"
	"math/big"
	"mime/quotedprintable"
	"net"
	netmail "net/mail"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// Message is one mail the server received.
type Message struct {
	// From and To are the envelope addresses (MAIL FROM, RCPT TO).
	From string
	To   []string
	// Header is the parsed message header.
	Header netmail.Header
	// Text is the body, with its transfer encoding undone.
	Text string
	// TLS reports whether the message came over TLS (STARTTLS or
	// implicit).
	TLS bool
}

// Link returns the first URL in the text whose path starts with prefix
// (e.g. "/reset/"), or "".
func (m Message) Link(prefix string) string {
	for _, u := range urlRE.FindAllString(m.Text, -1) {
		if i := strings.Index(u, "://"); i >= 0 {
			if j := strings.Index(u[i+3:], "/"); j >= 0 && strings.HasPrefix(u[i+3+j:], prefix) {
				return u
			}
		}
	}
	return ""
}

var urlRE = regexp.MustCompile(`https?://[^\s<>"]+`)

// Server is a running test SMTP server.
type Server struct {
	// Addr is host:port.
	Addr string

	t    testing.TB
	ln   net.Listener
	msgs chan Message
	wg   sync.WaitGroup
	mode Mode
	tls  *tls.Config
	pool *x509.CertPool
}

// Mode is how a Server uses TLS.
type Mode int

// Modes of a Server.
const (
	// Plain offers no TLS.
	Plain Mode = iota
	// StartTLS offers STARTTLS after EHLO.
	StartTLS
	// ImplicitTLS speaks TLS from the first byte (smtps://).
	ImplicitTLS
)

// Start starts a plain server on 127.0.0.1 and stops it when the test ends.
func Start(t testing.TB) *Server { return StartMode(t, Plain) }

// StartMode is Start with TLS as mode says, with a certificate for
// 127.0.0.1 that chains to CertPool.
func StartMode(t testing.TB, mode Mode) *Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("mailtest: listen: %v", err)
	}
	s := &Server{Addr: ln.Addr().String(), t: t, ln: ln, msgs: make(chan Message, 100), mode: mode}
	if mode != Plain {
		s.tls, s.pool = selfSigned(t)
	}
	s.wg.Add(1)
	go s.accept()
	t.Cleanup(func() {
		ln.Close()
		s.wg.Wait()
	})
	return s
}

// URL is the --smtp-url of the server (no credentials): smtps:// for
// ImplicitTLS, smtp:// otherwise.
func (s *Server) URL() string {
	if s.mode == ImplicitTLS {
		return "smtps://" + s.Addr
	}
	return "smtp://" + s.Addr
}

// CertPool holds the certificate of a TLS server; nil for a plain one.
func (s *Server) CertPool() *x509.CertPool { return s.pool }

// selfSigned makes a certificate for 127.0.0.1.
func selfSigned(t testing.TB) (*tls.Config, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "mailtest"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}, MinVersion: tls.VersionTLS12}, pool
}

// Next waits up to timeout for the next message and fails the test if
// none comes.
func (s *Server) Next(timeout time.Duration) Message {
	s.t.Helper()
	select {
	case m := <-s.msgs:
		return m
	case <-time.After(timeout):
		s.t.Fatalf("mailtest: no mail within %s", timeout)
		return Message{}
	}
}

// Pending returns how many received messages no Next has taken yet.
func (s *Server) Pending() int { return len(s.msgs) }

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer c.Close()
			c.SetDeadline(time.Now().Add(time.Minute))
			if s.mode == ImplicitTLS {
				c = tls.Server(c, s.tls)
			}
			s.serve(c)
		}()
	}
}

// serve speaks just enough SMTP (RFC 5321) to receive messages.
func (s *Server) serve(c net.Conn) {
	r := bufio.NewReader(c)
	secure := s.mode == ImplicitTLS
	reply := func(line string) bool {
		_, err := io.WriteString(c, line+"\r\n")
		return err == nil
	}
	if !reply("220 mailtest ESMTP ready") {
		return
	}
	var from string
	var to []string
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimRight(line, "\r\n")
		verb := strings.ToUpper(line)
		switch {
		case strings.HasPrefix(verb, "EHLO"):
			reply("250-mailtest greets you")
			if s.mode == StartTLS && !secure {
				reply("250-STARTTLS")
			}
			reply("250 8BITMIME")
		case verb == "STARTTLS" && s.mode == StartTLS && !secure:
			if !reply("220 go ahead") {
				return
			}
			tc := tls.Server(c, s.tls)
			if err := tc.Handshake(); err != nil {
				return
			}
			// RFC 3207: everything said before is forgotten.
			c, r, secure, from, to = tc, bufio.NewReader(tc), true, "", nil
		case strings.HasPrefix(verb, "HELO"):
			reply("250 mailtest")
		case strings.HasPrefix(verb, "MAIL FROM:"):
			from, to = addr(line[len("MAIL FROM:"):]), nil
			reply("250 OK")
		case strings.HasPrefix(verb, "RCPT TO:"):
			to = append(to, addr(line[len("RCPT TO:"):]))
			reply("250 OK")
		case verb == "DATA":
			if from == "" || len(to) == 0 {
				reply("503 MAIL FROM and RCPT TO first")
				continue
			}
			reply("354 end with <CRLF>.<CRLF>")
			data, err := readData(r)
			if err != nil {
				return
			}
			m, err := parse(from, to, data)
			if err != nil {
				reply("554 unreadable message: " + err.Error())
				continue
			}
			m.TLS = secure
			s.msgs <- m
			from, to = "", nil
			reply("250 OK queued")
		case verb == "RSET":
			from, to = "", nil
			reply("250 OK")
		case verb == "NOOP":
			reply("250 OK")
		case verb == "QUIT":
			reply("221 bye")
			return
		default:
			reply("502 not implemented")
		}
	}
}

// addr takes the address out of "<a@b> SIZE=…".
func addr(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '>'); strings.HasPrefix(s, "<") && i > 0 {
		return s[1:i]
	}
	return strings.Fields(s + " ")[0]
}

// readData reads DATA lines up to the lone ".", undoing dot-stuffing.
func readData(r *bufio.Reader) (string, error) {
	var b strings.Builder
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return "", err
		}
		if strings.TrimRight(line, "\r\n") == "." {
			return b.String(), nil
		}
		b.WriteString(strings.TrimPrefix(line, "."))
	}
}

func parse(from string, to []string, data string) (Message, error) {
	msg, err := netmail.ReadMessage(strings.NewReader(data))
	if err != nil {
		return Message{}, err
	}
	var body io.Reader = msg.Body
	switch strings.ToLower(msg.Header.Get("Content-Transfer-Encoding")) {
	case "quoted-printable":
		body = quotedprintable.NewReader(body)
	case "base64":
		body = base64.NewDecoder(base64.StdEncoding, &stripNewlines{r: body})
	}
	text, err := io.ReadAll(body)
	if err != nil {
		return Message{}, err
	}
	return Message{From: from, To: to, Header: msg.Header, Text: strings.ReplaceAll(string(text), "\r\n", "\n")}, nil
}

// stripNewlines drops CR and LF, which base64 bodies are wrapped with.
type stripNewlines struct{ r io.Reader }

func (s *stripNewlines) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	j := 0
	for _, c := range p[:n] {
		if c != '\r' && c != '\n' {
			p[j] = c
			j++
		}
	}
	return j, err
}
