// Package core implements the MikroTik Bandwidth Test ("btest") protocol:
// a server that RouterOS /tool bandwidth-test and other btest clients test
// against, and a client that tests RouterOS and other btest servers, over TCP
// and UDP, with MD5 and EC-SRP5 authentication.
//
// The package has no dependencies on Caddy or Telegraf; those front ends
// (and the btest command) drive it through NewServer and RunClient.
package core

import (
	"errors"
	"fmt"
)

// Sentinel errors. Errors returned by this package wrap one of these where
// one applies, so callers can test with errors.Is.
var (
	// ErrAuthFailed means the credentials were rejected (or, on the client,
	// the server closed the connection during authentication).
	ErrAuthFailed = errors.New("authentication failed")
	// ErrUnsupported means the peer asked for something this side does not
	// do, or the server could not run the requested test.
	ErrUnsupported = errors.New("unsupported test")
	// ErrLimit means a configured limit refused or ended the session.
	ErrLimit = errors.New("limit reached")
	// ErrRefused means the server closed the connection instead of
	// accepting the test (busy, not allowed, or a limit on its side).
	ErrRefused = errors.New("server refused the test")
	// ErrProtocol means the peer sent bytes that do not follow the protocol.
	ErrProtocol = errors.New("protocol error")
	// ErrTimeout means a handshake step or a peer went silent for too long.
	ErrTimeout = errors.New("timed out")
	// ErrStalled means nothing moved for the progress timeout: no byte in
	// a TCP direction that should carry data, or no status message in a
	// UDP test. It wraps ErrTimeout.
	ErrStalled = fmt.Errorf("stalled: %w", ErrTimeout)
	// ErrServerClosed is returned by Serve after Shutdown or Close.
	ErrServerClosed = errors.New("btest server closed")
)

// kindError files err under one of this package's sentinels (kind)
// without repeating what err already says: an ecsrp5 error reads
// "ecsrp5: authentication failed: ...", and prefixing core's
// "authentication failed" to it said the same thing twice.
type kindError struct{ kind, err error }

func (e kindError) Error() string   { return e.err.Error() }
func (e kindError) Unwrap() []error { return []error{e.kind, e.err} }

// resultString names an outcome for logs and metric labels.
func resultString(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, ErrAuthFailed):
		return "auth_failed"
	case errors.Is(err, ErrLimit):
		return "limit"
	case errors.Is(err, ErrStalled):
		return "stalled"
	case errors.Is(err, ErrTimeout):
		return "timeout"
	case errors.Is(err, ErrProtocol):
		return "protocol_error"
	case errors.Is(err, ErrUnsupported):
		return "unsupported"
	case errors.Is(err, ErrRefused):
		return "refused"
	}
	return "error"
}

// ResultString names the outcome of a test for logs, tags and metric
// labels: "ok", "auth_failed", "limit", "stalled", "timeout",
// "protocol_error", "unsupported", "refused" or "error".
func ResultString(err error) string { return resultString(err) }
