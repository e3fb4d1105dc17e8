package mail_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/parley/parley/internal/mail"
	"github.com/parley/parley/internal/mail/mailtest"
)

func TestParseURL(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want mail.Settings
		err  string
	}{
		{in: "smtp://mail.example.org", want: mail.Settings{Host: "mail.example.org", Port: 587}},
		{in: "smtps://u%40x:p%3Ass@mail.example.org", want: mail.Settings{Host: "mail.example.org", Port: 465, ImplicitTLS: true, Username: "u@x", Password: "p:ss"}},
		{in: "smtp://u:p@[::1]:25", want: mail.Settings{Host: "::1", Port: 25, Username: "u", Password: "p"}},
		{in: "http://mail.example.org", err: "scheme"},
		{in: "smtp://:25", err: "no host"},
		{in: "smtp://h:99999", err: "port"},
		{in: "smtp://h/x", err: "no path"},
		{in: "smtp://u:secret@h:25/x", err: "no path"},
		{in: "smtp://u:secret@h:x", err: "URL"},
	} {
		got, err := mail.ParseURL(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseURL(%q) error = %v, want one about %q", tc.in, err, tc.err)
			}
			if err != nil && strings.Contains(err.Error(), "secret") {
				t.Errorf("ParseURL(%q) error quotes the password: %v", tc.in, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseURL(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

func FuzzParseURL(f *testing.F) {
	for _, s := range []string{"smtp://u:p@h:25", "smtps://h", "smtp://[::1]:0", "smtp://%zz@h"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := mail.ParseURL(s)
		if err == nil && (got.Host == "" || got.Port < 1 || got.Port > 65535) {
			t.Errorf("ParseURL(%q) = %+v with no error", s, got)
		}
	})
}

// TestSendOverSMTP sends through the real client to the test server and
// reads back what arrived, the link intact despite the transfer encoding.
func TestSendOverSMTP(t *testing.T) {
	srv := mailtest.Start(t)
	s, err := mail.New(srv.URL(), "Parley <parley@example.org>")
	if err != nil {
		t.Fatal(err)
	}
	link := "http://127.0.0.1:8080/reset/" + strings.Repeat("A-b_c", 20)
	err = s.Send(context.Background(), mail.Message{To: "ann@example.org", Subject: "Reset your password", Text: "Hello Ann,\n\nOpen " + link + "\n.\n.leading dot\n"})
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	m := srv.Next(10 * time.Second)
	if m.From != "parley@example.org" || len(m.To) != 1 || m.To[0] != "ann@example.org" {
		t.Errorf("envelope from %q to %v", m.From, m.To)
	}
	if got := m.Header.Get("Subject"); got != "Reset your password" {
		t.Errorf("subject %q", got)
	}
	if got := m.Link("/reset/"); got != link {
		t.Errorf("link %q, want %q\n%s", got, link, m.Text)
	}
	if !strings.Contains(m.Text, "\n.\n.leading dot") {
		t.Errorf("dot lines mangled:\n%q", m.Text)
	}
	if _, err := mail.New("smtp://h", "not an address"); err == nil {
		t.Error("bad --mail-from accepted")
	}
}

// TestSendUsesTLS: smtp:// upgrades with STARTTLS when the server offers
// it, smtps:// speaks TLS from the start; a certificate that does not
// verify stops the send rather than falling back to clear text.
func TestSendUsesTLS(t *testing.T) {
	for _, tc := range []struct {
		name string
		mode mailtest.Mode
	}{{"starttls", mailtest.StartTLS}, {"implicit", mailtest.ImplicitTLS}} {
		t.Run(tc.name, func(t *testing.T) {
			srv := mailtest.StartMode(t, tc.mode)
			s, err := mail.New(srv.URL(), "parley@example.org")
			if err != nil {
				t.Fatal(err)
			}
			msg := mail.Message{To: "ann@example.org", Subject: "hi", Text: "hello"}
			if err := s.Send(context.Background(), msg); err == nil {
				t.Fatal("sent to a server whose certificate does not verify")
			}
			s.RootCAs = srv.CertPool()
			if err := s.Send(context.Background(), msg); err != nil {
				t.Fatalf("Send: %v", err)
			}
			if m := srv.Next(10 * time.Second); !m.TLS || strings.TrimSpace(m.Text) != "hello" {
				t.Errorf("received TLS=%v text %q, want hello over TLS", m.TLS, m.Text)
			}
			if n := srv.Pending(); n != 0 {
				t.Errorf("%d more messages: the unverified attempt was delivered", n)
			}
		})
	}
	plain := mailtest.Start(t)
	s, _ := mail.New(plain.URL(), "parley@example.org")
	if err := s.Send(context.Background(), mail.Message{To: "ann@example.org", Subject: "hi", Text: "hello"}); err != nil {
		t.Fatalf("a server without STARTTLS: %v", err)
	}
	if m := plain.Next(10 * time.Second); m.TLS {
		t.Error("plain server reports TLS")
	}
}
