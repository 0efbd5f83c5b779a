package udpio

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// pair opens two loopback sockets of network ("udp4" or "udp6") with the
// options of each side.
func pair(t testing.TB, network string, ao, bo Options) (a, b *Conn) {
	t.Helper()
	ip := netip.MustParseAddr("127.0.0.1")
	if network == "udp6" {
		ip = netip.IPv6Loopback()
	}
	open := func(o Options) *Conn {
		c, err := Listen(netip.AddrPortFrom(ip, 0), o)
		if err != nil {
			t.Skipf("no %s loopback: %v", network, err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	return open(ao), open(bo)
}

func addrOf(c *Conn) netip.AddrPort { return c.LocalAddr() }

type mode struct {
	name string
	opt  Options
}

var modes = []mode{
	{"mmsg+gso+gro", Options{}},
	{"mmsg+gso", Options{NoGRO: true}},
	{"mmsg+gro", Options{NoGSO: true}},
	{"mmsg", Options{NoGSO: true, NoGRO: true}},
	{"plain+gso+gro", Options{NoBatch: true}},
	{"plain", Options{NoBatch: true, NoGSO: true, NoGRO: true}},
}

// TestSendReceive sends numbered datagrams through every combination of
// features and checks that each arrives once, whole, in order, from the
// right address, and that GSO and GRO really were used where asked for.
func TestSendReceive(t *testing.T) {
	fill := make([]byte, 1<<16)
	for i := range fill {
		fill[i] = byte(i*7 + 1)
	}
	for _, network := range []string{"udp4", "udp6"} {
		for _, m := range modes {
			for _, size := range []int{4, 1472, 8972, 40000} {
				t.Run(fmt.Sprintf("%s/%s/%d", network, m.name, size), func(t *testing.T) {
					tx, rx := pair(t, network, m.opt, m.opt)
					a, b := tx, rx
					rx.SetBuffers(4 << 20)
					checkFeatures(t, tx.Features(), m.opt)
					s := tx.NewSender(addrOf(b), size, 256<<10, fill)
					r := rx.NewReader(16, size)
					const total = 1000
					start := time.Now()
					var coalesced, arrived atomic.Int64
					done := make(chan error, 1)
					go func() { done <- receive(r, addrOf(a), size, total, fill, &coalesced, &arrived) }()
					seq := uint32(0xfffffff0) // wraps during the test
					// At most window bytes in flight, far below the
					// receive buffer: a reader starved of CPU (a
					// loaded machine) must not lose datagrams, which
					// would fail the order check.
					window := max(1<<20/size, 1)
					for sent := 0; sent < total; {
						room := window - (sent - int(arrived.Load()))
						if room <= 0 {
							if time.Since(start) > 10*time.Second {
								t.Fatalf("receiver stuck at %d of %d datagrams", arrived.Load(), sent)
							}
							time.Sleep(100 * time.Microsecond)
							continue
						}
						n, err := s.Send(seq, min(total-sent, s.Max(), 50, room))
						if err != nil {
							t.Fatal(err)
						}
						seq += uint32(n)
						sent += n
					}
					rx.SetReadDeadline(time.Now().Add(5 * time.Second))
					if err := <-done; err != nil {
						t.Fatal(err)
					}
					wantGSO := !m.opt.NoGSO && gsoSupported() && s.segs > 1 && envOptions() == Options{}
					if s.GSO() != wantGSO {
						t.Errorf("sender GSO %v, want %v", s.GSO(), wantGSO)
					}
					// GRO coalesces only what GSO sent as one buffer.
					if wantGSO && rx.Features().GRO && coalesced.Load() == 0 {
						t.Errorf("GSO sender and GRO receiver, but no message arrived coalesced")
					}
					if !rx.Features().GRO && coalesced.Load() != 0 {
						t.Errorf("GRO off but %d messages coalesced", coalesced.Load())
					}
				})
			}
		}
	}
}

func checkFeatures(t *testing.T, f Features, opt Options) {
	t.Helper()
	if runtime.GOOS != "linux" || envOptions() != (Options{}) {
		return
	}
	if f.Batch == opt.NoBatch {
		t.Errorf("features %v with options %+v", f, opt)
	}
	if f.GRO == opt.NoGRO {
		t.Errorf("features %v with options %+v (GRO needs Linux 5.0)", f, opt)
	}
}

// receive reads total datagrams and checks their numbers, size, filler and
// source.
func receive(r *Reader, from netip.AddrPort, size, total int, fill []byte, coalesced, arrived *atomic.Int64) error {
	want := uint32(0xfffffff0)
	got := 0
	for got < total {
		n, err := r.Read()
		if err != nil {
			return fmt.Errorf("after %d datagrams: %w", got, err)
		}
		for i := range n {
			data, length, seg, src := r.Message(i)
			if src != from {
				return fmt.Errorf("source %v, want %v", src, from)
			}
			if length != len(data) {
				return fmt.Errorf("message cut: %d of %d bytes", len(data), length)
			}
			if seg > 0 && seg < len(data) {
				coalesced.Add(1)
			}
			var bad error
			split(data, seg, func(d []byte) {
				if bad != nil {
					return
				}
				if len(d) != size {
					bad = fmt.Errorf("datagram of %d bytes, want %d", len(d), size)
					return
				}
				if seq := binary.BigEndian.Uint32(d); seq != want {
					bad = fmt.Errorf("sequence %d, want %d", seq, want)
					return
				}
				if size > SeqSize && d[SeqSize] == 0 && fill[SeqSize] != 0 {
					bad = fmt.Errorf("filler missing")
				}
				want++
				got++
			})
			arrived.Store(int64(got))
			if bad != nil {
				return bad
			}
		}
	}
	return nil
}

// TestNoAllocs checks the steady state of a sender and a reader: zero
// allocations per Send and per Read, for every mode.
func TestNoAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	fill := make([]byte, 1<<16)
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			tx, rx := pair(t, "udp4", m.opt, m.opt)
			rx.SetBuffers(4 << 20)
			s := tx.NewSender(addrOf(rx), 1472, 128<<10, fill)
			r := rx.NewReader(64, 1472)
			seq := uint32(0)
			run := func() {
				n, err := s.Send(seq, 32)
				if err != nil {
					t.Fatal(err)
				}
				seq += uint32(n)
				for got := 0; got < n; {
					k, err := r.Read()
					if err != nil {
						t.Fatal(err)
					}
					for i := range k {
						data, _, seg, _ := r.Message(i)
						if seg > 0 {
							got += (len(data) + seg - 1) / seg
						} else {
							got++
						}
					}
				}
			}
			run()
			if a := testing.AllocsPerRun(200, run); a != 0 {
				t.Errorf("%v allocations per 32 datagrams, want 0", a)
			}
		})
	}
}

