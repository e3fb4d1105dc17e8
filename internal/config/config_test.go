package config

import (
	"strings"
	"testing"
	"time"
)

func TestDefaultIsValid(t *testing.T) {
	c := Default()
	if err := c.Validate(); err != nil {
		t.Fatalf("default config invalid: %v", err)
	}
	if c.Secure() {
		t.Error("default config must be plain HTTP on localhost")
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	c := Default()
	c.Addr = "nonsense"
	c.DatabaseURL = "mysql://x"
	c.TLS = "maybe"
	c.LogFormat = "xml"
	c.ICEServers = []string{"http://x"}
	c.TrustedProxies = []string{"10.0.0.0/8", "proxy.example.org"}
	c.MaxConnectionsPerIP = -1
	c.ReadTimeout = 0
	c.RecordingQuotaMB = -5
	err := c.Validate()
	if err == nil {
		t.Fatal("want errors")
	}
	for _, want := range []string{"--addr", "--database", "--tls", "--log-format", "--ice-server", "--trusted-proxies", "proxy.example.org", "--max-connections-per-ip", "--read-timeout", "--recording-quota"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %s: %v", want, err)
		}
	}
}

func TestTLSFiles(t *testing.T) {
	c := Default()
	c.TLSCert = "cert.pem"
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "go together") {
		t.Errorf("cert without key: %v", err)
	}
	c.TLSKey = "key.pem"
	if err := c.Validate(); err != nil || c.TLS != "files" || !c.Secure() {
		t.Errorf("cert and key: %v tls=%q", err, c.TLS)
	}
}

func TestValidateMail(t *testing.T) {
	for _, tc := range []struct {
		smtp, from, public string
		want               []string // "" = valid
	}{
		{smtp: "smtp://u:p@mail.example.org:587", from: "Parley <parley@example.org>", public: "https://meet.example.org"},
		{smtp: "smtps://mail.example.org", from: "parley@example.org", public: "http://10.0.0.5:8080/"},
		{smtp: "smtp://mail.example.org", want: []string{"--mail-from", "--public-url"}},
		{smtp: "imap://u:secret@mail.example.org", from: "x@example.org", public: "https://meet.example.org", want: []string{"--smtp-url"}},
		{from: "parley@example.org", want: []string{"needs --smtp-url"}},
		{smtp: "smtp://h", from: "not an address", public: "https://meet.example.org", want: []string{"--mail-from"}},
		{smtp: "smtp://h", from: "a@b.org", public: "https://meet.example.org/parley?x", want: []string{"--public-url"}},
	} {
		c := Default()
		c.SMTPURL, c.MailFrom, c.PublicURL = tc.smtp, tc.from, tc.public
		err := c.Validate()
		if len(tc.want) == 0 {
			if err != nil {
				t.Errorf("%+v: %v", tc, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%+v: no error", tc)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%+v: error does not mention %s: %v", tc, w, err)
			}
		}
		if strings.Contains(err.Error(), "secret") {
			t.Errorf("error quotes the SMTP password: %v", err)
		}
	}
}

func TestValidateCluster(t *testing.T) {
	const pg = "postgres://u@db/parley"
	const secret = "0123456789abcdef0123"
	for _, tc := range []struct {
		name string
		set  func(c *Config)
		want []string // nil: valid
	}{
		{"member", func(c *Config) { c.RedisURL, c.DatabaseURL, c.TURNSecret = "redis://127.0.0.1:6379/0", pg, secret }, nil},
		{"node url", func(c *Config) {
			c.RedisURL, c.DatabaseURL, c.TURNSecret, c.Addr, c.NodeURL, c.NodeID = "redis://r:6379/1", pg, secret, ":8080", "http://10.0.0.2:8080", "node-a"
		}, nil},
		{"sqlite", func(c *Config) { c.RedisURL, c.TURNSecret = "redis://127.0.0.1:6379/0", secret }, []string{"--redis needs --database"}},
		{"no secret", func(c *Config) { c.RedisURL, c.DatabaseURL = "redis://127.0.0.1:6379/0", pg }, []string{"--redis needs --turn-secret"}},
		{"bad url", func(c *Config) { c.RedisURL, c.DatabaseURL, c.TURNSecret = "http://127.0.0.1:6379", pg, secret }, []string{"--redis \"http"}},
		{"wildcard addr", func(c *Config) {
			c.RedisURL, c.DatabaseURL, c.TURNSecret, c.Addr = "redis://r:6379", pg, secret, ":8080"
		}, []string{"--node-url"}},
		{"bad node", func(c *Config) {
			c.RedisURL, c.DatabaseURL, c.TURNSecret, c.NodeID, c.NodeURL = "redis://r:6379", pg, secret, "a b", "ftp://x"
		}, []string{"--node-id", "--node-url"}},
		{"node id alone", func(c *Config) { c.NodeID = "a" }, []string{"need --redis"}},
		{"lease", func(c *Config) {
			c.RedisURL, c.DatabaseURL, c.TURNSecret, c.LeaseTTL = "redis://r:6379", pg, secret, time.Millisecond
		}, []string{"--lease-ttl"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			tc.set(&c)
			err := c.Validate()
			if tc.want == nil {
				if err != nil {
					t.Fatalf("valid cluster config refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted; want errors mentioning %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}
