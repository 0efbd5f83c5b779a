package core

import (
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/btest-go/btest/core/ecsrp5"
	"github.com/btest-go/btest/core/wire"
)

// verifiers derives the EC-SRP5 verifier of every user: the stored one, or
// one made from the password with a fresh random salt.
func verifiers(users []User) (map[string]ecsrp5.Verifier, error) {
	m := make(map[string]ecsrp5.Verifier, len(users))
	for _, u := range users {
		if u.Verifier != nil {
			m[u.Name] = *u.Verifier
			continue
		}
		v, err := ecsrp5.NewVerifier(u.Name, u.Password, nil)
		if err != nil {
			return nil, fmt.Errorf("btest server: verifier for user %q: %w", u.Name, err)
		}
		m[u.Name] = v
	}
	return m, nil
}

// authECSRP5 runs the server side of EC-SRP5 (docs/protocol.md, §7) under one
// deadline for the whole exchange. On a bad proof it sends nothing more and
// closes, as RouterOS does.
func (s *Server) authECSRP5(c net.Conn) (string, error) {
	word := wire.Result{Kind: wire.ResultECSRP5}.Marshal()
	c.SetDeadline(time.Now().Add(s.cfg.HandshakeTimeout))
	if _, err := c.Write(word[:]); err != nil {
		return "", fmt.Errorf("writing ec-srp5 request: %w", err)
	}
	user, err := ecsrp5.Server(c, func(name string) (ecsrp5.Verifier, bool) {
		v, ok := s.verifiers[name]
		return v, ok
	}, nil)
	switch {
	case err == nil:
		return user, nil
	case errors.Is(err, ecsrp5.ErrAuthFailed):
		return "", kindError{ErrAuthFailed, err}
	case errors.Is(err, ecsrp5.ErrMalformed), errors.Is(err, ecsrp5.ErrInvalidPoint):
		return "", kindError{ErrProtocol, err}
	}
	return "", fmt.Errorf("ec-srp5: %w", timeoutErr(err))
}

// clientECSRP5 runs the client side of EC-SRP5 after the server's 03 word.
// A server that closes the connection instead of answering the proof has
// rejected the password: that is ErrAuthFailed, not an I/O error.
func clientECSRP5(c net.Conn, user, password string) error {
	err := ecsrp5.Client(c, user, password, nil)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ecsrp5.ErrAuthFailed):
		return kindError{ErrAuthFailed, err}
	case errors.Is(err, ecsrp5.ErrMalformed), errors.Is(err, ecsrp5.ErrInvalidPoint):
		return kindError{ErrProtocol, err}
	}
	return fmt.Errorf("ec-srp5: %w", timeoutErr(err))
}
