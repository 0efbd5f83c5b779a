package core

import (
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"
)

// Refusal reasons of the per-source admission limits.
const (
	// RefusedHandshakesPerSource: the client's source has
	// MaxHandshakesPerSource connections in their handshake already.
	RefusedHandshakesPerSource RefusalReason = "too_many_handshakes_per_source"
	// RefusedHandshakeRate: more new tests per second than
	// MaxHandshakeRate (all clients) or MaxHandshakeRatePerSource allow.
	RefusedHandshakeRate RefusalReason = "handshake_rate"
)

// RefusalReasons lists every reason the server reports, for metrics that
// export each series from the start.
func RefusalReasons() []RefusalReason {
	return []RefusalReason{
		RefusedNotAllowed, RefusedHandshakes, RefusedHandshakesPerSource, RefusedHandshakeRate,
		RefusedSessions, RefusedSessionsPerIP, RefusedConnections, RefusedBadCommand,
		RefusedUnknownToken, RefusedHandshakeError, RefusedAuthFailed, RefusedUnsupported,
		RefusedUDPPorts, RefusedShuttingDown,
	}
}

// Results lists every outcome ResultString returns, for the same reason.
func Results() []string {
	return []string{"ok", "auth_failed", "limit", "stalled", "timeout", "protocol_error", "unsupported", "refused", "error"}
}

// sourceState is what the server tracks per source (an IPv4 address or an
// IPv6 /64 by default): its connections in handshake, the secondary
// connections its pending tests still wait for, its running tests and its
// rate of new tests. The server's mutex guards it.
type sourceState struct {
	handshakes int
	joins      int
	sessions   int
	rate       tokenBucket
}

// idle reports whether the state can be forgotten at now: nothing open
// and the rate bucket full again.
func (st *sourceState) idle(now time.Time, rate int) bool {
	return st.handshakes == 0 && st.joins == 0 && st.sessions == 0 &&
		(rate < 0 || now.Sub(st.rate.last) >= time.Second)
}

// tokenBucket allows rate events a second with a burst of one second's
// worth. A new bucket is full.
type tokenBucket struct {
	tokens float64
	last   time.Time
}

func (b *tokenBucket) take(now time.Time, rate int) bool {
	if rate < 0 {
		return true
	}
	if b.last.IsZero() {
		b.tokens = float64(rate)
	} else {
		b.tokens = min(float64(rate), b.tokens+now.Sub(b.last).Seconds()*float64(rate))
	}
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// source groups an address into its source prefix.
func (s *Server) source(a netip.Addr) netip.Prefix {
	return SourceOf(a, s.cfg.SourcePrefixV4, s.cfg.SourcePrefixV6)
}

// SourceOf groups a client address into the prefix the server's
// per-source limits count it under: its first v4Bits bits for IPv4
// (IPv4-mapped IPv6 included), v6Bits for IPv6; a zone is dropped.
func SourceOf(a netip.Addr, v4Bits, v6Bits int) netip.Prefix {
	a = a.Unmap().WithZone("")
	bits := v6Bits
	if a.Is4() {
		bits = v4Bits
	}
	p, _ := a.Prefix(bits)
	return p
}

// sourceLocked returns the state of src, made on first use. The caller
// holds s.mu. Idle states are swept once a second, so the map holds only
// sources active in the last second or with something open.
func (s *Server) sourceLocked(src netip.Prefix, now time.Time) *sourceState {
	if now.Sub(s.lastSweep) >= time.Second {
		s.lastSweep = now
		for k, st := range s.sources {
			if st.idle(now, s.cfg.MaxHandshakeRatePerSource) {
				delete(s.sources, k)
			}
		}
	}
	st := s.sources[src]
	if st == nil {
		st = new(sourceState)
		s.sources[src] = st
	}
	return st
}

// enterHandshake admits a new connection to the handshake: within the
// global and the per-source limit (the secondaries a pending test of the
// source waits for are allowed beyond it). It returns the reason when it
// refuses.
func (s *Server) enterHandshake(c net.Conn, src netip.Prefix) RefusalReason {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return RefusedShuttingDown
	}
	st := s.sourceLocked(src, time.Now())
	if st.handshakes >= s.cfg.MaxHandshakesPerSource+st.joins {
		return RefusedHandshakesPerSource
	}
	if len(s.handshaking) >= s.cfg.MaxHandshakes {
		return RefusedHandshakes
	}
	st.handshakes++
	s.handshaking[c] = struct{}{}
	return ""
}

// leaveHandshake undoes enterHandshake.
func (s *Server) leaveHandshake(c net.Conn, src netip.Prefix) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.handshaking, c)
	if st := s.sources[src]; st != nil {
		st.handshakes--
	}
}

