package core

import (
	"math/bits"
	"net"
	"time"
)

// A fast TCP receiver that wakes on every arriving segment spends more on
// wake-ups (epoll, the Go scheduler, the socket lock it then contends for
// with its own writer in a `both` test) than on taking the data: on
// loopback a segment is up to 64 KiB, so 10 Gbit/s is about 20,000 wake-ups
// a second. A receive low-water mark (SO_RCVLOWAT) makes the kernel wake
// the reader only once that much is queued. It follows the measured rate
// so a slow or stalling test is not held back: the mark is what arrives in
// lowatSpan at the last interval's rate, and it drops at the next interval
// when the rate does (the kernel then wakes the reader at once).
const (
	lowatSpan = 8 * time.Millisecond // how long one wake-up may wait for data at the measured rate
	lowatMax  = 4 << 20              // four large reads per wake-up
	lowatMin  = 64 << 10             // below one loopback segment the default costs little
)

// lowatFor returns the receive low-water mark for a connection receiving
// bytesPerSec with a receive buffer of rcvbuf bytes, or 0 for the kernel's
// default (wake on any data). It is a power of two, so small changes in
// the rate do not cost a system call, and at most a quarter of the buffer:
// the kernel grows the buffer (and clamps the window) for a mark near it.
func lowatFor(bytesPerSec float64, rcvbuf int) int {
	want := bytesPerSec * lowatSpan.Seconds()
	want = min(want, float64(lowatMax), float64(rcvbuf/4))
	if want < lowatMin {
		return 0
	}
	return 1 << (bits.Len(uint(want)) - 1)
}

// rxLowat keeps the low-water marks of a test's data connections on their
// receive rates; the test's report loop calls update once per interval.
type rxLowat struct {
	conns []*lowatConn // nil where the system has no mark to set
	last  []uint64
	at    time.Time
}

// newRxLowat prepares conns for update, starting at the kernel's default.
func newRxLowat(conns []net.Conn, now time.Time) *rxLowat {
	l := &rxLowat{conns: make([]*lowatConn, len(conns)), last: make([]uint64, len(conns)), at: now}
	for i, c := range conns {
		l.conns[i] = newLowatConn(c)
	}
	return l
}

// update sets each connection's mark from what its counter rx[i] gained
// since the last call.
func (l *rxLowat) update(now time.Time, rx []paddedCounter) {
	secs := now.Sub(l.at).Seconds()
	if secs <= 0 {
		return
	}
	l.at = now
	for i, lc := range l.conns {
		n := rx[i].Load()
		if lc != nil {
			lc.follow(float64(n-l.last[i]) / secs)
		}
		l.last[i] = n
	}
}
