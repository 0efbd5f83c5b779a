package udpio

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// waiters makes n goroutines wait on the write direction of c at once, as
// a Sender and a WriteTo do when the socket buffer is full (here they
// wait for POLLIN, which never comes, so they stay in ppoll), and returns
// their errors once all returned.
func waiters(c *Conn, n int) <-chan []error {
	out := make(chan []error, 1)
	go func() {
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				c.s.mu.RLock()
				defer c.s.mu.RUnlock()
				errs[i] = c.s.wait(dirWrite, unix.POLLIN)
			})
		}
		wg.Wait()
		out <- errs
	}()
	return out
}

// TestWaitersShareNothing: two writers waiting at once neither race on
// the wait scratch (the race detector watches) nor sleep through a
// deadline or Close that woke the other.
func TestWaitersShareNothing(t *testing.T) {
	for _, how := range []string{"deadline", "close"} {
		t.Run(how, func(t *testing.T) {
			c, err := Listen(netip.MustParseAddrPort("127.0.0.1:0"), Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			done := waiters(c, 4)
			time.Sleep(50 * time.Millisecond)
			want := os.ErrDeadlineExceeded
			if how == "close" {
				want = net.ErrClosed
				go c.Close()
			} else {
				c.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
			}
			select {
			case errs := <-done:
				for i, err := range errs {
					if !errors.Is(err, want) {
						t.Errorf("waiter %d: %v, want %v", i, err, want)
					}
				}
			case <-time.After(3 * time.Second):
				t.Fatalf("a waiter slept through the %s", how)
			}
		})
	}
}

// TestSendBlocked: the ENOBUFS retry of Send gives up on Close and on a
// passed write deadline instead of sleeping on.
func TestSendBlocked(t *testing.T) {
	c, err := Listen(netip.MustParseAddrPort("127.0.0.1:0"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.sendBlocked(); err != nil {
		t.Fatalf("fresh conn: %v", err)
	}
	c.SetWriteDeadline(time.Now().Add(-time.Second))
	if err := c.sendBlocked(); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("past deadline: %v", err)
	}
	c.SetWriteDeadline(time.Time{})
	c.Close()
	if err := c.sendBlocked(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("closed: %v", err)
	}
}

// TestControlBuffersAligned: control message buffers start on an 8-byte
// boundary, each message's slot too.
func TestControlBuffersAligned(t *testing.T) {
	for n := 1; n <= 300; n += 7 {
		b := alignedBytes(n)
		if len(b) != n || uintptr(unsafe.Pointer(&b[0]))%8 != 0 {
			t.Fatalf("alignedBytes(%d): len %d at %p", n, len(b), &b[0])
		}
	}
	if oobSize%8 != 0 {
		t.Fatalf("oobSize %d breaks the alignment of later slots", oobSize)
	}
	if g := gsoControl(1400); uintptr(unsafe.Pointer(&g[0]))%8 != 0 {
		t.Fatal("GSO control message not aligned")
	}
}
