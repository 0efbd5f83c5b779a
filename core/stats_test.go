package core

import (
	"testing"
	"time"
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