// closeHandshakes closes every connection still in its handshake.
func (s *Server) closeHandshakes() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.handshaking {
		c.Close()
	}
}

// allowCommand applies the rate limits to a new test from src.
func (s *Server) allowCommand(src netip.Prefix) (RefusalReason, error) {
	return s.allowCommandAt(src, time.Now())
}

// allowCommandAt is allowCommand at the time now (tests give their own).
func (s *Server) allowCommandAt(src netip.Prefix, now time.Time) (RefusalReason, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.sourceLocked(src, now)
	if !st.rate.take(now, s.cfg.MaxHandshakeRatePerSource) {
		return RefusedHandshakeRate, fmt.Errorf("%w: more than %d new tests a second from %s", ErrLimit, s.cfg.MaxHandshakeRatePerSource, src)
	}
	if !s.rate.take(now, s.cfg.MaxHandshakeRate) {
		st.rate.tokens++ // this source did not get its test
		return RefusedHandshakeRate, fmt.Errorf("%w: more than %d new tests a second", ErrLimit, s.cfg.MaxHandshakeRate)
	}
	return "", nil
}

// expectJoinsLocked adds n secondaries a session of src waits for (n < 0:
// no longer waits for them). The caller holds s.mu.
func (s *Server) expectJoinsLocked(sess *serverSession, n int) {
	sess.joinsLeft += n
	if st := s.sources[sess.src]; st != nil {
		st.joins += n
	}
}

// logLimiter lets one refusal log line a second through per reason and
// source, and counts the others. Per source, so that one client's flood of
// failed logins does not hide another's (a log watcher such as fail2ban
// bans by address and needs each address's lines); within bounds, so that
// many sources cannot turn a flood into a flood of lines.
type logLimiter struct {
	mu      sync.Mutex
	window  time.Time // start of the second lines counts
	lines   int       // lines let through since window
	last    map[logKey]time.Time
	skipped map[logKey]int
}

type logKey struct {
	reason RefusalReason
	src    netip.Prefix
}

const (
	// maxRefusalLines is how many refusal lines a second get through in
	// all.
	maxRefusalLines = 20
	// maxLogKeys bounds the reasons and sources remembered; a source
	// beyond it has its lines counted only in the metrics.
	maxLogKeys = 4096
)

// allow reports whether a line for reason from src may be logged at now,
// and how many for the two were left out since the last one.
func (l *logLimiter) allow(reason RefusalReason, src netip.Prefix, now time.Time) (bool, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.last == nil {
		l.last, l.skipped = make(map[logKey]time.Time), make(map[logKey]int)
	}
	if now.Sub(l.window) >= time.Second {
		l.window, l.lines = now, 0
		l.sweep(now)
	}
	k := logKey{reason, src}
	last, known := l.last[k]
	if !known && len(l.last) >= maxLogKeys {
		return false, 0
	}
	if (known && now.Sub(last) < time.Second) || l.lines >= maxRefusalLines {
		l.skipped[k]++
		if !known {
			// The count needs a key to be found; one that may log
			// at once when the source comes back.
			l.last[k] = now.Add(-time.Second)
		}
		return false, 0
	}
	n := l.skipped[k]
	l.last[k] = now
	delete(l.skipped, k)
	l.lines++
	return true, n
}

// sweep forgets keys with nothing left to report that were last logged
// over a second ago, and any key untouched for a minute.
func (l *logLimiter) sweep(now time.Time) {
	for k, t := range l.last {
		age := now.Sub(t)
		if (age >= time.Second && l.skipped[k] == 0) || age >= time.Minute {
			delete(l.last, k)
			delete(l.skipped, k)
		}
	}
}

func (s *Server) refuse(remote netip.AddrPort, reason RefusalReason, err error) {
	s.refusals.Add(1)
	// A flood must not become a flood of log lines: one line per reason
	// and source a second, with the count of those left out.
	if ok, skipped := s.logLimit.allow(reason, s.source(remote.Addr()), time.Now()); ok {
		attrs := []any{"remote", remote.String(), "reason", string(reason)}
		if err != nil {
			attrs = append(attrs, "err", err)
		}
		if skipped > 0 {
			attrs = append(attrs, "not_logged_before", skipped)
		}
		s.log.Info("btest connection refused", attrs...)
	}
	s.cfg.Observer.refused(remote.Addr(), reason)
}

func (s *Server) allowed(a netip.Addr) bool {
	a = a.Unmap()
	if len(s.cfg.Allow) > 0 {
		ok := false
		for _, p := range s.cfg.Allow {
			if p.Contains(a) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	for _, p := range s.cfg.Deny {
		if p.Contains(a) {
			return false
		}
	}
	return true
}
