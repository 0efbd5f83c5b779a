// Package pacing meters a byte stream to a bit rate. One Pacer is shared by
// every connection (or UDP stream) of a test, so a limit applies to the test
// as a whole, not per connection.
package pacing

import (
	"context"
	"math"
	"sync/atomic"
	"time"
)

// Pacer is a lock-free token bucket in the GCRA form: a single atomic
// "theoretical arrival time" advances by the transmission time of each
// reservation, so concurrent senders share one schedule without a mutex.
// The schedule is absolute (it does not drift with sleep jitter), and
// catch-up after a stall is bounded by the burst allowance.
type Pacer struct {
	base  time.Time
	rate  atomic.Uint64 // bit/s; 0 = unlimited
	next  atomic.Int64  // ns since base at which the bucket is next empty
	burst atomic.Int64  // ns of catch-up allowed after a stall
	// burstBytes, when set, also bounds the catch-up in bytes, so a long
	// burst allowance stays small at high rates.
	burstBytes int
}

// New returns a pacer for bitsPerSec (0 = unlimited) that allows a stalled
// sender to catch up by at most burst worth of transmission time.
func New(bitsPerSec uint64, burst time.Duration) *Pacer {
	p := &Pacer{base: time.Now()}
	p.rate.Store(bitsPerSec)
	p.burst.Store(int64(burst))
	return p
}

// NewCapped is New with the catch-up after a stall also bounded to
// burstBytes: a sender woken late on a busy machine makes up for up to
// burst of lost time at low rates, without a fast one flooding its
// receiver's socket buffer.
func NewCapped(bitsPerSec uint64, burst time.Duration, burstBytes int) *Pacer {
	p := New(bitsPerSec, burst)
	p.burstBytes = burstBytes
	return p
}

// SetRate changes the rate; 0 means unlimited. Reservations already made
// keep their slots.
func (p *Pacer) SetRate(bitsPerSec uint64) { p.rate.Store(bitsPerSec) }

// Rate returns the current rate in bit/s (0 = unlimited).
func (p *Pacer) Rate() uint64 { return p.rate.Load() }

// Unlimited reports whether the pacer lets everything through.
func (p *Pacer) Unlimited() bool { return p == nil || p.rate.Load() == 0 }

// Reserve books n bytes and returns how long the caller must wait before
// sending them (0 when they may go now).
func (p *Pacer) Reserve(n int) time.Duration {
	rate := p.rate.Load()
	if rate == 0 {
		return 0
	}
	cost := costNs(n, rate)
	now := int64(time.Since(p.base))
	burst := p.burst.Load()
	if p.burstBytes > 0 {
		burst = min(burst, costNs(p.burstBytes, rate))
	}
	for {
		old := p.next.Load()
		start := max(old, now-burst)
		if p.next.CompareAndSwap(old, start+cost) {
			return time.Duration(max(0, start-now))
		}
	}
}

// costNs is the transmission time of n bytes at rate bit/s, in 64-bit
// arithmetic that cannot overflow for any n below 1 GiB and any rate.
func costNs(n int, rate uint64) int64 {
	bits := uint64(n) * 8
	if bits > math.MaxUint64/uint64(time.Second) {
		return math.MaxInt64 / 2
	}
	return int64(bits * uint64(time.Second) / rate)
}

// Sleeper waits for pacer slots with one reusable timer, so a sender loop
// does not allocate per wait. It is owned by a single goroutine.
type Sleeper struct {
	t *time.Timer
	// Slack: a wait shorter than this is not slept; the bytes go at once,
	// at most Slack ahead of the pacer's schedule, which stays as it is.
	// A timer that fires about a millisecond late (the Go runtime's
	// poller sleeps whole milliseconds) otherwise caps a fast sender at
	// what it sends per wake-up: the catch-up allowance after each.
	Slack time.Duration
}

// Wait reserves n bytes on p and sleeps until they may be sent. It returns
// ctx's error if ctx ends first. A nil or unlimited pacer never waits.
func (s *Sleeper) Wait(ctx context.Context, p *Pacer, n int) error {
	if p == nil {
		return nil
	}
	d := p.Reserve(n)
	if d <= 0 || d < s.Slack {
		return nil
	}
	if s.t == nil {
		s.t = time.NewTimer(d)
	} else {
		s.t.Reset(d)
	}
	select {
	case <-s.t.C:
		return nil
	case <-ctx.Done():
		s.t.Stop()
		return ctx.Err()
	}
}

// Stop releases the timer.
func (s *Sleeper) Stop() {
	if s.t != nil {
		s.t.Stop()
	}
}

// ChunkFor picks a write size for a paced TCP sender: about 1/100 s of data
// at the given rate, at least min and at most max, so a slow test sends
// smoothly and a fast one still writes large blocks.
func ChunkFor(bitsPerSec uint64, minSize, maxSize int) int {
	if bitsPerSec == 0 {
		return maxSize
	}
	c := bitsPerSec / 8 / 100
	return int(max(uint64(minSize), min(c, uint64(maxSize))))
}
