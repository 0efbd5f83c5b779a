package core

import (
	"net"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// tcpRTT is the kernel's smoothed round-trip time of a TCP connection, 0
// when it cannot tell. A UDP sender uses the control connection's to know
// how long its peer's reports lag behind its own rate changes.
func tcpRTT(c net.Conn) time.Duration {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return 0
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0
	}
	var rtt time.Duration
	rc.Control(func(fd uintptr) {
		if info, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO); err == nil {
			rtt = time.Duration(info.Rtt) * time.Microsecond
		}
	})
	return rtt
}

// promptAcks makes the kernel acknowledge a TCP connection's segments at
// once instead of delaying the acknowledgement until data goes back the
// other way. On a UDP test's control connection, where each end sends a
// report every udpFastStatus, a delayed acknowledgement waits for the
// next report of the other end: the peer's tcpRTT then holds up to a
// report's interval that is not the path's, on one end more than on the
// other (their grids' offset), and that end's start-up waits that long
// after every step (see fastControl.setRate).
type promptAcks struct{ rc syscall.RawConn }

func newPromptAcks(c net.Conn) promptAcks {
	var p promptAcks
	if sc, ok := c.(syscall.Conn); ok {
		p.rc, _ = sc.SyscallConn()
	}
	return p
}

// again sets TCP_QUICKACK, which the kernel clears by itself once the
// connection looks interactive: after every read.
func (p promptAcks) again() {
	if p.rc == nil {
		return
	}
	p.rc.Control(func(fd uintptr) {
		_ = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_QUICKACK, 1)
	})
}
