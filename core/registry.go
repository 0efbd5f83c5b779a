package core

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"time"
)

// admit applies the session limits and counts the session.
func (s *Server) admit(sess *serverSession) (RefusalReason, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.sourceLocked(sess.src, time.Now())
	switch {
	case s.closed:
		return RefusedShuttingDown, fmt.Errorf("%w: server is shutting down", ErrLimit)
	case len(s.sessions) >= s.cfg.MaxSessions:
		return RefusedSessions, fmt.Errorf("%w: %d sessions running", ErrLimit, len(s.sessions))
	case st.sessions >= s.cfg.MaxSessionsPerIP:
		return RefusedSessionsPerIP, fmt.Errorf("%w: %d sessions from %s", ErrLimit, st.sessions, sess.src)
	}
	s.sessions[sess] = struct{}{}
	st.sessions++
	return "", nil
}

// release forgets a session and frees its token and UDP port.
func (s *Server) release(sess *serverSession) {
	s.mu.Lock()
	if _, ok := s.sessions[sess]; ok {
		delete(s.sessions, sess)
		if st := s.sources[sess.src]; st != nil {
			st.sessions--
		}
	}
	if sess.token != 0 && s.pending[sess.token] == sess {
		delete(s.pending, sess.token)
	}
	s.expectJoinsLocked(sess, -sess.joinsLeft)
	s.mu.Unlock()
	sess.closeUDP()
}

// register gives a multi-connection session a fresh token. Tokens have a
// high byte >= 2 so a JOIN can never be mistaken for a COMMAND.
func (s *Server) register(sess *serverSession) uint16 {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		t := uint16(rand.N(0xfe00)) + 0x0200
		if t&0xff == 0 {
			continue // keep both bytes non-zero, as RouterOS captures show
		}
		if _, busy := s.pending[t]; !busy {
			s.pending[t] = sess
			sess.token = t
			s.expectJoinsLocked(sess, int(sess.cmd.ConnCount)-1)
			return t
		}
	}
}

// join hands a secondary connection to the pending session with token.
// Only connections from the primary's IP address may join.
func (s *Server) join(token uint16, remote netip.AddrPort, c net.Conn) bool {
	s.mu.Lock()
	sess := s.pending[token]
	s.mu.Unlock()
	if sess == nil || sess.info.Remote.Addr() != remote.Addr() {
		return false
	}
	c.SetDeadline(time.Time{})
	return sess.addConn(c)
}
