package core

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"testing"
	"time"
)

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t *testing.T) (a, b net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() { c, err := ln.Accept(); ch <- res{c, err} }()
	a, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}
	t.Cleanup(func() { a.Close(); r.c.Close() })
	return a, r.c
}

// TestReadDataCounts: data nobody scans is taken off the socket (dropped
// unread on Linux) and counted to the byte; the end of the stream is EOF;
// what scan is due to see arrives intact.
func TestReadDataCounts(t *testing.T) {
	t.Parallel()
	a, b := tcpPair(t)
	if runtime.GOOS == "linux" && newTCPDropper(b) == nil {
		t.Fatal("no dropper for a TCP connection on Linux")
	}
	const total = 3<<20 + 12345
	marker := []byte("status here")
	go func() {
		a.Write(marker)
		time.Sleep(50 * time.Millisecond) // the marker is read alone
		a.Write(make([]byte, total-len(marker)))
		a.Close()
	}()
	var n paddedCounter
	var seen bytes.Buffer
	scans := 0
	err := readData(b, &n, func(p []byte) error { seen.Write(p); return nil },
		func() bool { scans++; return scans == 1 }, readBuf{pool: &smallBufs, grow: true})
	if !errors.Is(err, io.EOF) {
		t.Fatalf("end of stream: %v, want io.EOF", err)
	}
	if n.Load() != total {
		t.Fatalf("counted %d bytes, sent %d", n.Load(), total)
	}
	if !bytes.HasPrefix(seen.Bytes(), marker) || seen.Len() >= total {
		t.Fatalf("scan saw %d bytes starting %q; want the marker and not everything", seen.Len(), seen.Bytes()[:min(seen.Len(), 16)])
	}
}

// TestReadDataUnblocks: a dropping read waits like Read and ends on a
// deadline or when the connection is closed.
func TestReadDataUnblocks(t *testing.T) {
	t.Parallel()
	_, b := tcpPair(t)
	var n paddedCounter
	b.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if err := readData(b, &n, nil, nil, readBuf{pool: &smallBufs}); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("past the deadline: %v", err)
	}
	b.SetReadDeadline(time.Time{})
	done := make(chan error, 1)
	go func() { done <- readData(b, &n, nil, nil, readBuf{pool: &smallBufs}) }()
	time.Sleep(20 * time.Millisecond)
	b.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("after Close: %v, want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not end the read")
	}
}
