package core

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"time"

	"github.com/btest-go/btest/core/portpool"
	"github.com/btest-go/btest/core/wire"
)

func remoteAddrPort(c net.Conn) netip.AddrPort {
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		ap := ta.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	ap, _ := netip.ParseAddrPort(c.RemoteAddr().String())
	return ap
}

// handleConn runs the handshake of one TCP connection: it becomes the
// primary connection of a new test, or joins a pending one.
func (s *Server) handleConn(c net.Conn) {
	remote := remoteAddrPort(c)
	if !s.allowed(remote.Addr()) {
		s.refuse(remote, RefusedNotAllowed, nil)
		c.Close()
		return
	}
	src := s.source(remote.Addr())
	if reason := s.enterHandshake(c, src); reason != "" {
		s.refuse(remote, reason, nil)
		c.Close()
		return
	}
	sess, err := s.handshake(c, remote, src)
	s.leaveHandshake(c, src)
	if err != nil || sess == nil {
		// Refused, failed, or a secondary that joined a session: the
		// session goroutine owns a joined connection.
		return
	}
	sess.run()
}

// step sets the deadline for one handshake step.
func (s *Server) step(c net.Conn) {
	c.SetDeadline(time.Now().Add(s.cfg.HandshakeTimeout))
}

// handshake reads the command (or a JOIN), authenticates and answers. It
// returns a session ready to run, or nil when the connection was handled
// (refused, or attached to a pending session).
func (s *Server) handshake(c net.Conn, remote netip.AddrPort, src netip.Prefix) (*serverSession, error) {
	fail := func(reason RefusalReason, err error) (*serverSession, error) {
		s.refuse(remote, reason, err)
		c.Close()
		return nil, err
	}
	// A RouterOS client sends its command as soon as HELLO arrives; a
	// connection that does not gives its slot back soon.
	c.SetDeadline(time.Now().Add(min(s.cfg.CommandTimeout, s.cfg.HandshakeTimeout)))
	if _, err := c.Write(wire.Hello[:]); err != nil {
		return fail(RefusedHandshakeError, fmt.Errorf("writing hello: %w", err))
	}
	var first [wire.CommandSize]byte
	if _, err := io.ReadFull(c, first[:]); err != nil {
		return fail(RefusedHandshakeError, fmt.Errorf("reading command: %w", timeoutErr(err)))
	}
	if wire.LooksLikeJoin(first[:]) {
		var j wire.Join
		if err := j.Unmarshal(first[:]); err != nil {
			return fail(RefusedBadCommand, err)
		}
		if !s.join(j.Token, remote, c) {
			return fail(RefusedUnknownToken, fmt.Errorf("join with unknown token %#04x", j.Token))
		}
		return nil, nil
	}
	var cmd wire.Command
	if err := cmd.Unmarshal(first[:]); err != nil {
		return fail(RefusedBadCommand, err)
	}
	if int(cmd.ConnCount) > s.cfg.MaxConnections {
		return fail(RefusedConnections, fmt.Errorf("%w: %d connections requested, at most %d allowed", ErrLimit, cmd.ConnCount, s.cfg.MaxConnections))
	}
	if reason, err := s.allowCommand(src); err != nil {
		return fail(reason, err)
	}
	sess := s.newSession(c, remote, cmd)
	sess.src = src
	if reason, err := s.admit(sess); err != nil {
		return fail(reason, err)
	}
	ok := false
	defer func() {
		if !ok {
			s.release(sess)
		}
	}()
	user, err := s.authenticate(c, remote)
	if err != nil {
		if errors.Is(err, ErrAuthFailed) {
			return fail(RefusedAuthFailed, err)
		}
		return fail(RefusedHandshakeError, err)
	}
	sess.info.User = user
	result := wire.Result{Kind: wire.ResultOK}
	if cmd.Proto == wire.TCP && cmd.ConnCount > 1 {
		result.Token = s.register(sess)
	}
	msg := result.Marshal()
	out := msg[:]
	if cmd.Proto == wire.UDP {
		port, err := s.openUDP(sess)
		if err != nil {
			if errors.Is(err, portpool.ErrExhausted) {
				return fail(RefusedUDPPorts, fmt.Errorf("%w: %w", ErrLimit, err))
			}
			return fail(RefusedUnsupported, err)
		}
		p := wire.MarshalPort(uint16(port))
		out = append(out, p[:]...) // one write: RouterOS sends them together
	}
	s.step(c)
	if _, err := c.Write(out); err != nil {
		return fail(RefusedHandshakeError, fmt.Errorf("writing result: %w", err))
	}
	c.SetDeadline(time.Time{})
	ok = true
	return sess, nil
}

func timeoutErr(err error) error {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("%w: %w", ErrTimeout, err)
	}
	return err
}
