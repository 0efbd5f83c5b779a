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
	// Proto is "tcp" or "udp".
	Proto string
	// Direction is the test direction from the client's view: "receive"
	// (server sends), "transmit" (server receives) or "both".
	Direction string
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

// Observer receives server events, for metrics. Calls come from session
// goroutines, concurrently; implementations must be safe for that and fast.
type Observer interface {
	// SessionStarted is called when a test starts moving data.
	SessionStarted(SessionInfo)
	// SessionInterval is called once per second per running test with the
	// server's view (tx = what the server sent).
	SessionInterval(SessionInfo, IntervalStats)
	// SessionEnded is called once per started test; err is nil for a test
	// the client ended normally.
	SessionEnded(SessionInfo, Summary, error)
	// Refused is called for every connection turned away.
	Refused(remote netip.Addr, reason RefusalReason)
}
