package core

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/btest-go/btest/core/pacing"
	"github.com/btest-go/btest/core/udpio"
)

// refLoss is the loss tracker's definition written the slow way: a
// datagram is lost when the newest sequence number seen has moved
// lossWindow or more past it and it never arrived; numbers before the
// first one seen do not count.
type refLoss struct {
	started bool
	first   uint64 // unwrapped
	hi      uint64
	seen    map[uint64]bool
	counted map[uint64]bool
	lost    uint64
}

func (r *refLoss) see(seq uint32) {
	if !r.started {
		r.started, r.first, r.hi = true, 1<<40+uint64(seq), 1<<40+uint64(seq)
		r.seen = map[uint64]bool{r.hi: true}
		r.counted = map[uint64]bool{}
		return
	}
	// Unwrap relative to hi.
	d := int64(int32(seq - uint32(r.hi)))
	s := uint64(int64(r.hi) + d)
	if s > r.hi {
		for x := r.hi + 1; x <= s; x++ {
			old := x - lossWindow
			if old > r.first && old < x && !r.seen[old] && !r.counted[old] {
				r.counted[old] = true
				r.lost++
			}
		}
		r.hi = s
	}
	if s+lossWindow > r.hi {
		r.seen[s] = true
	}
}

func (r *refLoss) total() uint64 {
	n := r.lost
	for x := r.hi - lossWindow + 1; x <= r.hi; x++ {
		if x > r.first && !r.seen[x] && !r.counted[x] {
			n++
		}
	}
	return n
}

func checkLoss(t *testing.T, seqs []uint32) {
	t.Helper()
	var lt lossTracker
	var ref refLoss
	var sum uint64
	for i, s := range seqs {
		sum += lt.see(s)
		ref.see(s)
		if lt.lost != ref.lost || sum != lt.lost {
			t.Fatalf("after %d numbers (last %d): lost %d (sum %d), reference %d", i+1, s, lt.lost, sum, ref.lost)
		}
	}
	if got, want := lt.lost+lt.pending(), ref.total(); got != want {
		t.Fatalf("final loss %d, reference %d", got, want)
	}
}

func TestLossTracker(t *testing.T) {
	t.Parallel()
	seq := func(from, to uint32) []uint32 {
		var s []uint32
		for x := from; x != to; x++ {
			s = append(s, x)
		}
		return s
	}
	cat := func(parts ...[]uint32) []uint32 {
		var s []uint32
		for _, p := range parts {
			s = append(s, p...)
		}
		return s
	}
	cases := []struct {
		name string
		seqs []uint32
		lost uint64 // final, window included
	}{
		{"in order", seq(1, 5000), 0},
		{"wraps", seq(math.MaxUint32-100, 100), 0},
		{"gap", cat(seq(1, 10), seq(15, 3000)), 5},
		{"gap at the end", cat(seq(1, 10), seq(15, 20)), 5},
		{"swap", cat(seq(1, 10), []uint32{11, 10}, seq(12, 3000)), 0},
		{"late within window", cat(seq(1, 10), seq(11, 900), []uint32{10}, seq(900, 3000)), 0},
		{"late beyond window", cat(seq(1, 10), seq(11, 2000), []uint32{10}, seq(2000, 3000)), 1},
		{"duplicates", cat(seq(1, 100), seq(50, 100), seq(100, 200), []uint32{150, 150}), 0},
		{"big jump", cat(seq(1, 10), seq(100_000, 100_010)), 100_000 - 10},
		{"restart", cat(seq(1_000_000_000, 1_000_000_010), seq(0, 10)), 0},
		{"jump beyond lossJump resyncs", cat(seq(1, 10), seq(1<<30, 1<<30+10), seq(1<<31, 1<<31+10)), 0},
		{"jump just inside lossJump is loss", cat(seq(1, 10), seq(9+lossJump-1, 9+lossJump+5)), lossJump - 2},
		{"starts late", cat([]uint32{5}, seq(1, 5), seq(6, 100)), 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var lt lossTracker
			for _, s := range tc.seqs {
				lt.see(s)
			}
			if got := lt.lost + lt.pending(); got != tc.lost {
				t.Fatalf("lost %d, want %d", got, tc.lost)
			}
			if lt.lost+lt.pending() < lossJump && !strings.Contains(tc.name, "resync") && tc.name != "restart" {
				checkLoss(t, tc.seqs)
			}
		})
	}
}

