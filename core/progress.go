package core

import (
	"fmt"
	"time"
)

// progress ends a test in which something that should move does not: a
// TCP direction that should carry data, or the status messages of a UDP
// test. Both use this one mechanism, so "stalled" means the same in both.
type progress struct {
	timeout time.Duration // 0: never stalls
	what    string        // what did not move, for the error
	last    time.Time     // when the value last changed
	value   uint64
}

// newProgress watches a counter from now on; what names it in the error.
func newProgress(now time.Time, timeout time.Duration, what string) progress {
	return progress{timeout: timeout, what: what, last: now}
}

// check takes the counter's value at now and returns an error wrapping
// ErrStalled once it has not changed for longer than the timeout.
func (p *progress) check(now time.Time, v uint64) error {
	if v != p.value {
		p.value, p.last = v, now
		return nil
	}
	if silent := now.Sub(p.last); p.timeout > 0 && silent > p.timeout {
		return fmt.Errorf("%w: %s for %v", ErrStalled, p.what, silent.Round(time.Millisecond))
	}
	return nil
}

// progressTimeout stretches a progress timeout for a paced direction: at
// rate bit/s a sender may move its data in chunks up to 64 KiB, so two
// chunks' time must pass before silence means a stall.
func progressTimeout(timeout time.Duration, rate uint64) time.Duration {
	if rate == 0 || timeout <= 0 {
		return timeout
	}
	chunk := time.Duration(mulDiv(2*64<<10*8, uint64(time.Second), rate))
	return max(timeout, chunk)
}

// tcpProgress watches the directions of a TCP test that should carry
// data; txRate and rxRate are their paced rates (0: unpaced).
type tcpProgress struct {
	tx, rx           progress
	watchTx, watchRx bool
}

func newTCPProgress(now time.Time, timeout time.Duration, watchTx, watchRx bool, txRate, rxRate uint64) tcpProgress {
	return tcpProgress{
		tx:      newProgress(now, progressTimeout(timeout, txRate), "no data could be sent (the peer stopped reading)"),
		rx:      newProgress(now, progressTimeout(timeout, rxRate), "no data arrived"),
		watchTx: watchTx, watchRx: watchRx,
	}
}

// check takes the byte totals at now.
func (p *tcpProgress) check(now time.Time, tx, rx uint64) error {
	if p.watchTx {
		if err := p.tx.check(now, tx); err != nil {
			return err
		}
	}
	if p.watchRx {
		return p.rx.check(now, rx)
	}
	return nil
}
