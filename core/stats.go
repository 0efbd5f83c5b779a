package core

import (
	"sync/atomic"
	"time"
)

// IntervalStats is one live report of a running test, as RouterOS prints
// once per interval. Rates are bit/s; "tx" and "rx" are from the point of
// view of the side that reports.
type IntervalStats struct {
	// Elapsed is the time since the test's data phase started; Interval
	// is the length of the interval this report covers.
	Elapsed, Interval time.Duration
	// At is when the interval ended, by this machine's clock: a
	// timestamp for the interval that does not depend on how long the
	// connection and the login took before Elapsed began.
	At time.Time
	// TxBps and RxBps are the rates over this interval.
	TxBps, RxBps float64
	// TxAvg10Bps and RxAvg10Bps average the last 10 seconds.
	TxAvg10Bps, RxAvg10Bps float64
	// TxAvgBps and RxAvgBps average the whole test so far.
	TxAvgBps, RxAvgBps float64
	// TxBytes and RxBytes are totals since the start.
	TxBytes, RxBytes uint64
	// LostPackets counts UDP datagrams lost in this interval (receive
	// side); LostTotal since the start.
	LostPackets, LostTotal uint64
	// StartupLostPackets is the part of LostPackets lost while the peer's
	// sender was still searching for the path's rate (known only when the
	// peer is btest-go, whose datagrams say so): what the start-up cost,
	// not what the path loses. Always 0 when the peer cannot tell.
	StartupLostPackets uint64
	// TxPackets and RxPackets count the UDP datagrams this side sent and
	// received in this interval (0 for TCP): exact counts, not estimates.
	TxPackets, RxPackets uint64
	// LocalCPU and RemoteCPU are CPU loads in percent; RemoteCPU is what
	// the peer's last status message said (-1 when none arrived).
	LocalCPU, RemoteCPU int
}

// Summary is the outcome of a whole test.
type Summary struct {
	// Proto is the transport; Direction is the test's direction from the
	// client's view (Receive, Transmit, Both).
	Proto     Proto
	Direction Direction
	// Connections is the number of TCP connections or UDP streams used.
	Connections int
	// Duration is how long data flowed.
	Duration time.Duration
	// TxBytes and RxBytes are totals; TxBps and RxBps the average rates.
	TxBytes, RxBytes uint64
	TxBps, RxBps     float64
	// LostPackets is the total number of UDP datagrams lost (receive side).
	LostPackets uint64
	// StartupLostPackets is the part of LostPackets lost during the peer's
	// start-up (see IntervalStats); LostPackets minus it is the path's.
	StartupLostPackets uint64
	// TxPackets and RxPackets count the UDP datagrams this side sent and
	// received (0 for TCP).
	TxPackets, RxPackets uint64
	// LocalCPU and RemoteCPU average the CPU loads seen (-1 when unknown).
	LocalCPU, RemoteCPU int
	// Intervals holds the number of interval reports made.
	Intervals int
	// Anomalies counts what the peer sent that was not believed: status
	// reports of more bytes than were sent (clamped), status messages
	// beyond the protocol's rate (dropped), a flooded control connection,
	// UDP sequence jumps too large to be loss (resynchronised).
	Anomalies uint64
}

// paddedCounter is a byte counter on its own cache line, so the counters
// of connections served on different cores do not share one.
type paddedCounter struct {
	atomic.Uint64
	_ [56]byte
}

// rateWindow turns cumulative byte counts into IntervalStats, keeping the
// last ten intervals for the 10-second average.
type rateWindow struct {
	start          time.Time
	last           time.Time
	lastTx, lastRx uint64
	ring           [10]sample
	n, pos         int
	lostTotal      uint64
	cpuSum, cpuN   int
	rcpuSum, rcpuN int
	remoteCPU      int
	intervals      int
}

type sample struct {
	tx, rx uint64
	d      time.Duration
}

func newRateWindow(now time.Time) *rateWindow {
	return &rateWindow{start: now, last: now, remoteCPU: -1}
}

// bps converts bytes over d to bit/s in floating point, so no byte count
// or product can overflow.
func bps(bytes uint64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(bytes) * 8 / d.Seconds()
}

// next closes an interval at now with cumulative totals tx and rx.
func (w *rateWindow) next(now time.Time, tx, rx, lost uint64, localCPU int) IntervalStats {
	d := now.Sub(w.last)
	dtx, drx := tx-w.lastTx, rx-w.lastRx
	w.last, w.lastTx, w.lastRx = now, tx, rx
	w.ring[w.pos] = sample{dtx, drx, d}
	w.pos = (w.pos + 1) % len(w.ring)
	w.n = min(w.n+1, len(w.ring))
	var s10 sample
	for i := range w.n {
		s10.tx += w.ring[i].tx
		s10.rx += w.ring[i].rx
		s10.d += w.ring[i].d
	}
	w.lostTotal += lost
	w.intervals++
	if localCPU >= 0 {
		w.cpuSum += localCPU
		w.cpuN++
	}
	if w.remoteCPU >= 0 {
		w.rcpuSum += w.remoteCPU
		w.rcpuN++
	}
	el := now.Sub(w.start)
	return IntervalStats{
		Elapsed: el, Interval: d, At: now,
		TxBps: bps(dtx, d), RxBps: bps(drx, d),
		TxAvg10Bps: bps(s10.tx, s10.d), RxAvg10Bps: bps(s10.rx, s10.d),
		TxAvgBps: bps(tx, el), RxAvgBps: bps(rx, el),
		TxBytes: tx, RxBytes: rx,
		LostPackets: lost, LostTotal: w.lostTotal,
		LocalCPU: localCPU, RemoteCPU: w.remoteCPU,
	}
}

// summary closes the test at now with the final totals.
func (w *rateWindow) summary(now time.Time, tx, rx uint64) Summary {
	el := now.Sub(w.start)
	s := Summary{
		Duration: el, TxBytes: tx, RxBytes: rx,
		TxBps: bps(tx, el), RxBps: bps(rx, el),
		LostPackets: w.lostTotal, LocalCPU: -1, RemoteCPU: -1,
		Intervals: w.intervals,
	}
	if w.cpuN > 0 {
		s.LocalCPU = w.cpuSum / w.cpuN
	}
	if w.rcpuN > 0 {
		s.RemoteCPU = w.rcpuSum / w.rcpuN
	} else {
		s.RemoteCPU = w.remoteCPU // a report came after the last interval
	}
	return s
}
