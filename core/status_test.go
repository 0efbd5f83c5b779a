package core

import (
	"errors"
	"testing"
	"time"

	"github.com/btest-go/btest/core/wire"
)

// TestStatusGate: a framed control stream may send MaxStatusRate messages'
// worth a second and no more; at most statusHonoured messages a second are
// taken in; reports are clamped to what was sent, and only a clear
// overshoot is an anomaly.
func TestStatusGate(t *testing.T) {
	t.Parallel()
	g := newStatusGate(4)
	now := time.Now()
	if err := g.bytes(now, 4*wire.StatusSize); err != nil {
		t.Fatalf("four messages' worth: %v", err)
	}
	if err := g.bytes(now, 1); err == nil {
		t.Fatal("a byte beyond the limit passed")
	}
	if err := g.bytes(now.Add(time.Second), 4*wire.StatusSize); err != nil {
		t.Fatalf("a second later: %v", err)
	}
	g = newStatusGate(0)
	for i := range statusHonoured {
		if !g.honour(now) {
			t.Fatalf("message %d of a second dropped", i+1)
		}
	}
	if g.honour(now) || g.anomalies.Load() != 1 {
		t.Fatal("message beyond statusHonoured taken in, or not counted")
	}
	if !g.honour(now.Add(time.Second)) {
		t.Fatal("first message of the next second dropped")
	}
	g = newStatusGate(0)
	if got := g.report(1000, 1000, 0); got != 1000 || g.anomalies.Load() != 0 {
		t.Fatalf("honest report: believed %d, anomalies %d", got, g.anomalies.Load())
	}
	if got := g.report(0xffffffff, 2000, 0); got != 1000 || g.anomalies.Load() != 1 {
		t.Fatalf("lie: believed %d (want 1000), anomalies %d", got, g.anomalies.Load())
	}
	if got := g.report(1010, 3000, 64); got != 1000 || g.anomalies.Load() != 1 {
		t.Fatalf("slight overshoot: believed %d, anomalies %d (want clamped, not an anomaly)", got, g.anomalies.Load())
	}
}

// TestBufBudget: large receive buffers are handed out within the budget.
func TestBufBudget(t *testing.T) {
	t.Parallel()
	b := newBufBudget(3 * payloadSize)
	for i := range 3 {
		if !b.take() {
			t.Fatalf("buffer %d of 3 refused", i+1)
		}
	}
	if b.take() {
		t.Fatal("a fourth buffer beyond the budget")
	}
	b.give()
	if !b.take() {
		t.Fatal("a buffer given back was not available again")
	}
	var none *bufBudget
	if !none.take() {
		t.Fatal("no budget (client) refused a buffer")
	}
}

// TestProgress: a counter that stops moving stalls after the timeout,
// stretched for slow paced rates.
func TestProgress(t *testing.T) {
	t.Parallel()
	now := time.Now()
	p := newProgress(now, 2*time.Second, "nothing")
	if p.check(now.Add(time.Second), 5) != nil || p.check(now.Add(2900*time.Millisecond), 5) != nil {
		t.Fatal("stalled while moving or within the timeout")
	}
	if err := p.check(now.Add(3100*time.Millisecond), 5); err == nil || !errors.Is(err, ErrStalled) || !errors.Is(err, ErrTimeout) {
		t.Fatalf("after 2.1 s of silence: %v, want ErrStalled (an ErrTimeout)", err)
	}
	if ResultString(ErrStalled) != "stalled" {
		t.Fatalf("ResultString(ErrStalled) = %q", ResultString(ErrStalled))
	}
	if d := progressTimeout(15*time.Second, 10_000); d < 100*time.Second {
		t.Fatalf("15 s timeout at 10 kbit/s stretched to %v only", d)
	}
	if d := progressTimeout(15*time.Second, 100_000_000); d != 15*time.Second {
		t.Fatalf("15 s timeout at 100 Mbit/s became %v", d)
	}
}
