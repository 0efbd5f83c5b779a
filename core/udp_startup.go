package core

import (
	"bytes"
	"time"
)

// An unlimited UDP sender must find the path's rate without flooding it.
// It starts at udpStartRate (12 Mbit/s) and lets what arrives set the pace:
// the rate grows to at most a few times the rate the receiver reported, so
// it never sends much more than the path carried a moment ago.
//
// How fast that goes depends on the reports. A peer that reports once a
// second (RouterOS, the other implementations) allows one step a second.
// Our own receiver reports every udpFastStatus once it recognises our
// sender by udpMark in the datagrams, and the sender then runs fastControl:
// steps of a few tens of milliseconds, the path's rate in about half a
// second, and a steady state that holds the rate the path delivers without
// building a queue. The mark lives in the datagrams' filler, which RouterOS
// ignores, and only our receivers answer it, so the wire stays what
// RouterOS expects.

const (
	// udpStartRate is an unlimited sender's first rate, bit/s.
	udpStartRate = 12_000_000
	// udpFastStatus is how often our receiver reports to our sender.
	udpFastStatus = 10 * time.Millisecond
	// udpFastGap: reports closer than this come from a receiver that
	// reports early, so the sender may steer by them.
	udpFastGap = 100 * time.Millisecond
	// udpBlindAfter: a start-up step whose reports stop coming for this
	// long goes back to the rate that arrived whole until they come
	// (fastControl.stepBase).
	udpBlindAfter = udpFastStatus * 3 / 2
	// udpStartBurst and udpStartBurstBytes bound the catch-up of an
	// unlimited sender after a late wake-up: 10% of a 100 ms window, so
	// with start-up steps of fcStartGain times what arrived no 100 ms
	// window carries twice the path's rate. 4 MiB is a millisecond at
	// 32 Gbit/s: a fast sender that wakes a little late (the timer's
	// granularity) makes up for it, within a quarter of our receiver's
	// socket buffer.
	udpStartBurst      = 10 * time.Millisecond
	udpStartBurstBytes = 4 << 20
	// udpMarkOffset is where udpMark sits in a datagram's payload, after
	// the sequence number; udpMarkLen its length, the flags byte included.
	udpMarkOffset = 4
	udpMarkLen    = 5
	// udpMarkStarting flags datagrams sent during the start-up.
	udpMarkStarting = 1
)

// udpMagic opens udpMark: "our sender, and it steers by early reports".
var udpMagic = [4]byte{'b', 't', 'G', 'o'}

// udpMark returns the mark a sender writes into its datagrams.
func udpMark(starting bool) [udpMarkLen]byte {
	m := [udpMarkLen]byte{udpMagic[0], udpMagic[1], udpMagic[2], udpMagic[3]}
	if starting {
		m[4] = udpMarkStarting
	}
	return m
}

// readMark reports whether a datagram's payload carries our mark, and its
// start-up flag.
func readMark(d []byte) (ours, starting bool) {
	if len(d) < udpMarkOffset+udpMarkLen || !bytes.Equal(d[udpMarkOffset:udpMarkOffset+4], udpMagic[:]) {
		return false, false
	}
	return true, d[udpMarkOffset+4]&udpMarkStarting != 0
}

