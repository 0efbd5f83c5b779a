package udpio

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"
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

// isGSORefusal reports a send error that means "this path cannot do GSO":
// EIO from a device without checksum offload, EINVAL when a segment does
// not fit the MTU.
func isGSORefusal(err error) bool {
	return errors.Is(err, unix.EIO) || errors.Is(err, unix.EINVAL)
}

// eventOne is the eventfd increment, a u64 in host order.
var eventOne = func() (b [8]byte) {
	binary.NativeEndian.PutUint64(b[:], 1)
	return b
}()

// sysConn is a non-blocking UDP socket outside the runtime's poller. A call
// that would block waits in ppoll on the socket and on its direction's
// eventfd, which deadlines and Close signal. The read lock is held across
// every call so Close can wait for them before closing the descriptors.
type sysConn struct {
	fd       int
	v6       bool
	efd      [2]int // wake-ups for the reader and the writer
	deadline [2]atomic.Int64
	closed   atomic.Bool
	mu       sync.RWMutex
	// waitMu serialises the waiters of one direction: a Sender and a
	// WriteTo may both wait to write, and they share the scratch below
	// and the direction's eventfd (a wake-up read by one waiter must not
	// leave the other asleep: the second looks at closed and the deadline
	// before it sleeps).
	waitMu [2]sync.Mutex
	pfd    [2][2]unix.PollFd
	ts     [2]unix.Timespec
	ebuf   [2][8]byte
}

func (s *sysConn) open(addr netip.AddrPort) error {
	s.fd, s.efd = -1, [2]int{-1, -1}
	family := unix.AF_INET
	s.v6 = !addr.Addr().Is4()
	if s.v6 {
		family = unix.AF_INET6
	}
	fd, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return os.NewSyscallError("socket", err)
	}
	s.fd = fd
	fail := func(op string, err error) error {
		s.closeFDs()
		return os.NewSyscallError(op, err)
	}
	if s.v6 {
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1); err != nil {
			return fail("setsockopt", err)
		}
	}
	sa, err := sockaddr(addr)
	if err != nil {
		s.closeFDs()
		return err
	}
	if err := unix.Bind(fd, sa); err != nil {
		return fail("bind", err)
	}
	for i := range s.efd {
		if s.efd[i], err = unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC); err != nil {
			return fail("eventfd", err)
		}
	}
	return nil
}

// sockaddr converts addr, resolving a link-local zone to its interface.
func sockaddr(addr netip.AddrPort) (unix.Sockaddr, error) {
	a := addr.Addr()
	if a.Is4() {
		return &unix.SockaddrInet4{Port: int(addr.Port()), Addr: a.As4()}, nil
	}
	sa := &unix.SockaddrInet6{Port: int(addr.Port()), Addr: a.As16()}
	if z := a.Zone(); z != "" {
		ifi, err := net.InterfaceByName(z)
		if err != nil {
			return nil, err
		}
		sa.ZoneId = uint32(ifi.Index)
	}
	return sa, nil
}

func (s *sysConn) closeFDs() {
	for _, fd := range [...]int{s.fd, s.efd[0], s.efd[1]} {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
}

func (s *sysConn) localAddr() netip.AddrPort {
	sa, err := unix.Getsockname(s.fd)
	if err != nil {
		return netip.AddrPort{}
	}
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(sa.Port))
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr), uint16(sa.Port))
	}
	return netip.AddrPort{}
}

func (s *sysConn) enableGRO() bool {
	if groRefused.Load() {
		return false
	}
	if err := unix.SetsockoptInt(s.fd, unix.SOL_UDP, unix.UDP_GRO, 1); err != nil {
		groRefused.Store(true)
		return false
	}
	return true
}

func (s *sysConn) setBuffers(size int) int {
	if unix.SetsockoptInt(s.fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, size) != nil {
		unix.SetsockoptInt(s.fd, unix.SOL_SOCKET, unix.SO_RCVBUF, size)
	}
	if unix.SetsockoptInt(s.fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, size) != nil {
		unix.SetsockoptInt(s.fd, unix.SOL_SOCKET, unix.SO_SNDBUF, size)
	}
	return s.rcvBuf(size)
}

// rcvBuf is the receive buffer in force, halved back from the kernel's
// doubled figure; dflt when the kernel does not answer.
func (s *sysConn) rcvBuf(dflt int) int {
	v, err := unix.GetsockoptInt(s.fd, unix.SOL_SOCKET, unix.SO_RCVBUF)
	if err != nil {
		return dflt
	}
	return v / 2
}

func (s *sysConn) setDeadline(dir int, t time.Time) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed.Load() {
		return net.ErrClosed
	}
	var ns int64
	if !t.IsZero() {
		ns = max(t.UnixNano(), 1)
	}
	s.deadline[dir].Store(ns)
	unix.Write(s.efd[dir], eventOne[:])
	return nil
}

