package core

import (
	"fmt"
	"net"
)

// errNoECSRP5 is returned until EC-SRP5 authentication lands.
var errNoECSRP5 = fmt.Errorf("%w: EC-SRP5 authentication is not supported yet", ErrUnsupported)

// authECSRP5 runs the server side of EC-SRP5.
func (s *Server) authECSRP5(c net.Conn) (string, error) { return "", errNoECSRP5 }

// clientECSRP5 runs the client side of EC-SRP5 after the server's 03 word.
func clientECSRP5(c net.Conn, user, password string) error { return errNoECSRP5 }