// fastControl steers an unlimited sender by early reports. Reports are
// gathered into samples: what arrived (got) against what was sent over the
// same span. After a rate change the reports of one round trip are
// skipped, and the first one after it opens the sample without counting,
// since they still describe the old rate. Report arrival times jitter by
// several milliseconds on a busy machine, so samples span tens of
// milliseconds and every verdict allows for it.
//
//   - Start-up: while at least 90% of what was sent arrives, the next rate
//     is fcStartGain (1.7) times what arrived, twice the rate at most (2.0
//     below fcStartLowBelow, 100 Mbit/s).
//     Between 70% and 90% the next sample goes at what arrived; if that
//     arrives, or when less arrives, the path is full, and what arrived is
//     its rate. Reports held up, or a sender that did not reach its rate,
//     make it look again.
//   - Drain: half the best rate, until what was queued in the path during
//     the last start-up step is gone (what arrives no longer exceeds what
//     is sent) or 200 ms passed. What arrives meanwhile is the path's rate.
//   - Cruise, in a cycle of eight phases of 100 ms at fcGains of the
//     path's rate: a probe 25% above it, a drain at 72.5%, six at 99.5%, so that
//     a queue left by the probe, or by a rate a little too high, empties
//     every cycle. The rate moves on evidence only. A probe that arrived
//     whole starts the search over; one that shows some room adds 5%. The
//     backlog (bytes sent and not yet reported, at its least in a phase,
//     which leaves out how late reports came) grows only by what the path
//     loses while no queue builds: when it grows faster than the path's
//     usual loss over the steady phases, the rate is above the path's and
//     comes down to what the path delivered. Loss alone does not steer the
//     rate: a path that loses 1% at random keeps its rate and shows its
//     loss. A cycle that loses 3% more than usual (a receiver or path that
//     can no longer keep up) sets the rate to what arrived.
type fastControl struct {
	floor uint64
	rtt   func() time.Duration
	// peerStarting, if not nil, tells whether the other direction's
	// sender is still in its start-up (fcPeerStartGain).
	peerStarting func() bool
	trace        func(string, ...any) // nil outside tests
	rate         uint64
	state        int

	open     bool // a sample is being gathered
	from     time.Time
	fromSent uint64
	bytes    uint64
	settle   time.Time // reports before this still show an older rate
	gap      time.Duration
	maxGap   time.Duration // longest gap between reports in the sample
	bunched  bool          // two reports of the sample came together
	fromLag  time.Duration // reportLag at the sample's start
	unclear  bool          // the last start-up sample was unclear
	near     bool          // a start-up sample showed the path close to full
	// probes counts the samples that went a quarter above a near one
	// (the second a quarter above what the first delivered).
	probes uint8
	// stepBase is the rate that arrived whole below a start-up step
	// that awaits its verdict (0: none). Reports that stop coming (they
	// wait behind the other direction's start-up in a test both ways)
	// would otherwise leave the step running blind, above the path's
	// rate for as long as they wait: the sender goes back to stepBase
	// while they do (udpBlindAfter).
	stepBase uint64

	est          uint64 // the path's rate, bit/s
	maxBw        uint64 // best rate that arrived in the start-up
	phase        int
	probeGot     uint64
	probeLate    bool   // the probe's reports were held up
	cycSent      uint64 // bytes sent and arrived over the current cycle
	cycGot       uint64
	cycStart     time.Time
	lossHist     [4]uint64 // per mille, recent cycles
	lossN        int
	drainStarted time.Time
	drainBytes   uint64        // what arrived in drain samples that drained
	drainSpan    time.Duration // and over how long
	creepTo      uint64        // how far clean cycles may raise est (0: no bound yet)
	fullBw       uint64        // what arrived in the sample that ended the start-up
	peak         uint64        // the rate's recent best, fading 2% per cycle
	probeRate    uint64        // the rate of the current probe
	dipProbe     bool          // the probe goes back towards the recent best
	probeCapped  bool          // the probe was held to fcProbeExtra<<probeShift
	probeShift   uint          // 1 after a held probe arrived whole
	cut          bool          // the cycle's backlog cut the rate (queueGrew)
	drainNext    bool          // the rate was cut: the next phase drains
	entry        bool          // the cruise's first phase, at the start-up's estimate
	// The last drain sample that drained, not yet in drainBytes: its
	// queue may have run dry within it.
	drainLastBytes uint64
	drainLastSpan  time.Duration

	// The backlog: bytes sent and not (yet) reported, sent - rcvd. It
	// holds what is on its way, what waits in the path's queue and what
	// was lost; its least value over a phase (dmin) leaves out how late
	// the reports came, so that its growth between phases at the same
	// rate is what the queue grew by plus what was lost.
	rcvd      uint64
	dmin      uint64
	phaseD    [len(fcGains)]uint64 // dmin of each phase of the cycle
	phaseSent [len(fcGains)]uint64 // bytes sent by each phase's end
	cycD      uint64               // dmin and sent at the last cycle's end
	cycDSent  uint64
	haveCycD  bool
	// How late reports arrive against our receiver's grid (backlog).
	grid0              time.Time
	reps               int64
	lagMin, lagMinPrev time.Duration // least lag, this cycle and the last
}

const maxLag = time.Duration(1<<63 - 1)

const (
	fcStartup = iota
	fcDrain
	fcCruise
)

// fcStartGain is the start-up's step, in tenths: the next rate is at most
// this times what arrived. A shaper's token bucket can make a sample show
// up to a third more than the path's rate (10 ms of burst in a 30 ms
// sample), and the next step then goes above twice the path's rate, but
// for one sample only (about 40 ms: a sample that is not clear falls back
// to what arrived): with the samples before it, no 100 ms window carries
// twice the path's rate.
const fcStartGain = 17

// fcStartExtra bounds a start-up step above what arrived, bit/s, once a
// quarter of that is more: a step past the path's rate loses what the
// path cannot queue, and a receiver at its CPU's limit (loopback, a fast
// LAN) queues only its socket buffer, a few milliseconds at tens of
// Gbit/s, where a 1.7x step loses 40% of a sample.
const fcStartExtra = 1_000_000_000

// fcStartMaxExtra bounds a start-up step above what arrived, bit/s, where
// a quarter of that is more still: what a step sends beyond a receiver's
// limit, over its sample and verdict (about 40 ms), must fit in the
// receiver's socket buffer (udpSocketBuffer, which the kernel doubles to
// hold its own overhead). A step of a quarter at 40 Gbit/s overflowed
// it: loopback tests with GSO lost 0.1-1.6 % of their datagrams, nearly
// all in the start-up.
const fcStartMaxExtra = udpSocketBuffer * 8 * uint64(time.Second/(40*time.Millisecond))

// fcPeerStartGain is the start-up's step, in tenths, while the other
// direction of a test both ways is in its start-up too. Then each
// direction's reports come back through the queue the other's steps
// build at its bottleneck, so a step's verdict comes tens of
// milliseconds later than alone (40-50 ms instead of 20), and a step of
// fcStartGain above a sample that a shaper's burst made look a third
// faster than the path sent so long at nearly twice the path's rate that
// the queue overflowed (1.3 % of a 4 s test lost at 100 Mbit/s). In a
// simulation of two such start-ups (TestFastControlBothStart, 400 runs)
// 1.6 lost over 0.3 % in 3 runs of 400, 1.7 in 15; it costs a 1 Gbit/s
// start-up about one step.
const fcPeerStartGain = 16

