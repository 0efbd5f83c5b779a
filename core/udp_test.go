package core

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/btest-go/btest/core/udpio"
	"github.com/btest-go/btest/core/wire"
)

// udpObserver records what the server reports, intervals included.
type udpObserver struct {
	*recorder
	imu       sync.Mutex
	intervals []IntervalStats
}

func (o *udpObserver) SessionInterval(_ SessionInfo, st IntervalStats) {
	o.imu.Lock()
	o.intervals = append(o.intervals, st)
	o.imu.Unlock()
}

// anyInterval says whether one of the server's intervals so far is ok.
func (o *udpObserver) anyInterval(ok func(IntervalStats) bool) bool {
	o.imu.Lock()
	defer o.imu.Unlock()
	return slices.ContainsFunc(o.intervals, ok)
}

// reportedTx says whether one of the server's intervals counts bytes it
// sent, which the client's status reports.
func (o *udpObserver) reportedTx() bool {
	return o.anyInterval(func(st IntervalStats) bool { return st.TxBytes > 0 })
}

// heardStatus says whether one of the server's intervals followed a
// status message from the client.
func (o *udpObserver) heardStatus() bool {
	return o.anyInterval(func(st IntervalStats) bool { return st.RemoteCPU >= 0 })
}

func (o *udpObserver) takeIntervals() []IntervalStats {
	o.imu.Lock()
	defer o.imu.Unlock()
	iv := o.intervals
	o.intervals = nil
	return iv
}

func (o *udpObserver) startedInfo(t *testing.T) SessionInfo {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		o.mu.Lock()
		if n := len(o.started); n > 0 {
			i := o.started[n-1]
			o.mu.Unlock()
			return i
		}
		o.mu.Unlock()
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("no session started")
	return SessionInfo{}
}

// startUDPServer is startServer with an observer that keeps intervals.
func startUDPServer(t testing.TB, cfg ServerConfig, addr string) (*Server, string, *udpObserver) {
	t.Helper()
	obs := &udpObserver{recorder: newRecorder()}
	ob := obs.observer()
	ob.SessionInterval = obs.SessionInterval
	cfg = withTestPorts(t, cfg)
	cfg.Observer = ob
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	s, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := listen(t, "tcp", addr)
	if err != nil {
		t.Skipf("cannot listen on %s: %v", addr, err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(context.Background(), ln) }()
	t.Cleanup(func() {
		s.Close()
		if err := <-done; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve returned %v", err)
		}
	})
	return s, ln.Addr().String(), obs
}

// udpCapture collects the engine's end-of-test reports.
// Its hooks go into the server's and the client's config.
type udpCapture struct {
	ch    chan udpReport
	hooks *udpTestHooks
	// drops counts what the kernel dropped at each side's sockets (server:
	// true), read as each side's test ends.
	mu    sync.Mutex
	drops map[bool]uint64
}

func captureUDP(opts udpio.Options, dest func(bool, netip.AddrPort) netip.AddrPort) *udpCapture {
	c := &udpCapture{ch: make(chan udpReport, 64), drops: map[bool]uint64{}}
	c.hooks = &udpTestHooks{opts: opts, dest: dest, done: func(r udpReport) {
		d := udpSocketDrops(r.Ports...)
		c.mu.Lock()
		c.drops[r.Server] += d
		c.mu.Unlock()
		c.ch <- r
	}}
	return c
}

// kernelDrops returns what the kernel dropped at one side's sockets.
func (c *udpCapture) kernelDrops(server bool) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.drops[server]
}

// udpSocketDrops sums the kernel's drop counts (a full receive buffer) of
// this network namespace's UDP sockets bound to the given local ports, from
// /proc/net/udp and udp6; 0 where those files do not exist.
func udpSocketDrops(ports ...uint16) uint64 {
	var n uint64
	for _, file := range []string{"/proc/net/udp", "/proc/net/udp6"} {
		b, err := os.ReadFile(file)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) < 13 {
				continue
			}
			_, hexPort, _ := strings.Cut(f[1], ":")
			port, err1 := strconv.ParseUint(hexPort, 16, 16)
			drops, err2 := strconv.ParseUint(f[len(f)-1], 10, 64)
			if err1 == nil && err2 == nil && slices.Contains(ports, uint16(port)) {
				n += drops
			}
		}
	}
	return n
}

