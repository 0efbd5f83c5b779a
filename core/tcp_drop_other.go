//go:build !linux

package core

import "net"

// tcpDropper is Linux only (MSG_TRUNC on TCP); elsewhere read loops copy.
type tcpDropper struct{}

func newTCPDropper(net.Conn) *tcpDropper { return nil }

func (*tcpDropper) drop([]byte) (int, error) { panic("unreachable") }