// startGain returns the start-up's step, in tenths.
func (f *fastControl) startGain() uint64 {
	g := uint64(fcStartGain)
	if f.peerStarting != nil && f.peerStarting() {
		g = fcPeerStartGain
	}
	if f.rate < fcStartLowBelow {
		g += fcStartLowExtra
	}
	return g
}

// fcStartLowExtra is added to the start-up's step, in tenths, while the
// rate is below fcStartLowBelow. Every path faster than that pays for the
// steps below it, a fixed cost: a 1 Gbit/s start-up spent half its steps
// (12 to 100 Mbit/s, 30 ms each) sending under a tenth of the path's
// rate, 1-2% of a 10 s test. A step of 2.0 from a rate at or below the
// path's sends at most twice the path's rate, for one sample and its
// verdict (about 40 ms), and queues at most that long at the path's rate.
// On a path slower than 100 Mbit/s, a step that went a tenth above its
// rate and looked whole through a shaper's burst (fcStartGain) goes on to
// 2.2 times its rate instead of 1.9 for one sample: a 100 ms window then
// carries about 1.5 times the path's rate. The 10 and 100 Mbit/s shaped
// cases lost nothing to it, and peaked at 1.27-1.33 times (README); a
// 100 Mbit/s start-up both ways, its verdicts held up behind the other
// direction's queue, lost up to 0.46% of 3 s in 3 of 400 simulated runs
// and 0.37% in one of 12 loaded ones (docs/protocol.md), where without
// it 2 of 24 directions of 1 Gbit/s both ways went under 95%.
const (
	fcStartLowBelow = 100_000_000
	fcStartLowExtra = 3
)

// startStep returns the start-up's next rate after got arrived whole,
// gain (in tenths) times got, held to fcStartExtra above it or a quarter,
// whichever is more, and to fcStartMaxExtra.
func startStep(got, gain uint64) uint64 {
	next := got / 10 * gain
	if next-got > fcStartExtra {
		next = max(got+fcStartExtra, min(got/4*5, got+fcStartMaxExtra))
	}
	return next
}

// quarterStep reports whether the start-up's step from got is held to a
// quarter above it or less (fcStartExtra, fcStartMaxExtra).
func quarterStep(got, gain uint64) bool {
	return startStep(got, gain) <= got/4*5
}

// fcProbeExtra bounds what a probe sends beyond the path's rate, bit/s: a
// quarter of our receiver's socket buffer over the probe's phase. Above
// about 1.3 Gbit/s a probe 25% over the rate sends more extra than a
// receiver at its CPU's limit can hold (its socket buffer is all the
// queue there is), and every cycle would lose it.
const fcProbeExtra = udpSocketBuffer / 4 * 8 * uint64(time.Second/fcCruisePhase)

// probeExtra is what a probe sends beyond the path's rate, bit/s: a
// quarter of it, at most fcProbeExtra, twice that after
// held probes arrived whole (so the rate climbs a few percent a cycle
// where the path takes more: still within the socket buffer's 16 MiB).
func (f *fastControl) probeExtra() uint64 {
	return min(f.est/1000*(fcGains[0]-1000), fcProbeExtra<<f.probeShift)
}

// fcGains are the cruise cycle's rate factors, per mille: a probe, a
// drain, and six phases a little under the path's rate, so that a queue
// the probe left, or an estimate a little high, drains by itself. The
// steady phases are what a long test delivers: at 99% they left 1% of a
// 1 Gbit/s path unused, and a test both ways at 1 Gbit/s landed within a
// percent of the 95% it must reach (the README's shaped-link figures).
var fcGains = [8]uint64{1250, 700, 995, 995, 995, 995, 995, 995}

// phaseRate is the rate phase i of the cruise cycle sends: the path's
// estimated rate at fcGains[i].
func (f *fastControl) phaseRate(i int) uint64 { return f.est / 1000 * fcGains[i] }

// fcQueueFrom is the first phase of the cycle's steady part whose backlog
// is compared with the last one's: the drain's lower rate still shows in
// the one before.
const fcQueueFrom = 3

// fcCreepPM is how much a clean cruise cycle raises the rate, per mille.
const fcCreepPM = 3

// measured takes v as the path's rate, measured as what it delivered
// while a queue built: clean cycles may raise it by 0.5% (creepTo), so
// that the steady phases (99.5%) send no more than that.
func (f *fastControl) measured(v uint64) {
	f.est, f.creepTo = v, v+v/200
}

// raised takes v, more than the rate, from a probe that found room: the
// path's rate is not known (creepTo 0) until the next cut.
func (f *fastControl) raised(v uint64) {
	f.est = v
	if v > f.creepTo {
		f.creepTo = 0
	}
}

// fcCruisePhase is how long one gain of the cycle lasts.
const fcCruisePhase = 100 * time.Millisecond

func newFastControl(floor, rate uint64, rtt func() time.Duration, trace func(string, ...any)) *fastControl {
	return &fastControl{floor: floor, rate: rate, rtt: rtt, trace: trace, lagMin: maxLag, lagMinPrev: maxLag}
}