// pair waits for the server's and the client's report of one test.
func (c *udpCapture) pair(t *testing.T) (srv, cli udpReport) {
	t.Helper()
	for range 2 {
		select {
		case r := <-c.ch:
			if r.Server {
				srv = r
			} else {
				cli = r
			}
		case <-time.After(10 * time.Second):
			t.Fatal("missing udp report")
		}
	}
	return srv, cli
}

// gsoAvailable reports whether this system does UDP GSO and GRO.
func gsoAvailable(t *testing.T) (gso, gro bool) {
	uc, err := udpio.Listen(netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), 0), udpio.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	return uc.Features().GSO, uc.Features().GRO
}

var udpIOModes = []struct {
	name string
	opt  udpio.Options
	rate uint64 // fast enough for GSO trains where GSO is on
}{
	{"gso+gro", udpio.Options{}, 300_000_000},
	{"mmsg", udpio.Options{NoGSO: true, NoGRO: true}, 60_000_000},
	{"plain", udpio.Options{NoBatch: true, NoGSO: true, NoGRO: true}, 20_000_000},
}

// TestUDPMatrix runs every direction, one and three streams, IPv4 and
// IPv6, zero and random data, over each I/O path, paced so that loopback
// loses nothing, and checks that datagrams go the right way at the right
// size with the right content, and that each receiver counted exactly what
// the sender sent.
func TestUDPMatrix(t *testing.T) {
	t.Parallel()
	gso, gro := gsoAvailable(t)
	i := 0
	for _, fam := range []struct{ name, listen string }{{"ipv4", "127.0.0.1:0"}, {"ipv6", "[::1]:0"}} {
		for _, dir := range []Direction{Receive, Transmit, Both} {
			for _, streams := range []int{1, 3} {
				for _, random := range []bool{false, true} {
					mode := udpIOModes[i%len(udpIOModes)]
					i++
					txSize := 600 + 97*i // what the server sends
					localSize := 1500 - 31*i
					data := "zero"
					if random {
						data = "random"
					}
					t.Run(fmt.Sprintf("%s/%s/%d/%s/%s", fam.name, dir, streams, data, mode.name), func(t *testing.T) {
						t.Parallel()
						heavyTest(t)
						capt := captureUDP(mode.opt, nil)
						_, addr, obs := startUDPServer(t, ServerConfig{udpHooks: capt.hooks}, fam.listen)
						// Both sides send a status a second after their
						// start: run 1.5 s, and on until each side has
						// a status from the other that counts some of its
						// data (a loaded machine delays the first data
						// past the first status, and the server's first
						// status from the client past the client's
						// first), at most 30 s.
						ctx, stop := context.WithTimeout(context.Background(), 30*time.Second)
						defer stop()
						sum, err := RunClient(ctx, ClientConfig{
							Address: addr, UDP: true, Direction: dir, Connections: streams, Random: random,
							UDPTxSize: txSize, LocalUDPTxSize: localSize,
							LocalTxSpeed: mode.rate, RemoteTxSpeed: mode.rate,
							Interval: 250 * time.Millisecond, udpHooks: capt.hooks,
							OnInterval: func(s IntervalStats) {
								if s.Elapsed >= 1500*time.Millisecond && s.RemoteCPU >= 0 && obs.heardStatus() &&
									(dir == Receive || s.TxBytes > 0) && (dir == Transmit || obs.reportedTx()) {
									stop()
								}
							},
						})
						if err != nil {
							t.Fatalf("client: %v", err)
						}
						ssum, serr := obs.waitEnded(t)
						if serr != nil {
							t.Fatalf("server: %v", serr)
						}
						srv, cli := capt.pair(t)
						hdr := 28
						if fam.name == "ipv6" {
							hdr = 48
						}
						checkUDPFlow(t, "server->client", srv, cli, dir != Transmit, txSize, hdr, random, mode.rate)
						checkUDPFlow(t, "client->server", cli, srv, dir != Receive, localSize, hdr, random, mode.rate)
						if sum.RxBytes != cli.RcvdBytes || ssum.RxBytes != srv.RcvdBytes {
							t.Errorf("summaries (client rx %d, server rx %d) disagree with the counts (%d, %d)",
								sum.RxBytes, ssum.RxBytes, cli.RcvdBytes, srv.RcvdBytes)
						}
						if sum.LostPackets != cli.Lost || ssum.LostPackets != srv.Lost {
							t.Errorf("lost: summaries %d/%d, counts %d/%d", sum.LostPackets, ssum.LostPackets, cli.Lost, srv.Lost)
						}
						// Each side's tx is what the other reported
						// receiving: some, never more than it received.
						if dir != Receive && (sum.TxBytes == 0 || sum.TxBytes > srv.RcvdBytes) {
							t.Errorf("client tx from reports %d, server received %d", sum.TxBytes, srv.RcvdBytes)
						}
						if dir != Transmit && (ssum.TxBytes == 0 || ssum.TxBytes > cli.RcvdBytes) {
							t.Errorf("server tx from reports %d, client received %d", ssum.TxBytes, cli.RcvdBytes)
						}
						if sum.RemoteCPU < 0 || ssum.RemoteCPU < 0 {
							t.Errorf("no status seen: remote cpu client %d server %d", sum.RemoteCPU, ssum.RemoteCPU)
						}
						if sum.Connections != streams {
							t.Errorf("client used %d streams, want %d", sum.Connections, streams)
						}
						if mode.name == "gso+gro" {
							if gso && dir != Transmit && !srv.GSO {
								t.Errorf("server sender did not use GSO (io %v)", srv.Features)
							}
							if gso && gro && dir != Transmit && cli.Coalesced == 0 {
								t.Errorf("client receiver saw no GRO-coalesced message")
							}
						} else if srv.Features.GSO || cli.Features.GRO {
							t.Errorf("fallback %s used gso/gro: server %v client %v", mode.name, srv.Features, cli.Features)
						}
						if mode.name == "plain" && (srv.Features.Batch || cli.Features.Batch) {
							t.Errorf("plain path used mmsg: %v %v", srv.Features, cli.Features)
						}
					})
				}
			}
		}
	}
}

