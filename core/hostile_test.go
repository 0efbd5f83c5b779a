package core

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/btest-go/btest/core/md5auth"
	"github.com/btest-go/btest/core/wire"
	"github.com/btest-go/btest/internal/testutil"
)

// dialRaw connects and reads the HELLO.
func dialRaw(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(5 * time.Second))
	var hello [4]byte
	if _, err := io.ReadFull(c, hello[:]); err != nil {
		t.Fatalf("no hello: %v", err)
	}
	return c
}

// expectClosed asserts the server closes c within d, sending nothing
// more than want.
func expectClosed(t *testing.T, c net.Conn, want []byte, d time.Duration) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(d))
	got, err := io.ReadAll(c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("server did not close the connection within %v", d)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("server sent % x before closing, want % x", got, want)
	}
}

func waitRefusal(t *testing.T, rec *recorder, want RefusalReason) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if slices.Contains(rec.refusalList(), want) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no %s refusal; got %v", want, rec.refusalList())
}

func TestHostileCommands(t *testing.T) {
	if testutil.Isolate(t) {
		return
	}
	cases := []struct {
		name   string
		send   []byte
		reason RefusalReason
	}{
		{"garbage", []byte("GET / HTTP/1.1\r\n"), RefusedBadCommand},
		{"unknown proto", []byte{0x05, 0x01, 0x01, 0, 0, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, RefusedBadCommand},
		{"unknown direction", []byte{0x01, 0x07, 0x01, 0, 0, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, RefusedBadCommand},
		{"join unknown token", func() []byte { j := wire.Join{Token: 0x4242}.Marshal(); return j[:] }(), RefusedUnknownToken},
		{"too many connections", []byte{0x01, 0x02, 0x01, 200, 0, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, RefusedConnections},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			checkNoLeak(t)
			srv, addr, rec := startServer(t, ServerConfig{MaxConnections: 50}, "tcp", "127.0.0.1:0")
			c := dialRaw(t, addr)
			c.Write(tc.send)
			expectClosed(t, c, nil, 3*time.Second)
			waitRefusal(t, rec, tc.reason)
			// The server keeps serving.
			if _, err := RunClient(context.Background(), ClientConfig{Address: addr, Duration: 200 * time.Millisecond}); err != nil {
				t.Fatalf("server broken after %s: %v", tc.name, err)
			}
			if srv.Refusals() == 0 {
				t.Fatal("refusal not counted")
			}
		})
	}
}

func TestSilentAndTruncatedClients(t *testing.T) {
	if testutil.Isolate(t) {
		return
	}
	checkNoLeak(t)
	_, addr, rec := startServer(t, ServerConfig{HandshakeTimeout: 300 * time.Millisecond, Auth: AuthMD5,
		Users: []User{{Name: "u", Password: "p"}}}, "tcp", "127.0.0.1:0")
	silent := dialRaw(t, addr)
	truncated := dialRaw(t, addr)
	truncated.Write([]byte{0x01, 0x02, 0x01})
	// A client that stops in the middle of the MD5 reply.
	halfAuth := dialRaw(t, addr)
	cmd := wire.Command{Proto: wire.TCP, Direction: wire.ServerSends, ConnCount: 1, TxSize: 32768}.Marshal()
	halfAuth.Write(cmd[:])
	var ch [20]byte
	if _, err := io.ReadFull(halfAuth, ch[:]); err != nil || ch[0] != 2 {
		t.Fatalf("no md5 challenge: % x %v", ch, err)
	}
	halfAuth.Write(make([]byte, 16))
	start := time.Now()
	for _, c := range []net.Conn{silent, truncated, halfAuth} {
		expectClosed(t, c, nil, 3*time.Second)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Fatalf("closing took %v with a 300ms handshake deadline", el)
	}
	waitRefusal(t, rec, RefusedHandshakeError)
}

func TestSessionLimits(t *testing.T) {
	if testutil.Isolate(t) {
		return
	}
	checkNoLeak(t)
	_, addr, rec := startServer(t, ServerConfig{MaxSessions: 3, MaxSessionsPerIP: 2}, "tcp", "127.0.0.1:0")
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	run := func(src string) {
		wg.Go(func() {
			RunClient(ctx, ClientConfig{Address: addr, LocalAddress: src, RemoteTxSpeed: 1e6})
		})
	}
	run("127.0.0.1")
	run("127.0.0.1")
	waitSessions(t, rec, 2)
	_, err := RunClient(context.Background(), ClientConfig{Address: addr, Duration: time.Second})
	if !errors.Is(err, ErrRefused) {
		t.Fatalf("third session from one IP: %v, want ErrRefused", err)
	}
	waitRefusal(t, rec, RefusedSessionsPerIP)
	// Another loopback address is another client IP.
	run("127.0.0.2")
	waitSessions(t, rec, 3)
	if _, err := RunClient(context.Background(), ClientConfig{Address: addr, LocalAddress: "127.0.0.3", Duration: time.Second}); !errors.Is(err, ErrRefused) {
		t.Fatalf("fourth session: %v, want ErrRefused", err)
	}
	waitRefusal(t, rec, RefusedSessions)
	cancel()
	wg.Wait()
}

func waitSessions(t *testing.T, rec *recorder, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		rec.mu.Lock()
		got := len(rec.started)
		rec.mu.Unlock()
		if got >= n {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("fewer than %d sessions started", n)
}

func TestAllowDeny(t *testing.T) {
	t.Parallel()
	_, addr, rec := startServer(t, ServerConfig{
		Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		Deny:  []netip.Prefix{netip.MustParsePrefix("127.0.0.9/32")},
	}, "tcp", "127.0.0.1:0")
	if _, err := RunClient(context.Background(), ClientConfig{Address: addr, Duration: 200 * time.Millisecond}); err != nil {
		t.Fatalf("allowed client: %v", err)
	}
	// Dial from the denied source address.
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.9")}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	expectClosed(t, c, nil, 3*time.Second) // no HELLO
	waitRefusal(t, rec, RefusedNotAllowed)
	// Our client names that close for what it is: a refusal.
	_, err = RunClient(context.Background(), ClientConfig{Address: addr, LocalAddress: "127.0.0.9", Duration: 200 * time.Millisecond})
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "before its greeting") {
		t.Fatalf("denied client: %v, want ErrRefused before the greeting", err)
	}
}

func TestMaxDuration(t *testing.T) {
	if testutil.Isolate(t) {
		return
	}
	checkNoLeak(t)
	_, addr, rec := startServer(t, ServerConfig{MaxDuration: 500 * time.Millisecond}, "tcp", "127.0.0.1:0")
	start := time.Now()
	_, err := RunClient(context.Background(), ClientConfig{Address: addr, Direction: Both, Connections: 3, Duration: 10 * time.Second})
	if err == nil {
		t.Fatal("client saw no error when the server ended the test")
	}
	if el := time.Since(start); el > 3*time.Second {
		t.Fatalf("test ran %v with a 500ms server limit", el)
	}
	_, serr := rec.waitEnded(t)
	if !errors.Is(serr, ErrLimit) {
		t.Fatalf("server error %v, want ErrLimit", serr)
	}
}

func TestShutdownGrace(t *testing.T) {
	if testutil.Isolate(t) {
		return
	}
	checkNoLeak(t)
	srv, addr, _ := startServer(t, ServerConfig{}, "tcp", "127.0.0.1:0")
	errc := make(chan error, 1)
	go func() {
		_, err := RunClient(context.Background(), ClientConfig{Address: addr, Connections: 2, Duration: 30 * time.Second})
		errc <- err
	}()
	deadline := time.Now().Add(5 * time.Second)
	for srv.ActiveSessions() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown: %v", err)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Fatalf("Shutdown took %v with a 300ms grace period", el)
	}
	select {
	case err := <-errc:
		if err == nil {
			t.Fatal("client saw no error when the server shut down")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("client still running after shutdown")
	}
	if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		t.Fatal("listener still open after shutdown")
	}
}