// starting reports whether the sender is still searching for the path's
// rate.
func (f *fastControl) starting() bool { return f.state == fcStartup }

func (f *fastControl) setRate(now time.Time, r uint64) {
	f.rate = max(r, f.floor)
	f.open = false
	// rtt is the control connection's as the kernel smooths it. Our
	// ends acknowledge its reports at once (promptAcks): a delayed
	// acknowledgement waited for the peer's next report, up to 10 ms,
	// and one end of a test both ways stepped every 40 ms instead of
	// 30. In step with each other, the two start-ups reach the path's
	// rate together and each one's reports wait behind the other's
	// queue: stepBase keeps a step from running on blind meanwhile.
	f.settle = now.Add(f.rtt() + f.gap/2)
}

// report takes one report of bytes that arrived since the previous one and
// the sender's running total of bytes sent, and returns the new rate.
func (f *fastControl) report(now time.Time, gap time.Duration, bytes uint32, sent uint64) uint64 {
	f.gap = gap
	f.rcvd += uint64(bytes)
	lag := f.reportLag(now)
	if f.state == fcCruise && sent >= f.rcvd {
		f.dmin = min(f.dmin, f.backlog(sent, lag))
	}
	if now.Before(f.settle) {
		return f.rate
	}
	if !f.open {
		// This report's bytes span time before the sample: start after it.
		f.open, f.from, f.fromSent, f.bytes, f.fromLag = true, now, sent, 0, lag
		return f.rate
	}
	f.bytes += uint64(bytes)
	f.maxGap = max(f.maxGap, gap)
	f.bunched = f.bunched || gap < udpFastStatus/4
	span := now.Sub(f.from)
	need := max(15*time.Millisecond, gap*3/2)
	if f.state == fcCruise {
		need = max(fcCruisePhase, 4*gap)
	}
	if span < need {
		return f.rate
	}
	gotBytes := f.bytes
	if d := lag - f.fromLag; f.state == fcCruise && (d > udpFastStatus/2 || d < -udpFastStatus/2) {
		// Reports that came later at the end of the sample than at
		// its start leave out what arrived meanwhile (about the
		// path's rate), and earlier ones bring in more. Less than
		// half a report's interval is the receiver's own jitter: a
		// report sent late counts what arrived until it went.
		if d > 0 {
			gotBytes += mulDiv(f.est/8, uint64(d), uint64(time.Second))
		} else {
			gotBytes -= min(gotBytes, mulDiv(f.est/8, uint64(-d), uint64(time.Second)))
		}
	}
	got := mulDiv(gotBytes, 8*uint64(time.Second), uint64(span))
	gspan := span // what got is rated over
	if f.state != fcCruise {
		// The start-up's short samples are rated over the receiver's
		// own span: its reports go on a grid of udpFastStatus (one
		// per slot, none skipped), so the span they cover is the
		// arrival span less how much later the last came than the
		// first. Reports that wait on their way back, behind the other
		// direction's traffic in a test both ways (a queue that grows
		// at every start-up step), would otherwise make the path look
		// full at a fraction of its rate, and reports bunched after
		// such a wait make it look faster than it is.
		gspan = min(max(span-(lag-f.fromLag), span/2), 2*span)
		got = mulDiv(gotBytes, 8*uint64(time.Second), uint64(gspan))
	}
	sentBytes := sent - f.fromSent
	sentRate := mulDiv(sentBytes, 8*uint64(time.Second), uint64(span))
	// Reports held up on the way (a busy receiver, a full queue on the
	// way back, as the other direction's traffic makes in a test both
	// ways) make a sample's got too low, and the next one's, where they
	// arrive together, too high. The cruise allows for reports held up
	// on the way back (reportLag) and needs no more than that.
	late := f.maxGap > 4*udpFastStatus
	dl := lag - f.fromLag
	if f.state != fcCruise {
		// The start-up's samples span two or three reports: one that
		// came a report's interval late, or bunched, may be a receiver
		// that got no CPU for a while (on a small machine running both
		// ends), whose count then fell behind what arrived. Rated on
		// the grid, held-up reports are fine; a starved receiver is
		// not, and the two look alike.
		late = late || f.bunched || f.maxGap > udpFastStatus*5/2 || dl > udpFastStatus || dl < -udpFastStatus
	}
	// A sender that could not keep up with its own rate (a busy CPU)
	// says nothing about the path beyond what it sent.
	appLimited := sentRate*100 < f.rate*85
	if f.trace != nil {
		f.trace("state %d got %d sent %d rate %d est %d span %v lag %v gap %v rtt %v", f.state, got/1e6, sentRate/1e6, f.rate/1e6, f.est/1e6, span, dl, gap, f.rtt())
	}
	// A sample whose reports kept to their grid (no gap, no bunch, the
	// lag within the receiver's own jitter) needs no lag correction:
	// what arrived in it is exact (see cruise).
	steady := !late && !f.bunched && f.maxGap <= udpFastStatus*5/2 && dl <= udpFastStatus/2 && dl >= -udpFastStatus/2
	f.open, f.from, f.fromSent, f.bytes, f.maxGap, f.bunched, f.fromLag = true, now, sent, 0, 0, false, lag
	switch f.state {
	case fcStartup:
		f.stepBase = 0
		// Nothing arrives faster than it was sent: more is a burst of
		// reports that were held up.
		got = min(got, sentRate)
		if !late {
			f.maxBw = max(f.maxBw, got)
		}
		// What was sent is judged at the rate asked at most (and a
		// little more): a pacer that caught up in the sample's short
		// span sent a burst the path may still be queueing.
		ref := min(sentRate, f.rate+f.rate/20)
		// A step goes from what surely arrived: got rated over the
		// arrival span where that is longer than the receiver's (a
		// report sent late by a busy receiver counted what arrived
		// until it went, and rated on the grid that is too fast). The
		// verdicts keep the grid's rating, which held-up reports need.
		stepGot := min(got, mulDiv(gotBytes, 8*uint64(time.Second), uint64(max(span, gspan))))
		whole := got*100 >= ref*90
		full := got*100 < ref*70 && sentRate >= udpStartRate/2
		switch {
		case appLimited && !full:
			// look again at the same rate
		case late && !f.unclear && whole:
			// Reports held up on the way back, and rated on the
			// receiver's grid, show that all of it arrived: look
			// again at the same rate (a stalled receiver's late
			// report may have counted more than its slot).
		case late && !f.unclear:
			// Look again, at the best rate that arrived so far:
			// the rate of this sample may be well above the path's.
			// If that arrives, the path may be full at it: probe
			// above it (near) rather than step (a report held up
			// behind the other direction's start-up in a test both
			// ways, a round trip of 100 ms, would hold each step
			// for that long, and the queue cannot take it twice).
			// What arrived (stepGot) is the better guess when it
			// is less, down to half the best: the best may hold a
			// shaper's burst, and looking again above the path's
			// rate fills its queue a second time.
			again := min(f.maxBw, max(stepGot, f.maxBw/2))
			f.unclear, f.near = true, true
			f.setRate(now, min(f.rate, max(again, udpStartRate)))
		case whole && f.probes > 0 && (got*100 >= ref*95 || quarterStep(stepGot, f.startGain())):
			// The probe above a rate the path seemed to be full at
			// arrived: that was a noisy sample, search on. It is
			// held to more than a step: a probe a quarter above a
			// full path that arrives 90% whole is a path a tenth
			// above what arrived before, and a step from it goes
			// to 1.6 times the path's rate (a 1 Gbit/s path both
			// ways, after a sample that was slow). Where a step is
			// a quarter too (fcStartExtra), a step goes no further
			// than the probe did, and ending the start-up on a
			// noisy sample costs far more: above that rate the
			// cruise climbs by fcProbeExtra a cycle (a loopback
			// test that ended its start-up at 15 of 40 Gbit/s
			// stayed under 17 for 5 s).
			f.unclear, f.near, f.probes, f.stepBase = false, false, 0, stepGot
			f.setRate(now, min(2*f.rate, startStep(stepGot, f.startGain())))
		case whole && f.probes == 1:
			// 90-95% of the probe arrived: a path a little faster
			// than the rate that looked full, or a receiver still
			// busy (a 1 Gbit/s test both ways ended its start-up at
			// 264 Mbit/s on a probe that arrived 94% whole, and the
			// cruise took 0.8 s to find the rest). Probe once more,
			// a quarter above what arrived: a full path shows
			// itself full again (a quarter above its rate for one
			// sample), a noisy moment that passed shows room.
			f.probes, f.stepBase = 2, stepGot
			f.setRate(now, stepGot/4*5)
		case whole && !f.near:
			f.unclear, f.stepBase = false, stepGot
			f.setRate(now, min(2*f.rate, startStep(stepGot, f.startGain())))
		case whole && f.probes == 0:
			// The path took what arrived of the sample before, which
			// may have been a noisy one (a few milliseconds of a busy
			// machine in a sample of 20): probe a quarter above it
			// before taking it as the path's rate.
			f.probes, f.stepBase = 1, stepGot
			f.setRate(now, stepGot/4*5)
		case !full && !f.unclear:
			// Look again at what arrived: a path near its rate
			// should not hold more for another sample.
			f.unclear, f.near = true, true
			f.setRate(now, got)
		default:
			// The path was full over this sample, or took what
			// arrived of a sample that was not clear and no more:
			// what arrived is its rate (a shaper's burst went to the
			// samples before).
			f.state, f.drainStarted, f.fullBw = fcDrain, now, got
			// A renewed search drains no lower than the rate it
			// started from, which the path took.
			f.setRate(now, max(f.maxBw/2, udpStartRate/4, f.phaseRate(2)))
		}
	case fcDrain:
		// While the path's queue drains it delivers at its own rate:
		// the mean of the samples that show it (the best of them
		// would take the one a receiver's late report made the
		// longest). The drain sends half the best rate, and a
		// shaper's burst can make the best a third more than the
		// path's: then a sample at the path's rate shows 1.5 times
		// what is sent, and none passed the 1.5 this once asked for
		// (a 1 Gbit/s cruise began at 95 % of the path). 1.4 takes
		// those and leaves out a sample whose queue ran dry for more
		// than a fifth of it. The last sample that passes is likely to
		// be one whose queue ran dry within it (the next one shows it
		// dry): it counts only when no other passed. In traces of
		// 1 Gbit/s tests that sample read 82-93 % of the path where
		// the ones before it read 99-101 %, and the cruise began at
		// 93-97 % of the path and took seconds to climb.
		if !late && got*5 > sentRate*7 {
			f.drainBytes += f.drainLastBytes
			f.drainSpan += f.drainLastSpan
			f.drainLastBytes, f.drainLastSpan = gotBytes, gspan
		}
		if got*10 <= sentRate*11 || now.Sub(f.drainStarted) > 200*time.Millisecond {
			f.state, f.phase, f.cycStart, f.entry = fcCruise, len(fcGains)-1, now, true
			// What arrived in the sample that ended the start-up may
			// still hold some of a shaper's burst, and the queue may
			// drain before a drain sample ends, so that one may be
			// short of the path's rate: take the drain's, or 95% of
			// the other when it is more; probes find what is left.
			var drainBw uint64
			if f.drainSpan == 0 {
				f.drainBytes, f.drainSpan = f.drainLastBytes, f.drainLastSpan
			}
			if f.drainSpan > 0 {
				drainBw = mulDiv(f.drainBytes, 8*uint64(time.Second), uint64(f.drainSpan))
			}
			f.est, f.creepTo = min(f.maxBw, max(f.fullBw/100*95, drainBw)), 0
			f.peak = f.est
			f.rate = max(f.est, f.floor)
			f.dmin = ^uint64(0)
		}
	case fcCruise:
		f.cruise(now, got, sentRate, gotBytes, sentBytes, sent, late, steady)
	}
	return f.rate
}

