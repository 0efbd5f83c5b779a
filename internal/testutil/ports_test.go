package testutil

import (
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestRangesApart: no two packages share ports, and no range meets the
// kernel's ephemeral range or the ports of a `make run` on the machine.
func TestRangesApart(t *testing.T) {
	lo, hi := 32768, 60999
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		f := strings.Fields(string(b))
		if len(f) == 2 {
			lo, _ = strconv.Atoi(f[0])
			hi, _ = strconv.Atoi(f[1])
		}
	}
	for i, a := range AllRanges {
		aEnd := a.Base + RangeSize - 1
		if a.Base <= hi && aEnd >= lo {
			t.Errorf("%s %d-%d overlaps the ephemeral range %d-%d", a.Name, a.Base, aEnd, lo, hi)
		}
		if a.Base <= 3255 && aEnd >= 2000 {
			t.Errorf("%s %d-%d overlaps make run's ports 2000-3255", a.Name, a.Base, aEnd)
		}
		for _, b := range AllRanges[i+1:] {
			if a.Base < b.Base+RangeSize && b.Base < a.Base+RangeSize {
				t.Errorf("%s and %s overlap", a.Name, b.Name)
			}
		}
	}
}

// TestPortsSkipBusy: a port something else holds is never handed out.
func TestPortsSkipBusy(t *testing.T) {
	r := Range{"testutil", 31744} // below the ephemeral range, used by this test only
	p := NewPorts(r)
	held, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(r.Base+512))
	if err != nil {
		t.Skipf("cannot hold a port: %v", err)
	}
	defer held.Close()
	if got := p.TCP(t); got == r.Base+512 || got < r.Base+512 || got >= r.Base+RangeSize {
		t.Errorf("TCP gave %d (held %d)", got, r.Base+512)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:"+strconv.Itoa(r.Base+UDPPartnerOffset+1))
	if err != nil {
		t.Skipf("cannot hold a port: %v", err)
	}
	defer pc.Close()
	first, last := p.UDP(t, 2) // 31744-31745 would need partner 32001, which is held
	if first <= r.Base+1 && last >= r.Base+1 {
		t.Errorf("UDP gave %d-%d although %d's partner is held", first, last, r.Base+1)
	}
	if last-first != 1 || first < r.Base || last > r.Base+255 {
		t.Errorf("UDP gave %d-%d", first, last)
	}
}

// TestPortsLeaseUDP: UDP does not hand out ports that a running test was
// given, even once its window wraps round and the ports still look free
// (a server binds them only when a test starts); the ports of a test that
// ended come back, and when every port is given the free ones are shared
// rather than none.
func TestPortsLeaseUDP(t *testing.T) {
	r := Range{"testutil", 30720} // below the ephemeral range, used by this test only
	p := NewPorts(r)
	const n = 8
	half := parentUDP / n / 2
	held := map[int]bool{}
	for range half {
		first, _ := p.UDP(t, n) // leased until this test ends
		held[first] = true
	}
	t.Run("ended", func(t *testing.T) {
		for range half {
			if first, _ := p.UDP(t, n); held[first] {
				t.Fatalf("UDP gave %d twice", first)
			}
		}
	})
	// The window has wrapped round: only the ended subtest's ports are
	// free of a lease.
	for range half {
		first, _ := p.UDP(t, n)
		if held[first] {
			t.Fatalf("UDP gave %d, which a running test holds", first)
		}
		if first < r.Base || first >= r.Base+parentUDP {
			t.Fatalf("UDP gave %d, outside the window", first)
		}
	}
	if first, _ := p.UDP(t, n); first < r.Base || first >= r.Base+parentUDP {
		t.Errorf("every port leased: UDP gave %d, outside the window", first)
	}
}