// FuzzLossTracker compares the tracker with the slow reference on
// arbitrary sequences: little-endian u16 steps (signed) from a random
// start, so the fuzzer explores gaps, reordering, duplicates and wraps.
func FuzzLossTracker(f *testing.F) {
	f.Add(uint32(1), []byte{1, 0, 1, 0, 3, 0, 0xff, 0xff, 2, 0})
	f.Add(uint32(math.MaxUint32-3), []byte{1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0})
	f.Add(uint32(7), []byte{0, 4, 1, 0, 0x00, 0xfc})
	f.Fuzz(func(t *testing.T, start uint32, steps []byte) {
		seqs := []uint32{start}
		s := start
		for i := 0; i+1 < len(steps) && len(seqs) < 2000; i += 2 {
			d := int16(binary.LittleEndian.Uint16(steps[i:]))
			if d > 3000 || d < -3000 {
				d %= 3000 // keep clear of lossResync; the reference does not model it
			}
			s += uint32(int32(d))
			seqs = append(seqs, s)
		}
		checkLoss(t, seqs)
	})
}

func TestMulDiv(t *testing.T) {
	t.Parallel()
	if got := mulDiv(math.MaxUint32, 8*uint64(time.Second), uint64(time.Second)); got != math.MaxUint32*8 {
		t.Fatalf("mulDiv = %d", got)
	}
	if got := mulDiv(math.MaxUint64, math.MaxUint64, 1); got != math.MaxUint64 {
		t.Fatalf("overflow not saturated: %d", got)
	}
	if got := mulDiv(1, 1, 0); got != math.MaxUint64 {
		t.Fatalf("divide by zero: %d", got)
	}
}

func TestUDPSizes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ tx, hdr, want int }{
		{1500, 28, 1472}, {1500, 48, 1452}, {28, 28, 4}, {28, 48, 4}, {0, 28, 4},
		{64000, 28, 63972}, {65535, 28, 63972}, {32, 28, 4}, {33, 28, 5},
	} {
		if got := udpPayloadSize(tc.tx, tc.hdr); got != tc.want {
			t.Errorf("payload for tx_size %d, header %d: %d, want %d", tc.tx, tc.hdr, got, tc.want)
		}
	}
}

// simulate drives a rate controller against a receiver that takes at most
// capacity bit/s (and counts lossPM per mille less than it takes, like a
// peer counting only payload or a path losing a little). It returns the
// rate after each report and the loss per report.
func simulate(c *rateControl, start time.Time, seconds int, capacity func(int) uint64, lineRate uint64, lossPM uint64) (rates, loss []float64) {
	now := start
	var sent uint64
	for i := range seconds {
		r := c.rate
		if r == 0 || r > lineRate {
			r = lineRate
		}
		bytesSent := r / 8
		got := min(bytesSent, capacity(i)/8)
		got -= got * lossPM / 1000
		sent += bytesSent
		now = now.Add(time.Second)
		c.report(now, uint32(min(got, math.MaxUint32)), sent)
		rates = append(rates, float64(c.rate))
		loss = append(loss, 1-float64(min(bytesSent, capacity(i)/8))/float64(bytesSent))
	}
	return rates, loss
}