// TestReadDeadline checks that a deadline ends a blocked Read, which is how
// a session stops its receiver.
func TestReadDeadline(t *testing.T) {
	for _, m := range modes {
		_, rx := pair(t, "udp4", m.opt, m.opt)
		r := rx.NewReader(8, 1500)
		rx.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		start := time.Now()
		if _, err := r.Read(); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("%s: Read: %v", m.name, err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("%s: deadline took %v", m.name, d)
		}
		// A deadline moved while a Read waits takes effect at once.
		rx.SetReadDeadline(time.Time{})
		done := make(chan error, 1)
		go func() { _, err := r.Read(); done <- err }()
		time.Sleep(50 * time.Millisecond)
		start = time.Now()
		rx.SetReadDeadline(time.Unix(1, 0))
		if err := <-done; !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("%s: Read after moving the deadline: %v", m.name, err)
		}
		if d := time.Since(start); d > time.Second {
			t.Fatalf("%s: moving the deadline took %v to wake the reader", m.name, d)
		}
	}
}

// TestCloseWakesRead checks that Close ends a Read waiting for data, the
// way a session stops a receiver that hears nothing.
func TestCloseWakesRead(t *testing.T) {
	for _, m := range modes {
		_, rx := pair(t, "udp4", m.opt, m.opt)
		r := rx.NewReader(8, 1500)
		done := make(chan error, 1)
		go func() { _, err := r.Read(); done <- err }()
		time.Sleep(50 * time.Millisecond)
		if err := rx.Close(); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-done:
			if !errors.Is(err, net.ErrClosed) {
				t.Fatalf("%s: Read after Close: %v", m.name, err)
			}
		case <-time.After(2 * time.Second):
			t.Fatalf("%s: Close did not wake the reader", m.name)
		}
		if err := rx.Close(); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("%s: second Close: %v", m.name, err)
		}
	}
}

