package core

import (
	"context"
	"errors"
	"net"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestClientConnectTimeout: a connect that gets no answer ends with
// ErrTimeout after the handshake timeout, as a handshake step that gets
// none does (the CLI's exit code and the "timeout" result say so). The
// server here is a listener whose accept queue is full, so its kernel
// drops the SYN, as a firewall that drops packets would.
func TestClientConnectTimeout(t *testing.T) {
	t.Parallel()
	port := corePorts.TCP(t)
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatalf("bind 127.0.0.1:%d: %v", port, err)
	}
	if err := unix.Listen(fd, 0); err != nil { // a queue of one
		t.Fatal(err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	// Fill the accept queue with connections nobody accepts, until a
	// connect gets no answer.
	full := false
	for range 8 {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err != nil {
			full = true
			break
		}
		defer c.Close()
	}
	if !full {
		t.Fatal("the listener's accept queue never filled: this test cannot check a connect timeout here")
	}
	start := time.Now()
	_, err = RunClient(context.Background(), ClientConfig{Address: addr, HandshakeTimeout: 300 * time.Millisecond})
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("err %v, want ErrTimeout", err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("the connect gave up after %v, handshake timeout 300ms", took)
	}
	t.Logf("%v", err)
}