// checkUDPFlow checks one direction of a test: tx is the sender's report,
// rx the receiver's.
func checkUDPFlow(t *testing.T, what string, tx, rx udpReport, want bool, txSize, hdr int, random bool, rate uint64) {
	t.Helper()
	if !want {
		if tx.SentPkts != 0 || rx.RcvdPkts != 0 {
			t.Errorf("%s: unexpected data: sent %d received %d", what, tx.SentPkts, rx.RcvdPkts)
		}
		return
	}
	if rx.RcvdPkts < 100 {
		t.Fatalf("%s: only %d datagrams received (sent %d)", what, rx.RcvdPkts, tx.SentPkts)
	}
	// Size: tx_size is the whole IP packet; bytes count the headers.
	if rx.SampleLen != txSize-hdr {
		t.Errorf("%s: datagram payload %d bytes, want %d-%d", what, rx.SampleLen, txSize, hdr)
	}
	if rx.RcvdBytes != rx.RcvdPkts*uint64(txSize) || tx.SentBytes != tx.SentPkts*uint64(txSize) {
		t.Errorf("%s: bytes %d/%d for %d/%d datagrams of %d", what, tx.SentBytes, rx.RcvdBytes, tx.SentPkts, rx.RcvdPkts, txSize)
	}
	// The API's packet counts are the engine's own, not estimates.
	if tx.Summary.TxPackets != tx.SentPkts || rx.Summary.RxPackets != rx.RcvdPkts {
		t.Errorf("%s: summary packets sent %d received %d, engine counted %d and %d",
			what, tx.Summary.TxPackets, rx.Summary.RxPackets, tx.SentPkts, rx.RcvdPkts)
	}
	if seq := binary.BigEndian.Uint32(rx.Sample); seq != 1 {
		t.Errorf("%s: first datagram has sequence number %d, want 1", what, seq)
	}
	zero := !slices.ContainsFunc(rx.Sample[4:], func(b byte) bool { return b != 0 })
	if zero == random {
		t.Errorf("%s: random=%v but filler % x", what, random, rx.Sample[4:min(len(rx.Sample), 20)])
	}
	if rx.Lost != 0 {
		t.Errorf("%s: %d datagrams lost on a paced loopback", what, rx.Lost)
	}
	if tx.Server {
		// The server stops when it sees the client close; the client
		// drains for a moment, so it may miss the last few.
		slack := uint64(rate/8/uint64(txSize)) / 5
		if rx.RcvdPkts > tx.SentPkts || tx.SentPkts-rx.RcvdPkts > slack {
			t.Errorf("%s: sent %d datagrams, received %d (slack %d)", what, tx.SentPkts, rx.RcvdPkts, slack)
		}
		if tx.SentPkts != rx.RcvdPkts {
			t.Logf("%s: the client missed the server's last %d datagrams", what, tx.SentPkts-rx.RcvdPkts)
		}
	} else if rx.RcvdPkts != tx.SentPkts {
		// The client stops sending before it closes, and the server
		// drains its socket: every datagram is counted.
		t.Errorf("%s: sent %d datagrams, received %d", what, tx.SentPkts, rx.RcvdPkts)
	}
}

