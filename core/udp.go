package core

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/bits"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/btest-go/btest/core/pacing"
	"github.com/btest-go/btest/core/udpio"
	"github.com/btest-go/btest/core/wire"
)

// The UDP engine (docs/protocol.md, §11 and §12), shared by the server and the client:
// senders stamp sequence numbers into pre-filled GSO buffers and pace them
// with one lock-free pacer per test; receivers count bytes and loss per
// source address from batched (and GRO-coalesced) reads; the TCP control
// connection carries a status message each way every second, and each
// report the peer sends steers the sender's rate.

const (
	// maxUDPTxSize is the largest tx_size RouterOS accepts; larger values
	// in a command are cut to it.
	maxUDPTxSize = 64000
	// udpSocketBuffer is the default SO_RCVBUF/SO_SNDBUF of data sockets:
	// at 20 Gbit/s the kernel's 208 KiB default lasts 80 µs, so a receiver
	// that is not scheduled for a moment would drop datagrams.
	udpSocketBuffer = 16 << 20
	// udpBatchBytes is about how much one sender hands the kernel per
	// system call when unpaced: 8 GSO buffers of 64 KiB.
	udpBatchBytes = 512 << 10
	// udpTick is the pacing granularity: a paced sender sends about this
	// much time's worth of datagrams per wake-up.
	udpTick = time.Millisecond
	// udpBurst bounds catch-up after a late wake-up, in time at the
	// current rate. Longer would let a fast sender overrun the receiver's
	// socket buffer after a stall.
	udpBurst = 2 * time.Millisecond
	// udpLimitBurst is the catch-up allowed under an explicit limit, where
	// the asked rate is the point: at most half the receiver's socket
	// buffer's worth (a 2 ms allowance lost 10-15 % of 1 Gbit/s to late
	// wake-ups on a loaded machine).
	udpLimitBurst = 50 * time.Millisecond
	// udpStartDelay is how long a server waits for the client's first
	// datagram (its NAT probe) before sending anyway: sending before the
	// client has bound its port only draws ICMP errors.
	udpStartDelay = 100 * time.Millisecond
	// udpServerDrain and udpClientDrain bound how long a receiver keeps
	// reading datagrams already on their way when the test ends; the
	// client waits longer because the server stops only when it sees the
	// control connection close.
	udpServerDrain = 30 * time.Millisecond
	udpClientDrain = 60 * time.Millisecond
	udpDrainMax    = 500 * time.Millisecond
	// udpMaxSources caps the per-source loss trackers of one receiver; a
	// client that sends from more ports still has its bytes counted.
	udpMaxSources = 1024
	// udpEarlyStatus: once this much arrived since the last status, the
	// next one goes at once instead of at the end of the second. The
	// status byte count is 32 bits, full at 34 Gbit/s; a sender that only
	// ever sees full counts cannot tell how much of its traffic is lost.
	// Early reports only happen above 17 Gbit/s, out of reach of the
	// other implementations' senders, and a sender that measures the gap
	// between reports (as ours does) reads them right.
	udpEarlyStatus = 1 << 31
)

// udpEarly lets the receivers ask for an early status message, and tell
// that the peer's sender takes early reports (ours is closed).
type udpEarly struct {
	since    atomic.Uint64 // bytes received since the last status
	kick     chan struct{}
	ours     chan struct{}
	oursOnce sync.Once
}

// udpHeaderSize is the IP plus UDP header that btest counts into every
// datagram (docs/protocol.md, §11.3 and §11.5).
func udpHeaderSize(a netip.Addr) int {
	if a.Unmap().Is4() {
		return 28
	}
	return 48
}

// udpPayloadSize turns a tx_size (the whole IP packet) into the UDP payload:
// at least the 4-byte sequence number, at most what tx_size 64000 gives.
func udpPayloadSize(txSize, hdr int) int {
	return max(min(txSize, maxUDPTxSize)-hdr, udpio.SeqSize)
}

// mulDiv returns a*b/c without overflow, saturating at the largest uint64.
func mulDiv(a, b, c uint64) uint64 {
	if c == 0 {
		return ^uint64(0)
	}
	hi, lo := bits.Mul64(a, b)
	if hi >= c {
		return ^uint64(0)
	}
	q, _ := bits.Div64(hi, lo, c)
	return q
}

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

