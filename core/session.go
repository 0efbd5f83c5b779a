package core

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/btest-go/btest/core/cpuload"
	"github.com/btest-go/btest/core/wire"
)

var errTooManyFiles = syscall.EMFILE

// errClientClosed is the cause of a test the client ended, the normal end.
var errClientClosed = errors.New("client closed the connection")

// serverSession is one test on the server: its command, its connections
// and, for UDP, its data socket.
type serverSession struct {
	srv   *Server
	cmd   wire.Command
	info  SessionInfo
	token uint16
	src   netip.Prefix // the client's source, for the per-source limits
	// joinsLeft is how many secondaries the session may still take; the
	// server's mutex guards it.
	joinsLeft int

	mu      sync.Mutex
	conns   []net.Conn // primary first
	started bool
	joined  chan struct{} // closed once every requested connection is here

	udp udpServerState
}

func (s *Server) newSession(c net.Conn, remote netip.AddrPort, cmd wire.Command) *serverSession {
	return &serverSession{
		srv:    s,
		cmd:    cmd,
		conns:  []net.Conn{c},
		joined: make(chan struct{}),
		info: SessionInfo{
			ID:            s.nextID.Add(1),
			Remote:        remote,
			Proto:         protoOf(cmd.Proto),
			Direction:     clientView(cmd.Direction),
			Connections:   int(cmd.ConnCount),
			Random:        cmd.Random,
			TxSize:        int(cmd.TxSize),
			RemoteTxSpeed: uint64(cmd.RemoteTxSpeed),
			LocalTxSpeed:  uint64(cmd.LocalTxSpeed),
			TxRate:        capRate(uint64(cmd.RemoteTxSpeed), s.cfg.MaxTxRate),
		},
	}
}

// protoOf maps the command's transport to the API's.
func protoOf(p wire.Proto) Proto {
	if p == wire.UDP {
		return ProtoUDP
	}
	return ProtoTCP
}

// clientView maps the command's server-side direction to the client's name.
func clientView(d wire.Direction) Direction {
	switch d {
	case wire.ServerReceives:
		return Transmit
	case wire.ServerSends:
		return Receive
	}
	return Both
}

// capRate combines two limits where 0 means unlimited.
func capRate(a, b uint64) uint64 {
	switch {
	case a == 0:
		return b
	case b == 0:
		return a
	}
	return min(a, b)
}

// addConn attaches a secondary connection; false when the test already
// started or has all its connections.
func (ss *serverSession) addConn(c net.Conn) bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.started || len(ss.conns) >= int(ss.cmd.ConnCount) {
		return false
	}
	ss.conns = append(ss.conns, c)
	ss.srv.mu.Lock()
	ss.srv.expectJoinsLocked(ss, -1)
	ss.srv.mu.Unlock()
	if len(ss.conns) == int(ss.cmd.ConnCount) {
		close(ss.joined)
	}
	return true
}

// run waits for the secondaries, runs the test and tears everything down.
func (ss *serverSession) run() {
	s := ss.srv
	defer s.release(ss)
	if ss.cmd.Proto == wire.TCP && ss.cmd.ConnCount > 1 {
		t := time.NewTimer(s.cfg.JoinTimeout)
		select {
		case <-ss.joined:
		case <-t.C:
		case <-s.ctx.Done():
		}
		t.Stop()
	}
	ss.mu.Lock()
	ss.started = true
	conns := ss.conns
	ss.mu.Unlock()
	s.mu.Lock()
	if ss.token != 0 {
		delete(s.pending, ss.token)
	}
	s.expectJoinsLocked(ss, -ss.joinsLeft) // no more joins
	s.mu.Unlock()
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()

	ctx, cancel := context.WithCancelCause(s.ctx)
	defer cancel(nil)
	if s.cfg.MaxDuration > 0 {
		t := time.AfterFunc(s.cfg.MaxDuration, func() {
			cancel(fmt.Errorf("%w: test ran for the maximum of %v", ErrLimit, s.cfg.MaxDuration))
		})
		defer t.Stop()
	}
	ss.info.Started = time.Now()
	if len(conns) < int(ss.cmd.ConnCount) && ss.cmd.Proto == wire.TCP {
		s.log.Warn("btest test starts with fewer connections than requested",
			"id", ss.info.ID, "remote", ss.info.Remote.String(), "requested", ss.cmd.ConnCount, "joined", len(conns))
	}
	s.log.Info("btest session start", ss.logAttrs()...)
	s.cfg.Observer.sessionStarted(ss.info)
	var sum Summary
	var err error
	if ss.cmd.Proto == wire.UDP {
		sum, err = ss.runUDP(ctx, cancel)
	} else {
		sum, err = ss.runTCP(ctx, cancel, conns)
	}
	sum.Proto, sum.Direction, sum.Connections = ss.info.Proto, ss.info.Direction, len(conns)
	// Free the slot, token and port before reporting, so an observer that
	// sees the end sees the server without this session.
	s.release(ss)
	if errors.Is(err, errClientClosed) {
		err = nil
	} else if err != nil && errors.Is(err, context.Canceled) {
		err = fmt.Errorf("%w: server shutting down", ErrLimit)
	}
	attrs := append(ss.logAttrs(),
		"tx_bytes", sum.TxBytes, "rx_bytes", sum.RxBytes,
		"tx_bps", int64(sum.TxBps), "rx_bps", int64(sum.RxBps),
		"lost_packets", sum.LostPackets, "startup_lost_packets", sum.StartupLostPackets,
		"duration", sum.Duration.Round(time.Millisecond).String(),
		"result", resultString(err))
	if err != nil {
		attrs = append(attrs, "err", err.Error())
	}
	s.log.Info("btest session end", attrs...)
	s.cfg.Observer.sessionEnded(ss.info, sum, err)
}

