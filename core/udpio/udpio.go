// Package udpio moves btest UDP datagrams in batches: sendmmsg and
// recvmmsg, UDP generic segmentation offload (UDP_SEGMENT) when sending and
// UDP GRO when receiving, on Linux. Each feature is detected once and falls
// back cleanly when the system lacks it or refuses it at run time; other
// systems use one datagram per system call through package net.
//
// On Linux a Conn is a non-blocking socket kept outside the Go runtime's
// network poller. The poller registers every socket with epoll for good, and
// the kernel then runs epoll's wake-up callback for every datagram queued to
// the socket and every sent datagram it frees, whether anyone waits or not:
// measured on loopback that costs a quarter of the per-datagram work. Here a
// goroutine waits in ppoll only when a call would block, so a busy socket
// has no waiter and no wake-ups. Deadlines and Close wake a waiting call
// through an eventfd.
//
// The steady state allocates nothing: a Sender stamps sequence numbers into
// buffers it filled once, a Reader reuses its buffers, headers and control
// messages, and source addresses come back as netip.AddrPort values.
//
// The environment variables BTEST_UDP_NO_GSO, BTEST_UDP_NO_GRO and
// BTEST_UDP_NO_MMSG (any non-empty value) switch the features off for the
// whole process, for kernels or drivers that misbehave and for benchmarks
// that compare the paths.
package udpio

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

// SeqSize is the size of the sequence number at the start of a datagram.
const SeqSize = 4

// MaxDatagram is the largest UDP payload a Reader is sure to receive whole.
const MaxDatagram = 65535

// maxGSOBytes bounds one GSO buffer: the kernel takes at most 64 KiB of UDP
// payload in one send (an IP packet's length field), minus headers.
const maxGSOBytes = 65000

// maxGSOSegments is UDP_MAX_SEGMENTS of older kernels (newer ones allow 128).
const maxGSOSegments = 64

// Options switch features off for one Conn. The zero value uses everything
// the system supports (and the environment allows).
type Options struct {
	// NoBatch sends and receives one datagram (or one GSO/GRO buffer) per
	// system call instead of using sendmmsg/recvmmsg.
	NoBatch bool
	// NoGSO sends every datagram as its own buffer.
	NoGSO bool
	// NoGRO leaves UDP_GRO off, so the kernel delivers datagrams one by one.
	NoGRO bool
}

// Features says which features a Conn uses.
type Features struct {
	Batch, GSO, GRO bool
}

// String lists the features, as in "mmsg+gso+gro" or "plain".
func (f Features) String() string {
	s := ""
	add := func(on bool, name string) {
		if on {
			if s != "" {
				s += "+"
			}
			s += name
		}
	}
	add(f.Batch, "mmsg")
	add(f.GSO, "gso")
	add(f.GRO, "gro")
	if s == "" {
		return "plain"
	}
	return s
}

// envOptions reads the process-wide switches once.
var envOptions = sync.OnceValue(func() Options {
	return Options{
		NoBatch: os.Getenv("BTEST_UDP_NO_MMSG") != "",
		NoGSO:   os.Getenv("BTEST_UDP_NO_GSO") != "",
		NoGRO:   os.Getenv("BTEST_UDP_NO_GRO") != "",
	}
})

// Conn is an unconnected UDP socket set up for batched I/O. One goroutine
// may read and one may write at a time; Close, the deadlines and WriteTo
// may be called from any goroutine. Errors follow package net: a passed
// deadline is os.ErrDeadlineExceeded, a closed Conn net.ErrClosed.
type Conn struct {
	s     sysConn
	v6    bool
	feat  Features
	local netip.AddrPort
	// closed and writeDeadline (Unix ns, 0: none) mirror Close and
	// SetWriteDeadline for the send paths that wait outside the socket
	// (the ENOBUFS retry).
	closed        atomic.Bool
	writeDeadline atomic.Int64
}

// Listen opens an unconnected UDP socket bound to addr (port 0 picks one)
// and enables UDP GRO on it when the system has it and opt allows it. An
// IPv6 socket takes IPv6 only.
func Listen(addr netip.AddrPort, opt Options) (*Conn, error) {
	env := envOptions()
	a := addr.Addr().Unmap()
	c := &Conn{v6: !a.Is4()}
	if err := c.s.open(netip.AddrPortFrom(a, addr.Port())); err != nil {
		return nil, fmt.Errorf("udpio: listen on %s: %w", addr, err)
	}
	c.local = c.s.localAddr()
	c.feat.Batch = batchSupported && !opt.NoBatch && !env.NoBatch
	c.feat.GSO = gsoSupported() && !opt.NoGSO && !env.NoGSO
	if !opt.NoGRO && !env.NoGRO {
		c.feat.GRO = c.s.enableGRO()
	}
	return c, nil
}

// LocalAddr returns the address the socket is bound to.
func (c *Conn) LocalAddr() netip.AddrPort { return c.local }

// Features reports the features in use.
func (c *Conn) Features() Features { return c.feat }

