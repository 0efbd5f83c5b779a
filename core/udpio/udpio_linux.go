package udpio

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

const batchSupported = true

// gsoSupported asks the kernel once whether it knows UDP_SEGMENT (Linux
// 4.18+); a kernel that does not fails the getsockopt.
var gsoSupported = sync.OnceValue(func() bool {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	_, err = unix.GetsockoptInt(fd, unix.SOL_UDP, unix.UDP_SEGMENT)
	return err == nil
})

// groRefused remembers a kernel that rejected UDP_GRO (before 5.0), so
// later sockets do not ask again.
var groRefused atomic.Bool

func enableGRO(rc syscall.RawConn) bool {
	if groRefused.Load() {
		return false
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_UDP, unix.UDP_GRO, 1)
	}); err != nil || serr != nil {
		groRefused.Store(true)
		return false
	}
	return true
}

func forceBuffers(rc syscall.RawConn, size int) bool {
	ok := true
	rc.Control(func(fd uintptr) {
		if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, size) != nil {
			ok = false
		}
		if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, size) != nil {
			ok = false
		}
	})
	return ok
}

// isGSORefusal reports a send error that means "this path cannot do GSO":
// EIO from a device without checksum offload, EINVAL when a segment does
// not fit the MTU.
func isGSORefusal(err error) bool {
	return errors.Is(err, unix.EIO) || errors.Is(err, unix.EINVAL)
}

// Control message layout of this platform.
var (
	cmsgLenSize = int(unsafe.Sizeof(unix.Cmsghdr{}.Len))
	cmsgHdrSize = unix.CmsgLen(0)
	cmsgLevelAt = int(unsafe.Offsetof(unix.Cmsghdr{}.Level))
	cmsgTypeAt  = int(unsafe.Offsetof(unix.Cmsghdr{}.Type))
)

func putCmsgLen(b []byte, n int) {
	if cmsgLenSize == 8 {
		binary.NativeEndian.PutUint64(b, uint64(n))
	} else {
		binary.NativeEndian.PutUint32(b, uint32(n))
	}
}

func cmsgLen(b []byte) uint64 {
	if cmsgLenSize == 8 {
		return binary.NativeEndian.Uint64(b)
	}
	return uint64(binary.NativeEndian.Uint32(b))
}

// gsoControl builds the UDP_SEGMENT control message for segments of size
// bytes (a u16 on the wire).
func gsoControl(size int) []byte {
	b := make([]byte, unix.CmsgSpace(2))
	putCmsgLen(b, unix.CmsgLen(2))
	binary.NativeEndian.PutUint32(b[cmsgLevelAt:], uint32(unix.SOL_UDP))
	binary.NativeEndian.PutUint32(b[cmsgTypeAt:], uint32(unix.UDP_SEGMENT))
	binary.NativeEndian.PutUint16(b[cmsgHdrSize:], uint16(size))
	return b
}

// ParseGRO returns the segment size from a UDP_GRO control message in oob,
// or 0 when there is none. It never trusts the lengths in oob: a truncated
// or malformed buffer yields 0 (or the size from a well-formed message
// before the damage).
func ParseGRO(oob []byte) int {
	for len(oob) >= cmsgHdrSize {
		l := cmsgLen(oob)
		if l < uint64(cmsgHdrSize) || l > uint64(len(oob)) {
			return 0
		}
		level := int32(binary.NativeEndian.Uint32(oob[cmsgLevelAt:]))
		typ := int32(binary.NativeEndian.Uint32(oob[cmsgTypeAt:]))
		data := oob[cmsgHdrSize:l]
		if level == unix.SOL_UDP && typ == unix.UDP_GRO {
			// The kernel puts an int; accept a u16 too.
			switch {
			case len(data) >= 4:
				return int(max(0, int32(binary.NativeEndian.Uint32(data))))
			case len(data) >= 2:
				return int(binary.NativeEndian.Uint16(data))
			}
			return 0
		}
		next := unix.CmsgSpace(int(l) - cmsgHdrSize)
		if next <= 0 || next >= len(oob) {
			return 0
		}
		oob = oob[next:]
	}
	return 0
}

// mmsgReader is recvmmsg with headers, addresses and control buffers made
// once. golang.org/x/net's ReadBatch is not used for receiving because it
// allocates a net.UDPAddr for every message; this one parses source
// addresses into netip.AddrPort values without allocating.
type mmsgReader struct {
	hs    []unix.Mmsghdr
	iovs  []unix.Iovec
	names []unix.RawSockaddrInet6
	n     int
	errno syscall.Errno
	fn    func(fd uintptr) bool // bound once: a method value per call would allocate
}

func (m *mmsgReader) init(r *Reader, batch int) {
	m.hs = make([]unix.Mmsghdr, batch)
	m.iovs = make([]unix.Iovec, batch)
	m.names = make([]unix.RawSockaddrInet6, batch)
	for i := range m.hs {
		m.iovs[i].Base = &r.buf[i*r.bufSize]
		m.iovs[i].SetLen(r.bufSize)
		h := &m.hs[i].Hdr
		h.Name = (*byte)(unsafe.Pointer(&m.names[i]))
		h.Iov = &m.iovs[i]
		h.SetIovlen(1)
		h.Control = &r.oob[i*oobSize]
	}
	m.fn = m.recv
}

func (m *mmsgReader) recv(fd uintptr) bool {
	for i := range m.hs {
		h := &m.hs[i].Hdr
		h.Namelen = unix.SizeofSockaddrInet6
		h.SetControllen(oobSize)
		h.Flags = 0
	}
	for {
		// MSG_TRUNC makes the kernel report a cut datagram's real length.
		n, _, e := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&m.hs[0])),
			uintptr(len(m.hs)), unix.MSG_TRUNC, 0, 0)
		switch e {
		case 0:
			m.n, m.errno = int(n), 0
			return true
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false // wait for the poller
		}
		m.n, m.errno = 0, e
		return true
	}
}

func (m *mmsgReader) read(r *Reader) (int, error) {
	if err := r.c.rc.Read(m.fn); err != nil {
		return 0, err
	}
	if m.errno != 0 {
		return 0, m.errno
	}
	for i := range m.n {
		h := &m.hs[i]
		r.lens[i] = int(h.Len)
		r.segs[i] = ParseGRO(r.oob[i*oobSize : i*oobSize+int(h.Hdr.Controllen)])
		r.srcs[i] = sockaddrToAddrPort(&m.names[i])
	}
	return m.n, nil
}

// sockaddrToAddrPort parses a sockaddr_in or sockaddr_in6. IPv4-mapped
// IPv6 addresses come back as IPv4, so one peer compares equal whichever
// family the socket has. The zone of a link-local address is dropped: the
// socket is bound to one interface already.
func sockaddrToAddrPort(sa *unix.RawSockaddrInet6) netip.AddrPort {
	b := (*[unix.SizeofSockaddrInet6]byte)(unsafe.Pointer(sa))
	port := binary.BigEndian.Uint16(b[2:4])
	switch sa.Family {
	case unix.AF_INET:
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[4:8])), port)
	case unix.AF_INET6:
		return netip.AddrPortFrom(netip.AddrFrom16([16]byte(b[8:24])).Unmap(), port)
	}
	return netip.AddrPort{}
}