func (ss *serverSession) logAttrs() []any {
	i := ss.info
	a := []any{"id", i.ID, "remote", i.Remote.String(), "user", i.User, "proto", i.Proto.String(),
		"direction", i.Direction.String(), "connections", i.Connections, "random", i.Random}
	if i.TxRate > 0 {
		a = append(a, "tx_rate", i.TxRate)
	}
	if i.UDPPort > 0 {
		a = append(a, "udp_port", i.UDPPort, "tx_size", i.TxSize)
	}
	return a
}

// resultString names an outcome for logs and metric labels.
func resultString(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, ErrAuthFailed):
		return "auth_failed"
	case errors.Is(err, ErrLimit):
		return "limit"
	case errors.Is(err, ErrStalled):
		return "stalled"
	case errors.Is(err, ErrTimeout):
		return "timeout"
	case errors.Is(err, ErrProtocol):
		return "protocol_error"
	case errors.Is(err, ErrUnsupported):
		return "unsupported"
	case errors.Is(err, ErrRefused):
		return "refused"
	}
	return "error"
}

// ResultString names the outcome of a test for logs, tags and metric
// labels: "ok", "auth_failed", "limit", "timeout", "protocol_error",
// "unsupported", "refused" or "error".
func ResultString(err error) string { return resultString(err) }

// Receive buffers are pooled: sessions come and go, and a public server
// should not allocate (and later collect) megabytes per test. Every
// connection starts with a small buffer; one that fills it takes a large
// one while the server's budget of large buffers lasts (see
// ServerConfig.ReadBufferMemory), so memory stays bounded by
// sessions x connections x smallReadBuf plus the budget.
const (
	smallReadBuf = 32 << 10
	tinyReadBuf  = 4 << 10 // control connections of UDP tests: status messages only
)

var (
	tinyBufs  = sync.Pool{New: func() any { b := make([]byte, tinyReadBuf); return &b }}
	smallBufs = sync.Pool{New: func() any { b := make([]byte, smallReadBuf); return &b }}
	largeBufs = sync.Pool{New: func() any { b := make([]byte, payloadSize); return &b }}
)

// bufBudget caps how many large receive buffers are out at once.
type bufBudget struct{ left atomic.Int64 }

// newBufBudget returns a budget of bytes worth of large buffers.
func newBufBudget(bytes int64) *bufBudget {
	b := new(bufBudget)
	b.left.Store(bytes / payloadSize)
	return b
}

func (b *bufBudget) take() bool {
	if b == nil {
		return true
	}
	if b.left.Add(-1) < 0 {
		b.left.Add(1)
		return false
	}
	return true
}

func (b *bufBudget) give() {
	if b != nil {
		b.left.Add(1)
	}
}

// readBuf says which buffers a read loop uses.
type readBuf struct {
	pool   *sync.Pool // the buffer a connection starts with
	grow   bool       // one that fills it may move to a large buffer
	budget *bufBudget // bounds the large buffers out at once; nil: no bound
}

// ctrlReadBuf is for control connections that carry only status messages.
var ctrlReadBuf = readBuf{pool: &tinyBufs}

// readLoop counts what arrives on c until it fails; scan, when set, sees
// every chunk (status messages) and ends the loop with its error. The
// buffer starts small and grows on the first full read when rb allows,
// so slow tests stay small in memory and fast ones read in large blocks.
func readLoop(c net.Conn, n *paddedCounter, scan func([]byte) error, rb readBuf) error {
	pool, large := rb.pool, false
	bp := pool.Get().(*[]byte)
	defer func() {
		pool.Put(bp)
		if large {
			rb.budget.give()
		}
	}()
	buf := *bp
	for {
		k, err := c.Read(buf)
		if k > 0 {
			n.Add(uint64(k))
			if scan != nil {
				if err := scan(buf[:k]); err != nil {
					return err
				}
			}
			if k == len(buf) && rb.grow && !large && rb.budget.take() {
				pool.Put(bp)
				pool, large = &largeBufs, true
				bp = pool.Get().(*[]byte)
				buf = *bp
			}
		}
		if err != nil {
			return err
		}
	}
}

// endCause turns a read error into the cause of a test's end.
func endCause(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		return errClientClosed
	}
	return fmt.Errorf("connection: %w", err)
}

// writeSize is the TCP write size for a command's tx_size: about 1 MiB, in
// whole tx_size blocks, so status messages fall on block boundaries.
func writeSize(txSize int) int {
	if txSize <= 0 || txSize > payloadSize {
		txSize = wire.CommandSize * 2048 // 32 KiB
	}
	return payloadSize / txSize * txSize
}

// localCPU samples this machine's CPU load for a status message.
func localCPU() int { return int(cpuload.Shared.Percent()) }
