package core

import (
	"io"
	"net"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func rcvLowat(t *testing.T, c net.Conn) int {
	t.Helper()
	rc, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var v int
	var gerr error
	rc.Control(func(fd uintptr) { v, gerr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVLOWAT) })
	if gerr != nil {
		t.Fatal(gerr)
	}
	return v
}

// TestRxLowatFollowsRate: a fast connection gets a receive low-water mark,
// and when its rate falls the mark goes back to the default, so data held
// below the old mark reaches a reader that is already waiting.
func TestRxLowatFollowsRate(t *testing.T) {
	t.Parallel()
	a, b := tcpPair(t)
	// A fixed buffer, so the cap is known (autotuning would need traffic).
	if err := b.(*net.TCPConn).SetReadBuffer(8 << 20); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	l := newRxLowat([]net.Conn{b}, start)
	rx := make([]paddedCounter, 1)

	// net.core.rmem_max may cap the buffer, and with it the mark.
	buf, err := b.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var rcvbuf int
	buf.Control(func(fd uintptr) { rcvbuf, _ = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF) })
	want := lowatFor(5e9/8, rcvbuf)
	if want == 0 {
		t.Fatalf("a %d-byte receive buffer leaves no room for a mark", rcvbuf)
	}

	rx[0].Add(5e9 / 8) // 5 Gbit/s over the first second
	l.update(start.Add(time.Second), rx)
	if got := rcvLowat(t, b); got != want {
		t.Fatalf("SO_RCVLOWAT at 5 Gbit/s = %d, want %d", got, want)
	}

	// A reader waits; a trickle arrives below the mark.
	got := make(chan int, 1)
	go func() {
		buf := make([]byte, 4096)
		b.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, _ := io.ReadAtLeast(b, buf, 1000)
		got <- n
	}()
	if _, err := a.Write(make([]byte, 1000)); err != nil {
		t.Fatal(err)
	}
	// The next interval sees no progress: back to the default.
	l.update(start.Add(2*time.Second), rx)
	if v := rcvLowat(t, b); v != 1 {
		t.Fatalf("SO_RCVLOWAT after the rate fell = %d, want 1", v)
	}
	if n := <-got; n != 1000 {
		t.Fatalf("reader got %d bytes of the trickle, want 1000", n)
	}
}
