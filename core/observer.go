package core

import (
	"net/netip"
	"time"
)

// SessionInfo describes a test the server is running.
type SessionInfo struct {
	// ID is unique per server process.
	ID uint64
	// Remote is the client's address (of the primary connection).
	Remote netip.AddrPort
	// User is the authenticated user name ("" without authentication).
	User string
	// Proto is the transport of the test.
	Proto Proto
	// Direction is the test direction from the client's view: Receive
	// (server sends), Transmit (server receives) or Both.
	Direction Direction
	// Connections is the requested TCP connection or UDP stream count.
	Connections int
	// Random reports random payload.
	Random bool
	// TxSize is the command's tx_size (UDP: IP packet size).
	TxSize int
	// RemoteTxSpeed and LocalTxSpeed are the client's requested caps
	// (bit/s, 0 = unlimited); TxRate is what the server applied.
	RemoteTxSpeed, LocalTxSpeed, TxRate uint64
	// UDPPort is the server's UDP data port (0 for TCP).
	UDPPort int
	// Started is when data started to flow.
	Started time.Time
}

// RefusalReason says why the server turned a connection away.
type RefusalReason string

// Refusal reasons, used as log fields and metric labels.
const (
	RefusedNotAllowed     RefusalReason = "not_allowed"
	RefusedHandshakes     RefusalReason = "too_many_handshakes"
	RefusedSessions       RefusalReason = "max_sessions"
	RefusedSessionsPerIP  RefusalReason = "max_sessions_per_ip"
	RefusedConnections    RefusalReason = "max_connections"
	RefusedBadCommand     RefusalReason = "bad_command"
	RefusedUnknownToken   RefusalReason = "unknown_token"
	RefusedHandshakeError RefusalReason = "handshake_error"
	RefusedAuthFailed     RefusalReason = "auth_failed"
	RefusedUnsupported    RefusalReason = "unsupported"
	RefusedUDPPorts       RefusalReason = "udp_ports_exhausted"
	RefusedShuttingDown   RefusalReason = "shutting_down"
)

// Observer receives server events, for metrics and dashboards. Every field
// is optional, so Observer can grow without breaking its users (as
// net/http/httptrace.ClientTrace does). Calls come from session goroutines,
// concurrently: the funcs must be safe for that, fast, and must not block,
// since they run on the paths that count and report data.
type Observer struct {
	// SessionStarted is called when a test starts moving data.
	SessionStarted func(SessionInfo)
	// SessionInterval is called once per second per running test with the
	// server's view (tx = what the server sent).
	SessionInterval func(SessionInfo, IntervalStats)
	// SessionEnded is called once per started test; err is nil for a test
	// the client ended normally.
	SessionEnded func(SessionInfo, Summary, error)
	// Refused is called for every connection turned away.
	Refused func(remote netip.Addr, reason RefusalReason)
}

// JoinObservers returns an Observer that calls each non-nil func of obs in
// order; nil entries are skipped.
func JoinObservers(obs ...*Observer) *Observer {
	var list []*Observer
	for _, o := range obs {
		if o != nil {
			list = append(list, o)
		}
	}
	switch len(list) {
	case 0:
		return nil
	case 1:
		return list[0]
	}
	return &Observer{
		SessionStarted: func(i SessionInfo) {
			for _, o := range list {
				if o.SessionStarted != nil {
					o.SessionStarted(i)
				}
			}
		},
		SessionInterval: func(i SessionInfo, st IntervalStats) {
			for _, o := range list {
				if o.SessionInterval != nil {
					o.SessionInterval(i, st)
				}
			}
		},
		SessionEnded: func(i SessionInfo, sum Summary, err error) {
			for _, o := range list {
				if o.SessionEnded != nil {
					o.SessionEnded(i, sum, err)
				}
			}
		},
		Refused: func(a netip.Addr, r RefusalReason) {
			for _, o := range list {
				if o.Refused != nil {
					o.Refused(a, r)
				}
			}
		},
	}
}

// The server calls its observer through these, so a nil Observer or a nil
// func costs one comparison.

func (o *Observer) sessionStarted(i SessionInfo) {
	if o != nil && o.SessionStarted != nil {
		o.SessionStarted(i)
	}
}

func (o *Observer) sessionInterval(i SessionInfo, st IntervalStats) {
	if o != nil && o.SessionInterval != nil {
		o.SessionInterval(i, st)
	}
}

func (o *Observer) sessionEnded(i SessionInfo, sum Summary, err error) {
	if o != nil && o.SessionEnded != nil {
		o.SessionEnded(i, sum, err)
	}
}

func (o *Observer) refused(a netip.Addr, r RefusalReason) {
	if o != nil && o.Refused != nil {
		o.Refused(a, r)
	}
}