// rateControl adapts a UDP sender to its peer's status reports
// (docs/protocol.md, §12.3). The ceiling is the protocol's rule,
//
//	min(limit, max(floor, 1.5 * 8 * reported bytes per second)),
//
// and under an explicit limit that is all: the user asked for the rate,
// and loss shows in the result, as with RouterOS. Without a limit the rate
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
		c.fast = newFastControl(c.floor, c.rate, c.rtt)
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
	gap = min(max(gap, 100*time.Millisecond), 4*time.Second)
	got := mulDiv(b, 8*uint64(time.Second), uint64(gap))
	ceiling := max(c.floor, got/2*3)
	if c.limit > 0 {
		// The user asked for this rate: send it, as RouterOS does, and
		// let the loss show in the result.
		c.rate = min(ceiling, c.limit)
		return c.rate
	}
	var lossPM uint64
	if delta > b && delta-b >= c.minDeficit {
		lossPM = (delta - b) * 1000 / delta
	}
	// The path's usual loss is the least seen recently (none until a
	// report shows otherwise); the peak is the most that arrived.
	base, peak := lossPM, got
	if c.nHist == 0 {
		base = 0
	}
	for i := range c.nHist {
		base = min(base, c.lossHist[i])
		peak = max(peak, c.gotHist[i])
	}
	congested := lossPM > base+5
	if congested && c.catching {
		// The rate that arrived before is not coming back.
		c.nHist, peak = 0, got
	}
	copy(c.lossHist[1:], c.lossHist[:])
	copy(c.gotHist[1:], c.gotHist[:])
	c.lossHist[0], c.gotHist[0] = lossPM, got
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

