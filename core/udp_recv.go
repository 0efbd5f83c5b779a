package core

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"time"

	"github.com/btest-go/btest/core/udpio"
)

// udpRx is one receiving socket's loop. It takes datagrams from the peer's
// IP address only (any port: RouterOS sends from unexpected ones and
// multi-stream clients from several) and keeps loss per source address.
type udpRx struct {
	rd   *udpio.Reader
	sock *udpio.Conn
	peer netip.Addr
	hdr  uint64

	bytes paddedCounter
	pkts  paddedCounter
	lost  paddedCounter // datagrams known lost so far
	early *udpEarly

	sources map[netip.AddrPort]*lossTracker
	lastSrc netip.AddrPort
	lastT   *lossTracker

	heard    chan struct{} // closed on the first datagram from the peer
	didHear  bool
	draining atomic.Bool
	drainEnd time.Time
	drainGap time.Duration
	// sample is the start of the first datagram and sampleLen its
	// length, for tests.
	sample    []byte
	sampleLen int
	coalesced uint64 // messages that held several datagrams (GRO)
	// marked: the peer's datagrams carry udpMark (our sender: it takes
	// early reports); senderStarting is the mark's start-up flag as last
	// seen, and startLost counts the datagrams lost while it was set.
	marked         bool
	senderStarting bool
	startLost      atomic.Uint64
}

func newUDPRx(rd *udpio.Reader, sock *udpio.Conn, peer netip.Addr) *udpRx {
	return &udpRx{
		rd: rd, sock: sock, peer: peer.Unmap().WithZone(""),
		hdr:     uint64(udpHeaderSize(peer)),
		sources: make(map[netip.AddrPort]*lossTracker),
		heard:   make(chan struct{}),
	}
}

// run receives until the socket is closed, or until it goes quiet while
// draining at the end of the test.
func (u *udpRx) run() error {
	for {
		n, err := u.rd.Read()
		if err != nil {
			if u.draining.Load() && errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("udp receive: %w", err)
		}
		u.process(n)
		if u.draining.Load() {
			// Keep reading while datagrams still come, up to a bound.
			d := time.Now().Add(u.drainGap)
			if d.After(u.drainEnd) {
				d = u.drainEnd
			}
			u.sock.SetReadDeadline(d)
		}
	}
}

// drain switches to reading only what is still arriving, for at most max.
func (u *udpRx) drain(gap, max time.Duration) {
	now := time.Now()
	u.drainGap, u.drainEnd = gap, now.Add(max)
	u.draining.Store(true)
	u.sock.SetReadDeadline(now.Add(gap))
}

// process accounts for the n messages of the last read.
func (u *udpRx) process(n int) {
	var bytes, pkts, lost uint64
	starting := u.senderStarting
	for i := range n {
		data, length, seg, src := u.rd.Message(i)
		if src.Addr() != u.peer {
			continue // a stranger
		}
		if !u.didHear {
			u.didHear = true
			close(u.heard)
		}
		if ours, st := readMark(data); ours {
			u.mark(st)
		}
		t := u.tracker(src)
		if seg <= 0 || seg >= len(data) {
			if len(data) < udpio.SeqSize {
				continue // NAT probe or junk: no sequence number
			}
			bytes += uint64(length) + u.hdr
			pkts++
			if t != nil {
				lost += t.see(binary.BigEndian.Uint32(data))
			}
			u.keepSample(data, length)
			continue
		}
		u.coalesced++
		for off := 0; off < len(data); off += seg {
			d := data[off:min(off+seg, len(data))]
			if len(d) < udpio.SeqSize {
				continue
			}
			bytes += uint64(len(d)) + u.hdr
			pkts++
			if t != nil {
				lost += t.see(binary.BigEndian.Uint32(d))
			}
		}
		u.keepSample(data, seg)
	}
	if pkts > 0 {
		u.bytes.Add(bytes)
		u.pkts.Add(pkts)
		if e := u.early; e != nil && e.since.Add(bytes) >= udpEarlyStatus {
			select {
			case e.kick <- struct{}{}:
			default:
			}
		}
	}
	if lost > 0 {
		u.lost.Add(lost)
		if starting {
			u.startLost.Add(lost)
		}
	}
}

// mark takes the mark of a datagram from our sender.
func (u *udpRx) mark(starting bool) {
	if !u.marked {
		u.marked = true
		if e := u.early; e != nil {
			e.oursOnce.Do(func() { close(e.ours) })
		}
	}
	if starting != u.senderStarting {
		if e := u.early; e != nil {
			e.peerStarting.Store(starting)
		}
	}
	if u.senderStarting && !starting {
		// The start-up is over; what it sent and is still missing
		// inside the loss window was lost in it.
		var n uint64
		for _, t := range u.sources {
			n += t.pending()
		}
		u.startLost.Add(n)
	}
	u.senderStarting = starting
}

func (u *udpRx) keepSample(d []byte, length int) {
	if u.sample == nil {
		u.sample = append(make([]byte, 0, 64), d[:min(len(d), 64)]...)
		u.sampleLen = length
	}
}

func (u *udpRx) tracker(src netip.AddrPort) *lossTracker {
	if u.lastT != nil && src == u.lastSrc {
		return u.lastT
	}
	t := u.sources[src]
	if t == nil {
		if len(u.sources) >= udpMaxSources {
			return nil
		}
		t = new(lossTracker)
		u.sources[src] = t
	}
	u.lastSrc, u.lastT = src, t
	return t
}

// resyncs counts the sequence jumps that made a source's tracker start
// over. Call it after run returned.
func (u *udpRx) resyncs() uint64 {
	var n uint64
	for _, t := range u.sources {
		n += t.resyncs
	}
	return n
}

// totalLost is the final loss count, the datagrams still missing inside
// each source's window included. Call it after run returned.
func (u *udpRx) totalLost() uint64 {
	n := u.lost.Load()
	for _, t := range u.sources {
		n += t.pending()
	}
	return n
}
