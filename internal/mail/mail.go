// Package mail sends Parley's few emails (password reset and address
// verification links) over SMTP, through github.com/wneessen/go-mail
// rather than hand-written SMTP.
//
// The server is named by one URL, as --smtp-url takes it:
//
//	smtp://user:pass@host:587   STARTTLS when the server offers it
//	smtps://user:pass@host:465  TLS from the first byte (implicit TLS)
//
// Credentials are optional (a local relay may need none). Each message is
// sent on a connection of its own: Parley sends a handful of mails an hour,
// so a pool would only hold sockets open for nothing.
package mail

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	netmail "net/mail"
	"net/url"
	"strconv"
	"time"

	gomail "github.com/wneessen/go-mail"
)

// Message is one plain-text email.
type Message struct {
	// To is the recipient's address.
	To string
	// Subject is the subject line.
	Subject string
	// Text is the plain-text body.
	Text string
}

// Settings is a parsed --smtp-url.
type Settings struct {
	Host string
	Port int
	// ImplicitTLS is set for smtps://: TLS from the first byte. Otherwise
	// the connection starts in clear and is upgraded with STARTTLS when the
	// server offers it.
	ImplicitTLS bool
	Username    string
	Password    string
}

// ParseURL reads an smtp:// or smtps:// URL. Errors never quote the URL:
// it may hold a password.
func ParseURL(raw string) (Settings, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return Settings{}, errors.New("not a URL: use smtp://user:pass@host:587 or smtps://user:pass@host:465 (percent-encode special characters in the password)")
	}
	var s Settings
	switch u.Scheme {
	case "smtp":
		s.Port = 587
	case "smtps":
		s.Port, s.ImplicitTLS = 465, true
	default:
		return Settings{}, errors.New("the scheme must be smtp:// (STARTTLS when offered) or smtps:// (implicit TLS)")
	}
	s.Host = u.Hostname()
	if s.Host == "" {
		return Settings{}, errors.New("no host: use smtp://user:pass@host:587")
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return Settings{}, errors.New("the port must be a number from 1 to 65535")
		}
		s.Port = n
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return Settings{}, errors.New("give only scheme, credentials, host and port: no path or query")
	}
	if u.User != nil {
		s.Username = u.User.Username()
		s.Password, _ = u.User.Password()
	}
	return s, nil
}

// ParseFrom checks a --mail-from address such as
// "Parley <parley@example.org>".
func ParseFrom(from string) error {
	if _, err := netmail.ParseAddress(from); err != nil {
		return fmt.Errorf("%q is not an email address: use parley@example.org or \"Parley <parley@example.org>\"", from)
	}
	return nil
}

// sendTimeout bounds one whole SMTP conversation.
const sendTimeout = 30 * time.Second

// Sender sends messages through one SMTP server. It is safe for
// concurrent use.
type Sender struct {
	settings Settings
	from     string
	// RootCAs, if set, are the authorities the server's certificate must
	// chain to instead of the system's (tests, private relays).
	RootCAs *x509.CertPool
}

// New returns a Sender for the server rawURL names, sending as from.
func New(rawURL, from string) (*Sender, error) {
	s, err := ParseURL(rawURL)
	if err != nil {
		return nil, fmt.Errorf("--smtp-url: %w", err)
	}
	if err := ParseFrom(from); err != nil {
		return nil, fmt.Errorf("--mail-from: %w", err)
	}
	return &Sender{settings: s, from: from}, nil
}

// Send delivers m to the SMTP server, which takes it from there.
func (s *Sender) Send(ctx context.Context, m Message) error {
	msg := gomail.NewMsg()
	if err := msg.From(s.from); err != nil {
		return fmt.Errorf("mail: from: %w", err)
	}
	if err := msg.To(m.To); err != nil {
		return fmt.Errorf("mail: recipient: %w", err)
	}
	msg.Subject(m.Subject)
	msg.SetDate()
	msg.SetMessageID()
	msg.SetBodyString(gomail.TypeTextPlain, m.Text)

	opts := []gomail.Option{
		gomail.WithPort(s.settings.Port), gomail.WithTimeout(sendTimeout),
		gomail.WithTLSConfig(&tls.Config{ServerName: s.settings.Host, RootCAs: s.RootCAs, MinVersion: tls.VersionTLS12}),
	}
	if s.settings.ImplicitTLS {
		opts = append(opts, gomail.WithSSL())
	} else {
		// Upgrade when offered, carry on in clear when not: a relay on the
		// same host often offers no TLS, and refusing to send would leave
		// users with no way back into their accounts.
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSOpportunistic))
	}
	if s.settings.Username != "" {
		opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthAutoDiscover),
			gomail.WithUsername(s.settings.Username), gomail.WithPassword(s.settings.Password))
	}
	c, err := gomail.NewClient(s.settings.Host, opts...)
	if err != nil {
		return fmt.Errorf("mail: client: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, sendTimeout)
	defer cancel()
	if err := c.DialAndSendWithContext(ctx, msg); err != nil {
		return fmt.Errorf("mail: send to %s:%d: %w", s.settings.Host, s.settings.Port, err)
	}
	return nil
}
