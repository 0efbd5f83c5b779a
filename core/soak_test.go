package core

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/btest-go/btest/core/wire"
	"github.com/btest-go/btest/internal/testutil"
)

// TestSoak runs legitimate tests in every mode from 127.0.0.2 for
// BTEST_SOAK_MINUTES (default 10) minutes while attacks from 127.0.0.1
// run beside them: an idle-connection flood (child process), status
// floods, stalled readers and connect/garbage churn. It fails on any
// failed legitimate test and logs RSS, goroutines and fds per minute.
// Only with BTEST_SOAK=1: it is not part of make test.
func TestSoak(t *testing.T) {
	if os.Getenv("BTEST_SOAK") == "" {
		t.Skip("set BTEST_SOAK=1 to run the soak (10 minutes)")
	}
	minutes := 10
	if v := os.Getenv("BTEST_SOAK_MINUTES"); v != "" {
		fmt.Sscan(v, &minutes)
	}
	// The legitimate clients run in this process next to the server, so
	// their UDP ports (+256) need room beside the server's.
	first, last := corePorts.UDP(t, 64)
	_, addr, obs := attackServer(t, ServerConfig{ProgressTimeout: 5 * time.Second, UDPPortFirst: first, UDPPortLast: last})
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(minutes)*time.Minute)
	defer cancel()
	stopIdle := testutil.AttackerProcess(t, "idle", addr, 500)
	defer stopIdle()

	var wg sync.WaitGroup
	var mu sync.Mutex
	legit, failed := 0, 0
	// Legitimate clients: every mode, in turn, 2 s each, paced.
	modes := []ClientConfig{
		{Direction: Receive}, {Direction: Transmit}, {Direction: Both}, {Direction: Both, Connections: 4},
		{UDP: true, Direction: Receive}, {UDP: true, Direction: Transmit}, {UDP: true, Direction: Both},
	}
	// One client at a time: a client next to the server binds the server's
	// port + 256, and a second client could meet the socket of the first
	// still draining (on separate hosts, as in real use, they never meet).
	for range 1 {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				cfg := modes[i%len(modes)]
				cfg.Address, cfg.LocalAddress, cfg.Duration = addr, "127.0.0.2", 2*time.Second
				cfg.LocalTxSpeed, cfg.RemoteTxSpeed = 50_000_000, 50_000_000
				_, err := RunClient(context.Background(), cfg)
				mu.Lock()
				legit++
				if err != nil {
					failed++
					t.Errorf("legitimate %s %s test failed: %v", map[bool]string{false: "tcp", true: "udp"}[cfg.UDP], cfg.Direction, err)
				}
				mu.Unlock()
			}
		})
	}
	// Attacks from 127.0.0.1, one after the other.
	wg.Go(func() {
		for ctx.Err() == nil {
			// Status flood: open UDP tests and flood them for 5 s.
			end := time.Now().Add(5 * time.Second)
			frames := make([]byte, 0, cap64k)
			for i := uint32(1); len(frames) < cap64k; i++ {
				f := lyingStatus(i)
				frames = append(frames, f[:]...)
			}
			for time.Now().Before(end) && ctx.Err() == nil {
				if c, _, err := udpCommand(addr, wire.ServerSends, 10_000_000); err == nil {
					c.SetWriteDeadline(end)
					for {
						if _, err := c.Write(frames); err != nil {
							break
						}
					}
					c.Close()
				} else {
					time.Sleep(50 * time.Millisecond)
				}
			}
			// Stalled readers: 10, left to the progress timeout.
			for range 10 {
				if c, err := stalledReader(addr, "127.0.0.1"); err == nil {
					time.AfterFunc(8*time.Second, func() { c.Close() })
				}
			}
			// Churn: 500 connect/garbage cycles.
			for i := range 500 {
				if c, err := dialTimeout(addr); err == nil {
					if i%2 == 0 {
						c.Write([]byte("GET / HTTP/1.1\r\n\r\n"))
					}
					c.Close()
				}
			}
			select {
			case <-ctx.Done():
			case <-time.After(5 * time.Second):
			}
		}
	})
	// The figures, once a minute.
	t.Logf("| minute | RSS MiB | goroutines | fds | legitimate tests (failed) |")
	t.Logf("|---|---|---|---|---|")
	start := time.Now()
	tk := time.NewTicker(time.Minute)
	for m := 1; ; m++ {
		select {
		case <-ctx.Done():
		case <-tk.C:
		}
		{
			runtime.GC()
			s := snapshot(t)
			mu.Lock()
			t.Logf("| %d | %d | %d | %d | %d (%d) |", m, s.rss>>20, s.goroutines, s.fds, legit, failed)
			mu.Unlock()
		}
		if ctx.Err() != nil {
			break
		}
	}
	tk.Stop()
	wg.Wait()
	stopIdle()
	t.Logf("soak of %v: %d legitimate tests, %d failed; server results %v, refusals %v",
		time.Since(start).Round(time.Second), legit, failed, obs.results, obs.refusals)
	if legit == 0 || failed > 0 {
		t.Fatalf("%d of %d legitimate tests failed", failed, legit)
	}
}