// simulateQueue is simulate over a bottleneck of capacity bit/s with a
// drop-tail queue of 50 ms in front of it (a tbf, as in internal/netlab),
// which carries what it holds into the next report: after a second above
// the bottleneck's rate, the next report counts more than was sent in it.
func simulateQueue(c *rateControl, start time.Time, seconds int, capacity, lossPM uint64) (rates, loss []float64) {
	now := start
	var sent, queue uint64
	limit := capacity / 8 / 20
	for range seconds {
		bytesSent := c.rate / 8
		sent += bytesSent
		queue += bytesSent
		dropped := queue - min(queue, capacity/8+limit)
		queue -= dropped
		out := min(queue, capacity/8)
		queue -= out
		counted := out - out*lossPM/1000
		now = now.Add(time.Second)
		c.report(now, uint32(min(counted, math.MaxUint32)), sent)
		rates = append(rates, float64(c.rate))
		loss = append(loss, float64(dropped)/float64(max(bytesSent, 1)))
	}
	return rates, loss
}

func TestRateControl(t *testing.T) {
	t.Parallel()
	start := time.Unix(1000, 0)
	const wire = 1500
	t.Run("limit holds", func(t *testing.T) {
		c := newRateControl(4_000_000, wire, start, nil)
		rates, _ := simulate(c, start, 10, func(int) uint64 { return 1e12 }, 1e12, 0)
		for _, r := range rates {
			if r != 4_000_000 {
				t.Fatalf("rates %v", rates)
			}
		}
	})
	t.Run("limit holds against a peer counting payload only", func(t *testing.T) {
		c := newRateControl(50_000_000, wire, start, nil)
		rates, _ := simulate(c, start, 10, func(int) uint64 { return 1e12 }, 1e12, 19)
		for _, r := range rates {
			if r != 50_000_000 {
				t.Fatalf("rates %v", rates)
			}
		}
	})
	t.Run("start-up doubles per report at most", func(t *testing.T) {
		// A peer that reports once a second, a sender bound at 10
		// Gbit/s: from udpStartRate, each step at most twice what
		// arrived, ending at twice the sender's own rate.
		c := newRateControl(0, wire, start, nil)
		if c.rate != udpStartRate {
			t.Fatalf("first rate %d, want %d", c.rate, udpStartRate)
		}
		prev := float64(udpStartRate)
		rates, _ := simulate(c, start, 14, func(int) uint64 { return 1e12 }, 10e9, 0)
		for _, r := range rates {
			if r > 2*min(prev, 10e9) {
				t.Fatalf("rates %.3g: more than twice what arrived", rates)
			}
			prev = r
		}
		if last := rates[len(rates)-1]; last != 20e9 {
			t.Fatalf("rates %.3g, want 2 x 10 Gbit/s at the end", rates)
		}
	})
	t.Run("receiver bound converges with little loss", func(t *testing.T) {
		c := newRateControl(0, wire, start, nil)
		rates, loss := simulate(c, start, 60, func(int) uint64 { return 20e9 }, 40e9, 0)
		var sum float64
		for _, l := range loss[1:] {
			sum += l
		}
		avg := sum / float64(len(loss)-1)
		t.Logf("rates %.3g\nloss %.3f", rates[:12], loss[:12])
		if avg > 0.01 {
			t.Errorf("average loss after the first second %.2f%%, want < 1%%", avg*100)
		}
		for _, r := range rates[12:] {
			if r < 0.9*20e9 || r > 1.1*20e9 {
				t.Errorf("rate %.3g strays from the receiver's 20 Gbit/s", r)
			}
		}
	})
	t.Run("constant undercount does not ratchet", func(t *testing.T) {
		// A peer that counts 2% less than we send (payload only).
		c := newRateControl(0, wire, start, nil)
		rates, _ := simulate(c, start, 120, func(int) uint64 { return 1e12 }, 5e9, 20)
		if last := rates[len(rates)-1]; last < 5e9 {
			t.Fatalf("rate ratcheted down to %.3g: %.3g", last, rates)
		}
	})
	t.Run("recovers after a bad second", func(t *testing.T) {
		c := newRateControl(0, wire, start, nil)
		capacity := func(i int) uint64 {
			if i == 5 {
				return 2e9
			}
			return 20e9
		}
		rates, _ := simulate(c, start, 20, capacity, 40e9, 0)
		t.Logf("rates %.3g", rates)
		if r := rates[15]; r < 0.9*20e9 {
			t.Fatalf("ten seconds after a dip the rate is %.3g", r)
		}
	})
	t.Run("capacity drops for good", func(t *testing.T) {
		c := newRateControl(0, wire, start, nil)
		capacity := func(i int) uint64 {
			if i >= 10 {
				return 10e9
			}
			return 20e9
		}
		rates, loss := simulate(c, start, 40, capacity, 40e9, 0)
		var sum float64
		for _, l := range loss[14:] {
			sum += l
		}
		t.Logf("rates %.3g\nloss %.2f", rates[8:16], loss[8:16])
		if avg := sum / float64(len(loss)-14); avg > 0.01 {
			t.Fatalf("average loss %.2f%% after the drop settled", avg*100)
		}
	})
	t.Run("capacity grows", func(t *testing.T) {
		c := newRateControl(0, wire, start, nil)
		capacity := func(i int) uint64 {
			if i >= 10 {
				return 30e9 // reports stay below the 32-bit limit
			}
			return 15e9
		}
		rates, _ := simulate(c, start, 25, capacity, 80e9, 0)
		t.Logf("rates %.3g", rates[8:])
		if r := rates[len(rates)-1]; r < 0.9*30e9 {
			t.Fatalf("15 reports after the receiver doubled its capacity the rate is %.3g", r)
		}
	})
	t.Run("start-up against a peer counting payload only", func(t *testing.T) {
		// btest-rs reports 2% less than was sent, once a second: that
		// is not a full path, and the start-up still doubles to a
		// 100 Mbit/s bottleneck.
		c := newRateControl(0, wire, start, nil)
		rates, _ := simulate(c, start, 8, func(int) uint64 { return 100e6 }, 10e9, 19)
		t.Logf("rates %.3g", rates)
		if r := rates[len(rates)-1]; r < 90e6 || r > 110e6 {
			t.Fatalf("rates %.3g, want about the 100 Mbit/s bottleneck after 8 reports", rates)
		}
	})
	t.Run("a peer counting payload only behind a queue does not ratchet", func(t *testing.T) {
		// btest-rs reports 2% less than was sent, once a second, over
		// a 100 Mbit/s bottleneck with a queue. The report after a
		// cut counts what the queue held as well, more than was sent
		// in it: that is no measure of the usual loss, and taken as
		// one (none), the next report's 2% looked like congestion, and
		// the rate fell by a twentieth every second.
		c := newRateControl(0, wire, start, nil)
		rates, _ := simulateQueue(c, start, 30, 100e6, 19)
		t.Logf("rates %.3g", rates)
		for i, r := range rates[10:] {
			if r < 90e6 {
				t.Fatalf("rate %.3g after %d reports: %.3g", r, 10+i+1, rates)
			}
		}
	})
	t.Run("a path slower than the start rate stops the start-up at the first report", func(t *testing.T) {
		// A 10 Mbit/s path against a peer that reports once a second:
		// the first report already shows a sixth lost at 12 Mbit/s,
		// and the sender must not double past it for another second.
		c := newRateControl(0, wire, start, nil)
		rates, _ := simulate(c, start, 5, func(int) uint64 { return 10e6 }, 10e9, 0)
		t.Logf("rates %.3g", rates)
		for _, r := range rates {
			if r > 11e6 {
				t.Fatalf("rates %.3g: over the 10 Mbit/s path", rates)
			}
		}
	})
	for _, first := range []struct {
		at     time.Duration
		tenths uint64 // of a second's arrivals the first report counts
	}{{1400 * time.Millisecond, 10}, {1600 * time.Millisecond, 6}} {
		t.Run(fmt.Sprintf("a first report held up %v does not stall the start-up", first.at-time.Second), func(t *testing.T) {
			// In a test both ways against btest-rs, its first report
			// waited behind its own first-second flood (0.4 s: a second's
			// count at the start rate; 0.6 s: 60% of one); the next came
			// on time. Compared as bytes with all sent since the start,
			// the first showed a third or more lost, set the path's rate at
			// 4-8 Mbit/s, and the sender crept up from there by 1% a report
			// (12 s to a 100 Mbit/s path); rated over the half second, the
			// second doubled what arrived.
			c := newRateControl(0, wire, start, nil)
			var sent uint64
			prev := time.Duration(0)
			at := []time.Duration{first.at}
			for i := 2; i <= 8; i++ {
				at = append(at, time.Duration(i)*time.Second+100*time.Millisecond)
			}
			var rates []float64
			for k, a := range at {
				sent += mulDiv(c.rate/8, uint64(a-prev), uint64(time.Second))
				counted := min(c.rate, 100e6) / 8
				if k == 0 {
					counted = counted / 10 * first.tenths
				}
				counted -= counted * 19 / 1000 // payload only
				before := c.rate
				c.report(start.Add(a), uint32(counted), sent)
				rates = append(rates, float64(c.rate))
				if c.rate > 2*min(before, 100e6) {
					t.Fatalf("rate %d after %d arrived: more than twice: %.3g", c.rate, min(before, 100e6), rates)
				}
				prev = a
			}
			t.Logf("rates %.3g", rates)
			if r := rates[len(rates)-1]; r < 90e6 {
				t.Fatalf("rates %.3g: want the 100 Mbit/s path within 8 reports", rates)
			}
		})
	}
	t.Run("zero and saturated reports change nothing", func(t *testing.T) {
		c := newRateControl(0, wire, start, nil)
		c.report(start.Add(time.Second), 1_000_000, 2_000_000)
		r := c.rate
		c.report(start.Add(2*time.Second), 0, 4_000_000)
		c.report(start.Add(3*time.Second), math.MaxUint32, 10_000_000_000)
		if c.rate != r {
			t.Fatalf("rate %d became %d", r, c.rate)
		}
	})
	t.Run("floor", func(t *testing.T) {
		c := newRateControl(0, wire, start, nil)
		c.report(start.Add(time.Second), 1, 1)
		if c.rate != 10*wire*8 {
			t.Fatalf("rate %d, want the floor %d", c.rate, 10*wire*8)
		}
	})
}