// backlog returns the bytes sent and not reported, less what arrived but
// is not reported yet because the reports are late. Our receiver reports
// every udpFastStatus on its own clock, so how much later than that grid a
// report arrives, against the least of the last two cycles, is how long the
// reports waited on their way back (in a test both ways, behind the other
// direction's traffic); what arrived meanwhile is about the path's rate.
// Without that, a queue on the way back would look like one on the way
// there.
func (f *fastControl) backlog(sent uint64, lag time.Duration) uint64 {
	d := sent - f.rcvd
	if extra := lag - min(f.lagMin, f.lagMinPrev); extra > 0 {
		d -= min(d, mulDiv(f.est/8, uint64(extra), uint64(time.Second)))
	}
	return d
}

// reportLag returns how much later than its place on the receiver's grid
// a report arriving at now came, against the first one.
func (f *fastControl) reportLag(now time.Time) time.Duration {
	if f.reps == 0 {
		f.grid0 = now
	}
	lag := now.Sub(f.grid0) - time.Duration(f.reps)*udpFastStatus
	f.reps++
	f.lagMin = min(f.lagMin, lag)
	return lag
}

// baseLoss is the path's usual loss, per mille: the least of the recent
// cycles (none until a cycle showed some).
func (f *fastControl) baseLoss() uint64 {
	if f.lossN == 0 {
		return 0
	}
	base := f.lossHist[0]
	for _, l := range f.lossHist[1:f.lossN] {
		base = min(base, l)
	}
	return base
}