// SetBuffers asks for send and receive buffers of size bytes, beyond the
// sysctl limits where the process may (SO_*BUFFORCE), since a fast UDP
// receiver loses datagrams whenever its goroutine is not scheduled for a
// moment and the default buffer is a fraction of a millisecond at line rate.
// It returns the receive buffer the kernel granted, in the same terms as
// size (Linux reports twice the figure it was given, for its own
// bookkeeping; that is halved), or size where the system does not say.
// Without CAP_NET_ADMIN the grant is capped by net.core.rmem_max, 208 KiB on
// most distributions.
func (c *Conn) SetBuffers(size int) (granted int) {
	if size <= 0 {
		return size
	}
	return c.s.setBuffers(size)
}

// SetReadDeadline sets when a waiting or future Read fails with
// os.ErrDeadlineExceeded; the zero time means never. Datagrams already
// queued are still returned after the deadline.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.s.setDeadline(dirRead, t) }

// SetWriteDeadline is SetReadDeadline for sending.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	var ns int64
	if !t.IsZero() {
		ns = max(t.UnixNano(), 1)
	}
	c.writeDeadline.Store(ns)
	return c.s.setDeadline(dirWrite, t)
}

// sendBlocked reports why a send that must wait may not: the Conn is
// closed (net.ErrClosed) or its write deadline passed
// (os.ErrDeadlineExceeded); nil when it may wait.
func (c *Conn) sendBlocked() error {
	if c.closed.Load() {
		return net.ErrClosed
	}
	if dl := c.writeDeadline.Load(); dl != 0 && time.Now().UnixNano() >= dl {
		return os.ErrDeadlineExceeded
	}
	return nil
}

// WriteTo sends one datagram, for the odd message outside a Sender (the
// empty NAT probe of a btest client).
func (c *Conn) WriteTo(b []byte, dst netip.AddrPort) error {
	if err := c.s.writeTo(b, c.dstAddr(dst)); err != nil {
		return fmt.Errorf("udpio: send to %s: %w", dst, err)
	}
	return nil
}

// Close closes the socket; Reads and Sends in progress return net.ErrClosed.
func (c *Conn) Close() error {
	c.closed.Store(true)
	return c.s.close()
}

// dstAddr puts dst into the socket's family: IPv4 peers of an IPv6
// socket are IPv4-mapped.
func (c *Conn) dstAddr(dst netip.AddrPort) netip.AddrPort {
	a := dst.Addr().Unmap()
	if c.v6 && a.Is4() {
		a = netip.AddrFrom16(a.As16())
	}
	return netip.AddrPortFrom(a, dst.Port())
}

const (
	dirRead  = 0
	dirWrite = 1
)

// span is one message of a send: bytes [lo, hi) of a Sender's slots.
type span struct{ lo, hi int }

// Sender sends trains of equal-size datagrams to one destination. Every
// datagram starts with a 32-bit big-endian sequence number, stamped at send
// time; the filler after it is copied in once, when the Sender is made. A
// Sender belongs to one goroutine.
type Sender struct {
	c     *Conn
	dst   netip.AddrPort
	size  int    // UDP payload of one datagram
	segs  int    // datagrams per GSO buffer
	slot  []byte // maxN datagrams back to back
	maxN  int
	gso   bool
	spans []span
	sys   senderSys
}

// NewSender returns a Sender of datagrams with size bytes of UDP payload
// (at least SeqSize) to dst, sending up to about batchBytes per Send. The
// filler comes from fill, each datagram from a different offset so that
// random filler differs between datagrams; fill must hold at least size
// bytes.
func (c *Conn) NewSender(dst netip.AddrPort, size, batchBytes int, fill []byte) *Sender {
	size = max(size, SeqSize)
	s := &Sender{c: c, dst: c.dstAddr(dst), size: size}
	s.segs = max(1, min(maxGSOSegments, maxGSOBytes/size))
	bufs := max(1, batchBytes/(s.segs*size))
	s.maxN = bufs * s.segs
	s.slot = make([]byte, s.maxN*size)
	off := 0
	for i := range s.maxN {
		d := s.slot[i*size : (i+1)*size]
		if off+size > len(fill) {
			off = 0
		}
		copy(d, fill[off:min(off+size, len(fill))])
		off += 4093 // a prime stride, so neighbours differ
	}
	s.spans = make([]span, s.maxN)
	s.gso = c.feat.GSO && s.segs > 1
	s.sys.init(s)
	return s
}

// Stamp writes b at offset off of every datagram's payload, after the
// sequence number (off >= SeqSize), and reports whether it fit. Datagrams
// already handed to the kernel are not affected; the next Send carries it.
// Like Send, it belongs to the sending goroutine.
func (s *Sender) Stamp(off int, b []byte) bool {
	if off < SeqSize || off+len(b) > s.size {
		return false
	}
	for i := range s.maxN {
		copy(s.slot[i*s.size+off:], b)
	}
	return true
}

// Max is the largest number of datagrams one Send takes.
func (s *Sender) Max() int { return s.maxN }

