//go:build !linux

package core

import (
	"net"
	"time"
)

// tcpRTT cannot read the kernel's round-trip time here.
func tcpRTT(net.Conn) time.Duration { return 0 }
