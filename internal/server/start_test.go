package server_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/parley/parley/internal/config"
	"github.com/parley/parley/internal/server"
	"github.com/parley/parley/internal/servertest"
)

// freePort returns a loopback port that was free for both UDP and TCP a
// moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	for range 20 {
		u, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := u.LocalAddr().(*net.UDPAddr).Port
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		u.Close()
		if err == nil {
			l.Close()
			return port
		}
	}
	t.Fatal("no port free for both UDP and TCP")
	return 0
}

// bindable fails t unless the port can be bound now, as the restart of a
// server that failed to start would.
func bindable(t *testing.T, what, network string, port int) {
	t.Helper()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	var err error
	if network == "udp" {
		var c net.PacketConn
		if c, err = net.ListenPacket("udp", addr); err == nil {
			c.Close()
			return
		}
	} else {
		var l net.Listener
		if l, err = net.Listen("tcp", addr); err == nil {
			l.Close()
			return
		}
	}
	t.Errorf("%s (%s %s) still bound after the failed start: %v", what, network, addr, err)
}

// failedStartConfig is a server on fixed loopback ports (the SFU's UDP
// and TCP, the embedded TURN relay's), so the test can tell whether they
// were released.
func failedStartConfig(t *testing.T) (cfg config.Config, rtcUDP, rtcTCP, turnPort int) {
	cfg = config.Default()
	cfg.Addr = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	rtcUDP, rtcTCP, turnPort = freePort(t), freePort(t), freePort(t)
	cfg.RTCUDPPort, cfg.RTCTCPPort = rtcUDP, rtcTCP
	cfg.RTCListenIP = "127.0.0.1"
	cfg.RTCLoopbackOnly = true
	cfg.TURN = "embedded"
	cfg.TURNAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(turnPort))
	cfg.TURNAllowPrivate = true
	return cfg, rtcUDP, rtcTCP, turnPort
}

// TestFailedStartReleasesPorts: a server.New that fails half-way (a
// --tls-cert that does not exist, after the media sockets are open; a
// --turn-tls-addr already taken, after the TURN relay's sockets are open
// too) closes everything it opened, so the same configuration, fixed,
// can start at once: the SFU's UDP and TCP ports and the TURN port are
// free again.
func TestFailedStartReleasesPorts(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, tc := range []struct {
		name    string
		breakIt func(t *testing.T, cfg *config.Config)
	}{
		{"bad TLS certificate", func(t *testing.T, cfg *config.Config) {
			cfg.TLS = "files"
			cfg.TLSCert = filepath.Join(t.TempDir(), "missing.crt")
			cfg.TLSKey = filepath.Join(t.TempDir(), "missing.key")
		}},
		{"TURN TLS port taken", func(t *testing.T, cfg *config.Config) {
			taken, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { taken.Close() })
			cfg.TLS = "self-signed"
			cfg.TURNTLSAddr = taken.Addr().String()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, rtcUDP, rtcTCP, turnPort := failedStartConfig(t)
			tc.breakIt(t, &cfg)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			srv, err := server.New(ctx, cfg, log, servertest.AccountConfig())
			if err == nil {
				srv.Close()
				t.Fatal("server.New succeeded; want the broken configuration refused")
			}
			t.Logf("refused as expected: %v", err)
			bindable(t, "the SFU's ICE UDP port", "udp", rtcUDP)
			bindable(t, "the SFU's ICE TCP port", "tcp", rtcTCP)
			bindable(t, "the TURN port", "udp", turnPort)
			bindable(t, "the TURN port", "tcp", turnPort)

			// And the same server, with the fault fixed, starts.
			cfg.TLS, cfg.TLSCert, cfg.TLSKey, cfg.TURNTLSAddr = "", "", "", ""
			srv, err = server.New(ctx, cfg, log, servertest.AccountConfig())
			if err != nil {
				t.Fatalf("restart with the fault fixed: %v", err)
			}
			srv.Close()
		})
	}
}
