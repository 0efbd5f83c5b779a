package core

import (
	"bytes"
	"time"
)

// An unlimited UDP sender must find the path's rate without flooding it.
// It starts at udpStartRate and lets what arrives set the pace: the rate
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
	udpStartRate = 16_000_000
	// udpFastStatus is how often our receiver reports to our sender.
	udpFastStatus = 10 * time.Millisecond
	// udpFastGap: reports closer than this come from a receiver that
	// reports early, so the sender may steer by them.
	udpFastGap = 100 * time.Millisecond
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
// same span. After a rate change the reports of one round trip and one
// report interval are skipped, since they still describe the old rate.
//
//   - Start-up: while at least 85% of what was sent arrives, the next rate is
//     1.8 times what arrived. When less arrives the path is full: the best
//     rate that arrived is its rate.
//   - Drain: half that rate, until what was queued in the path during the
//     last start-up step is gone (what arrives no longer exceeds what is
//     sent) or 200 ms passed.
//   - Cruise: the best rate that arrived in the last ten samples, in a cycle
//     of eight samples of 100 ms: one at 1.25 times to find more room, one
//     at 0.75 to drain what that queued, six at 1. The probe only queues
//     a little in the path, so a path that has room shows it and one that
//     does not loses nothing. Loss alone does not steer the rate: a path that
//     loses 1% of the datagrams at random keeps its rate and shows its loss.
//     Only a cycle that loses 3% more than the path's usual loss (a receiver
//     that can no longer keep up) resets the best rate to what arrived.
type fastControl struct {
	floor uint64
	rtt   func() time.Duration
	rate  uint64
	state int

	open     bool // a sample is being gathered
	from     time.Time
	fromSent uint64
	bytes    uint64
	settle   time.Time // reports before this still show an older rate
	gap      time.Duration

	maxBw        uint64 // best rate that arrived recently, bit/s
	bw           [10]uint64
	bwN, bwPos   int
	phase        int
	cycSent      uint64 // bytes sent and arrived over the current cycle
	cycGot       uint64
	cycStart     time.Time
	lossBase     uint64 // per mille, least loss of recent cycles
	lossN        int
	lossHist     [4]uint64
	drainStarted time.Time
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

func newFastControl(floor, rate uint64, rtt func() time.Duration) *fastControl {
	return &fastControl{floor: floor, rate: rate, rtt: rtt}
}

// starting reports whether the sender is still searching for the path's
// rate.
func (f *fastControl) starting() bool { return f.state == fcStartup }

func (f *fastControl) setRate(now time.Time, r uint64) {
	f.rate = max(r, f.floor)
	f.open = false
	f.settle = now.Add(f.rtt() + f.gap + f.gap/2)
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
	span := now.Sub(f.from)
	need := max(20*time.Millisecond, 2*gap)
	if f.state == fcCruise {
		need = max(fcCruisePhase, 2*gap)
	}
	if span < need {
		return f.rate
	}
	got := mulDiv(f.bytes, 8*uint64(time.Second), uint64(span))
	sentBytes := sent - f.fromSent
	sentRate := mulDiv(sentBytes, 8*uint64(time.Second), uint64(span))
	gotBytes := f.bytes
	f.open, f.from, f.fromSent, f.bytes = true, now, sent, 0
	switch f.state {
	case fcStartup:
		f.maxBw = max(f.maxBw, got)
		if got*100 >= sentRate*85 {
			f.setRate(now, got/5*9)
			break
		}
		f.state, f.drainStarted = fcDrain, now
		f.setRate(now, f.maxBw/2)
	case fcDrain:
		f.maxBw = max(f.maxBw, got)
		if got*10 <= sentRate*11 || now.Sub(f.drainStarted) > 200*time.Millisecond {
			f.state, f.phase, f.cycStart = fcCruise, len(fcGains)-1, now
			f.pushBw(f.maxBw)
			f.rate = max(f.maxBw, f.floor)
		}
	case fcCruise:
		f.cruise(now, got, gotBytes, sentBytes)
	}
	return f.rate
}

func (f *fastControl) pushBw(got uint64) {
	f.bw[f.bwPos] = got
	f.bwPos = (f.bwPos + 1) % len(f.bw)
	f.bwN = min(f.bwN+1, len(f.bw))
	f.maxBw = 0
	for _, b := range f.bw[:f.bwN] {
		f.maxBw = max(f.maxBw, b)
	}
}

// cruise ends one phase of the cycle; the next sample starts at once.
func (f *fastControl) cruise(now time.Time, got, gotBytes, sentBytes uint64) {
	f.pushBw(got)
	f.cycGot += gotBytes
	f.cycSent += sentBytes
	f.phase = (f.phase + 1) % len(fcGains)
	if f.phase == 0 && f.cycSent > 0 {
		var lossPM uint64
		if f.cycSent > f.cycGot {
			lossPM = (f.cycSent - f.cycGot) * 1000 / f.cycSent
		}
		base := lossPM
		for _, l := range f.lossHist[:f.lossN] {
			base = min(base, l)
		}
		copy(f.lossHist[1:], f.lossHist[:])
		f.lossHist[0] = lossPM
		f.lossN = min(f.lossN+1, len(f.lossHist))
		if lossPM > base+30 {
			// The receiver no longer takes the best rate: start over
			// from what it took in this cycle.
			f.bwN, f.bwPos = 0, 0
			f.pushBw(mulDiv(f.cycGot, 8*uint64(time.Second), uint64(max(now.Sub(f.cycStart), time.Millisecond))))
		}
		f.cycGot, f.cycSent, f.cycStart = 0, 0, now
	}
	f.rate = max(f.maxBw/100*fcGains[f.phase], f.floor)
}