func (s *sysConn) close() error {
	if !s.closed.CompareAndSwap(false, true) {
		return net.ErrClosed
	}
	for _, fd := range s.efd {
		unix.Write(fd, eventOne[:])
	}
	s.mu.Lock() // every call in progress has returned
	s.closeFDs()
	s.mu.Unlock()
	return nil
}

// wait blocks until the socket is ready for dir (events), the deadline of
// dir passes, or the Conn is closed. The caller holds the read lock.
func (s *sysConn) wait(dir int, events int16) error {
	s.waitMu[dir].Lock()
	defer s.waitMu[dir].Unlock()
	for {
		if s.closed.Load() {
			return net.ErrClosed
		}
		var tsp *unix.Timespec
		if dl := s.deadline[dir].Load(); dl != 0 {
			d := dl - time.Now().UnixNano()
			if d <= 0 {
				return os.ErrDeadlineExceeded
			}
			s.ts[dir] = unix.NsecToTimespec(d)
			tsp = &s.ts[dir]
		}
		p := &s.pfd[dir]
		p[0] = unix.PollFd{Fd: int32(s.fd), Events: events}
		p[1] = unix.PollFd{Fd: int32(s.efd[dir]), Events: unix.POLLIN}
		if _, err := unix.Ppoll(p[:], tsp, nil); err != nil && err != unix.EINTR {
			return os.NewSyscallError("ppoll", err)
		}
		if p[1].Revents != 0 {
			unix.Read(s.efd[dir], s.ebuf[dir][:])
		}
		if p[0].Revents != 0 {
			return nil
		}
		// A wake-up or a timeout: look at closed and the deadline again.
	}
}

// mmsg runs sendmmsg or recvmmsg on hs without blocking, waiting in ppoll
// while the socket is not ready, and returns the messages done.
func (s *sysConn) mmsg(trap uintptr, dir int, events int16, hs []unix.Mmsghdr, flags int) (int, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for {
		if s.closed.Load() {
			return 0, net.ErrClosed
		}
		n, _, e := unix.Syscall6(trap, uintptr(s.fd), uintptr(unsafe.Pointer(&hs[0])), uintptr(len(hs)),
			uintptr(flags|unix.MSG_DONTWAIT), 0, 0)
		switch e {
		case 0:
			return int(n), nil
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			if err := s.wait(dir, events); err != nil {
				return 0, err
			}
			continue
		}
		if trap == unix.SYS_SENDMMSG {
			return 0, os.NewSyscallError("sendmmsg", e)
		}
		return 0, os.NewSyscallError("recvmmsg", e)
	}
}

// recvOnce runs one non-blocking recvmmsg on hs; errno EAGAIN means
// nothing is queued, EBADF that the Conn is closed.
func (s *sysConn) recvOnce(hs []unix.Mmsghdr, flags int) (int, unix.Errno) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed.Load() {
		return 0, unix.EBADF
	}
	for {
		n, _, e := unix.Syscall6(unix.SYS_RECVMMSG, uintptr(s.fd), uintptr(unsafe.Pointer(&hs[0])), uintptr(len(hs)),
			uintptr(flags|unix.MSG_DONTWAIT), 0, 0)
		if e != unix.EINTR {
			return int(n), e
		}
	}
}

// waitRead waits until a datagram is queued, the read deadline passes or
// the Conn is closed.
func (s *sysConn) waitRead() error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.wait(dirRead, unix.POLLIN)
}

