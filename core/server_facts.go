package core

import (
	"slices"
	"time"
)

// ServerFacts is what a Server is set up with and holds now, for status
// pages: no user names, passwords or verifiers.
type ServerFacts struct {
	// Listeners are the addresses the server accepts clients on now.
	Listeners []string
	// Auth is the authentication clients must pass; Users the number of
	// accounts.
	Auth  AuthMode
	Users int
	// Limits as configured (defaults applied).
	MaxSessions, MaxSessionsPerIP, MaxConnections int
	MaxDuration                                   time.Duration
	MaxTxRate                                     uint64
	// AllowRules and DenyRules count the address filters.
	AllowRules, DenyRules int
	// UDPPortFirst and UDPPortLast bound the UDP data ports; UDPPortsInUse
	// is how many of them running tests hold (the pool may be shared with
	// other servers).
	UDPPortFirst, UDPPortLast, UDPPortsInUse int
	// ActiveSessions is the number of running tests.
	ActiveSessions int
}

// Facts returns the server's configuration and current use.
func (s *Server) Facts() ServerFacts {
	f := ServerFacts{
		Auth:             s.cfg.Auth,
		Users:            len(s.cfg.Users),
		MaxSessions:      s.cfg.MaxSessions,
		MaxSessionsPerIP: s.cfg.MaxSessionsPerIP,
		MaxConnections:   s.cfg.MaxConnections,
		MaxDuration:      s.cfg.MaxDuration,
		MaxTxRate:        s.cfg.MaxTxRate,
		AllowRules:       len(s.cfg.Allow),
		DenyRules:        len(s.cfg.Deny),
		UDPPortsInUse:    s.ports.InUse(),
	}
	f.UDPPortFirst, f.UDPPortLast = s.ports.Range()
	s.mu.Lock()
	for ln := range s.listeners {
		f.Listeners = append(f.Listeners, ln.Addr().String())
	}
	f.ActiveSessions = len(s.sessions)
	s.mu.Unlock()
	slices.Sort(f.Listeners)
	return f
}
