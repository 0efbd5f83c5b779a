// Package testutil holds what the test suites of several packages share:
// port ranges that keep tests apart, a goroutine-leak check and a buffer
// safe for concurrent writers.
package testutil

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
)

// UDPPartnerOffset is how far above a server's UDP port the client's
// socket sits (docs/protocol.md, §11.1 Ports): a UDP test needs both free.
const UDPPartnerOffset = 256

// Range is a package's private block of 1024 ports: the first 256 are UDP
// server ports, the next 256 their client partners (port + 256), the last
// 512 TCP listeners. Ranges lie below the kernel's ephemeral range
// (32768-60999 by default), so no outgoing connection of any program takes
// them, and above 3255, so a `make run` holding TCP 2000 and UDP 2001-2999
// (and its clients' 2257-3255) never meets them.
type Range struct {
	// Name is the package that owns the range.
	Name string
	// Base is the first port.
	Base int
}

// RangeSize is the number of ports in a Range.
const RangeSize = 1024

// The ranges, one per package with network tests. TestRangesApart checks
// that they do not overlap each other, the ephemeral range or make run's
// ports.
var (
	RangeCore          = Range{"core", 10240}
	RangeCLI           = Range{"cmd/btest", 11264}
	RangeTelegrafInput = Range{"telegrafinput", 12288}
	RangeTelegrafCmd   = Range{"cmd/btest-telegraf", 13312}
	RangeCaddy         = Range{"caddymodule", 14336}
	RangeDashboard     = Range{"dashboard", 15360}
	RangePackaging     = Range{"packaging", 16384}
	RangeBench         = Range{"cmd/btest-bench", 17408}
)

// AllRanges lists every Range, for TestRangesApart.
var AllRanges = []Range{RangeCore, RangeCLI, RangeTelegrafInput, RangeTelegrafCmd, RangeCaddy, RangeDashboard, RangePackaging, RangeBench}

// Ports hands out free ports of one Range to the tests of a package,
// parallel ones included. Each package makes one with NewPorts.
//
// A child process of Isolate takes its ports from a window of the range
// that no other process of the package uses: the parent has the first
// 160 UDP server ports and 320 TCP ports, each of the isolatedSlots
// children 12 and 24 of the rest.
type Ports struct {
	r            Range
	udpLo, udpHi int // the UDP server block's window, offsets
	tcpLo, tcpHi int // the TCP block's window, offsets
	mu           sync.Mutex
	nextUDP      int // offset into the UDP server block
	nextTCP      int // offset into the TCP block
	// udpLeased counts, per offset into the UDP server block, the tests
	// still running that were given the port. A server binds its UDP
	// ports only when a test starts, and the client its partners, so a
	// port handed out looks free until then: once the window had wrapped
	// round, a second test was given the same ports and one of them
	// failed to bind ("address already in use"). UDP hands out ports no
	// running test holds while there are any.
	udpLeased [UDPPartnerOffset]int
}

// The parent's share of a range; isolated children split the rest.
const (
	parentUDP = 160
	parentTCP = 320
	childUDP  = (256 - parentUDP) / isolatedSlots
	childTCP  = (512 - parentTCP) / isolatedSlots
)

// NewPorts returns the allocator of r for this process.
func NewPorts(r Range) *Ports {
	p := &Ports{r: r, udpHi: parentUDP, tcpHi: parentTCP}
	if k := isolatedSlot(); k > 0 {
		p.udpLo, p.tcpLo = parentUDP+(k-1)*childUDP, parentTCP+(k-1)*childTCP
		p.udpHi, p.tcpHi = p.udpLo+childUDP, p.tcpLo+childTCP
	}
	p.nextUDP, p.nextTCP = p.udpLo, p.tcpLo
	return p
}

// TCP returns a TCP port that is free on 127.0.0.1 and ::1 right now.
func (p *Ports) TCP(t testing.TB) int {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	for range p.tcpHi - p.tcpLo {
		port := p.r.Base + 512 + p.nextTCP
		if p.nextTCP++; p.nextTCP == p.tcpHi {
			p.nextTCP = p.tcpLo
		}
		if tcpFree(port) {
			return port
		}
	}
	t.Fatalf("testutil: no free TCP port in %s's range %d-%d", p.r.Name, p.r.Base+512+p.tcpLo, p.r.Base+512+p.tcpHi-1)
	return 0
}

