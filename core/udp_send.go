package core

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync/atomic"
	"time"

	"github.com/btest-go/btest/core/pacing"
	"github.com/btest-go/btest/core/udpio"
)

// setupSender makes the engine's pacer and rate control for a sender with
// the given limit (0: none, then it starts at udpStartRate).
func (e *udpEngine) setupSender(limit uint64, wireSize int) {
	e.pacer = udpPacer(limit, wireSize)
	ctrl := e.ctrl
	e.rc = newRateControl(e.pacer.Rate(), wireSize, e.start, func() time.Duration { return tcpRTT(ctrl) })
	e.rc.trace = e.hooks.tracer()
	e.pacer.SetRate(e.rc.rate)
	e.starting.Store(e.rc.starting())
}

// newTx returns a sending loop on snd that shares the engine's pacer. An
// unlimited sender marks its datagrams as ours (udpMark), so that our
// receiver reports early; one with a limit has no use for that.
func (e *udpEngine) newTx(snd *udpio.Sender, wireSize int) *udpTx {
	t := &udpTx{snd: snd, pacer: e.pacer, wire: wireSize, seq: 1}
	if e.rc.limit == 0 {
		t.starting = &e.starting
		t.blind = &blindHold{hold: &e.hold, heard: &e.lastHeard, start: e.start}
	}
	return t
}

// udpTx is one sending socket's loop.
type udpTx struct {
	snd   *udpio.Sender
	pacer *pacing.Pacer
	wire  int // bytes per datagram, headers included
	seq   uint32
	bytes paddedCounter
	pkts  paddedCounter
	// starting is the engine's start-up state, copied into the mark of
	// the datagrams when it changes (marked: what they carry now).
	starting *atomic.Bool
	marked   int8 // 0 none yet, 1 starting, 2 steady
	blind    *blindHold
}

// blindHold holds a start-up step back while its reports stop coming
// (fastControl.stepBase): the engine's rc.holdRate and the time its peer
// was last heard, read by the sending loops.
type blindHold struct {
	hold  *atomic.Uint64
	heard *atomic.Int64 // since start
	start time.Time
}

// apply lowers the pacer's rate to the hold when the peer has not been
// heard for udpBlindAfter; the next report sets it again.
func (b *blindHold) apply(p *pacing.Pacer) {
	h := b.hold.Load()
	if h == 0 || p.Rate() <= h || time.Since(b.start)-time.Duration(b.heard.Load()) < udpBlindAfter {
		return
	}
	p.SetRate(h)
}

// run sends until ctx ends, the socket's write deadline passes, or a send
// fails.
func (u *udpTx) run(ctx context.Context) error {
	var sl pacing.Sleeper
	defer sl.Stop()
	for ctx.Err() == nil {
		if err := u.step(ctx, &sl); err != nil {
			if ctx.Err() != nil || errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("udp send: %w", err)
		}
	}
	return nil
}

// step waits for the pacer and sends one train: the whole batch when
// unpaced, about udpTick's worth of datagrams when paced.
func (u *udpTx) step(ctx context.Context, sl *pacing.Sleeper) error {
	if u.starting != nil {
		want := int8(2)
		if u.starting.Load() {
			want = 1
		}
		if want != u.marked {
			m := udpMark(want == 1)
			u.snd.Stamp(udpMarkOffset, m[:])
			u.marked = want
		}
	}
	if u.blind != nil {
		u.blind.apply(u.pacer)
	}
	n := u.snd.Max()
	sl.Slack = 0
	if r := u.pacer.Rate(); r > 0 {
		perTick := r / 8 / uint64(u.wire) / uint64(time.Second/udpTick)
		if perTick >= uint64(n) && u.starting != nil {
			// Rate control paces a fast sender (full batches, a few
			// Gbit/s and more): a timer fires up to a millisecond
			// late, and the catch-up after it (udpStartBurstBytes)
			// is less than that at tens of Gbit/s, so sleeping for
			// short waits held it to about 13 Gbit/s on loopback with
			// GSO. It goes at once instead, at most udpSlack ahead of
			// the schedule.
			sl.Slack = udpSlack
		}
		n = int(min(max(perTick, 1), uint64(n)))
	}
	if err := sl.Wait(ctx, u.pacer, n*u.wire); err != nil {
		return err
	}
	k, err := u.snd.Send(u.seq, n)
	u.seq += uint32(k)
	u.pkts.Add(uint64(k))
	u.bytes.Add(uint64(k * u.wire))
	return err
}
