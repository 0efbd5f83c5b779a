package core

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/btest-go/btest/core/udpio"
	"github.com/btest-go/btest/core/wire"
	"github.com/btest-go/btest/internal/testutil"
)

// TestUDPStrangersAndShortDatagrams: during a test in which the server
// only receives, datagrams from another IP address and datagrams from the
// client's address too short to hold a sequence number are not counted;
// datagrams from any other port of the client's address are.
func TestUDPStrangersAndShortDatagrams(t *testing.T) {
	if testutil.Isolate(t) {
		return
	}
	stranger, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2)})
	if err != nil {
		t.Skip("no 127.0.0.2:", err)
	}
	defer stranger.Close()
	local, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer local.Close()
	checkNoLeak(t)
	capt := captureUDP(udpio.Options{}, nil)
	_, addr, obs := startUDPServer(t, ServerConfig{udpHooks: capt.hooks}, "127.0.0.1:0")
	var wg sync.WaitGroup
	wg.Go(func() {
		info := obs.startedInfo(t)
		dst := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(info.UDPPort))
		good := []byte{0, 0, 0, 1, 0xaa, 0xbb}
		for i := range 200 {
			good[3] = byte(i)
			stranger.WriteToUDPAddrPort(good, dst)
			local.WriteToUDPAddrPort(good[:i%4], dst)
		}
		// Ten real ones from yet another port of the client's address:
		// counted, so the ones above reached the socket and were refused.
		for i := range 10 {
			good[3] = byte(i + 1)
			local.WriteToUDPAddrPort(good[:4], dst)
		}
	})
	// The client only receives: nothing of its own reaches the server.
	_, err = RunClient(context.Background(), ClientConfig{Address: addr, UDP: true, Direction: Receive,
		RemoteTxSpeed: 1_000_000, Duration: 1500 * time.Millisecond, udpHooks: capt.hooks})
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	ssum, _ := obs.waitEnded(t)
	srv, _ := capt.pair(t)
	if srv.RcvdPkts != 10 || srv.RcvdBytes != 10*(4+28) || ssum.RxBytes != srv.RcvdBytes {
		t.Fatalf("server counted %d datagrams, %d bytes (summary %d); want 10 and %d",
			srv.RcvdPkts, srv.RcvdBytes, ssum.RxBytes, 10*(4+28))
	}
	if ssum.LostPackets != 0 {
		t.Fatalf("%d lost", ssum.LostPackets)
	}
}

// TestUDPPortExhausted: with a one-port range in use, a second UDP test is
// refused at once with a clear reason (never a hang), and the port serves
// again once the first test ends. A port the OS reports busy is skipped.
func TestUDPPortExhausted(t *testing.T) {
	if testutil.Isolate(t) {
		return
	}
	checkNoLeak(t)
	p, _ := corePorts.UDP(t, 2)
	busy, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: p})
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	srv, addr, obs := startUDPServer(t, ServerConfig{UDPPortFirst: p, UDPPortLast: p + 1}, "127.0.0.1:0")
	ctx, cancel := context.WithCancel(context.Background())
	first := make(chan error, 1)
	running := make(chan struct{}) // the first client is in its data phase
	inData := sync.OnceFunc(func() { close(running) })
	go func() {
		_, err := RunClient(ctx, ClientConfig{Address: addr, UDP: true, RemoteTxSpeed: 1_000_000,
			Interval: 100 * time.Millisecond, OnInterval: func(IntervalStats) { inData() }})
		first <- err
	}()
	if info := obs.startedInfo(t); info.UDPPort != p+1 {
		t.Fatalf("first test got port %d; %d is busy, want %d", info.UDPPort, p, p+1)
	}
	start := time.Now()
	_, err = RunClient(context.Background(), ClientConfig{Address: addr, UDP: true, Duration: time.Second})
	if !errors.Is(err, ErrRefused) {
		t.Fatalf("second test: %v, want ErrRefused", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("refusal took %v", d)
	}
	if refs := obs.refusalList(); !slices.Contains(refs, RefusedUDPPorts) {
		t.Fatalf("refusals %v, want %s", refs, RefusedUDPPorts)
	}
	// Ended in its data phase, the first test ends without an error (on
	// a loaded machine it can still be reading the handshake's last word
	// when the server has already counted it started).
	select {
	case <-running:
	case <-time.After(10 * time.Second):
		t.Fatal("the first test never reached its data phase")
	}
	cancel()
	if err := <-first; err != nil {
		t.Fatalf("first test: %v", err)
	}
	obs.waitEnded(t)
	if n := srv.UDPPorts().InUse(); n != 0 {
		t.Fatalf("%d ports still in use", n)
	}
	if _, err := RunClient(context.Background(), ClientConfig{Address: addr, UDP: true, Duration: 300 * time.Millisecond}); err != nil {
		t.Fatalf("after the first test ended: %v", err)
	}
}

