package core

import (
	"io"
	"net"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// tcpDropper takes bytes off a TCP connection without copying them to user
// space: recv with MSG_TRUNC on a TCP socket frees the data in the kernel
// (tcp(7)). A receiver that only counts the payload saves the copy, the
// largest single cost of a fast TCP receiver.
type tcpDropper struct {
	rc  syscall.RawConn
	buf []byte
	n   int
	err error
	fn  func(fd uintptr) bool // made once: no allocation per read
}

// newTCPDropper returns a dropper for c, or nil when c is not a TCP socket
// (the caller then reads normally).
func newTCPDropper(c net.Conn) *tcpDropper {
	if _, ok := c.(*net.TCPConn); !ok {
		return nil
	}
	rc, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		return nil
	}
	d := &tcpDropper{rc: rc}
	d.fn = d.recv
	return d
}

func (d *tcpDropper) recv(fd uintptr) bool {
	// The buffer is only the length's backing: MSG_TRUNC writes nothing
	// into it.
	r, _, e := unix.Syscall6(unix.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(unsafe.SliceData(d.buf))), uintptr(len(d.buf)),
		unix.MSG_TRUNC|unix.MSG_DONTWAIT, 0, 0)
	if e == unix.EAGAIN {
		return false
	}
	d.n, d.err = int(r), nil
	if e != 0 {
		d.n, d.err = 0, e
	}
	return true
}

// drop takes up to len(buf) bytes off the connection and discards them,
// blocking like Read (deadlines and Close apply). It returns io.EOF at the
// end of the stream.
func (d *tcpDropper) drop(buf []byte) (int, error) {
	d.buf = buf
	if err := d.rc.Read(d.fn); err != nil {
		return 0, err
	}
	d.buf = nil
	if d.err != nil {
		return 0, &net.OpError{Op: "read", Net: "tcp", Err: d.err}
	}
	if d.n == 0 {
		return 0, io.EOF
	}
	return d.n, nil
}