// setupSender makes the engine's pacer and rate control for a sender with
// the given limit (0: none, then it starts at udpStartRate).
func (e *udpEngine) setupSender(limit uint64, wireSize int) {
	e.pacer = udpPacer(limit, wireSize)
	ctrl := e.ctrl
	e.rc = newRateControl(e.pacer.Rate(), wireSize, e.start, func() time.Duration { return tcpRTT(ctrl) })
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
	n := u.snd.Max()
	if r := u.pacer.Rate(); r > 0 {
		perTick := r / 8 / uint64(u.wire) / uint64(time.Second/udpTick)
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

// reportMark is the running total of reported bytes at a report's arrival.
type reportMark struct {
	at    time.Time
	total uint64
}

// udpEngine is one side of a running UDP test: its data sockets, senders
// and receivers, and the status exchange on the control connection.
type udpEngine struct {
	server   bool
	ctrl     net.Conn
	socks    []*udpio.Conn
	tx       []*udpTx
	rx       []*udpRx
	pacer    *pacing.Pacer
	rc       *rateControl // nil when this side does not send
	starting atomic.Bool  // the sender is in its start-up (rc.starting)
	start    time.Time
	idle     time.Duration // no status for so long ends the test
	drain    time.Duration
	waitPeer bool // hold sending until the peer is heard from
	// endCause turns a control connection error into the test's end.
	endCause func(error) error
	features udpio.Features

	reported atomic.Uint64 // bytes the peer said it received, in total
	// shown holds recent (arrival, running total) pairs of reports, so an
	// interval can show the reports that arrived half an interval before
	// its end: both sides tick in step, and without the lag a report
	// arriving a little early or late would land in the wrong interval,
	// showing 0 and then twice the rate.
	shownMu   sync.Mutex
	shown     []reportMark // at most maxShownMarks
	keepShown bool         // someone reads shown (interval reports)
	remoteCPU atomic.Int32
	lastHeard atomic.Int64       // time since start of the peer's last status
	heard     atomic.Uint64      // status messages taken in, for the progress timeout
	scanner   wire.StatusScanner // Framed: status messages are all the control connection carries
	onStatus  func(wire.Status)  // bound once
	ctrlBytes paddedCounter
	// gate bounds the control connection's status messages and clamps
	// what they report; maxStatusRate configures it (0: the default).
	gate          statusGate
	maxStatusRate int
	// log, when set, is told once about a peer's anomalies.
	log *slog.Logger
}

// maxShownMarks bounds the report marks kept between two interval reports:
// a few seconds of honoured status messages. When full, the newest mark
// replaces the last one (the latest total is what counts).
const maxShownMarks = 4 * statusHonoured

// reportSlack is how far (bytes) a report may run ahead of what we sent
// before it counts as an anomaly; it is clamped regardless.
const reportSlack = 64 << 10

// sumCounter adds up one counter of every sender or receiver; the engine
// reads its totals this way once per status or interval, never per datagram.
func sumCounter[T any](xs []T, counter func(T) *atomic.Uint64) uint64 {
	var n uint64
	for _, x := range xs {
		n += counter(x).Load()
	}
	return n
}

func (e *udpEngine) txBytes() uint64 {
	return sumCounter(e.tx, func(t *udpTx) *atomic.Uint64 { return &t.bytes.Uint64 })
}

func (e *udpEngine) rxBytes() uint64 {
	return sumCounter(e.rx, func(r *udpRx) *atomic.Uint64 { return &r.bytes.Uint64 })
}

// rxStartLost counts the datagrams lost while our peer's sender was still
// in its start-up (see udpMark).
func (e *udpEngine) rxStartLost() uint64 {
	return sumCounter(e.rx, func(r *udpRx) *atomic.Uint64 { return &r.startLost })
}

func (e *udpEngine) txPackets() uint64 {
	return sumCounter(e.tx, func(t *udpTx) *atomic.Uint64 { return &t.pkts.Uint64 })
}

func (e *udpEngine) rxPackets() uint64 {
	return sumCounter(e.rx, func(r *udpRx) *atomic.Uint64 { return &r.pkts.Uint64 })
}

func (e *udpEngine) rxLost() uint64 {
	return sumCounter(e.rx, func(r *udpRx) *atomic.Uint64 { return &r.lost.Uint64 })
}

// reportedBefore returns the running total of reported bytes as of t.
func (e *udpEngine) reportedBefore(t time.Time) uint64 {
	e.shownMu.Lock()
	defer e.shownMu.Unlock()
	var total uint64
	i := 0
	for ; i < len(e.shown) && !e.shown[i].at.After(t); i++ {
		total = e.shown[i].total
	}
	if i > 0 {
		// Keep the last mark at or before t: it is the base next time.
		e.shown = append(e.shown[:0], e.shown[i-1:]...)
	}
	return total
}

// status handles a status message from the peer: it is proof of life, the
// peer's CPU, the far end of our tx rate, and the input of rate control.
//
// Only statusHonoured messages a second are taken in, and the bytes one
// reports are clamped so the peer can never claim more than we sent.
func (e *udpEngine) status(st wire.Status) {
	now := time.Now()
	if !e.gate.honour(now) {
		e.warnAnomaly("status messages beyond the protocol's rate dropped")
		return
	}
	e.lastHeard.Store(int64(now.Sub(e.start)))
	e.heard.Add(1)
	e.remoteCPU.Store(int32(st.CPU))
	sent := e.txBytes()
	bytes := e.gate.report(uint64(st.Bytes), sent, reportSlack)
	if bytes != uint64(st.Bytes) {
		e.warnAnomaly("status message reported more bytes than were sent; clamped",
			"reported", st.Bytes, "believed", bytes)
	}
	total := e.reported.Add(bytes)
	if e.keepShown {
		e.shownMu.Lock()
		if len(e.shown) < maxShownMarks {
			e.shown = append(e.shown, reportMark{now, total})
		} else {
			e.shown[len(e.shown)-1] = reportMark{now, total}
		}
		e.shownMu.Unlock()
	}
	if e.rc != nil {
		e.pacer.SetRate(e.rc.report(now, uint32(bytes), sent))
		e.starting.Store(e.rc.starting())
	}
}

// warnAnomaly logs the first anomaly of a test; later ones are only
// counted.
func (e *udpEngine) warnAnomaly(msg string, args ...any) {
	if e.log != nil && e.gate.warnOnce() {
		e.log.Warn("btest peer anomaly: "+msg, args...)
	}
}

// scanControl reads one chunk of the control connection: a flood ends the
// test, the rest goes to the status scanner.
func (e *udpEngine) scanControl(b []byte) error {
	if err := e.gate.bytes(time.Now(), len(b)); err != nil {
		e.gate.anomalies.Add(1)
		return err
	}
	e.scanner.Scan(b, e.onStatus)
	return nil
}

// run moves data until ctx ends, then stops the senders at once, lets the
// receivers take what is still arriving, and sums up. interval paces
// onInterval (nil: no reports); status messages go every second.
func (e *udpEngine) run(ctx context.Context, cancel context.CancelCauseFunc, interval time.Duration, onInterval func(IntervalStats)) (Summary, error) {
	e.remoteCPU.Store(-1)
	if h := udpHooks.Load(); h != nil && h.started != nil {
		h.started(e)
	}
	e.scanner.Framed = true
	e.onStatus = e.status
	e.gate = newStatusGate(cmp.Or(e.maxStatusRate, DefaultMaxStatusRate))
	if e.rc != nil && e.rc.limit == 0 && len(e.tx) > 0 {
		// Our unlimited sender marks its datagrams, and our receiver
		// answers with a report every udpFastStatus: honour that many
		// (still a constant cost per message, and a bound).
		e.gate.allowFast()
	}
	e.keepShown = onInterval != nil
	var ctrlWG, rxWG, txWG sync.WaitGroup
	ctrlWG.Go(func() { cancel(e.endCause(readLoop(e.ctrl, &e.ctrlBytes, e.scanControl, ctrlReadBuf))) })
	early := &udpEarly{kick: make(chan struct{}, 1), ours: make(chan struct{})}
	for _, r := range e.rx {
		r.early = early
		rxWG.Go(func() {
			if err := r.run(); err != nil {
				cancel(err)
			}
		})
	}
	if len(e.tx) > 0 {
		txWG.Go(func() {
			if e.waitPeer {
				t := time.NewTimer(udpStartDelay)
				select {
				case <-e.rx[0].heard:
				case <-t.C:
				case <-ctx.Done():
				}
				t.Stop()
			}
			for _, t := range e.tx {
				txWG.Go(func() {
					if err := t.run(ctx); err != nil {
						cancel(err)
					}
				})
			}
		})
	}

	win := newRateWindow(e.start)
	statusTick := time.NewTicker(time.Second)
	defer statusTick.Stop()
	var intervalC <-chan time.Time
	if onInterval != nil {
		it := time.NewTicker(interval)
		defer it.Stop()
		intervalC = it.C
	}
	// Once the peer's datagrams show our mark, status goes every
	// udpFastStatus: only our sender reads reports that come early.
	oursC := early.ours
	var fastC <-chan time.Time
	var seq uint32
	var lastRx, lastLost, lastStartLost, lastTxPkts, lastRxPkts uint64
	sendStatus := func(now time.Time) error {
		rx := e.rxBytes()
		early.since.Store(0)
		seq++
		b := wire.Status{CPU: uint8(localCPU()), Seq: seq, Bytes: wire.SaturateBytes(rx - lastRx)}.Marshal()
		lastRx = rx
		e.ctrl.SetWriteDeadline(now.Add(statusWriteTimeout))
		_, err := e.ctrl.Write(b[:])
		return err
	}
	watch := newProgress(e.start, e.idle, "no status message from the peer")
	lag := min(interval/2, 500*time.Millisecond)
	report := func(now time.Time) {
		lost := e.rxLost()
		win.remoteCPU = int(e.remoteCPU.Load())
		st := win.next(now, e.reportedBefore(now.Add(-lag)), e.rxBytes(), lost-lastLost, localCPU())
		sl := e.rxStartLost()
		st.StartupLostPackets = min(sl-lastStartLost, st.LostPackets)
		txPkts, rxPkts := e.txPackets(), e.rxPackets()
		st.TxPackets, st.RxPackets = txPkts-lastTxPkts, rxPkts-lastRxPkts
		lastLost, lastStartLost, lastTxPkts, lastRxPkts = lost, sl, txPkts, rxPkts
		onInterval(st)
	}
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case now := <-statusTick.C:
			if err := watch.check(now, e.heard.Load()); err != nil {
				cancel(err)
				break loop
			}
			if fastC == nil {
				if err := sendStatus(now); err != nil {
					cancel(e.endCause(err))
					break loop
				}
			}
			if onInterval != nil && intervalC == nil {
				report(now)
			}
		case <-oursC:
			oursC = nil
			ft := time.NewTicker(udpFastStatus)
			defer ft.Stop()
			fastC = ft.C
		case now := <-fastC:
			if err := sendStatus(now); err != nil {
				cancel(e.endCause(err))
				break loop
			}
		case <-early.kick:
			now := time.Now()
			if e.rxBytes()-lastRx < udpEarlyStatus {
				continue
			}
			if err := sendStatus(now); err != nil {
				cancel(e.endCause(err))
				break loop
			}
			statusTick.Reset(time.Second)
		case now := <-intervalC:
			report(now)
		}
	}
	end := time.Now()
	cause := context.Cause(ctx)
	// Stop sending at once: a past deadline ends a send blocked on a full
	// socket buffer.
	for _, s := range e.socks {
		s.SetWriteDeadline(time.Unix(1, 0))
	}
	txWG.Wait()
	// Closing the control connection tells a server to stop sending; the
	// receivers then take what is already on its way.
	e.ctrl.Close()
	for _, r := range e.rx {
		r.drain(e.drain, udpDrainMax)
	}
	rxWG.Wait()
	ctrlWG.Wait()
	win.remoteCPU = int(e.remoteCPU.Load())
	sum := win.summary(end, e.reported.Load(), e.rxBytes())
	// The peer's reports cover the test up to its last one; the time after
	// it is never reported (the control connection closes first). Rate the
	// reported bytes over the time they cover, or a short test would show
	// a transmit rate up to one interval too low.
	if last := time.Duration(e.lastHeard.Load()); last > 0 && sum.TxBytes > 0 {
		sum.TxBps = bps(sum.TxBytes, last)
	}
	sum.LostPackets = 0
	sum.Anomalies = e.gate.anomalies.Load()
	for _, r := range e.rx {
		sum.LostPackets += r.totalLost()
		sum.Anomalies += r.resyncs()
	}
	sum.StartupLostPackets = min(e.rxStartLost(), sum.LostPackets)
	sum.TxPackets, sum.RxPackets = e.txPackets(), e.rxPackets()
	e.report(sum)
	return sum, cause
}

