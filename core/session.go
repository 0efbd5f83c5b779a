package core

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
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

// localCPU samples this machine's CPU load in percent, -1 when not known
// yet (see statusCPU for the wire).
func localCPU() int { return cpuload.Shared.Sample() }

// primeCPU takes a CPU reading when a test's data phase starts, so that
// its first interval's reading covers that interval: the first reading of
// a process (or one after a long idle) only sets a baseline, and a 2 s
// test's one interval would otherwise show no CPU at all.
func primeCPU() { cpuload.Shared.Sample() }

// statusCPU is the CPU byte of a status message: the wire has no
// "unknown", so an unknown load goes as 0, as peers that do not measure it
// send it.
func statusCPU(cpu int) uint8 { return uint8(max(0, min(100, cpu))) }
