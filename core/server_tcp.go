package core

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/btest-go/btest/core/pacing"
	"github.com/btest-go/btest/core/wire"
)

// statusWriteTimeout bounds a status write on an otherwise idle direction.
const statusWriteTimeout = 5 * time.Second

// pacerBurst is how much a paced sender may catch up after a stall.
const pacerBurst = 50 * time.Millisecond

// runTCP moves data on every connection of a TCP test until the client
// closes one of them or ctx ends. Status messages go on the primary
// connection once per second when the server receives (docs/protocol.md, §10.2):
// alone on the idle direction in a transmit test, interleaved with data on
// block boundaries in a `both` test.
func (ss *serverSession) runTCP(ctx context.Context, cancel context.CancelCauseFunc, conns []net.Conn) (Summary, error) {
	s := ss.srv
	dir := ss.cmd.Direction
	rx := make([]paddedCounter, len(conns))
	tx := make([]paddedCounter, len(conns))
	// Closing the sockets is what unblocks readers and writers.
	stop := context.AfterFunc(ctx, func() {
		for _, c := range conns {
			c.Close()
		}
	})
	defer stop()

	var pacer *pacing.Pacer
	if ss.info.TxRate > 0 {
		pacer = pacing.New(ss.info.TxRate, pacerBurst)
	}
	payload := payloadFor(ss.cmd.Random)
	block := int(ss.cmd.TxSize)
	size := writeSize(block)
	var pending atomic.Pointer[wire.Status]
	var wg sync.WaitGroup
	for i, c := range conns {
		tuneTCP(c, s.cfg.SocketBuffer)
		wg.Go(func() {
			cancel(endCause(readData(c, &rx[i], nil, nil, s.readBuf)))
		})
		if dir.ServerTransmits() {
			var status *atomic.Pointer[wire.Status]
			if i == 0 && dir == wire.Both {
				status = &pending
			}
			wg.Go(func() {
				cancel(endCause(writeLoop(ctx, c, &tx[i], payload, size, block, pacer, status)))
			})
		}
	}

	lowat := newRxLowat(conns, ss.info.Started)
	primeCPU()
	win := newRateWindow(ss.info.Started)
	watch := newTCPProgress(ss.info.Started, s.cfg.ProgressTimeout, dir.ServerTransmits(), dir.ServerReceivesData(),
		ss.info.TxRate, ss.info.LocalTxSpeed)
	tick := time.NewTicker(time.Second)
	// Progress is sampled a quarter timeout apart (at most once a second),
	// so a stall ends within a quarter timeout of the timeout, not a whole
	// status interval after it.
	watchTick := time.NewTicker(min(time.Second, max(s.cfg.ProgressTimeout/4, 100*time.Millisecond)))
	defer watchTick.Stop()
	var seq uint32
	var lastRx uint64
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case now := <-watchTick.C:
			if err := watch.check(now, sumCounters(tx), sumCounters(rx)); err != nil {
				cancel(err)
				break loop
			}
		case now := <-tick.C:
			txTotal, rxTotal := sumCounters(tx), sumCounters(rx)
			if err := watch.check(now, txTotal, rxTotal); err != nil {
				cancel(err)
				break loop
			}
			lowat.update(now, rx)
			cpu := localCPU()
			st := win.next(now, txTotal, rxTotal, 0, cpu)
			if dir.ServerReceivesData() {
				seq++
				f := wire.Status{CPU: statusCPU(cpu), Seq: seq, Bytes: wire.SaturateBytes(rxTotal - lastRx)}
				lastRx = rxTotal
				if dir == wire.Both {
					pending.Store(&f)
				} else {
					b := f.Marshal()
					conns[0].SetWriteDeadline(now.Add(statusWriteTimeout))
					if _, err := conns[0].Write(b[:]); err != nil {
						cancel(endCause(err))
					}
				}
			}
			s.cfg.Observer.sessionInterval(ss.info, st)
		}
	}
	tick.Stop()
	cause := context.Cause(ctx)
	wg.Wait()
	return win.summary(time.Now(), sumCounters(tx), sumCounters(rx)), cause
}

// writeLoop sends payload on c until an error. Unpaced it writes size bytes
// at a time; paced, about 1/100 s of data in whole blocks. When status is
// set, a pending status message is written between two writes, so it lands
// on a block boundary.
func writeLoop(ctx context.Context, c net.Conn, n *paddedCounter, payload []byte, size, block int, p *pacing.Pacer, status *atomic.Pointer[wire.Status]) error {
	var sl pacing.Sleeper
	defer sl.Stop()
	for {
		chunk := size
		if !p.Unlimited() {
			chunk = pacing.ChunkFor(p.Rate(), 1024, size)
			if block > 0 && chunk > block {
				chunk = chunk / block * block
			}
			if err := sl.Wait(ctx, p, chunk); err != nil {
				return err
			}
		}
		if status != nil {
			if f := status.Swap(nil); f != nil {
				b := f.Marshal()
				if _, err := c.Write(b[:]); err != nil {
					return err
				}
			}
		}
		k, err := c.Write(payload[:chunk])
		n.Add(uint64(k))
		if err != nil {
			return err
		}
	}
}

func sumCounters(cs []paddedCounter) uint64 {
	var t uint64
	for i := range cs {
		t += cs[i].Load()
	}
	return t
}

// tuneTCP sets TCP_NODELAY (status messages must not wait behind Nagle)
// and, when asked, fixed socket buffer sizes.
func tuneTCP(c net.Conn, buf int) {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return
	}
	tc.SetNoDelay(true)
	if buf > 0 {
		tc.SetReadBuffer(buf)
		tc.SetWriteBuffer(buf)
	}
}