// cruise ends one phase of the cycle; the next sample starts at once.
// The rate moves at three points only: after the probe, by what it found;
// when the backlog grows over the steady phases faster than the path's
// usual loss (the rate is above the path's: a queue builds), checked after
// each phase and over the cycle; and when a cycle lost far more than usual.
func (f *fastControl) cruise(now time.Time, got, sentRate, gotBytes, sentBytes uint64, sent uint64, late, steady bool) {
	// More than was sent, or than the rate, is a burst of reports that
	// were held up, or the queue of a probe draining: not the path's rate.
	got = min(got, max(f.est, sentRate/100*105))
	entry := f.entry
	f.entry = false
	f.phaseD[f.phase], f.phaseSent[f.phase] = f.dmin, sent
	f.dmin = ^uint64(0)
	switch {
	case f.phase == 0:
		f.probeGot, f.probeLate = got, late
	case f.phase == 1:
		if f.judgeProbe(got, late) {
			f.restart(now, f.probeGot)
			return
		}
	case steady && (got*10 < sentRate*9 || entry && got*100 < sentRate*97):
		// A steady phase of which a tenth did not arrive: the rate is
		// well above the path's, and what arrived is the path's rate.
		// The backlog would show it two phases later, and the probe
		// before that, a quarter above a rate already too high,
		// overflows the path's queue. A path that loses a little at
		// random stays far from a tenth; only a sample whose reports
		// kept to their grid (steady) counts, since the correction
		// for reports that came later or earlier is a guess (it once
		// made a 1 Gbit/s path look 7% short in a test both ways).
		// The cruise's first phase, at the estimate the start-up
		// took, is held to more: that estimate may be a tenth above
		// the path's rate (a drain sample that reports bunched after
		// a stall made look faster than the path), and the probe
		// follows at once.
		f.cutTo(max(got, f.floor), f.phase)
	case f.phase > fcQueueFrom:
		// A queue that grows by 2% of what a phase sends, two phases
		// in a row, is plain at once; smaller growth shows over the
		// cycle (endCycle). One phase alone may be the reports
		// waiting behind the other direction's traffic.
		k := f.phase
		if f.grewPM(k-2, k-1) > 20 && f.grewPM(k-1, k) > 20 {
			f.queueGrew(k-2, k, 20)
		}
	}
	f.cycGot += gotBytes
	f.cycSent += sentBytes
	f.phase = (f.phase + 1) % len(fcGains)
	if f.phase == 0 && f.cycSent > 0 {
		f.endCycle(now)
	}
	if f.drainNext {
		// The rate was cut from above the path's: what it queued
		// drains first, in the cycle's drain phase (which has no
		// probe to judge), before the rest of the cycle or a probe
		// a quarter above it adds to the queue.
		f.phase, f.probeLate, f.drainNext = 1, true, false
	}
	f.rate = max(f.phaseRate(f.phase), f.floor)
	if f.phase == 1 {
		// The drain takes out what the probe may have queued, with a
		// tenth more: 72.5% after a probe of 25%, and less below the
		// rate where the probe was held to fcProbeExtra. With the
		// steady phases' half percent, the tenth more keeps a rate
		// up to 0.7% above the path's from building a queue over
		// the cycle (the creep takes it 0.5% above what was
		// measured); with none, a 10 Mbit/s path dropped a few
		// datagrams in one test in three. A fifth more (with the
		// steady phases at 99%) left a 1 Gbit/s path idle for the
		// last 17 ms of every drain.
		f.rate = max(f.est-f.probeExtra()/10*11, f.rate, f.floor)
	}
	if f.phase == 0 {
		// Well under the recent best, probe straight back towards it
		// (four times the rate at most), so a dip costs a cycle or two.
		e := f.probeExtra()
		f.probeRate, f.probeCapped, f.dipProbe = f.est+e, e == fcProbeExtra<<f.probeShift, false
		if f.est < f.peak/10*8 {
			f.probeRate = max(f.probeRate, min(f.peak, 4*f.est, f.est+4*fcProbeExtra))
			f.dipProbe = true
		}
		f.rate = max(f.probeRate, f.floor)
	}
}