func (s *sysConn) writeTo(b []byte, dst netip.AddrPort) error {
	sa, err := sockaddr(dst)
	if err != nil {
		return err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	for {
		if s.closed.Load() {
			return net.ErrClosed
		}
		err := unix.Sendto(s.fd, b, unix.MSG_DONTWAIT, sa)
		switch err {
		case nil:
			return nil
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			if err := s.wait(dirWrite, unix.POLLOUT); err != nil {
				return err
			}
			continue
		}
		return os.NewSyscallError("sendto", err)
	}
}

// putSockaddr writes dst as a sockaddr_in or sockaddr_in6 into b and
// returns its length.
func putSockaddr(b *[unix.SizeofSockaddrInet6]byte, dst netip.AddrPort) uint32 {
	*b = [unix.SizeofSockaddrInet6]byte{}
	binary.BigEndian.PutUint16(b[2:4], dst.Port())
	a := dst.Addr()
	if a.Is4() {
		binary.NativeEndian.PutUint16(b[0:2], unix.AF_INET)
		a4 := a.As4()
		copy(b[4:8], a4[:])
		return unix.SizeofSockaddrInet4
	}
	binary.NativeEndian.PutUint16(b[0:2], unix.AF_INET6)
	a16 := a.As16()
	copy(b[8:24], a16[:])
	if z := a.Zone(); z != "" {
		if ifi, err := net.InterfaceByName(z); err == nil {
			binary.NativeEndian.PutUint32(b[24:28], uint32(ifi.Index))
		}
	}
	return unix.SizeofSockaddrInet6
}

// senderSys holds a Sender's sendmmsg headers, made once.
type senderSys struct {
	hs   []unix.Mmsghdr
	iovs []unix.Iovec
	name [unix.SizeofSockaddrInet6]byte
	oob  []byte // UDP_SEGMENT control message
}

func (x *senderSys) init(s *Sender) {
	x.hs = make([]unix.Mmsghdr, s.maxN)
	x.iovs = make([]unix.Iovec, s.maxN)
	namelen := putSockaddr(&x.name, s.dst)
	for i := range x.hs {
		h := &x.hs[i].Hdr
		h.Name = &x.name[0]
		h.Namelen = namelen
		h.Iov = &x.iovs[i]
		h.SetIovlen(1)
	}
	if s.gso {
		x.oob = gsoControl(s.size)
	}
}

// send sends the first m spans of s and returns how many went out.
func (x *senderSys) send(s *Sender, m int) (int, error) {
	for i, sp := range s.spans[:m] {
		x.iovs[i].Base = &s.slot[sp.lo]
		x.iovs[i].SetLen(sp.hi - sp.lo)
		h := &x.hs[i].Hdr
		if s.gso && sp.hi-sp.lo > s.size {
			h.Control = &x.oob[0]
			h.SetControllen(len(x.oob))
		} else {
			h.Control = nil
			h.SetControllen(0)
		}
	}
	per := m
	if !s.c.feat.Batch {
		per = 1
	}
	sent := 0
	for sent < m {
		k, err := s.c.s.mmsg(unix.SYS_SENDMMSG, dirWrite, unix.POLLOUT, x.hs[sent:min(m, sent+per)], 0)
		sent += k
		if err != nil {
			return sent, err
		}
	}
	return sent, nil
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
	b := alignedBytes(unix.CmsgSpace(2))
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

// coalesceWait is how long a reader that emptied the socket sleeps before
// reading again while datagrams are flowing. A reader waiting in ppoll is
// woken for every datagram, and the wake-up is paid by the sender's CPU
// (on loopback, the sender runs the receive path): a third of what it
// could send. A sleeping reader is not on the socket's wait queue, so
// datagrams just queue up, a few dozen per sleep, the way interrupt
// moderation batches them on a NIC. A reader that is busy (its last read
// took more than a quarter of a batch) looks again at once and sleeps
// only when it finds nothing: sleeping then would cost it throughput.
const coalesceWait = 100 * time.Microsecond

// readerSys is recvmmsg with headers, addresses and control buffers made
// once. (golang.org/x/net's ReadBatch allocates a net.UDPAddr for every
// message; this parses source addresses into netip.AddrPort values.)
type readerSys struct {
	hs      []unix.Mmsghdr
	iovs    []unix.Iovec
	names   []unix.RawSockaddrInet6
	drained bool // the last read emptied the socket while data flowed
	small   bool // and took at most a quarter of a batch
	nap     unix.Timespec
}

func (x *readerSys) init(r *Reader, batch int) {
	x.hs = make([]unix.Mmsghdr, batch)
	x.iovs = make([]unix.Iovec, batch)
	x.names = make([]unix.RawSockaddrInet6, batch)
	x.nap = unix.NsecToTimespec(int64(coalesceWait))
	for i := range x.hs {
		x.iovs[i].Base = &r.buf[i*r.bufSize]
		x.iovs[i].SetLen(r.bufSize)
		h := &x.hs[i].Hdr
		h.Name = (*byte)(unsafe.Pointer(&x.names[i]))
		h.Iov = &x.iovs[i]
		h.SetIovlen(1)
		h.Control = &r.oob[i*oobSize]
	}
}

func (x *readerSys) read(r *Reader) (int, error) {
	for i := range x.hs {
		h := &x.hs[i].Hdr
		h.Namelen = unix.SizeofSockaddrInet6
		h.SetControllen(oobSize)
		h.Flags = 0
	}
	var n int
	slept := false
	for try := 0; ; try++ {
		if x.drained && (x.small || try > 0) && !slept {
			// Let datagrams gather instead of being woken for each.
			unix.Nanosleep(&x.nap, nil)
			slept = true
		}
		// MSG_TRUNC makes the kernel report a cut datagram's real length.
		k, e := r.c.s.recvOnce(x.hs, unix.MSG_TRUNC)
		switch e {
		case 0:
		case unix.EAGAIN:
			if x.drained && !slept {
				continue // sleep a moment, then look again
			}
			x.drained = false // the flow paused: wait for it
			if err := r.c.s.waitRead(); err != nil {
				return 0, err
			}
			continue
		case unix.EBADF:
			return 0, net.ErrClosed
		default:
			return 0, os.NewSyscallError("recvmmsg", e)
		}
		n = k
		x.drained = n < len(x.hs)
		x.small = n <= len(x.hs)/4
		break
	}
	for i := range n {
		h := &x.hs[i]
		r.lens[i] = int(h.Len)
		r.segs[i] = ParseGRO(r.oob[i*oobSize : i*oobSize+int(h.Hdr.Controllen)])
		r.srcs[i] = sockaddrToAddrPort(&x.names[i])
	}
	return n, nil
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
