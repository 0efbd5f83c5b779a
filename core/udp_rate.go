package core

import (
	"math"
	"time"

	"github.com/btest-go/btest/core/pacing"
)

// rateControl adapts a UDP sender to its peer's status reports
// (docs/protocol.md, §12.3). The ceiling is the protocol's rule,
//
//	min(limit, max(floor, 1.5 * 8 * reported bytes per second)),
//
// and under an explicit limit that is all: the user asked for the rate,
// and loss shows in the result (over a slower path, about a third). Without a limit the rate
// follows the rule until the receiver first falls behind; a receiver that
// keeps up lets it grow by half per report. From then on the controller
// also compares what arrived with what was sent. When more than 0.5% went
// missing beyond the path's usual loss, the receiver (or the path) is
// full: the rate drops to 95% of what arrived, which is remembered as the
// receiver's limit; the margin absorbs the receiver's ups and downs (a
// busy CPU, a scheduling hiccup). From there the rate closes half the
// distance to that limit per report, creeps by 1% near it, and probes
// beyond it in steps doubling from 1% to at most 50%. After a sudden dip
// (the receiver was busy for a moment) it climbs back to the rate that
// arrived before as fast as the ceiling lets it. That keeps a GSO sender
// from overrunning a receiver at the 33% loss the 1.5 rule alone settles
// at, while a path that always loses a little, or a peer that counts a
// little less than we send (payload only), never ratchets the rate down.
// A report of zero bytes changes nothing: it is an idle or lost interval,
// not a verdict. All arithmetic is 64-bit.
type rateControl struct {
	limit, floor uint64 // bit/s; limit 0 = none
	minDeficit   uint64 // bytes: less missing than this is noise
	rate         uint64 // current; 0 = line rate
	wMax         uint64 // what arrived at the last congestion; 0 = none yet
	stepPM       uint64 // probe step beyond wMax, per mille
	catching     bool   // climbing back towards peak
	last         time.Time
	lastSent     uint64
	lossHist     [10]uint64 // recent loss, per mille
	gotHist      [10]uint64 // recent arrival rates, bit/s
	nHist        int
	pend         uint64    // bytes of reports too close together to judge yet
	reports      int       // reports taken
	prev         time.Time // arrival of the previous report
	// fast steers an unlimited sender once the reports come early (from
	// our own receiver, see udp_startup.go); rtt tells it their lag.
	fast *fastControl
	rtt  func() time.Duration
	// trace, set by tests, sees the fast controller's verdicts.
	trace func(string, ...any)
	// peerStarting, if not nil, tells whether the other direction's
	// sender (ours, in a test both ways) is still in its start-up.
	peerStarting func() bool
}

// newRateControl returns the controller of a sender with the given limit
// (0: none); an unlimited one starts at udpStartRate. rtt, if not nil,
// tells the round-trip time of the control connection.
func newRateControl(limit uint64, wireSize int, start time.Time, rtt func() time.Duration) *rateControl {
	perPacket := uint64(wireSize) * 8
	c := &rateControl{
		limit:      limit,
		floor:      10 * perPacket, // ten datagrams a second
		minDeficit: 4 * uint64(wireSize),
		rate:       limit,
		last:       start,
		rtt:        rtt,
	}
	if c.limit > 0 {
		c.floor = min(c.floor, c.limit)
	} else {
		c.rate = max(udpStartRate, c.floor)
	}
	if c.rtt == nil {
		c.rtt = func() time.Duration { return 0 }
	}
	return c
}

// starting reports whether an unlimited sender is still searching for the
// path's rate.
func (c *rateControl) starting() bool {
	if c.limit > 0 {
		return false
	}
	if c.fast != nil {
		return c.fast.starting()
	}
	return c.wMax == 0
}

// holdRate is what an unlimited sender in its start-up sends while
// reports stop coming (udpBlindAfter): the rate that arrived whole below a
// step that awaits its verdict. 0: no step awaits one.
func (c *rateControl) holdRate() uint64 {
	if c.fast == nil || !c.fast.starting() {
		return 0
	}
	return c.fast.stepBase
}