// Size is the UDP payload of each datagram.
func (s *Sender) Size() int { return s.size }

// GSO reports whether the Sender still uses segmentation offload (it stops
// when the kernel refuses it).
func (s *Sender) GSO() bool { return s.gso }

// Send sends n datagrams (n <= Max) numbered seq, seq+1, ... and returns
// how many went out. Fewer than n come back with an error, or when the
// kernel reported an ICMP error for an earlier datagram (ECONNREFUSED):
// that is the peer's problem, not the sender's, so it is swallowed and the
// caller simply sends the rest next time.
func (s *Sender) Send(seq uint32, n int) (int, error) {
	n = min(n, s.maxN)
	for i := range n {
		binary.BigEndian.PutUint32(s.slot[i*s.size:], seq+uint32(i))
	}
	sent := 0
	for sent < n {
		k, err := s.send(sent, n)
		sent += k
		if err == nil {
			continue
		}
		switch {
		case s.gso && isGSORefusal(err):
			// The device or path cannot segment (no checksum offload,
			// or a datagram above the MTU): send the rest one by one.
			s.gso = false
		case errors.Is(err, syscall.ECONNREFUSED):
			return sent, nil
		case errors.Is(err, syscall.ENOBUFS):
			// A full device queue (seen on macOS and with some
			// drivers): wait a moment instead of failing, as long
			// as the deadline and Close allow waiting at all.
			if err := s.c.sendBlocked(); err != nil {
				return sent, err
			}
			time.Sleep(200 * time.Microsecond)
		default:
			return sent, fmt.Errorf("udpio: send to %s: %w", s.dst, err)
		}
	}
	return sent, nil
}

// send writes datagrams [from, to) and returns how many went out.
func (s *Sender) send(from, to int) (int, error) {
	per := 1
	if s.gso {
		per = s.segs
	}
	m := 0
	for i := from; i < to; i += per {
		s.spans[m] = span{i * s.size, min(i+per, to) * s.size}
		m++
	}
	k, err := s.sys.send(s, m)
	n := 0
	for _, sp := range s.spans[:k] {
		n += (sp.hi - sp.lo) / s.size
	}
	return n, err
}

// Reader receives datagrams in batches. With GRO one message may hold
// several datagrams of the same sender, coalesced; Message reports the
// segment size to split it by. A Reader belongs to one goroutine.
type Reader struct {
	c       *Conn
	bufSize int
	buf     []byte
	oob     []byte
	n       int
	lens    []int // bytes received per message (whole datagram length)
	segs    []int // GRO segment size per message, 0 when not coalesced
	srcs    []netip.AddrPort
	sys     readerSys
}

// oobSize holds one UDP_GRO control message with room to spare; a
// multiple of 8, so each message's control buffer keeps the alignment of
// the whole (see alignedBytes).
const oobSize = 64

// alignedBytes returns n zero bytes aligned for any control message
// header (cmsghdr needs the alignment of a size_t): the memory comes from
// a []uint64, whose alignment the language guarantees, rather than from
// a []byte, whose alignment is the allocator's business.
func alignedBytes(n int) []byte {
	if n <= 0 {
		return nil
	}
	u := make([]uint64, (n+7)/8)
	return unsafe.Slice((*byte)(unsafe.Pointer(&u[0])), n)
}

// NewReader returns a Reader of up to batch messages per system call, each
// up to bufSize bytes (MaxDatagram when GRO is on, whatever bufSize says).
// A datagram longer than bufSize is cut to it; Message still reports its
// real length where the system tells it.
func (c *Conn) NewReader(batch, bufSize int) *Reader {
	if !c.feat.Batch {
		batch = 1
	}
	batch = max(batch, 1)
	if c.feat.GRO || bufSize <= 0 || bufSize > MaxDatagram {
		bufSize = MaxDatagram
	}
	r := &Reader{
		c: c, bufSize: bufSize,
		buf:  make([]byte, batch*bufSize),
		oob:  alignedBytes(batch * oobSize),
		lens: make([]int, batch),
		segs: make([]int, batch),
		srcs: make([]netip.AddrPort, batch),
	}
	r.sys.init(r, batch)
	return r
}

// Read waits for datagrams and returns how many messages arrived. The read
// deadline applies. ECONNREFUSED (an ICMP error for something this socket
// sent) is skipped.
func (r *Reader) Read() (int, error) {
	for {
		n, err := r.sys.read(r)
		if err != nil && errors.Is(err, syscall.ECONNREFUSED) {
			continue
		}
		if err != nil {
			r.n = 0
			return 0, err
		}
		r.n = n
		return n, nil
	}
}

// Message returns message i of the last Read: its bytes, its length on the
// wire (longer than data when cut), the GRO segment size (0 when the message
// is one datagram) and its source address.
func (r *Reader) Message(i int) (data []byte, length, seg int, src netip.AddrPort) {
	l := r.lens[i]
	data = r.buf[i*r.bufSize : i*r.bufSize+min(l, r.bufSize)]
	return data, l, r.segs[i], r.srcs[i]
}
