package core

import (
	"context"
	"testing"
	"time"

	"github.com/btest-go/btest/internal/testutil"
)

// TestIntervalAt: each interval carries the clock time it ended at, which
// a consumer can use as its timestamp whatever the handshake took.
func TestIntervalAt(t *testing.T) {
	t.Parallel()
	t0 := time.Now()
	w := newRateWindow(t0)
	end := t0.Add(time.Second)
	st := w.next(end, 1000, 2000, 0, -1)
	if !st.At.Equal(end) || st.Elapsed != time.Second {
		t.Fatalf("interval At %v Elapsed %v, want %v and 1s", st.At, st.Elapsed, end)
	}
}

// TestFirstIntervalHasCPU: in a process that has not read the CPU load
// before (a btest-telegraf run, a fresh CLI), a test's first interval
// still shows this machine's load: the data phase's start takes the
// baseline, so a 2 s test does not end with none. It runs in a process of
// its own, where no other test reads the load.
func TestFirstIntervalHasCPU(t *testing.T) {
	if testutil.Isolate(t) {
		return
	}
	_, addr, _ := startServer(t, ServerConfig{}, "tcp", "127.0.0.1:0")
	var first IntervalStats
	n := 0
	_, err := RunClient(context.Background(), ClientConfig{Address: addr, Direction: Receive,
		RemoteTxSpeed: 10_000_000, Duration: 1500 * time.Millisecond,
		OnInterval: func(st IntervalStats) {
			if n++; n == 1 {
				first = st
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 || first.LocalCPU < 0 {
		t.Fatalf("%d intervals, the first with local CPU %d; want a load", n, first.LocalCPU)
	}
}
