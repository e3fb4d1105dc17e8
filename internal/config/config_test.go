package config

import (
	"strings"
	"testing"
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