// fakeServer runs script on the first accepted connection.
func fakeServer(t *testing.T, script func(c net.Conn)) string {
	t.Helper()
	ln := corePorts.Listen(t, "127.0.0.1")
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		script(c)
	})
	return ln.Addr().String()
}

func TestClientToleratesDoubleOKAfterMD5(t *testing.T) {
	t.Parallel()
	addr := fakeServer(t, func(c net.Conn) {
		c.Write(wire.Hello[:])
		var cmd [16]byte
		io.ReadFull(c, cmd[:])
		ch := md5auth.Challenge{1, 2, 3}
		c.Write(append([]byte{2, 0, 0, 0}, ch[:]...))
		var reply [48]byte
		io.ReadFull(c, reply[:])
		var r md5auth.Reply
		r.Unmarshal(reply[:])
		if !r.Verify([]byte("pw"), ch) {
			c.Write([]byte{0, 0, 0, 0})
			return
		}
		// btest-opensource's server: the OK word twice, then data.
		c.Write([]byte{1, 0, 0, 0, 1, 0, 0, 0})
		for range 100 {
			if _, err := c.Write(make([]byte, 32768)); err != nil {
				return
			}
		}
	})
	// Long enough for a starved fake server: the test ends when it
	// closes the connection.
	sum, err := RunClient(context.Background(), ClientConfig{Address: addr, User: "u", Password: "pw", Duration: 10 * time.Second})
	if err != nil && !errors.Is(err, errServerClosed) {
		t.Fatal(err)
	}
	if sum.RxBytes < 100*32768 {
		t.Fatalf("received %d bytes", sum.RxBytes)
	}
}

