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
