package core

import (
	"cmp"
	"context"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/btest-go/btest/core/pacing"
	"github.com/btest-go/btest/core/udpio"
	"github.com/btest-go/btest/core/wire"
)

// udpEngine is one side of a running UDP test: its data sockets, senders
// and receivers, and the status exchange on the control connection.
type udpEngine struct {
	server   bool
	ctrl     net.Conn
	acks     promptAcks // keeps ctrl's acknowledgements prompt (tcpRTT)
	socks    []*udpio.Conn
	tx       []*udpTx
	rx       []*udpRx
	pacer    *pacing.Pacer
	rc       *rateControl  // nil when this side does not send
	starting atomic.Bool   // the sender is in its start-up (rc.starting)
	hold     atomic.Uint64 // rc.holdRate after the last report
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
	shown     reportMarks
	keepShown bool // someone reads shown (interval reports)
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
	// hooks are the server's or client's test hooks (nil outside tests).
	hooks *udpTestHooks
}

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
		e.shown.add(now, total)
	}
	if e.rc != nil {
		e.pacer.SetRate(e.rc.report(now, uint32(bytes), sent))
		e.starting.Store(e.rc.starting())
		e.hold.Store(e.rc.holdRate())
	}
}

// warnAnomaly logs the first anomaly of a test; later ones are only
// counted. A server logs it as a warning, for its operator; a client at
// info, because its user gets the count in the Summary, and some peers
// commit one in every test (btest-rs's server reports what it sent as
// received in a receive test), which a warning on every run would only
// teach the user to ignore.
func (e *udpEngine) warnAnomaly(msg string, args ...any) {
	if e.log == nil || !e.gate.warnOnce() {
		return
	}
	if e.server {
		e.log.Warn("btest peer anomaly: "+msg, args...)
	} else {
		e.log.Info("btest peer anomaly: "+msg, args...)
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
	e.acks.again()
	return nil
}

// run moves data until ctx ends, then stops the senders at once, lets the
// receivers take what is still arriving, and sums up. interval paces
// onInterval (nil: no reports); status messages go every second.
func (e *udpEngine) run(ctx context.Context, cancel context.CancelCauseFunc, interval time.Duration, onInterval func(IntervalStats)) (Summary, error) {
	e.remoteCPU.Store(-1)
	if h := e.hooks; h != nil && h.started != nil {
		h.started(e)
	}
	e.scanner.Framed = true
	e.onStatus = e.status
	e.gate = newStatusGate(cmp.Or(e.maxStatusRate, DefaultMaxStatusRate))
	e.acks = newPromptAcks(e.ctrl)
	e.acks.again()
	if e.rc != nil && e.rc.limit == 0 && len(e.tx) > 0 {
		// Our unlimited sender marks its datagrams, and our receiver
		// answers with a report every udpFastStatus: honour that many
		// (still a constant cost per message, and a bound).
		e.gate.allowFast()
	}
	e.keepShown = onInterval != nil
	var ctrlWG, rxWG, txWG sync.WaitGroup
	early := &udpEarly{kick: make(chan struct{}, 1), ours: make(chan struct{})}
	if e.rc != nil && len(e.rx) > 0 {
		e.rc.peerStarting = early.peerStarting.Load
	}
	ctrlWG.Go(func() { cancel(e.endCause(readLoop(e.ctrl, &e.ctrlBytes, e.scanControl, ctrlReadBuf))) })
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

	primeCPU()
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
	var grid reportGrid
	var seq uint32
	var lastRx, lastLost, lastStartLost, lastTxPkts, lastRxPkts uint64
	sendStatus := func(now time.Time) error {
		rx := e.rxBytes()
		early.since.Store(0)
		seq++
		b := wire.Status{CPU: statusCPU(localCPU()), Seq: seq, Bytes: wire.SaturateBytes(rx - lastRx)}.Marshal()
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
		st := win.next(now, e.shown.before(now.Add(-lag)), e.rxBytes(), lost-lastLost, localCPU())
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
			grid = newReportGrid(time.Now())
			ft := time.NewTicker(udpFastStatus)
			defer ft.Stop()
			fastC = ft.C
		case now := <-fastC:
			// One report per slot of the grid, none skipped: a tick
			// dropped while this loop was late becomes a report sent
			// at once (see reportGrid).
			for range grid.due(time.Now()) {
				if err := sendStatus(now); err != nil {
					cancel(e.endCause(err))
					break loop
				}
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
