// Package testserver runs a real btest server (core.Server) on loopback for
// the tests of the packages built on core: the Telegraf input, the
// programs, the dashboard. core's own tests have their own helpers (they
// are in package core and cannot import this one).
package testserver

import (
	"context"
	"errors"
	"log/slog"
	"testing"

	"github.com/btest-go/btest/core"
	"github.com/btest-go/btest/internal/testutil"
)

// udpPorts is how many UDP server ports a test server gets when cfg names
// none: enough for a few tests at once.
const udpPorts = 16

// Start runs a server with cfg on 127.0.0.1, on a TCP port and UDP ports
// of the caller's range (ports), and returns it with its address. A nil
// Logger discards. The server is closed, and its Serve waited for, when
// the test ends.
func Start(t testing.TB, ports *testutil.Ports, cfg core.ServerConfig) (*core.Server, string) {
	t.Helper()
	if cfg.UDPPortFirst == 0 {
		cfg.UDPPortFirst, cfg.UDPPortLast = ports.UDP(t, udpPorts)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	srv, err := core.NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln := ports.Listen(t, "127.0.0.1")
	done := make(chan error, 1)
	go func() { done <- srv.Serve(context.Background(), ln) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; !errors.Is(err, core.ErrServerClosed) {
			t.Errorf("testserver: Serve returned %v", err)
		}
	})
	return srv, ln.Addr().String()
}