// report takes a status report of bytes received, arriving at now, with
// sent the sender's running total of bytes, and returns the new rate.
func (c *rateControl) report(now time.Time, bytes uint32, sent uint64) uint64 {
	gap := now.Sub(c.last)
	if gap <= 0 {
		return c.rate
	}
	c.reports++
	between := now.Sub(c.prev)
	c.prev = now
	if c.limit == 0 && c.fast == nil && between < udpFastGap && c.reports > 1 {
		// Reports come early: our own receiver. Steer by them from here.
		c.fast = newFastControl(c.floor, c.rate, c.rtt, c.trace)
		c.fast.peerStarting = c.peerStarting
	}
	if c.fast != nil {
		if bytes == math.MaxUint32 {
			// Saturated: only "at least this much", as below.
			c.last, c.lastSent = now, sent
			return c.rate
		}
		c.rate = c.fast.report(now, between, bytes, sent)
		c.last, c.lastSent = now, sent
		return c.rate
	}
	if bytes == 0 {
		return c.rate
	}
	if bytes == math.MaxUint32 {
		// A saturated report (about 34 Gbit/s or more in a second)
		// says only "at least this much": no verdict on loss either.
		c.last, c.lastSent, c.pend = now, sent, 0
		return c.rate
	}
	if gap < 500*time.Millisecond {
		// Early reports (ours, under a limit): judge them together,
		// over half a second at least, as the rule below expects.
		c.pend += uint64(bytes)
		return c.rate
	}
	b := uint64(bytes) + c.pend
	c.pend = 0
	c.last = now
	delta := sent - c.lastSent
	c.lastSent = sent
	// Reports normally come each second; measure the gap anyway (the
	// peer's timer is its own) but keep a delayed one from faking a rate.
	// A report more than half a second from the peer's second is late.
	onTime := gap <= 1500*time.Millisecond
	gap = min(max(gap, 100*time.Millisecond), 4*time.Second)
	// What was sent, as a rate over the time since the report before.
	sentRate := mulDiv(delta, 8*uint64(time.Second), uint64(gap))
	if c.limit == 0 && onTime {
		// Unlimited, the reports come from a peer that counts a
		// second at a time (ours come early and switch to
		// fastControl): one up to half a second early or late still
		// counts its second. Rated over the gap instead, the report
		// that came soon after a late one doubled what arrived, and
		// the late one showed a loss the path did not have.
		gap = time.Second
	}
	got := mulDiv(b, 8*uint64(time.Second), uint64(gap))
	ceiling := max(c.floor, got/2*3)
	if c.limit > 0 {
		// The user asked for this rate: aim at it, within the
		// protocol's 1.5 times what arrived, and let the loss show in
		// the result. Over a slower path that is a third lost, not the
		// whole excess.
		c.rate = min(ceiling, c.limit)
		return c.rate
	}
	// Loss is what arrived against what was sent, both as rates: each
	// over its own span, the peer's second and the time between our
	// reports, which differ when a report comes late. (Compared as
	// bytes, btest-rs's first report in a test both ways, held up 0.4 s
	// behind its own first-second flood, showed a third lost at a rate
	// the path carried, and the sender stayed at 10 Mbit/s.) A report
	// more than half a second late measures no loss: the rate sent
	// changed while it waited. Nor does one that shows more arriving
	// than was sent: the path's queue drained into it after a cut, or
	// the peer's second ended late. Taken as a loss of none, it made a
	// peer that always counts 2% less (btest-rs: payload only) look
	// congested at the next report, and the rate fell by a twentieth a
	// second.
	measures := onTime && got <= sentRate
	var lossPM uint64
	if measures && (sentRate-got)/8 >= c.minDeficit {
		lossPM = (sentRate - got) * 1000 / sentRate
	}
	// The path's usual loss is the least that recent reports measured
	// (none until one shows otherwise); the peak is the most that
	// arrived.
	base, peak := uint64(noLossMeasure), got
	for i := range c.nHist {
		base = min(base, c.lossHist[i])
		peak = max(peak, c.gotHist[i])
	}
	if base == noLossMeasure {
		base = 0
	}
	histLoss := lossPM
	if !measures {
		histLoss = noLossMeasure
	}
	margin := uint64(5)
	if c.wMax == 0 {
		// Still doubling, and no usual loss known yet: a peer that
		// counts a little less than was sent (btest-rs counts payload
		// only, 2% less) is not a full path; doubling past the path's
		// rate loses far more.
		margin = 50
	}
	congested := lossPM > base+margin
	if congested && c.catching {
		// The rate that arrived before is not coming back.
		c.nHist, peak = 0, got
	}
	copy(c.lossHist[1:], c.lossHist[:])
	copy(c.gotHist[1:], c.gotHist[:])
	c.lossHist[0], c.gotHist[0] = histLoss, got
	c.nHist = min(c.nHist+1, len(c.gotHist))

	c.catching = false
	switch {
	case congested:
		c.wMax = got
		c.rate = got - got/20
		c.stepPM = 10
	case c.wMax == 0:
		// The start-up, against a peer that reports once a second: at
		// most twice what arrived, so the path's rate is found in
		// a few seconds while the overshoot stays bounded.
		c.rate = max(c.floor, got*2)
		return c.rate
	case c.rate == 0:
		c.rate = ceiling
	case c.rate < peak/10*9:
		c.rate = peak - peak/50
		c.catching = true
	case c.rate < c.wMax-c.wMax/20:
		c.rate += max((c.wMax-c.rate)/2, c.rate/100)
	case c.rate < c.wMax:
		c.rate += c.rate / 100
	default:
		c.rate += mulDiv(c.rate, c.stepPM, 1000)
		c.stepPM = min(2*c.stepPM, 500)
	}
	c.rate = min(max(c.rate, c.floor), ceiling)
	return c.rate
}

// noLossMeasure marks a report in rateControl's history that measured no
// loss (see measures in rateControl.report).
const noLossMeasure = ^uint64(0)

// udpPacer sets up the pacer for a sender at its limit (0: none).
// docs/protocol.md, §12.2: rates under two datagrams a second become one
// datagram a second.
func udpPacer(limit uint64, wireSize int) *pacing.Pacer {
	onePerSec := uint64(wireSize) * 8
	if limit > 0 && limit < 2*onePerSec {
		limit = onePerSec
	}
	if limit == 0 {
		// Paced by rate control: catch up on a late wake-up (a busy
		// machine) within udpStartBurst, at most udpStartBurstBytes.
		return pacing.NewCapped(0, udpStartBurst, udpStartBurstBytes)
	}
	// Under a limit, a late wake-up must not cost rate: catch up by as
	// much as half the receiver's socket buffer holds, at most
	// udpLimitBurst.
	return pacing.New(limit, min(udpLimitBurst, time.Duration(uint64(udpSocketBuffer/2)*8*uint64(time.Second)/limit)))
}
