package pacing

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestSharedRate(t *testing.T) {
	const rate = 8_000_000 // 1 MB/s
	p := New(rate, 10*time.Millisecond)
	var sent atomic.Int64
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			var s Sleeper
			defer s.Stop()
			for s.Wait(ctx, p, 10_000) == nil {
				sent.Add(10_000)
			}
		})
	}
	wg.Wait()
	got := float64(sent.Load()) / 0.5
	if got < 0.8e6 || got > 1.2e6 {
		t.Fatalf("8 senders sharing 1 MB/s sent %.0f B/s", got)
	}
}

func TestUnlimited(t *testing.T) {
	p := New(0, 0)
	if p.Reserve(1<<20) != 0 || !p.Unlimited() {
		t.Fatal("unlimited pacer waits")
	}
	var nilP *Pacer
	var s Sleeper
	if s.Wait(context.Background(), nilP, 5) != nil || !nilP.Unlimited() {
		t.Fatal("nil pacer")
	}
}

func TestBoundedCatchUp(t *testing.T) {
	p := New(8_000, 50*time.Millisecond) // 1000 B/s
	p.Reserve(1000)                      // 1 s booked
	time.Sleep(5 * time.Millisecond)
	// Booked time is still ahead: the next reservation waits ~1 s.
	if d := p.Reserve(1); d < 900*time.Millisecond {
		t.Fatalf("wait %v, want ~1s", d)
	}
	q := New(8_000, 50*time.Millisecond)
	q.next.Store(-int64(10 * time.Second)) // a long stall in the past
	// Catch-up is limited to 50 ms worth (50 bytes): the 2nd 50-byte
	// reservation must already wait.
	q.Reserve(50)
	q.Reserve(50)
	if d := q.Reserve(50); d <= 0 {
		t.Fatal("no wait after burst allowance used")
	}
}

func TestCostNoOverflow(t *testing.T) {
	if c := costNs(1<<30, 1); c <= 0 {
		t.Fatalf("cost overflowed: %d", c)
	}
	if c := costNs(1500, 10_000_000_000); c != 1200 {
		t.Fatalf("cost %d", c)
	}
}

func TestChunkFor(t *testing.T) {
	if ChunkFor(0, 1024, 1<<20) != 1<<20 || ChunkFor(8000, 1024, 1<<20) != 1024 || ChunkFor(8e9, 1024, 1<<20) != 1<<20 {
		t.Fatal("chunk sizes")
	}
}

// TestSlack: a Sleeper with slack sends at once while it is less than the
// slack ahead of the schedule, then sleeps; the schedule is the pacer's.
// The times are long enough that a loaded machine, which may hold the test
// off its CPU for tens of milliseconds, cannot make the first part look
// like a sleep: without the slack it would take the 400 ms booked.
func TestSlack(t *testing.T) {
	p := New(800_000, 0) // 100 kB/s: 1000 bytes cost 10 ms
	s := Sleeper{Slack: 500 * time.Millisecond}
	defer s.Stop()
	start := time.Now()
	for range 40 { // 400 ms booked, all within the slack
		if err := s.Wait(context.Background(), p, 1000); err != nil {
			t.Fatal(err)
		}
	}
	if d := time.Since(start); d > 300*time.Millisecond {
		t.Fatalf("400 ms booked within 500 ms of slack took %v", d)
	}
	// 1 s more: the schedule is 1.4 s ahead, so this waits about 0.9 s
	// (1.4 s less 0.5 s of slack).
	for range 100 {
		s.Wait(context.Background(), p, 1000)
	}
	if d := time.Since(start); d < 800*time.Millisecond {
		t.Fatalf("1.4 s booked with 500 ms of slack took only %v", d)
	}
}
