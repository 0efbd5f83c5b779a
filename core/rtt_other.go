//go:build !linux

package core

import (
	"net"
	"time"
)

// tcpRTT cannot read the kernel's round-trip time here.
func tcpRTT(net.Conn) time.Duration { return 0 }

// promptAcks has no TCP_QUICKACK to set here.
type promptAcks struct{}

func newPromptAcks(net.Conn) promptAcks { return promptAcks{} }

func (promptAcks) again() {}
