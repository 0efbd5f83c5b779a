package portpool

import (
	"errors"
	"net"
	"strconv"
	"testing"
)

func ok(int) error { return nil }

func TestLowestFreeAndReuse(t *testing.T) {
	t.Parallel()
	p, err := New(2001, 2010)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := p.Acquire(1, ok)
	b, _ := p.Acquire(1, ok)
	if a != 2001 || b != 2002 {
		t.Fatalf("got %d %d", a, b)
	}
	p.Release(a)
	if c, _ := p.Acquire(1, ok); c != 2001 {
		t.Fatalf("released port not reused: %d", c)
	}
	if p.InUse() != 2 {
		t.Fatalf("in use %d", p.InUse())
	}
}

func TestNoClientServerClash(t *testing.T) {
	t.Parallel()
	p, _ := New(2001, 2600)
	a, _ := p.Acquire(1, ok) // 2001, client 2257
	for range 255 {
		p.Acquire(1, ok)
	}
	// 2001..2256 are taken and 2257..2512 are their client ports.
	n, _ := p.Acquire(1, ok)
	if n == a+ClientOffset {
		t.Fatalf("handed out %d, the client port of %d", n, a)
	}
	if n != 2513 {
		t.Fatalf("want 2513, got %d", n)
	}
}

func TestMultiStreamClash(t *testing.T) {
	t.Parallel()
	p, _ := New(2001, 2600)
	p.Acquire(4, ok) // client ports 2257..2260
	for port := 2002; port <= 2256; port++ {
		p.Acquire(1, ok)
	}
	n, _ := p.Acquire(1, ok)
	if n >= 2257 && n <= 2260 {
		t.Fatalf("port %d clashes with client streams", n)
	}
}

func TestExhaustedAndBusy(t *testing.T) {
	t.Parallel()
	p, _ := New(3001, 3002)
	busy := errors.New("in use")
	_, err := p.Acquire(1, func(port int) error {
		if port == 3001 {
			return busy
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Acquire(1, func(int) error { return busy }); !errors.Is(err, ErrExhausted) {
		t.Fatalf("want ErrExhausted, got %v", err)
	}
}

func TestSkipsPortBoundByOS(t *testing.T) {
	t.Parallel()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	taken := c.LocalAddr().(*net.UDPAddr).Port
	if taken+ClientOffset+1 > 65535 {
		t.Skip("ephemeral port too high for this test")
	}
	p, _ := New(taken, taken+1)
	var conn net.PacketConn
	got, err := p.Acquire(1, func(port int) error {
		var err error
		conn, err = net.ListenPacket("udp", "127.0.0.1:"+strconv.Itoa(port))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if got != taken+1 {
		t.Fatalf("got %d, want %d (busy port skipped)", got, taken+1)
	}
}

func TestInvalidRange(t *testing.T) {
	t.Parallel()
	for _, r := range [][2]int{{0, 10}, {10, 5}, {65000, 65400}} {
		if _, err := New(r[0], r[1]); err == nil {
			t.Errorf("range %v accepted", r)
		}
	}
}