// lossRelay sits between a UDP sender and its receiver on loopback. Per
// source it drops every dropEvery-th datagram, swaps some neighbours,
// delays some by a few dozen datagrams and duplicates others, and records
// what it dropped. After cutoff it forwards nothing, so that every
// datagram it did forward has arrived when the test ends.
type lossRelay struct {
	in     *net.UDPConn
	cutoff time.Time

	mu      sync.Mutex
	target  netip.AddrPort
	sources map[netip.AddrPort]*relaySource
	dup     int
	swapped int
	delayed int
}

type relaySource struct {
	out     *net.UDPConn
	n       int
	dropped []uint32
	maxFwd  uint32
	held    []byte
	later   []relayLater
}

type relayLater struct {
	at   int
	data []byte
}

const (
	relayDropEvery  = 40
	relaySwapEvery  = 29
	relayDelayEvery = 97
	relayDelayBy    = 60
	relayDupEvery   = 23
)

func newLossRelay(t *testing.T, cutoff time.Time) *lossRelay {
	in, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	in.SetReadBuffer(4 << 20)
	r := &lossRelay{in: in, cutoff: cutoff, sources: make(map[netip.AddrPort]*relaySource)}
	var wg sync.WaitGroup
	wg.Go(r.run)
	t.Cleanup(func() {
		in.Close()
		wg.Wait()
		for _, s := range r.sources {
			s.out.Close()
		}
	})
	return r
}

func (r *lossRelay) addr() netip.AddrPort {
	return r.in.LocalAddr().(*net.UDPAddr).AddrPort()
}

func (r *lossRelay) setTarget(a netip.AddrPort) {
	r.mu.Lock()
	r.target = a
	r.mu.Unlock()
}

func (r *lossRelay) run() {
	buf := make([]byte, 65536)
	for {
		n, src, err := r.in.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		r.mu.Lock()
		r.handle(src, buf[:n])
		r.mu.Unlock()
	}
}