// TestSendToClosedPort checks that ICMP port-unreachable does not turn into
// a send error.
func TestSendToClosedPort(t *testing.T) {
	tx, b := pair(t, "udp4", Options{}, Options{})
	dst := addrOf(b)
	b.Close()
	s := tx.NewSender(dst, 100, 64<<10, make([]byte, 100))
	for range 20 {
		if _, err := s.Send(0, 10); err != nil {
			t.Fatalf("send to a closed port: %v", err)
		}
	}
}

// BenchmarkLoopback pushes 1472-byte datagrams from a sender to a reader
// over loopback in each mode, unpaced, and reports the goodput the reader
// saw and the share lost in the kernel.
func BenchmarkLoopback(b *testing.B) {
	fill := make([]byte, 1<<16)
	for _, m := range modes {
		b.Run(m.name, func(b *testing.B) {
			tx, rx := pair(b, "udp4", m.opt, m.opt)
			c := rx
			rx.SetBuffers(4 << 20)
			tx.SetBuffers(4 << 20)
			s := tx.NewSender(addrOf(c), 1472, 512<<10, fill)
			r := rx.NewReader(64, 1472)
			var got atomic.Uint64
			var wg sync.WaitGroup
			wg.Go(func() {
				for {
					n, err := r.Read()
					if err != nil {
						return
					}
					k := 0
					for i := range n {
						data, _, seg, _ := r.Message(i)
						if seg > 0 {
							k += (len(data) + seg - 1) / seg
						} else {
							k++
						}
					}
					got.Add(uint64(k))
				}
			})
			b.ResetTimer()
			start := time.Now()
			sent := 0
			for sent < b.N {
				n, err := s.Send(uint32(sent), min(s.Max(), b.N-sent))
				if err != nil {
					b.Fatal(err)
				}
				sent += n
			}
			time.Sleep(20 * time.Millisecond)
			el := time.Since(start)
			c.SetReadDeadline(time.Now())
			wg.Wait()
			g := got.Load()
			b.ReportMetric(float64(g)*1472*8/el.Seconds()/1e9, "Gbit/s")
			b.ReportMetric(float64(g)/el.Seconds(), "rx_pps")
			b.ReportMetric(100*(1-float64(g)/float64(sent)), "loss%")
		})
	}
}

// split calls fn for each datagram in a message of data coalesced with
// segment size seg (0: data is one datagram), for the tests: the engine in
// core walks the segments inline, with no call per datagram.
func split(data []byte, seg int, fn func([]byte)) {
	if seg <= 0 || seg >= len(data) {
		fn(data)
		return
	}
	for len(data) > seg {
		fn(data[:seg])
		data = data[seg:]
	}
	fn(data)
}

// TestSetBuffersReportsGrant checks that SetBuffers answers in the terms it
// was asked in: 64 KiB is under every kernel's cap, so the grant is 64 KiB
// (Linux reports 128 KiB, its doubled figure, for the socket).
func TestSetBuffersReportsGrant(t *testing.T) {
	a, _ := pair(t, "udp4", Options{}, Options{})
	if got := a.SetBuffers(64 << 10); got != 64<<10 {
		t.Fatalf("granted %d bytes for 64 KiB asked", got)
	}
}
