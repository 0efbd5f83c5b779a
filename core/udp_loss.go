package core

import (
	"math/bits"
)

// lossWindow is how far (in datagrams) a late datagram may trail the newest
// one from its source and still count as received rather than lost.
const lossWindow = 1024

// lossResync is how far behind the newest a sequence number must be to be
// taken as a restarted sender instead of a very late datagram.
const lossResync = 1 << 24

// lossJump is the largest forward jump of sequence numbers taken as
// datagrams lost in a row: a million datagrams, more than a second of
// 10 Gbit/s at 1500 bytes. A larger jump is a sender that restarted (or
// lies): the tracker resynchronises to it instead of counting up to 2^31
// datagrams lost at once.
const lossJump = 1 << 20

// lossTracker counts lost datagrams of one source from their sequence
// numbers. A bitmap remembers which of the last lossWindow numbers arrived;
// a number counts as lost only when it leaves that window unseen, so
// reordered datagrams are not lost and duplicates are not counted twice.
// Nothing is ever subtracted. The zero value is ready to use.
type lossTracker struct {
	hi      uint32 // newest sequence number seen
	started bool
	seen    [lossWindow / 64]uint64 // bit s%lossWindow: s in (hi-lossWindow, hi] arrived
	lost    uint64
	resyncs uint64 // jumps too far to be loss, either way
}

// see records one sequence number and returns how many datagrams it shows
// to be lost now.
func (t *lossTracker) see(seq uint32) uint64 {
	if !t.started {
		// Numbers before the first one seen count as seen: a receiver
		// cannot know where the sender started (0 or 1, docs/protocol.md, §11.3).
		t.started, t.hi = true, seq
		for i := range t.seen {
			t.seen[i] = ^uint64(0)
		}
		return 0
	}
	d := seq - t.hi
	if d == 0 {
		return 0
	}
	if d < 1<<31 {
		if d >= lossJump {
			return t.resync(seq)
		}
		return t.advance(seq, d)
	}
	back := t.hi - seq
	if back >= lossWindow {
		if back >= lossResync {
			return t.resync(seq)
		}
		return 0 // too late: already counted lost, and never subtracted
	}
	t.seen[seq/64%(lossWindow/64)] |= 1 << (seq % 64)
	return 0
}

// resync starts over at seq, keeping the loss counted so far.
func (t *lossTracker) resync(seq uint32) uint64 {
	*t = lossTracker{lost: t.lost, resyncs: t.resyncs + 1}
	return t.see(seq)
}

func (t *lossTracker) advance(seq, d uint32) uint64 {
	var lost uint64
	if d >= lossWindow {
		for i := range t.seen {
			lost += uint64(64 - bits.OnesCount64(t.seen[i]))
			t.seen[i] = 0
		}
		lost += uint64(d - lossWindow)
	} else {
		for s := t.hi + 1; s != seq+1; s++ {
			w, b := s/64%(lossWindow/64), s%64
			if t.seen[w]&(1<<b) == 0 {
				lost++ // s - lossWindow leaves the window unseen
			}
			t.seen[w] &^= 1 << b
		}
	}
	t.seen[seq/64%(lossWindow/64)] |= 1 << (seq % 64)
	t.hi = seq
	t.lost += lost
	return lost
}

// pending counts the datagrams still missing inside the window: lost,
// unless they are very late. At the end of a test they are lost.
func (t *lossTracker) pending() uint64 {
	if !t.started {
		return 0
	}
	var n uint64
	for _, w := range t.seen {
		n += uint64(64 - bits.OnesCount64(w))
	}
	return n
}
