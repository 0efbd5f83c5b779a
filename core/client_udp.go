package core

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/btest-go/btest/core/portpool"
	"github.com/btest-go/btest/core/udpio"
)

// udpClientSupported says RunClient can run UDP tests; errNoUDP is its
// answer on a build without them.
const udpClientSupported = true

var errNoUDP = fmt.Errorf("%w: UDP tests are not supported", ErrUnsupported)

// runUDP runs the data phase of a UDP test (docs/protocol.md, §11): one
// unconnected socket per stream on the server's port + 256 + k, an empty
// datagram from each to open NAT pinholes, data to the server's port and
// from any port of the server's IP, a status message each way every
// second. The client's tx rate is what the server reports receiving.
func (cc *clientConn) runUDP(parent context.Context) (Summary, error) {
	cfg := cc.cfg
	ctx, cancel := context.WithCancelCause(parent)
	defer cancel(nil)
	server := remoteAddrPort(cc.primary).Addr().Unmap()
	local := localAddr(cc.primary)
	hdr := udpHeaderSize(server)
	dst := cfg.udpHooks.destination(false, netip.AddrPortFrom(server.WithZone(""), uint16(cc.udpPort)))
	n := cfg.Connections
	socks := make([]*udpio.Conn, 0, n)
	defer func() {
		for _, s := range socks {
			s.Close()
		}
	}()
	e := &udpEngine{
		ctrl:     cc.primary,
		start:    time.Now(),
		idle:     cfg.IdleTimeout,
		drain:    udpClientDrain,
		endCause: serverEnded,
		log:      cfg.Logger,
		hooks:    cfg.udpHooks,

		maxStatusRate: cfg.MaxStatusRate,
	}
	sending := cfg.Direction != Receive
	payload := udpPayloadSize(cfg.LocalUDPTxSize, hdr)
	wireSize := payload + hdr
	if sending {
		e.setupSender(cfg.LocalTxSpeed, wireSize)
	}
	rxPayload := udpPayloadSize(cfg.UDPTxSize, hdr)
	for k := range n {
		port := cc.udpPort + portpool.ClientOffset + k
		if port > 65535 {
			return Summary{}, fmt.Errorf("%w: udp port %d + %d streams does not fit", ErrProtocol, cc.udpPort, n)
		}
		opt := cfg.udpHooks.options()
		if k > 0 {
			// The server sends to the first port only; the others
			// get small plain readers in case one sends there too.
			opt.NoGRO = true
		}
		uc, err := listenUDP(local, port, opt, cfg.SocketBuffer, &clientSmallBuf, cfg.Logger)
		if err != nil {
			return Summary{}, fmt.Errorf("binding udp stream %d: %w", k, err)
		}
		socks = append(socks, uc)
		if k == 0 {
			e.features = uc.Features()
		}
		// The NAT probe: an empty datagram the server ignores.
		if err := uc.WriteTo(nil, dst); err != nil {
			cfg.Logger.Debug("btest udp probe failed", "stream", k, "err", err)
		}
		batch := 4
		if k == 0 && cfg.Direction != Transmit {
			batch = udpReadBatch(uc)
		}
		e.rx = append(e.rx, newUDPRx(uc.NewReader(batch, rxPayload), uc, server))
		if sending {
			snd := uc.NewSender(dst, payload, max(udpBatchBytes/n, 64<<10), payloadFor(cfg.Random))
			e.tx = append(e.tx, e.newTx(snd, wireSize))
		}
	}
	e.socks = socks
	// The test's time runs from the engine's start, where its counting
	// starts, not from before the sockets' set-up: under load that moment
	// came tens of milliseconds later, and the test counted less than asked.
	if cfg.Duration > 0 {
		t := time.AfterFunc(cfg.Duration-time.Since(e.start), func() { cancel(errTestDone) })
		defer t.Stop()
	}
	cfg.Logger.Debug("btest udp test", "server_port", cc.udpPort, "client_port", cc.udpPort+portpool.ClientOffset,
		"streams", n, "payload", payload, "io", e.features.String())
	sum, cause := e.run(ctx, cancel, cfg.Interval, cfg.OnInterval)
	sum.Connections = n
	return sum, clientEndError(parent, cause)
}
