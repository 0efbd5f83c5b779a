//go:build !linux

package udpio

import (
	"net"
	"net/netip"
	"time"
)

// Other systems send and receive one datagram per system call through
// package net: batching, GSO and GRO are Linux features.
const batchSupported = false

func gsoSupported() bool { return false }

func isGSORefusal(error) bool { return false }

// ParseGRO returns 0: there is no UDP GRO on this system.
func ParseGRO([]byte) int { return 0 }

type sysConn struct {
	uc *net.UDPConn
}

func (s *sysConn) open(addr netip.AddrPort) error {
	network := "udp4"
	if !addr.Addr().Is4() {
		network = "udp6"
	}
	uc, err := net.ListenUDP(network, net.UDPAddrFromAddrPort(addr))
	if err != nil {
		return err
	}
	s.uc = uc
	return nil
}

func (s *sysConn) localAddr() netip.AddrPort {
	return s.uc.LocalAddr().(*net.UDPAddr).AddrPort()
}

func (s *sysConn) enableGRO() bool { return false }

func (s *sysConn) setBuffers(size int) int {
	s.uc.SetReadBuffer(size)
	s.uc.SetWriteBuffer(size)
	return size
}

func (s *sysConn) setDeadline(dir int, t time.Time) error {
	if dir == dirRead {
		return s.uc.SetReadDeadline(t)
	}
	return s.uc.SetWriteDeadline(t)
}

func (s *sysConn) writeTo(b []byte, dst netip.AddrPort) error {
	_, err := s.uc.WriteToUDPAddrPort(b, dst)
	return err
}

func (s *sysConn) close() error { return s.uc.Close() }

type senderSys struct{}

func (*senderSys) init(*Sender) {}

func (*senderSys) send(s *Sender, m int) (int, error) {
	for i, sp := range s.spans[:m] {
		if _, err := s.c.s.uc.WriteToUDPAddrPort(s.slot[sp.lo:sp.hi], s.dst); err != nil {
			return i, err
		}
	}
	return m, nil
}

type readerSys struct{}

func (*readerSys) init(*Reader, int) {}

func (*readerSys) read(r *Reader) (int, error) {
	n, src, err := r.c.s.uc.ReadFromUDPAddrPort(r.buf[:r.bufSize])
	if err != nil {
		return 0, err
	}
	r.lens[0], r.segs[0] = n, 0
	r.srcs[0] = netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
	return 1, nil
}