func (r *lossRelay) handle(src netip.AddrPort, d []byte) {
	s := r.sources[src]
	if s == nil {
		out, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			panic(err)
		}
		s = &relaySource{out: out}
		r.sources[src] = s
	}
	send := func(b []byte) {
		s.out.WriteToUDPAddrPort(b, r.target)
		if seq := binary.BigEndian.Uint32(b); seq > s.maxFwd {
			s.maxFwd = seq
		}
	}
	if time.Now().After(r.cutoff) {
		// Flush what is held back, then forward nothing more.
		if s.held != nil {
			send(s.held)
			s.held = nil
		}
		for _, l := range s.later {
			send(l.data)
		}
		s.later = nil
		return
	}
	if len(d) < 4 {
		return // the NAT probe
	}
	s.n++
	seq := binary.BigEndian.Uint32(d)
	switch {
	case s.n%relayDropEvery == 0:
		s.dropped = append(s.dropped, seq)
		return
	case s.n%relayDelayEvery == 0:
		s.later = append(s.later, relayLater{s.n + relayDelayBy, slices.Clone(d)})
		r.delayed++
		return
	case s.held == nil && s.n%relaySwapEvery == 0:
		s.held = slices.Clone(d)
		return
	}
	send(d)
	if s.held != nil {
		send(s.held)
		s.held = nil
		r.swapped++
	}
	if s.n%relayDupEvery == 0 {
		send(d)
		r.dup++
	}
	for len(s.later) > 0 && s.later[0].at <= s.n {
		send(s.later[0].data)
		s.later = s.later[1:]
	}
}

// expectedLoss counts dropped datagrams the receiver can know of: those
// older than the newest one forwarded from the same source.
func (r *lossRelay) expectedLoss() (lost uint64, dropped int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.sources {
		for _, seq := range s.dropped {
			if seq < s.maxFwd {
				lost++
			}
		}
		dropped += len(s.dropped)
	}
	return lost, dropped
}

// TestUDPLossRelay puts a relay that drops, reorders and duplicates into
// each direction and checks that the receiver reports as lost exactly the
// datagrams the relay dropped.
func TestUDPLossRelay(t *testing.T) {
	// Not beside the parallel tests, which would starve its paced
	// senders and receivers of CPU: its cases run in parallel, alone.
	measuresTiming(t)
	for _, tc := range []struct {
		dir     Direction
		streams int
		mode    int
	}{{Transmit, 1, 0}, {Transmit, 2, 1}, {Receive, 1, 0}, {Receive, 1, 2}} {
		mode := udpIOModes[tc.mode]
		t.Run(fmt.Sprintf("%s/%d/%s", tc.dir, tc.streams, mode.name), func(t *testing.T) {
			t.Parallel()
			const d = 2500 * time.Millisecond
			relay := newLossRelay(t, time.Now().Add(d*7/10))
			relayServerSide := tc.dir == Receive // the relay carries the server's datagrams
			capt := captureUDP(mode.opt, func(server bool, dst netip.AddrPort) netip.AddrPort {
				if server != relayServerSide {
					return dst
				}
				relay.setTarget(dst)
				return relay.addr()
			})
			_, addr, obs := startUDPServer(t, ServerConfig{udpHooks: capt.hooks}, "127.0.0.1:0")
			sum, err := RunClient(context.Background(), ClientConfig{
				Address: addr, UDP: true, Direction: tc.dir, Connections: tc.streams,
				LocalTxSpeed: mode.rate / 2, RemoteTxSpeed: mode.rate / 2, Duration: d,
				udpHooks: capt.hooks,
			})
			if err != nil {
				t.Fatal(err)
			}
			ssum, _ := obs.waitEnded(t)
			srv, cli := capt.pair(t)
			want, dropped := relay.expectedLoss()
			got, rcvd := ssum.LostPackets, srv.RcvdPkts
			if tc.dir == Receive {
				got, rcvd = sum.LostPackets, cli.RcvdPkts
			}
			// A loaded machine may starve the relay or the receiver
			// until their socket buffers overflow: the kernel counts
			// those drops, and they are real loss too.
			kernel := udpSocketDrops(relay.addr().Port()) + capt.kernelDrops(!relayServerSide)
			relay.mu.Lock()
			swapped, delayed, dup := relay.swapped, relay.delayed, relay.dup
			relay.mu.Unlock()
			t.Logf("received %d, relay dropped %d (%d before the last forwarded), swapped %d, delayed %d, duplicated %d; kernel dropped %d; reported lost %d",
				rcvd, dropped, want, swapped, delayed, dup, kernel, got)
			if want < 20 || swapped == 0 || delayed == 0 || dup == 0 {
				t.Fatalf("the relay did too little to test anything")
			}
			// The relay holds a delayed datagram back for a count of
			// datagrams it read: drops at its socket make that span
			// more sequence numbers, which can push the datagram out
			// of the receiver's loss window (lossWindow), to count as
			// lost. Without kernel drops the count is exact.
			slack := uint64(0)
			if kernel > 0 {
				slack = kernel + uint64(delayed)
			}
			if got < want || got > want+slack {
				t.Errorf("reported %d lost, the relay dropped %d and the kernel %d (%d delayed)", got, want, kernel, delayed)
			}
		})
	}
}

