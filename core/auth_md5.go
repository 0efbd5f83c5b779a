package core

import (
	"fmt"
	"io"
	"net"
	"net/netip"

	"github.com/btest-go/btest/core/md5auth"
	"github.com/btest-go/btest/core/wire"
)

// authenticate runs the configured authentication and returns the user.
func (s *Server) authenticate(c net.Conn, remote netip.AddrPort) (string, error) {
	switch s.cfg.Auth {
	case AuthNone:
		return "", nil
	case AuthMD5:
		return s.authMD5(c)
	case AuthECSRP5:
		return s.authECSRP5(c)
	}
	return "", fmt.Errorf("%w: auth mode %s", ErrUnsupported, s.cfg.Auth)
}

func (s *Server) authMD5(c net.Conn) (string, error) {
	ch, err := md5auth.NewChallenge(nil)
	if err != nil {
		return "", err
	}
	msg := append([]byte{byte(wire.ResultMD5), 0, 0, 0}, ch[:]...)
	s.step(c)
	if _, err := c.Write(msg); err != nil {
		return "", fmt.Errorf("writing md5 challenge: %w", err)
	}
	// Read all 48 bytes even when a client sends the hash and the user
	// field in two writes (btest-opensource does).
	var buf [md5auth.ReplySize]byte
	if _, err := io.ReadFull(c, buf[:]); err != nil {
		return "", fmt.Errorf("reading md5 reply: %w", timeoutErr(err))
	}
	var r md5auth.Reply
	if err := r.Unmarshal(buf[:]); err != nil {
		return "", err
	}
	name := r.UserName()
	u, known := s.lookupMD5(r)
	// Verify against a dummy password for unknown users so both paths
	// take the same time.
	pw := []byte(u.Password)
	if !known {
		pw = []byte("\x00unknown-user")
	}
	if !r.Verify(pw, ch) || !known {
		fail := wire.Result{Kind: wire.ResultAuthFailed}.Marshal()
		c.Write(fail[:])
		return "", fmt.Errorf("%w: md5 for user %q", ErrAuthFailed, name)
	}
	return u.Name, nil
}

// lookupMD5 finds the user a reply names. Names of 32 bytes or more arrive
// cut to 32, so configured names are compared in their wire form.
func (s *Server) lookupMD5(r md5auth.Reply) (User, bool) {
	if u, ok := s.users[r.UserName()]; ok {
		return u, true
	}
	for _, u := range s.users {
		if len(u.Name) >= md5auth.UserFieldSize && md5auth.UserFieldFor(u.Name) == r.User {
			return u, true
		}
	}
	return User{}, false
}
