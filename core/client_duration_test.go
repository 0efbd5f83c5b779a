package core

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"
)

// TestClientCountsAskedDuration: a test counts at least the time asked
// for. The test's timer starts where the counting starts, so the time
// spent setting up the connections and sockets is not taken from it. In
// the UDP case a hook makes that set-up take a third of the test, as a
// loaded machine can: a timer started before it counted 200 ms of 300.
func TestClientCountsAskedDuration(t *testing.T) {
	t.Parallel()
	_, addr, _ := startServer(t, ServerConfig{}, "tcp", "127.0.0.1:0")
	const asked = 300 * time.Millisecond
	for _, udp := range []bool{false, true} {
		t.Run(fmt.Sprintf("udp=%v", udp), func(t *testing.T) {
			// Eight streams: their set-up (secondary connections, sockets)
			// takes the longest before the counting starts.
			cfg := ClientConfig{
				Address: addr, UDP: udp, Direction: Both, Connections: 8,
				LocalTxSpeed: 1_000_000, RemoteTxSpeed: 1_000_000, Duration: asked,
			}
			if udp {
				cfg.udpHooks = &udpTestHooks{dest: func(_ bool, dst netip.AddrPort) netip.AddrPort {
					time.Sleep(asked / 3)
					return dst
				}}
			}
			sum, err := RunClient(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			if sum.Duration < asked {
				t.Fatalf("counted %v of the %v asked", sum.Duration, asked)
			}
		})
	}
}
