package main

import (
	"net"
	"testing"

	"github.com/btest-go/btest/core"
)

// TestOpenToAll: a server without authentication warns on an address
// beyond this host (the wildcard included), not on loopback, and never
// when it authenticates.
func TestOpenToAll(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		auth core.AuthMode
		ip   string
		want bool
	}{
		{core.AuthNone, "0.0.0.0", true},
		{core.AuthNone, "::", true},
		{core.AuthNone, "192.0.2.1", true},
		{core.AuthNone, "127.0.0.1", false},
		{core.AuthNone, "::1", false},
		{core.AuthECSRP5, "0.0.0.0", false},
		{core.AuthMD5, "192.0.2.1", false},
	} {
		a := &net.TCPAddr{IP: net.ParseIP(c.ip), Port: 2000}
		if got := openToAll(c.auth, a); got != c.want {
			t.Errorf("openToAll(%v, %v) = %v, want %v", c.auth, a, got, c.want)
		}
	}
}
