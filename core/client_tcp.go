package core

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/btest-go/btest/core/pacing"
	"github.com/btest-go/btest/core/wire"
)

// runTCP runs the data phase of a TCP test.
func (cc *clientConn) runTCP(parent context.Context) (Summary, error) {
	cfg := cc.cfg
	conns := []net.Conn{cc.primary}
	if cfg.Connections > 1 {
		if cc.token == 0 {
			return Summary{}, fmt.Errorf("%w: the server answered without a session token, so it cannot run %d connections (RouterOS shows \"test unsupported\")", ErrUnsupported, cfg.Connections)
		}
		more, err := cc.dialSecondaries(parent)
		if err != nil {
			return Summary{}, err
		}
		conns = append(conns, more...)
		defer func() {
			for _, c := range more {
				c.Close()
			}
		}()
	}
	ctx, cancel := context.WithCancelCause(parent)
	defer cancel(nil)
	stop := context.AfterFunc(ctx, func() {
		for _, c := range conns {
			c.Close()
		}
	})
	defer stop()

	transmits := cfg.Direction != Receive
	// In a transmit test the server's status messages are the only thing
	// arriving; they are not data and are not counted as received.
	countRx := cfg.Direction != Transmit
	rx := make([]paddedCounter, len(conns))
	tx := make([]paddedCounter, len(conns))
	var junk paddedCounter
	var remoteCPU atomic.Int32
	remoteCPU.Store(-1)
	// Alone on the stream in a transmit test; interleaved with data in both.
	framed := cfg.Direction == Transmit
	scanner := wire.StatusScanner{Framed: framed}
	gate := newStatusGate(0)
	if framed {
		gate = newStatusGate(cmp.Or(cfg.MaxStatusRate, DefaultMaxStatusRate))
	}
	var due statusDue // interleaved: when to look for the next one
	found := false
	onStatus := func(s wire.Status) {
		found = true
		if gate.honour(time.Now()) {
			remoteCPU.Store(int32(s.CPU))
		}
	}
	scan := func(b []byte) error {
		now := time.Now()
		if err := gate.bytes(now, len(b)); err != nil {
			gate.anomalies.Add(1)
			return err
		}
		found = false
		scanner.Scan(b, onStatus)
		if found {
			due.seen(now)
		}
		return nil
	}
	// Interleaved messages are looked for only when one is due; the data
	// between them is dropped unread.
	var dueNow func() bool
	if !framed {
		dueNow = func() bool { return due.now(time.Now()) }
	}
	rb := readBuf{pool: &smallBufs, grow: true}
	if framed {
		rb = ctrlReadBuf // nothing but status messages arrive
	}
	var pacer *pacing.Pacer
	if cfg.LocalTxSpeed > 0 {
		pacer = pacing.New(cfg.LocalTxSpeed, pacerBurst)
	}
	payload := payloadFor(cfg.Random)
	size := writeSize(DefaultTCPTxSize)
	start := time.Now()
	// The test's time runs from where counting starts, so the test
	// counts the whole time asked (see runUDP, where the set-up before
	// it takes longer).
	if cfg.Duration > 0 {
		t := time.AfterFunc(cfg.Duration, func() { cancel(errTestDone) })
		defer t.Stop()
	}
	var wg sync.WaitGroup
	for i, c := range conns {
		tuneTCP(c, cfg.SocketBuffer)
		counter := &rx[i]
		if !countRx {
			counter = &junk
		}
		var sc func([]byte) error
		if i == 0 && cfg.Direction != Receive {
			sc = scan
		}
		wg.Go(func() { cancel(serverEnded(readData(c, counter, sc, dueNow, rb))) })
		if transmits {
			wg.Go(func() {
				cancel(serverEnded(writeLoop(ctx, c, &tx[i], payload, size, DefaultTCPTxSize, pacer, nil)))
			})
		}
	}

	lowat := newRxLowat(conns, start)
	primeCPU()
	win := newRateWindow(start)
	watch := newTCPProgress(start, cfg.IdleTimeout, transmits, countRx, cfg.LocalTxSpeed, cfg.RemoteTxSpeed)
	tick := time.NewTicker(cfg.Interval)
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case now := <-tick.C:
			if err := watch.check(now, sumCounters(tx), sumCounters(rx)); err != nil {
				cancel(err)
				break loop
			}
			lowat.update(now, rx)
			win.remoteCPU = int(remoteCPU.Load())
			st := win.next(now, sumCounters(tx), sumCounters(rx), 0, localCPU())
			if cfg.OnInterval != nil {
				cfg.OnInterval(st)
			}
		}
	}
	tick.Stop()
	end := time.Now()
	cause := context.Cause(ctx)
	wg.Wait()
	win.remoteCPU = int(remoteCPU.Load())
	sum := win.summary(end, sumCounters(tx), sumCounters(rx))
	sum.Connections = len(conns)
	sum.Anomalies = gate.anomalies.Load()
	return sum, clientEndError(parent, cause)
}

// statusLull is how long after one interleaved status message the client
// starts to look for the next: the server sends one a second, so searching
// every byte between them would be a second pass over all received data
// for nothing. Less than a second leaves room for jitter; a message missed
// because it came early is caught a second later (see docs/protocol.md,
// status frames in TCP tests).
const statusLull = 900 * time.Millisecond

// statusDue says when a status message interleaved with data is due: the
// search runs only from statusLull after the last one found, about a
// tenth of the bytes received instead of all of them.
type statusDue struct{ after time.Time }

// now reports whether the search should run at t.
func (d *statusDue) now(t time.Time) bool { return !t.Before(d.after) }

// seen records a message found at t.
func (d *statusDue) seen(t time.Time) { d.after = t.Add(statusLull) }

// errServerClosed marks a test the server ended.
var errServerClosed = errors.New("the server closed the connection")

// serverEnded turns a data-phase I/O error into the cause of the end.
func serverEnded(err error) error {
	if c := endCause(err); errors.Is(c, errClientClosed) {
		return errServerClosed
	}
	return fmt.Errorf("data connection: %w", err)
}

// clientEndError decides whether the way a test ended is an error: the
// duration running out or the caller cancelling is not; the server closing
// the connection or an I/O failure is.
func clientEndError(parent context.Context, cause error) error {
	switch {
	case errors.Is(cause, errTestDone):
		return nil
	case parent.Err() != nil:
		if errors.Is(parent.Err(), context.DeadlineExceeded) {
			return fmt.Errorf("%w: %w", ErrTimeout, parent.Err())
		}
		return nil
	case cause == nil:
		return nil
	}
	return cause
}
