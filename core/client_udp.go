package core

import "context"

// udpClientSupported is false until the UDP engine lands; RunClient then
// fails before connecting instead of after the handshake.
const udpClientSupported = false

// runUDP runs the data phase of a UDP test.
func (cc *clientConn) runUDP(ctx context.Context) (Summary, error) {
	return Summary{}, errNoUDP
}
