package core

import (
	"context"
	"fmt"
)

// udpServerState is a UDP session's data socket; the UDP engine fills it.
type udpServerState struct{}

// errNoUDP is what UDP requests get until the UDP engine lands.
var errNoUDP = fmt.Errorf("%w: UDP tests are not implemented yet", ErrUnsupported)

// openUDP allocates and binds the session's UDP port.
func (s *Server) openUDP(ss *serverSession) (int, error) { return 0, errNoUDP }

// closeUDP closes the UDP socket and returns its port to the pool.
func (ss *serverSession) closeUDP() {}

// runUDP runs a UDP test.
func (ss *serverSession) runUDP(ctx context.Context, cancel context.CancelCauseFunc) (Summary, error) {
	return Summary{}, errNoUDP
}
