package core

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/btest-go/btest/core/wire"
)

// A peer sends one 12-byte status message per second per direction (see
// docs/protocol.md, status messages); a receiver above about 17 Gbit/s
// sends a few early ones more. What a peer sends beyond that can cost
// nothing but a constant per byte, and claims nothing.
const (
	// statusHonoured is how many status messages per second are taken in;
	// later ones in the same second are dropped (and counted as an
	// anomaly). Eight covers the early reports of a 100 Gbit/s receiver.
	statusHonoured = 8
	// DefaultMaxStatusRate is how many status messages' worth of bytes
	// per second a control connection that carries nothing else may send
	// before it is closed as a flood: far beyond any real peer, far below
	// what costs anything.
	DefaultMaxStatusRate = 64
	// reportSlackDiv: a report may exceed what we sent by 1/reportSlackDiv
	// of it (plus a few datagrams) before it counts as an anomaly; a peer
	// whose counter runs a moment ahead of ours is no attacker. It is
	// clamped all the same.
	reportSlackDiv = 32
)

// errStatusFlood ends a test whose peer floods its control connection.
var errStatusFlood = fmt.Errorf("%w: the peer sends far more status bytes than the protocol does", ErrProtocol)

// statusGate bounds what a peer's status messages cost and claim: it
// closes a framed control stream that carries far more bytes than status
// messages ever need, honours at most statusHonoured messages a second,
// and clamps reported byte counts to what was actually sent. One goroutine
// (the control reader) calls gate and report; anomalies may be read from
// any goroutine.
type statusGate struct {
	maxBytes  int // per second, on a framed stream; 0: no byte limit
	honoured  int // status messages taken in per second
	winStart  time.Time
	winBytes  int
	winFrames int

	reported  uint64 // clamped running total of reported bytes
	anomalies atomic.Uint64
	warned    atomic.Bool
}

// newStatusGate returns a gate that closes a framed stream sending more
// than maxRate status messages' worth of bytes in a second (0: never).
func newStatusGate(maxRate int) statusGate {
	return statusGate{maxBytes: maxRate * wire.StatusSize, honoured: statusHonoured}
}

// fastStatusHonoured is what a sender that asked our receiver for early
// reports (docs/protocol.md, UDP start-up) takes in per second: one every
// udpFastStatus, twice over, plus the regular ones.
const fastStatusHonoured = 2*int(time.Second/udpFastStatus) + statusHonoured

// allowFast raises the gate for a sender whose datagrams ask our receiver
// for early reports: it honours fastStatusHonoured messages a second, and a
// framed stream may carry twice their bytes before it counts as a flood.
func (g *statusGate) allowFast() {
	g.honoured = fastStatusHonoured
	if g.maxBytes > 0 {
		g.maxBytes = max(g.maxBytes, 2*fastStatusHonoured*wire.StatusSize)
	}
}

// bytes accounts for n bytes read from a framed control stream at now and
// returns errStatusFlood once a second's worth exceeds the limit.
func (g *statusGate) bytes(now time.Time, n int) error {
	g.roll(now)
	g.winBytes += n
	if g.maxBytes > 0 && g.winBytes > g.maxBytes {
		return errStatusFlood
	}
	return nil
}

// honour reports whether a status message arriving at now is taken in.
func (g *statusGate) honour(now time.Time) bool {
	g.roll(now)
	g.winFrames++
	if g.winFrames > g.honoured {
		g.anomalies.Add(1)
		return false
	}
	return true
}

func (g *statusGate) roll(now time.Time) {
	if now.Sub(g.winStart) >= time.Second || now.Before(g.winStart) {
		g.winStart, g.winBytes, g.winFrames = now, 0, 0
	}
}

// report clamps a reported byte count so the running total of reports
// never exceeds sent, our own running total of bytes sent; it returns the
// count believed. A report that overshoots by more than a little is an
// anomaly.
func (g *statusGate) report(bytes, sent, slack uint64) uint64 {
	room := uint64(0)
	if sent > g.reported {
		room = sent - g.reported
	}
	if bytes > room {
		if bytes-room > room/reportSlackDiv+slack {
			g.anomalies.Add(1)
		}
		bytes = room
	}
	g.reported += bytes
	return bytes
}

// warnOnce reports whether this is the first call that sees anomalies, so
// a session logs them once.
func (g *statusGate) warnOnce() bool {
	return g.anomalies.Load() > 0 && g.warned.CompareAndSwap(false, true)
}