// Listen returns a TCP listener on host (an IP address) at a port of the
// range. A port found free can still be taken before the listener binds
// it (by a process outside the suite), so it binds and moves on to the
// next port when that fails, rather than probing first.
func (p *Ports) Listen(t testing.TB, host string) net.Listener {
	t.Helper()
	var last error
	for range 16 {
		ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(p.TCP(t))))
		if err == nil {
			return ln
		}
		last = err
	}
	t.Fatalf("testutil: no TCP listener in %s's range: %v", p.r.Name, last)
	return nil
}

// TCPAddr returns "127.0.0.1:PORT" with a free port from TCP.
func (p *Ports) TCPAddr(t testing.TB) string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(p.TCP(t)))
}

// UDP returns n consecutive UDP server ports, first..last, which are free
// with their client partners (port + UDPPartnerOffset) on 127.0.0.1 and ::1.
func (p *Ports) UDP(t testing.TB, n int) (first, last int) {
	t.Helper()
	if max := min(64, p.udpHi-p.udpLo); n < 1 || n > max {
		t.Fatalf("testutil: %d UDP ports asked for, want 1-%d", n, max)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	// First ports no running test was given; failing that (more tests
	// at once than the window holds), any that are free right now.
	for _, unleased := range []bool{true, false} {
		for range p.udpHi - p.udpLo {
			if p.nextUDP+n > p.udpHi {
				p.nextUDP = p.udpLo
			}
			off := p.nextUDP
			p.nextUDP += n
			if unleased && p.leased(off, n) {
				continue
			}
			first = p.r.Base + off
			ok := true
			for port := first; port < first+n && ok; port++ {
				ok = udpFree(port) && udpFree(port+UDPPartnerOffset)
			}
			if ok {
				p.lease(t, off, n)
				return first, first + n - 1
			}
		}
	}
	t.Fatalf("testutil: no %d free UDP ports in %s's range %d-%d", n, p.r.Name, p.r.Base+p.udpLo, p.r.Base+p.udpHi-1)
	return 0, 0
}

// leased reports whether a running test was given any of the n UDP
// server ports from offset off. p.mu is held.
func (p *Ports) leased(off, n int) bool {
	for _, c := range p.udpLeased[off : off+n] {
		if c > 0 {
			return true
		}
	}
	return false
}

// lease marks the n UDP server ports from offset off as t's until t ends.
// p.mu is held.
func (p *Ports) lease(t testing.TB, off, n int) {
	for i := off; i < off+n; i++ {
		p.udpLeased[i]++
	}
	t.Cleanup(func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		for i := off; i < off+n; i++ {
			p.udpLeased[i]--
		}
	})
}

// UDPRange is UDP formatted as "first-last", the form of configurations.
func (p *Ports) UDPRange(t testing.TB, n int) string {
	first, last := p.UDP(t, n)
	return fmt.Sprintf("%d-%d", first, last)
}

func tcpFree(port int) bool {
	for _, host := range []string{"127.0.0.1", "::1"} {
		ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
		if err != nil {
			if host == "::1" && !hasIPv6() {
				continue
			}
			return false
		}
		ln.Close()
	}
	return true
}

func udpFree(port int) bool {
	for _, host := range []string{"127.0.0.1", "::1"} {
		c, err := net.ListenPacket("udp", net.JoinHostPort(host, strconv.Itoa(port)))
		if err != nil {
			if host == "::1" && !hasIPv6() {
				continue
			}
			return false
		}
		c.Close()
	}
	return true
}

var hasIPv6 = sync.OnceValue(func() bool {
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		return false
	}
	ln.Close()
	return true
})

// HTTPServer starts an httptest server for handler on a TCP port of the
// range, instead of the kernel's ephemeral one, and closes it when the
// test ends.
func (p *Ports) HTTPServer(t testing.TB, handler http.Handler) *httptest.Server {
	t.Helper()
	s := httptest.NewUnstartedServer(handler)
	s.Listener.Close()
	s.Listener = p.Listen(t, "127.0.0.1")
	s.Start()
	t.Cleanup(s.Close)
	return s
}