// judgeProbe takes what arrived in the drain phase (got) with what arrived
// in the probe before it, and reports whether the probe arrived whole. What
// the probe sent arrives partly in the drain phase, so both count. A
// shaper's token bucket lets its burst through at once after the lull of
// the drain, which makes a probe on a full path look up to 10% bigger than
// the path: less than 10% above the rate shows no room, and up to 20% some,
// of which the rate takes 5%. A probe that arrived whole (20% above the
// rate) shows that the path may take far more (a receiver that was busy
// while the sender started, traffic that left the path): the sender looks
// for its rate again as it did at the start. A rate taken too high shows as
// a growing backlog and comes down at once (queueGrew).
//
// A probe held to fcProbeExtra above the rate is judged by the same
// shares of what it sent beyond the rate (e): 80% of e arrived is whole,
// 40% some room, which takes 20% of e. A whole one is taken as the rate:
// the path's queue may be too short for the start-up's steps.
func (f *fastControl) judgeProbe(got uint64, late bool) (whole bool) {
	g := min(max(f.probeGot, (f.probeGot+got)/2), f.probeRate)
	e := f.probeRate - min(f.probeRate, f.est)
	held := f.probeCapped && !f.dipProbe
	if !held || g < f.est+e/10*8 {
		f.probeShift = 0
	}
	switch {
	case late || f.probeLate || e == 0:
	case f.dipProbe && g*10 >= f.probeRate*9:
		// A probe back towards the recent best arrived: the dip (a
		// receiver busy for a moment) is over.
		f.raised(g)
	case g >= f.est+e/10*8 && held:
		f.raised(g)
		f.probeShift = min(f.probeShift+1, 1)
	case g >= f.est+e/10*8:
		f.probeGot = g
		return true
	case g >= f.est+e/10*4:
		f.raised(f.est + e/5)
	}
	return false
}

// restart goes back to the start-up from got, a rate that arrived whole.
func (f *fastControl) restart(now time.Time, got uint64) {
	if f.trace != nil {
		f.trace("restart from %d", got/1e6)
	}
	f.state, f.maxBw, f.fullBw, f.drainBytes, f.drainSpan = fcStartup, got, 0, 0, 0
	f.drainLastBytes, f.drainLastSpan = 0, 0
	f.unclear, f.near, f.probes, f.haveCycD = false, false, 0, false
	f.cycGot, f.cycSent = 0, 0
	// One probe's step above what arrived first: the start-up's steps
	// follow once that arrives too.
	f.stepBase = got
	f.setRate(now, got/100*125)
}

// queueGrew compares the backlog at the ends of two steady phases (from
// before to): when it grew by more than the path's usual loss plus
// marginPM per mille of what was sent between them, the rate is above the
// path's and a queue builds. The path delivers what was sent less what
// queued: that is its rate, and the steady phases send a little under it.
func (f *fastControl) queueGrew(from, to int, marginPM uint64) {
	grewPM := f.grewPM(from, to)
	base := f.baseLoss()
	if f.trace != nil {
		f.trace("backlog %d..%d: grew %d‰, base %d‰, est %d", from, to, grewPM, base, f.est/1e6)
	}
	if grewPM <= base+marginPM {
		return
	}
	sentRate := f.phaseRate(to)
	f.cutTo(max(mulDiv(sentRate, 1000-min(grewPM-base, 900), 1000), f.floor), to)
}

