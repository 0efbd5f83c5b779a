package core

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/btest-go/btest/core/portpool"
	"github.com/btest-go/btest/core/udpio"
)

// udpServerState is a UDP session's data socket and its pooled port.
type udpServerState struct {
	mu   sync.Mutex
	sock *udpio.Conn
	port int
}

// localAddr returns the local IP address of c, IPv4-mapped addresses
// unmapped, so the UDP socket is bound where the client connected and its
// datagrams leave from the address the client expects.
func localAddr(c net.Conn) netip.Addr {
	if ta, ok := c.LocalAddr().(*net.TCPAddr); ok {
		return ta.AddrPort().Addr().Unmap()
	}
	ap, _ := netip.ParseAddrPort(c.LocalAddr().String())
	return ap.Addr().Unmap()
}

// listenUDP binds an unconnected UDP data socket on ip:port and sizes its
// buffers (bufSize 0: udpSocketBuffer); small says so on log, once, when
// the kernel grants less.
func listenUDP(ip netip.Addr, port int, opt udpio.Options, bufSize int, small *bufferWarning, log *slog.Logger) (*udpio.Conn, error) {
	c, err := udpio.Listen(netip.AddrPortFrom(ip, uint16(port)), opt)
	if err != nil {
		return nil, err
	}
	if bufSize <= 0 {
		bufSize = udpSocketBuffer
	}
	small.check(log, bufSize, c.SetBuffers(bufSize))
	return c, nil
}

// bufferWarning logs once that UDP sockets got smaller buffers than asked.
// Without CAP_NET_ADMIN (a systemd unit with no capabilities, a container
// as non-root) Linux caps them at net.core.rmem_max and wmem_max, 208 KiB
// on most distributions: 80 µs at 20 Gbit/s, so a fast receiver loses
// datagrams whenever it is not scheduled for a moment, and nothing else
// would say why.
type bufferWarning struct{ once sync.Once }

// clientSmallBuf warns once per process for every client's tests: the
// sysctls are the host's, and a program that runs many tests
// (btest-telegraf) would otherwise say it every round.
var clientSmallBuf bufferWarning

func (w *bufferWarning) check(log *slog.Logger, asked, granted int) {
	if granted >= asked {
		return
	}
	w.once.Do(func() {
		log.Warn("UDP socket buffers smaller than asked: fast UDP tests lose datagrams; raise the sysctls net.core.rmem_max and net.core.wmem_max, or give the process CAP_NET_ADMIN",
			"asked_bytes", asked, "granted_bytes", granted)
	})
}

// openUDP allocates the session's UDP port from the pool and binds it. The
// pool skips ports the OS reports busy and ports whose client side (+256,
// one per stream) would clash with another session's.
func (s *Server) openUDP(ss *serverSession) (int, error) {
	ip := localAddr(ss.conns[0])
	var sock *udpio.Conn
	port, err := s.ports.Acquire(int(ss.cmd.ConnCount), func(port int) error {
		c, err := listenUDP(ip, port, s.cfg.udpHooks.options(), s.cfg.SocketBuffer, &s.smallUDPBuf, s.log)
		if err != nil {
			return err
		}
		sock = c
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("allocating a udp port on %s: %w", ip, err)
	}
	ss.udp.mu.Lock()
	ss.udp.sock, ss.udp.port = sock, port
	ss.udp.mu.Unlock()
	ss.info.UDPPort = port
	return port, nil
}

// closeUDP closes the UDP socket and returns its port to the pool. It may
// be called any number of times.
func (ss *serverSession) closeUDP() {
	ss.udp.mu.Lock()
	sock, port := ss.udp.sock, ss.udp.port
	ss.udp.sock, ss.udp.port = nil, 0
	ss.udp.mu.Unlock()
	if sock != nil {
		sock.Close()
		ss.srv.ports.Release(port)
	}
}

// runUDP runs a UDP test (docs/protocol.md, §11): datagrams to the client's IP at
// port+256 when the server sends, from any port of the client's IP when it
// receives, a status message each way every second. It ends when the
// client closes the control connection, stays silent for UDPIdleTimeout,
// or ctx ends.
func (ss *serverSession) runUDP(ctx context.Context, cancel context.CancelCauseFunc) (Summary, error) {
	s := ss.srv
	ss.udp.mu.Lock()
	sock, port := ss.udp.sock, ss.udp.port
	ss.udp.mu.Unlock()
	if sock == nil {
		return Summary{}, fmt.Errorf("%w: udp socket already closed", ErrLimit)
	}
	uc := sock
	peer := ss.info.Remote.Addr().Unmap().WithZone("")
	hdr := udpHeaderSize(peer)
	dir := ss.cmd.Direction
	payload := udpPayloadSize(int(ss.cmd.TxSize), hdr)
	e := &udpEngine{
		server:   true,
		ctrl:     ss.conns[0],
		socks:    []*udpio.Conn{sock},
		start:    ss.info.Started,
		idle:     s.cfg.UDPIdleTimeout,
		drain:    udpServerDrain,
		waitPeer: true,
		endCause: endCause,
		features: uc.Features(),
		log:      s.log.With("id", ss.info.ID, "remote", ss.info.Remote.String()),
		hooks:    s.cfg.udpHooks,

		maxStatusRate: s.cfg.MaxStatusRate,
	}
	batch := 2 // only the client's NAT probe is expected
	if dir.ServerReceivesData() {
		batch = udpReadBatch(uc)
	}
	// The client may send other sizes than tx_size (local-udp-tx-size);
	// the reader then reports their real length.
	e.rx = []*udpRx{newUDPRx(uc.NewReader(batch, max(payload, 2048)), uc, peer)}
	if dir.ServerTransmits() {
		wireSize := payload + hdr
		e.setupSender(ss.info.TxRate, wireSize)
		// Every stream's data goes to the first client port, as other
		// servers do and RouterOS clients accept (docs/protocol.md, §11.1 Ports).
		dst := s.cfg.udpHooks.destination(true, netip.AddrPortFrom(peer, uint16(port+portpool.ClientOffset)))
		snd := uc.NewSender(dst, payload, udpBatchBytes, payloadFor(ss.cmd.Random))
		e.tx = []*udpTx{e.newTx(snd, wireSize)}
	}
	var onInterval func(IntervalStats)
	if o := s.cfg.Observer; o != nil && o.SessionInterval != nil {
		onInterval = func(st IntervalStats) { o.SessionInterval(ss.info, st) }
	}
	return e.run(ctx, cancel, time.Second, onInterval)
}

// udpReadBatch is the number of messages per receive call: with GRO each
// holds up to 64 KiB of datagrams, so fewer are needed.
func udpReadBatch(uc *udpio.Conn) int {
	if uc.Features().GRO {
		return 16
	}
	return 64
}
