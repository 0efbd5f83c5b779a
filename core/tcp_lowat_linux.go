package core

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// lowatConn sets SO_RCVLOWAT on one TCP connection (see lowatFor).
type lowatConn struct {
	rc  syscall.RawConn
	cur int // the mark set now; 0: the kernel's default
}

// newLowatConn returns nil when c is not a TCP connection.
func newLowatConn(c net.Conn) *lowatConn {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return nil
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return nil
	}
	return &lowatConn{rc: rc}
}

// follow sets the mark for a receive rate of bytesPerSec. The receive
// buffer is read each time because autotuning grows it.
func (l *lowatConn) follow(bytesPerSec float64) {
	if l.cur == 0 && bytesPerSec*lowatSpan.Seconds() < lowatMin {
		return // slow and at the default: no system call
	}
	l.rc.Control(func(fd uintptr) {
		buf, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF)
		if err != nil {
			return
		}
		v := lowatFor(bytesPerSec, buf)
		if v == l.cur {
			return
		}
		if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVLOWAT, max(v, 1)) == nil {
			l.cur = v
		}
	})
}
