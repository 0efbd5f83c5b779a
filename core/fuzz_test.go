package core

import (
	"io"
	"log/slog"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/btest-go/btest/core/wire"
)

// FuzzServerHandshake feeds arbitrary client bytes to the server's
// handshake (command, JOIN, MD5 and EC-SRP5 replies): it must never panic or
// hang, whatever arrives.
func FuzzServerHandshake(f *testing.F) {
	cmd := wire.Command{Proto: wire.TCP, Direction: wire.Both, ConnCount: 20, TxSize: 32768}.Marshal()
	f.Add(uint8(0), cmd[:])
	f.Add(uint8(1), append(cmd[:], make([]byte, 48)...))
	f.Add(uint8(2), append(cmd[:], append([]byte{0x27}, []byte("admin\x00")...)...))
	join := wire.Join{Token: 0x0304}.Marshal()
	f.Add(uint8(0), join[:])
	f.Add(uint8(0), []byte("GET / HTTP/1.0\r\n\r\n"))
	servers := make([]*Server, 3)
	for i, mode := range []AuthMode{AuthNone, AuthMD5, AuthECSRP5} {
		s, err := NewServer(ServerConfig{
			Auth: mode, Users: []User{{Name: "admin", Password: "pw"}},
			HandshakeTimeout: 50 * time.Millisecond, CommandTimeout: 50 * time.Millisecond,
			// Every input should reach authentication, not a rate limit.
			MaxHandshakeRate: -1, MaxHandshakeRatePerSource: -1,
			Logger: slog.New(slog.DiscardHandler),
		})
		if err != nil {
			f.Fatal(err)
		}
		servers[i] = s
	}
	f.Fuzz(func(t *testing.T, mode uint8, in []byte) {
		s := servers[int(mode)%len(servers)]
		client, server := net.Pipe()
		go io.Copy(io.Discard, client)
		go func() {
			client.Write(in)
			client.Close()
		}()
		remote := netip.MustParseAddrPort("127.0.0.1:4000")
		sess, _ := s.handshake(server, remote, s.source(remote.Addr()))
		if sess != nil {
			s.release(sess)
		}
		server.Close()
	})
}