// cutTo takes v, what the path delivered while the rate was above it, as
// its rate, at the end of phase k. A cut of 5% or more left a queue that
// the next phase drains; a smaller one, the usual trim of a rate a little
// high, leaves one the steady phases at 99.5% drain by themselves.
func (f *fastControl) cutTo(v uint64, k int) {
	f.drainNext = f.drainNext || v < f.est/20*19
	f.measured(v)
	f.cut = true
	// Later phases compare with the backlog at the new rate.
	for i := range f.phaseD {
		if i != k {
			f.phaseD[i] = ^uint64(0)
		}
	}
}

// lower returns whichever of phases a and b ended with the lower backlog.
func (f *fastControl) lower(a, b int) int {
	if f.phaseD[b] < f.phaseD[a] {
		return b
	}
	return a
}

// grewPM is how much the backlog grew from the end of phase from to the
// end of phase to, per mille of what was sent in between (0: it did not,
// or a phase had no report).
func (f *fastControl) grewPM(from, to int) uint64 {
	d0, d := f.phaseD[from], f.phaseD[to]
	sent0, sent := f.phaseSent[from], f.phaseSent[to]
	if d0 == ^uint64(0) || d == ^uint64(0) || d <= d0 || sent <= sent0 {
		return 0
	}
	return (d - d0) * 1000 / (sent - sent0)
}

// endCycle weighs the cycle's backlog: what it grew by since the last
// cycle is what the path lost (the queue drains every cycle), and what it
// grew by over the steady phases beyond that is a queue building.
func (f *fastControl) endCycle(now time.Time) {
	// The lower backlog of two phases: reports that waited behind the
	// other direction's traffic for one phase do not count.
	last := f.lower(len(fcGains)-2, len(fcGains)-1)
	d, sent := f.phaseD[last], f.phaseSent[last]
	var lossPM uint64
	valid := d != ^uint64(0)
	if valid && f.haveCycD && sent > f.cycDSent && d > f.cycD {
		lossPM = min((d-f.cycD)*1000/(sent-f.cycDSent), 1000)
	}
	if valid {
		f.cycD, f.cycDSent, f.haveCycD = d, sent, true
	}
	base := f.baseLoss()
	if f.lossN > 0 {
		base = min(base, lossPM)
	}
	if f.trace != nil {
		f.trace("cycle: loss %d‰ base %d‰ est %d", lossPM, base, f.est/1e6)
	}
	copy(f.lossHist[1:], f.lossHist[:])
	f.lossHist[0] = lossPM
	f.lossN = min(f.lossN+1, len(f.lossHist))
	if lossPM > base+30 {
		// The path no longer takes the rate: start over from what it
		// took in this cycle.
		f.measured(max(mulDiv(f.cycGot, 8*uint64(time.Second), uint64(max(now.Sub(f.cycStart), time.Millisecond))), f.floor))
	} else {
		f.queueGrew(f.lower(fcQueueFrom, fcQueueFrom+1), last, 3)
		if !f.cut && lossPM <= base && valid {
			// A clean cycle: the rate creeps up by fcCreepPM, to 0.5%
			// above what was last measured (measured). A cut leaves it at what
			// the path delivered while a queue built, which may be
			// a little under the path's rate (the loss of a full
			// queue counts in it), and a probe sees only room of a
			// tenth and more: without the creep the steady phases
			// (99.5%) would stay a percent or two under the path for
			// good. With it they reach what the path delivered, and
			// no more: a queue the backlog is too coarse to see
			// would grow until the path drops.
			up := f.est + mulDiv(f.est, fcCreepPM, 1000)
			if f.creepTo > 0 {
				up = min(up, max(f.est, f.creepTo))
			}
			f.est = up
		}
	}
	f.cut = false
	f.cycGot, f.cycSent, f.cycStart = 0, 0, now
	f.lagMinPrev, f.lagMin = f.lagMin, maxLag
	f.peak = max(f.est, f.peak-f.peak/50)
}

// reportGrid keeps our receiver's early reports on their grid: report k
// goes at the first moment after k*udpFastStatus since the grid began,
// exactly one per slot. The sender rates its start-up samples by the slots
// they span (fastControl.reportLag), not by when the reports arrived, so a
// slot must never be skipped. A time.Ticker drops the ticks a late reader
// misses; those slots' reports go at the next tick instead, the first
// with what arrived meanwhile and the others with nothing.
type reportGrid struct {
	base time.Time
	sent int64
}

// fcMaxCatchUp bounds the reports sent at once after a stall; beyond it
// the grid starts over (the sender sees a stall that long as such).
const fcMaxCatchUp = 10

func newReportGrid(base time.Time) reportGrid { return reportGrid{base: base} }

// due returns how many reports are due at now: the slots passed since the
// last one was sent (0 when a late tick's slot already had its report).
func (g *reportGrid) due(now time.Time) int {
	k := int64(now.Sub(g.base) / udpFastStatus)
	d := k - g.sent
	if d > fcMaxCatchUp {
		g.sent = k
		return 1
	}
	if d <= 0 {
		return 0
	}
	g.sent = k
	return int(d)
}