// udpReport is what a UDP test's side counted locally, for tests.
type udpReport struct {
	Server                    bool
	SentPkts, SentBytes       uint64
	RcvdPkts, RcvdBytes, Lost uint64
	Sample                    []byte // start of the first datagram received
	SampleLen                 int
	Features                  udpio.Features
	GSO                       bool   // a sender still used GSO at the end
	Coalesced                 uint64 // GRO messages that held several datagrams
	Summary                   Summary
}

// udpTestHooks lets tests steer and observe the UDP engine.
type udpTestHooks struct {
	// opts forces I/O options (to exercise the fallback paths).
	opts udpio.Options
	// dest rewrites where a side sends its datagrams (to put a relay in
	// the path).
	dest func(server bool, dst netip.AddrPort) netip.AddrPort
	// done sees each side's local counts when its test ends.
	done func(udpReport)
	// started sees each side's engine as its data phase begins (to
	// watch its counters while it runs).
	started func(*udpEngine)
}

var udpHooks atomic.Pointer[udpTestHooks]

func udpOptions() udpio.Options {
	if h := udpHooks.Load(); h != nil {
		return h.opts
	}
	return udpio.Options{}
}

func udpDest(server bool, dst netip.AddrPort) netip.AddrPort {
	if h := udpHooks.Load(); h != nil && h.dest != nil {
		return h.dest(server, dst)
	}
	return dst
}

func (e *udpEngine) report(sum Summary) {
	h := udpHooks.Load()
	if h == nil || h.done == nil {
		return
	}
	r := udpReport{Server: e.server, Features: e.features, Summary: sum, Lost: sum.LostPackets}
	for _, t := range e.tx {
		r.SentPkts += t.pkts.Load()
		r.SentBytes += t.bytes.Load()
		r.GSO = r.GSO || t.snd.GSO()
	}
	for _, x := range e.rx {
		r.RcvdPkts += x.pkts.Load()
		r.RcvdBytes += x.bytes.Load()
		r.Coalesced += x.coalesced
		if r.Sample == nil && x.sample != nil {
			r.Sample, r.SampleLen = x.sample, x.sampleLen
		}
	}
	h.done(r)
}
