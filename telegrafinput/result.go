package telegrafinput

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"

	"github.com/btest-go/btest/core"
)

// Result is the outcome of one test: the value of the result_code field,
// whose name (String) is the result tag. The numbers are a contract with
// dashboards and alerts: they never change, and new ones are only added.
type Result int

// Results.
const (
	// Success: the test ran for its whole duration.
	Success Result = 0
	// Timeout: connecting, a handshake step or the server's data went
	// silent for too long.
	Timeout Result = 1
	// ConnectionFailed: the TCP connection could not be made (connection
	// refused, no route, unknown host).
	ConnectionFailed Result = 2
	// AuthFailed: the server rejected the user name or password.
	AuthFailed Result = 3
	// Refused: the server closed the connection instead of starting the
	// test (busy, client not allowed, or over one of its limits).
	Refused Result = 4
	// Unsupported: the server cannot run the test asked for (for example
	// several TCP connections against an old RouterOS).
	Unsupported Result = 5
	// ProtocolError: the server sent bytes that do not follow the protocol.
	ProtocolError Result = 6
	// Limit: a limit ended the test.
	Limit Result = 7
	// BudgetExceeded: round_timeout ended the round before the test
	// finished, or before it could start.
	BudgetExceeded Result = 8
	// Error: any other failure; the stderr log has the details.
	Error Result = 9
)

var resultNames = [...]string{
	Success:          "success",
	Timeout:          "timeout",
	ConnectionFailed: "connection_failed",
	AuthFailed:       "auth_failed",
	Refused:          "refused",
	Unsupported:      "unsupported",
	ProtocolError:    "protocol_error",
	Limit:            "limit",
	BudgetExceeded:   "budget_exceeded",
	Error:            "error",
}

// String returns the result tag's value: "success", "timeout",
// "connection_failed", "auth_failed", "refused", "unsupported",
// "protocol_error", "limit", "budget_exceeded" or "error".
func (r Result) String() string {
	if r >= 0 && int(r) < len(resultNames) {
		return resultNames[r]
	}
	return fmt.Sprintf("result(%d)", int(r))
}

// Classify names the outcome of core.RunClient's error. It checks the core
// sentinels first, then tells a failed connect (ConnectionFailed) from a
// slow one (Timeout) the way Telegraf's net_response input does.
func Classify(err error) Result {
	var (
		op  *net.OpError
		dns *net.DNSError
	)
	switch {
	case err == nil:
		return Success
	case errors.Is(err, core.ErrAuthFailed):
		return AuthFailed
	case errors.Is(err, core.ErrTimeout), errors.Is(err, os.ErrDeadlineExceeded),
		errors.Is(err, context.DeadlineExceeded):
		return Timeout
	case errors.Is(err, core.ErrRefused):
		return Refused
	case errors.Is(err, core.ErrUnsupported):
		return Unsupported
	case errors.Is(err, core.ErrProtocol):
		return ProtocolError
	case errors.Is(err, core.ErrLimit):
		return Limit
	case errors.As(err, &dns):
		if dns.IsTimeout {
			return Timeout
		}
		return ConnectionFailed
	case errors.As(err, &op) && op.Op == "dial":
		if op.Timeout() {
			return Timeout
		}
		return ConnectionFailed
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return Timeout
	}
	return Error
}