// drainUntilQuiet reads datagrams until none came for quiet and returns
// when the last one arrived.
func drainUntilQuiet(c *net.UDPConn, quiet time.Duration) (last time.Time, n int) {
	buf := make([]byte, 65536)
	for {
		c.SetReadDeadline(time.Now().Add(quiet))
		if _, _, err := c.ReadFromUDPAddrPort(buf); err != nil {
			return last, n
		}
		last = time.Now()
		n++
	}
}

// TestUDPClientVanishes: a client that stops sending status messages (and
// stays connected) ends its session after UDPIdleTimeout, and the server's
// sender stops: no datagram arrives after that.
func TestUDPClientVanishes(t *testing.T) {
	if testutil.Isolate(t) {
		return
	}
	checkNoLeak(t)
	const idle = 1500 * time.Millisecond
	srv, addr, obs := startUDPServer(t, ServerConfig{UDPIdleTimeout: idle}, "127.0.0.1:0")
	c := dialUDPRaw(t, addr, wire.ServerSends, true)
	start := time.Now()
	if !c.firstData(5 * time.Second) {
		t.Fatal("no data from the server")
	}
	_, err := obs.waitEnded(t)
	ended := time.Since(start)
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("session ended with %v, want ErrTimeout", err)
	}
	if ended < idle || ended > idle+2500*time.Millisecond {
		t.Fatalf("session ended after %v with an idle timeout of %v", ended, idle)
	}
	// Whatever was in flight arrives within moments; then silence.
	drainUntilQuiet(c.sock, 200*time.Millisecond)
	if _, n := c.count(time.Second); n != 0 {
		t.Fatalf("%d datagrams arrived after the session ended", n)
	}
	if n := srv.UDPPorts().InUse(); n != 0 {
		t.Fatalf("%d ports still in use", n)
	}
}

// TestUDPControlEOFStopsSending: closing the control connection stops the
// server's UDP sender at once and frees the port.
func TestUDPControlEOFStopsSending(t *testing.T) {
	if testutil.Isolate(t) {
		return
	}
	checkNoLeak(t)
	srv, addr, obs := startUDPServer(t, ServerConfig{}, "127.0.0.1:0")
	c := dialUDPRaw(t, addr, wire.ServerSends, true)
	// The first datagram may take seconds on a loaded machine (make test
	// runs this beside the measuring tests, at a lower priority).
	if !c.firstData(5 * time.Second) {
		t.Fatal("no data from the server")
	}
	b, _ := c.count(500 * time.Millisecond)
	c.status(uint32(b))
	closed := time.Now()
	c.ctrl.Close()
	last, n := drainUntilQuiet(c.sock, 300*time.Millisecond)
	if n > 0 && last.Sub(closed) > 250*time.Millisecond {
		t.Fatalf("datagrams kept coming %v after the close", last.Sub(closed))
	}
	if _, n := c.count(700 * time.Millisecond); n != 0 {
		t.Fatalf("%d datagrams after the sender should have stopped", n)
	}
	if _, err := obs.waitEnded(t); err != nil {
		t.Fatalf("session: %v", err)
	}
	deadline := time.Now().Add(time.Second)
	for srv.UDPPorts().InUse() != 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := srv.UDPPorts().InUse(); n != 0 {
		t.Fatalf("%d ports still in use", n)
	}
}

// TestUDPUnreachableClient: the client never binds its port, so the
// server's datagrams draw ICMP port-unreachable errors. The server keeps
// going (it must not fail on ECONNREFUSED) until the client ends the test.
func TestUDPUnreachableClient(t *testing.T) {
	if testutil.Isolate(t) {
		return
	}
	checkNoLeak(t)
	_, addr, obs := startUDPServer(t, ServerConfig{}, "127.0.0.1:0")
	c := dialUDPRaw(t, addr, wire.ServerSends, false)
	for range 3 {
		time.Sleep(500 * time.Millisecond)
		if err := c.status(0); err != nil {
			t.Fatalf("server gave up: %v", err)
		}
	}
	select {
	case <-obs.endedCh:
		t.Fatal("the session ended while the client was still there")
	default:
	}
	c.ctrl.Close()
	if _, err := obs.waitEnded(t); err != nil {
		t.Fatalf("session: %v", err)
	}
}

// TestUDPClientIdleTimeout: our client gives up on a server that stops
// sending status messages.
func TestUDPClientIdleTimeout(t *testing.T) {
	t.Parallel()
	ln := corePorts.Listen(t, "127.0.0.1")
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.Write(wire.Hello[:])
		var cmd [16]byte
		c.Read(cmd[:])
		c.Write([]byte{1, 0, 0, 0, 0x9f, 0x00}) // port 40704, then silence
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		buf := make([]byte, 64)
		for {
			if _, err := c.Read(buf); err != nil {
				return
			}
		}
	}()
	start := time.Now()
	_, err := RunClient(context.Background(), ClientConfig{Address: ln.Addr().String(), UDP: true,
		IdleTimeout: time.Second, Duration: 10 * time.Second})
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("err %v, want ErrTimeout", err)
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Fatalf("gave up after %v", d)
	}
}