// TestUDPRateLimit checks that a paced test lands within 5% of the limit,
// measured over the seconds after the first, in both directions and with
// several streams sharing one limit.
func TestUDPRateLimit(t *testing.T) {
	// Not beside the parallel tests, which would starve its paced
	// senders and receivers of CPU: its cases run in parallel, alone.
	measuresTiming(t)
	const rate = 4_000_000
	for _, tc := range []struct {
		dir     Direction
		streams int
	}{{Receive, 1}, {Transmit, 1}, {Transmit, 3}} {
		t.Run(fmt.Sprintf("%s/%d", tc.dir, tc.streams), func(t *testing.T) {
			t.Parallel()
			_, addr, obs := startUDPServer(t, ServerConfig{}, "127.0.0.1:0")
			cfg := ClientConfig{Address: addr, UDP: true, Direction: tc.dir, Connections: tc.streams, Duration: 4500 * time.Millisecond}
			if tc.dir == Receive {
				cfg.RemoteTxSpeed = rate
			} else {
				cfg.LocalTxSpeed = rate
			}
			var mu sync.Mutex
			var cl []IntervalStats
			cfg.OnInterval = func(s IntervalStats) { mu.Lock(); cl = append(cl, s); mu.Unlock() }
			if _, err := RunClient(context.Background(), cfg); err != nil {
				t.Fatal(err)
			}
			obs.waitEnded(t)
			// The receiving side's own counts, per interval.
			iv := cl
			if tc.dir == Transmit {
				iv = obs.takeIntervals()
			}
			var bytes float64
			var secs float64
			for _, s := range iv {
				if s.Elapsed > 1500*time.Millisecond && s.Interval > 900*time.Millisecond {
					bytes += s.RxBps * s.Interval.Seconds() / 8
					secs += s.Interval.Seconds()
				}
			}
			if secs < 2 {
				t.Fatalf("only %.1f s of intervals: %+v", secs, iv)
			}
			got := bytes * 8 / secs
			t.Logf("%.0f bit/s over %.1f s (limit %d)", got, secs, rate)
			if got < rate*0.95 || got > rate*1.05 {
				t.Errorf("rate %.0f bit/s, want %d ±5%%", got, rate)
			}
		})
	}
}

// udpRawClient is a hand-made UDP test client: the handshake, a bound
// client port and a control connection the test drives itself.
type udpRawClient struct {
	ctrl net.Conn
	port int
	sock *net.UDPConn
	seq  uint32
}

func dialUDPRaw(t *testing.T, addr string, dir wire.Direction, bind bool) *udpRawClient {
	t.Helper()
	c := dialRaw(t, addr)
	cmd := wire.Command{Proto: wire.UDP, Direction: dir, ConnCount: 1, TxSize: 1500}.Marshal()
	c.Write(cmd[:])
	var res [6]byte
	if _, err := io.ReadFull(c, res[:]); err != nil {
		t.Fatalf("reading result and port: %v", err)
	}
	if res[0] != 1 {
		t.Fatalf("result % x", res)
	}
	c.SetDeadline(time.Time{})
	r := &udpRawClient{ctrl: c, port: int(binary.BigEndian.Uint16(res[4:]))}
	if bind {
		var err error
		r.sock, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: r.port + 256})
		if err != nil {
			t.Fatal(err)
		}
		r.sock.SetReadBuffer(4 << 20)
		t.Cleanup(func() { r.sock.Close() })
		r.sock.WriteToUDPAddrPort(nil, netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(r.port)))
	}
	return r
}