// TestUDPNoAllocs: the engine's steady state (a paced send step, a
// receive and its accounting) allocates nothing, on every I/O path.
func TestUDPNoAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	for _, mode := range udpIOModes {
		t.Run(mode.name, func(t *testing.T) {
			lo := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), 0)
			ta, err := udpio.Listen(lo, mode.opt)
			if err != nil {
				t.Fatal(err)
			}
			defer ta.Close()
			tb, err := udpio.Listen(lo, mode.opt)
			if err != nil {
				t.Fatal(err)
			}
			defer tb.Close()
			tb.SetBuffers(8 << 20)
			dst := tb.LocalAddr()
			tx := &udpTx{
				snd:   ta.NewSender(dst, 1472, 64<<10, payloadFor(true)),
				pacer: pacing.New(1e12, udpBurst), // paced, but never waits
				wire:  1500, seq: 1,
			}
			rx := newUDPRx(tb.NewReader(16, 1472), tb, netip.MustParseAddr("127.0.0.1"))
			var sl pacing.Sleeper
			ctx := context.Background()
			step := func() {
				before := tx.pkts.Load()
				if err := tx.step(ctx, &sl); err != nil {
					t.Fatal(err)
				}
				want := rx.pkts.Load() + tx.pkts.Load() - before
				for rx.pkts.Load() < want {
					n, err := rx.rd.Read()
					if err != nil {
						t.Fatal(err)
					}
					rx.process(n)
				}
			}
			step()
			if n := testing.AllocsPerRun(300, step); n != 0 {
				t.Fatalf("%v allocations per send step of %d datagrams", n, tx.snd.Max())
			}
			if rx.lost.Load() != 0 || rx.pkts.Load() != tx.pkts.Load() {
				t.Fatalf("sent %d, received %d, lost %d", tx.pkts.Load(), rx.pkts.Load(), rx.lost.Load())
			}
		})
	}
}
