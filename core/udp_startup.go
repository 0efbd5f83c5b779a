package core

import (
	"bytes"
	"time"
)

// An unlimited UDP sender must find the path's rate without flooding it.
// It starts at udpStartRate (12 Mbit/s) and lets what arrives set the pace: the rate
// grows to at most 1.8 times the rate the receiver reported, so it never
// sends more than twice what the path carried a moment ago.
//
// How fast that goes depends on the reports. A peer that reports once a
// second (RouterOS, the other implementations) allows one step a second.
// Our own receiver reports every udpFastStatus once it recognises our
// sender by udpMark in the datagrams, and the sender then runs fastControl:
// steps of a few tens of milliseconds, the path's rate in about half a
// second, and a steady state that holds the rate the path delivers. The
// mark lives in the datagrams' filler, which RouterOS ignores, and only our
// receivers answer it, so the wire stays what RouterOS expects.

const (
	// udpStartRate is an unlimited sender's first rate, bit/s.
	udpStartRate = 12_000_000
	// udpFastStatus is how often our receiver reports to our sender.
	udpFastStatus = 10 * time.Millisecond
	// udpFastGap: reports closer than this come from a receiver that
	// reports early, so the sender may steer by them.
	udpFastGap = 100 * time.Millisecond
	// udpStartBurst and udpStartBurstBytes bound the catch-up of an
	// unlimited sender after a late wake-up: 10% of a 100 ms window, so
	// with start-up steps of 1.8 times what arrived no 100 ms window
	// carries twice the path's rate.
	udpStartBurst      = 10 * time.Millisecond
	udpStartBurstBytes = 1 << 20
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
// since they still describe the old rate.
// Report arrival times jitter by several milliseconds on a busy machine,
// so samples span tens of milliseconds and every verdict allows for it.
//
//   - Start-up: while at least 90% of what was sent arrives, the next rate is
//     1.8 times what arrived (twice the rate at most). Between 70% and 90%
//     (or when the reports were held up, or the sender did not reach its
//     rate) it looks once more at the same rate. When less arrives, or twice
//     in a row, the path is full: the best rate that arrived is its rate.
//   - Drain: half that rate, until what was queued in the path during the
//     last start-up step is gone (what arrives no longer exceeds what is
//     sent) or 200 ms passed. What arrives meanwhile is the path's rate.
//   - Cruise: the median of what arrived in the last five samples of
//     100 ms (the median, so that one sample skewed by a late report does
//     not move the rate; nor one where all that was sent arrived, which
//     shows no lack of room), in a cycle of eight samples: one at 1.25 times to
//     look for room, one at 0.75 to drain what that queued, six at 1. A
//     probe of which more arrives than the rate shows room, and the rate
//     takes up to 5% of it, or all of it when the probe arrived whole.
//     After a dip (a receiver that was busy for a moment), the probe goes
//     straight back towards the recent best rate, four times the current rate
//     at most, and the rate returns there in one cycle if it arrives. Loss alone does not steer the rate: a path
//     that loses 1% at random keeps its rate and shows its loss. Only a
//     cycle that loses 3% more than the path's usual loss (a receiver or
//     path that can no longer keep up) sets the rate to what arrived.
type fastControl struct {
	floor uint64
	rtt   func() time.Duration
	trace func(string, ...any) // nil outside tests
	rate  uint64
	state int

	open     bool // a sample is being gathered
	from     time.Time
	fromSent uint64
	bytes    uint64
	settle   time.Time // reports before this still show an older rate
	gap      time.Duration
	maxGap   time.Duration // longest gap between reports in the sample
	unclear  bool          // the last start-up sample was unclear

	est          uint64 // the path's rate, bit/s
	maxBw        uint64 // best rate that arrived in the start-up
	ring         [5]uint64
	ringN, pos   int
	phase        int
	probeGot     uint64
	cycSent      uint64 // bytes sent and arrived over the current cycle
	cycGot       uint64
	cycStart     time.Time
	lossHist     [4]uint64 // per mille, recent cycles
	lossN        int
	drainStarted time.Time
	drainBw      uint64 // best rate that arrived while draining
	peak         uint64 // the rate's recent best, fading 2% per cycle
	probeRate    uint64 // the rate of the current probe
}

const (
	fcStartup = iota
	fcDrain
	fcCruise
)

// fcGains are the cruise cycle's rate factors, in percent.
var fcGains = [8]uint64{125, 75, 100, 100, 100, 100, 100, 100}

// fcCruisePhase is how long one gain of the cycle lasts.
const fcCruisePhase = 100 * time.Millisecond

func newFastControl(floor, rate uint64, rtt func() time.Duration, trace func(string, ...any)) *fastControl {
	return &fastControl{floor: floor, rate: rate, rtt: rtt, trace: trace}
}

// starting reports whether the sender is still searching for the path's
// rate.
func (f *fastControl) starting() bool { return f.state == fcStartup }

func (f *fastControl) setRate(now time.Time, r uint64) {
	f.rate = max(r, f.floor)
	f.open = false
	f.settle = now.Add(f.rtt() + f.gap/2)
}

// report takes one report of bytes that arrived since the previous one and
// the sender's running total of bytes sent, and returns the new rate.
func (f *fastControl) report(now time.Time, gap time.Duration, bytes uint32, sent uint64) uint64 {
	f.gap = gap
	if now.Before(f.settle) {
		return f.rate
	}
	if !f.open {
		// This report's bytes span time before the sample: start after it.
		f.open, f.from, f.fromSent, f.bytes = true, now, sent, 0
		return f.rate
	}
	f.bytes += uint64(bytes)
	f.maxGap = max(f.maxGap, gap)
	span := now.Sub(f.from)
	need := max(40*time.Millisecond, 4*gap)
	if f.state == fcCruise {
		need = max(fcCruisePhase, 4*gap)
	}
	if span < need {
		return f.rate
	}
	got := mulDiv(f.bytes, 8*uint64(time.Second), uint64(span))
	sentBytes := sent - f.fromSent
	sentRate := mulDiv(sentBytes, 8*uint64(time.Second), uint64(span))
	gotBytes := f.bytes
	// Reports held up on the way (a busy receiver, a full queue on the
	// way back) make a sample's got too low, and the next one's too high.
	late := f.maxGap > 4*udpFastStatus
	// A sender that could not keep up with its own rate (a busy CPU)
	// says nothing about the path beyond what it sent.
	appLimited := sentRate*100 < f.rate*85
	if f.trace != nil {
		f.trace("state %d got %d sent %d rate %d est %d span %v gap %v rtt %v", f.state, got/1e6, sentRate/1e6, f.rate/1e6, f.est/1e6, span, gap, f.rtt())
	}
	f.open, f.from, f.fromSent, f.bytes, f.maxGap = true, now, sent, 0, 0
	switch f.state {
	case fcStartup:
		// Nothing arrives faster than it was sent: more is a burst of
		// reports that were held up.
		got = min(got, sentRate)
		if !late {
			f.maxBw = max(f.maxBw, got)
		}
		full := got*100 < sentRate*70 && sentRate >= udpStartRate/2
		switch {
		case appLimited && !full, late && !f.unclear:
			f.unclear = late // look again at the same rate
		case got*100 >= sentRate*90:
			f.unclear = false
			f.setRate(now, min(2*f.rate, got/10*18))
		case !full && !f.unclear:
			f.unclear = true // hold the rate, look again
		default:
			f.state, f.drainStarted = fcDrain, now
			f.setRate(now, max(f.maxBw/2, udpStartRate/4))
		}
	case fcDrain:
		// While the path's queue drains it delivers at its own rate.
		if !late && got > sentRate {
			f.drainBw = max(f.drainBw, got)
		}
		if got*10 <= sentRate*11 || now.Sub(f.drainStarted) > 200*time.Millisecond {
			f.state, f.phase, f.cycStart = fcCruise, len(fcGains)-1, now
			f.est = f.maxBw
			if f.drainBw > 0 {
				f.est = min(f.maxBw, f.drainBw)
			}
			f.peak = f.est
			f.push(f.maxBw)
			f.rate = max(f.est, f.floor)
		}
	case fcCruise:
		f.cruise(now, got, sentRate, gotBytes, sentBytes, appLimited, late)
	}
	return f.rate
}

// push adds a sample of what arrived and returns the median of the recent
// ones.
func (f *fastControl) push(got uint64) uint64 {
	f.ring[f.pos] = got
	f.pos = (f.pos + 1) % len(f.ring)
	f.ringN = min(f.ringN+1, len(f.ring))
	var v [len(f.ring)]uint64
	n := copy(v[:], f.ring[:f.ringN])
	for i := 1; i < n; i++ {
		for j := i; j > 0 && v[j] < v[j-1]; j-- {
			v[j], v[j-1] = v[j-1], v[j]
		}
	}
	return v[(n-1)/2]
}

func (f *fastControl) reset(got uint64) {
	f.ringN, f.pos = 0, 0
	f.est = f.push(got)
}

// cruise ends one phase of the cycle; the next sample starts at once.
func (f *fastControl) cruise(now time.Time, got, sentRate, gotBytes, sentBytes uint64, appLimited, late bool) {
	// More than was sent, or than the rate, is a burst of reports that
	// were held up, or the queue of a probe draining: not the path's rate.
	got = min(got, max(f.est, sentRate/100*105))
	switch {
	case f.phase == 0:
		f.probeGot = got
		if !late {
			f.est = f.push(got)
		}
	case f.phase == 1:
		// What the probe sent arrives partly in this phase: judge both.
		// If more arrived than the rate, the path has room: take up to
		// 5% of it per cycle, so that a probe skewed by late reports
		// cannot throw the rate far off; a probe that arrived whole
		// (20% above the rate) shows plenty of room, and is taken.
		g := min(max(f.probeGot, (f.probeGot+got)/2), f.probeRate)
		switch {
		case late:
		case f.probeRate > f.est/100*125 && g*10 >= f.probeRate*9:
			// A probe back towards the recent best arrived: the dip
			// (a receiver busy for a moment) is over.
			f.reset(g)
		case g*100 >= f.est*120:
			g = min(g, f.est/100*125)
			f.reset(g)
		case g*100 >= f.est*102:
			f.reset(min(g, f.est/100*105))
		}
	case appLimited || late:
		// Only a sample above the rate says something here.
		if got > f.est && !late {
			f.est = f.push(got)
		}
	case got*100 >= sentRate*97:
		// The path took what was sent: less than the rate is only
		// less sent, not less room.
		f.est = f.push(max(got, f.est))
	default:
		f.est = f.push(got)
	}
	f.cycGot += gotBytes
	f.cycSent += sentBytes
	f.phase = (f.phase + 1) % len(fcGains)
	if f.phase == 0 && f.cycSent > 0 {
		var lossPM uint64
		if f.cycSent > f.cycGot {
			lossPM = (f.cycSent - f.cycGot) * 1000 / f.cycSent
		}
		var base uint64 // none until a cycle showed some
		if f.lossN > 0 {
			base = lossPM
			for _, l := range f.lossHist[:f.lossN] {
				base = min(base, l)
			}
		}
		copy(f.lossHist[1:], f.lossHist[:])
		f.lossHist[0] = lossPM
		f.lossN = min(f.lossN+1, len(f.lossHist))
		if lossPM > base+30 {
			// The path no longer takes the rate: start over from
			// what it took in this cycle.
			f.reset(mulDiv(f.cycGot, 8*uint64(time.Second), uint64(max(now.Sub(f.cycStart), time.Millisecond))))
		}
		f.cycGot, f.cycSent, f.cycStart = 0, 0, now
		f.peak = max(f.est, f.peak-f.peak/50)
	}
	f.rate = max(f.est/100*fcGains[f.phase], f.floor)
	if f.phase == 0 {
		// Well under the recent best, probe straight back towards it
		// (four times the rate at most), so a dip costs a cycle or two.
		f.probeRate = f.rate
		if f.est < f.peak/10*8 {
			f.probeRate = max(f.rate, min(f.peak, 4*f.est))
		}
		f.rate = f.probeRate
	}
}