func (r *udpRawClient) status(bytes uint32) error {
	r.seq++
	b := wire.Status{Seq: r.seq, Bytes: bytes}.Marshal()
	_, err := r.ctrl.Write(b[:])
	return err
}

// firstData waits up to d for a datagram: the server's sender starts
// within moments, later on a loaded machine.
func (r *udpRawClient) firstData(d time.Duration) bool {
	buf := make([]byte, 65536)
	r.sock.SetReadDeadline(time.Now().Add(d))
	_, _, err := r.sock.ReadFromUDPAddrPort(buf)
	return err == nil
}

// count reads datagrams for d and returns the bytes (headers included).
func (r *udpRawClient) count(d time.Duration) (bytes uint64, pkts int) {
	buf := make([]byte, 65536)
	end := time.Now().Add(d)
	r.sock.SetReadDeadline(end)
	for {
		n, _, err := r.sock.ReadFromUDPAddrPort(buf)
		if err != nil {
			return bytes, pkts
		}
		bytes += uint64(n + 28)
		pkts++
	}
}

// TestUDPAdaptation: a receiver that reports once a second, and less than
// arrives (as a slow receiver would), gets an unlimited sender at its start
// rate first, then about 1-1.5 times what it reports, and the rate holds
// there rather than ratcheting down.
func TestUDPAdaptation(t *testing.T) {
	// Alone: it counts a paced sender's seconds with its own reader, which
	// the parallel tests' load would delay. (Its goroutines are checked
	// with the package's, when the run ends.)
	measuresTiming(t)
	_, addr, obs := startUDPServer(t, ServerConfig{}, "127.0.0.1:0")
	c := dialUDPRaw(t, addr, wire.ServerSends, true)
	const capBytes = 250_000 // 2 Mbit/s
	var rates []float64
	for sec := range 7 {
		b, _ := c.count(time.Second)
		if err := c.status(uint32(min(b, capBytes))); err != nil {
			t.Fatal(err)
		}
		rates = append(rates, float64(b)*8)
		t.Logf("second %d: %.3g bit/s", sec+1, float64(b)*8)
	}
	c.ctrl.Close()
	obs.waitEnded(t)
	// A peer that reports once a second: the sender starts at
	// udpStartRate, not at line rate, and has no early reports to climb by.
	if rates[0] == 0 || rates[0] > 2*udpStartRate {
		t.Fatalf("first second %.3g bit/s, want some, at most twice the start rate %d", rates[0], udpStartRate)
	}
	for i, r := range rates[3:] {
		if r < 0.8*capBytes*8 || r > 1.6*capBytes*8 {
			t.Errorf("second %d: %.3g bit/s, want about 1-1.5 x %d", i+4, r, capBytes*8)
		}
	}
}

// TestUDPSocketDrops checks the drop counter TestUDPLossRelay relies on:
// datagrams sent to a socket whose tiny buffer is full are counted, and
// what was not dropped can still be read.
func TestUDPSocketDrops(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat("/proc/net/udp"); err != nil {
		t.Skip("no /proc/net/udp")
	}
	rx, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	rx.SetReadBuffer(1) // the kernel's minimum: a few datagrams
	tx, err := net.DialUDP("udp4", nil, rx.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	const sent = 200
	msg := make([]byte, 1000)
	for range sent {
		if _, err := tx.Write(msg); err != nil {
			t.Fatal(err)
		}
	}
	port := rx.LocalAddr().(*net.UDPAddr).AddrPort().Port()
	drops := udpSocketDrops(port)
	read := 0
	rx.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	for {
		if _, err := rx.Read(msg); err != nil {
			break
		}
		read++
	}
	t.Logf("sent %d, read %d, kernel dropped %d", sent, read, drops)
	if drops == 0 || uint64(read)+drops != sent {
		t.Errorf("read %d + dropped %d != sent %d", read, drops, sent)
	}
}