func TestClientNoTokenMeansUnsupported(t *testing.T) {
	t.Parallel()
	addr := fakeServer(t, func(c net.Conn) {
		c.Write(wire.Hello[:])
		var cmd [16]byte
		io.ReadFull(c, cmd[:])
		c.Write([]byte{1, 0, 0, 0}) // an old server: no token
		io.Copy(io.Discard, c)
	})
	_, err := RunClient(context.Background(), ClientConfig{Address: addr, Connections: 20, Duration: time.Second})
	if !errors.Is(err, ErrUnsupported) {
		t.Fatalf("err %v, want ErrUnsupported", err)
	}
}

func TestClientHandshakeTimeout(t *testing.T) {
	t.Parallel()
	addr := fakeServer(t, func(c net.Conn) {
		c.Write(wire.Hello[:])
		io.Copy(io.Discard, c) // never answers the command
	})
	start := time.Now()
	_, err := RunClient(context.Background(), ClientConfig{Address: addr, HandshakeTimeout: 300 * time.Millisecond})
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("err %v, want ErrTimeout", err)
	}
	if time.Since(start) > 3*time.Second {
		t.Fatal("client waited far past its handshake timeout")
	}
}

func TestMD5ReplyInTwoWrites(t *testing.T) {
	t.Parallel()
	_, addr, _ := startServer(t, ServerConfig{Auth: AuthMD5, Users: []User{{Name: "admin", Password: "pw"}}}, "tcp", "127.0.0.1:0")
	c := dialRaw(t, addr)
	cmd := wire.Command{Proto: wire.TCP, Direction: wire.ServerSends, ConnCount: 1, TxSize: 32768}.Marshal()
	c.Write(cmd[:])
	var b [20]byte
	if _, err := io.ReadFull(c, b[:]); err != nil {
		t.Fatal(err)
	}
	var ch md5auth.Challenge
	copy(ch[:], b[4:])
	r := md5auth.NewReply("admin", "pw", ch).Marshal()
	c.Write(r[:16])
	time.Sleep(100 * time.Millisecond)
	c.Write(r[16:])
	var res [4]byte
	if _, err := io.ReadFull(c, res[:]); err != nil || res != [4]byte{1, 0, 0, 0} {
		t.Fatalf("result % x %v", res, err)
	}
}

func TestClientCancel(t *testing.T) {
	if testutil.Isolate(t) {
		return
	}
	checkNoLeak(t)
	_, addr, rec := startServer(t, ServerConfig{}, "tcp", "127.0.0.1:0")
	ctx, cancel := context.WithTimeout(context.Background(), 600*time.Millisecond)
	defer cancel()
	sum, err := RunClient(ctx, ClientConfig{Address: addr, Connections: 4})
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("deadline: err %v, want ErrTimeout", err)
	}
	if sum.RxBytes == 0 {
		t.Fatal("no summary after cancel")
	}
	rec.waitEnded(t)
	ctx2, cancel2 := context.WithCancel(context.Background())
	time.AfterFunc(400*time.Millisecond, cancel2)
	if _, err := RunClient(ctx2, ClientConfig{Address: addr}); err != nil {
		t.Fatalf("cancel is a normal end, got %v", err)
	}
}
