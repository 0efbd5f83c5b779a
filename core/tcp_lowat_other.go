//go:build !linux

package core

import "net"

// lowatConn is Linux only: elsewhere SO_RCVLOWAT does not gate poll
// readiness the same way, and readers wake on any data.
type lowatConn struct{}

func newLowatConn(net.Conn) *lowatConn { return nil }

func (*lowatConn) follow(float64) {}
