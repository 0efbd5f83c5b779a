package core

import (
	"context"
	"errors"
	"io"
	"maps"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/btest-go/btest/core/wire"
	"github.com/btest-go/btest/internal/testutil"
)

// TestSourceGrouping: IPv4 addresses are their own source, IPv6 ones group
// by /64 (both configurable), and IPv4-mapped IPv6 counts as IPv4.
func TestSourceGrouping(t *testing.T) {
	t.Parallel()
	s, err := NewServer(ServerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	same := func(a, b string) bool {
		return s.source(netip.MustParseAddr(a)) == s.source(netip.MustParseAddr(b))
	}
	if !same("2001:db8:1:2::1", "2001:db8:1:2:ffff::9") || same("2001:db8:1:2::1", "2001:db8:1:3::1") {
		t.Fatal("IPv6 sources are not /64s")
	}
	if same("192.0.2.1", "192.0.2.2") || !same("192.0.2.1", "::ffff:192.0.2.1") {
		t.Fatal("IPv4 sources are not single addresses")
	}
	if !same("fe80::1%eth0", "fe80::2%eth1") {
		t.Fatal("zones split a source")
	}
	s, _ = NewServer(ServerConfig{SourcePrefixV4: 24, SourcePrefixV6: 48})
	if !same("192.0.2.1", "192.0.2.200") || !same("2001:db8:1:2::1", "2001:db8:1:3::1") {
		t.Fatal("configured prefix lengths not applied")
	}
	if _, err := NewServer(ServerConfig{SourcePrefixV4: 33}); err == nil {
		t.Fatal("a /33 IPv4 source prefix was accepted")
	}
}

// TestHandshakeRate: a source gets its burst of new tests, then one more
// for each 1/rate seconds; other sources are not affected; the global
// limit covers all. The commands come at given times: at the machine's own
// pace, a test descheduled for an eighth of a second between two of them
// (a loaded CI machine) got the global bucket's next token back.
func TestHandshakeRate(t *testing.T) {
	t.Parallel()
	s, err := NewServer(ServerConfig{MaxHandshakeRatePerSource: 5, MaxHandshakeRate: 8})
	if err != nil {
		t.Fatal(err)
	}
	a := s.source(netip.MustParseAddr("192.0.2.1"))
	b := s.source(netip.MustParseAddr("192.0.2.2"))
	now := time.Now()
	for i := range 5 {
		if reason, err := s.allowCommandAt(a, now); err != nil {
			t.Fatalf("command %d of the burst refused: %s %v", i+1, reason, err)
		}
	}
	if reason, _ := s.allowCommandAt(a, now); reason != RefusedHandshakeRate {
		t.Fatalf("sixth command in a burst: %q, want %q", reason, RefusedHandshakeRate)
	}
	for i := range 3 {
		if _, err := s.allowCommandAt(b, now); err != nil {
			t.Fatalf("other source's command %d refused: %v", i+1, err)
		}
	}
	if reason, _ := s.allowCommandAt(b, now); reason != RefusedHandshakeRate {
		t.Fatalf("command beyond the global burst: %q, want %q", reason, RefusedHandshakeRate)
	}
	// A quarter second later: one more per source at 5/s, two globally.
	later := now.Add(250 * time.Millisecond)
	if _, err := s.allowCommandAt(a, later); err != nil {
		t.Fatalf("no token back after 250 ms: %v", err)
	}
	if _, err := s.allowCommandAt(b, later); err != nil {
		t.Fatalf("no second global token after 250 ms: %v", err)
	}
	if reason, _ := s.allowCommandAt(a, later); reason != RefusedHandshakeRate {
		t.Fatalf("a third command after 250 ms: %q, want %q", reason, RefusedHandshakeRate)
	}
}

// TestRefusalLogLimit: one line per reason and source a second, counting
// the rest; another source's lines are not hidden by one source's flood,
// and all sources together get at most maxRefusalLines a second.
func TestRefusalLogLimit(t *testing.T) {
	t.Parallel()
	var l logLimiter
	a := netip.MustParsePrefix("192.0.2.1/32")
	b := netip.MustParsePrefix("192.0.2.2/32")
	now := time.Now()
	if ok, _ := l.allow(RefusedAuthFailed, a, now); !ok {
		t.Fatal("first line held back")
	}
	for range 5 {
		if ok, _ := l.allow(RefusedAuthFailed, a, now.Add(time.Millisecond)); ok {
			t.Fatal("second line in the same second logged")
		}
	}
	if ok, _ := l.allow(RefusedAuthFailed, b, now.Add(2*time.Millisecond)); !ok {
		t.Fatal("another source's failed login held back by the first source's")
	}
	if ok, _ := l.allow(RefusedBadCommand, a, now); !ok {
		t.Fatal("another reason held back")
	}
	if ok, n := l.allow(RefusedAuthFailed, a, now.Add(time.Second)); !ok || n != 5 {
		t.Fatalf("a second later: logged %v, skipped %d; want true, 5", ok, n)
	}
	// Many sources at once: the total is capped, and the sources held
	// back log their count when they come back.
	var l2 logLimiter
	logged := 0
	for i := range 100 {
		src := netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}), 32)
		if ok, _ := l2.allow(RefusedAuthFailed, src, now); ok {
			logged++
		}
	}
	if logged != maxRefusalLines {
		t.Fatalf("%d lines from 100 sources in one second, want %d", logged, maxRefusalLines)
	}
	last := netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 51, 100, 99}), 32)
	if ok, n := l2.allow(RefusedAuthFailed, last, now.Add(time.Second)); !ok || n != 1 {
		t.Fatalf("a held-back source a second later: logged %v, skipped %d; want true, 1", ok, n)
	}
	// The table is bounded.
	var l3 logLimiter
	for i := range maxLogKeys + 100 {
		src := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), 32)
		l3.allow(RefusedAuthFailed, src, now)
	}
	if n := len(l3.last); n > maxLogKeys {
		t.Fatalf("%d keys remembered, bound %d", n, maxLogKeys)
	}
}

// TestShutdownClosesHandshakes: connections in their handshake (silent
// after HELLO, or in the middle of MD5 authentication) are closed when
// Shutdown's context ends, however long their handshake deadlines are,
// and Shutdown returns promptly.
func TestShutdownClosesHandshakes(t *testing.T) {
	if testutil.Isolate(t) {
		return
	}
	checkNoLeak(t)
	srv, addr, _ := startServer(t, ServerConfig{HandshakeTimeout: time.Minute, CommandTimeout: time.Minute,
		Auth: AuthMD5, Users: []User{{Name: "u", Password: "p"}}}, "tcp", "127.0.0.1:0")
	silent := dialRaw(t, addr)
	half := dialRaw(t, addr)
	cmd := wire.Command{Proto: wire.TCP, Direction: wire.ServerSends, ConnCount: 1, TxSize: 32768}.Marshal()
	half.Write(cmd[:])
	var ch [20]byte
	if _, err := io.ReadFull(half, ch[:]); err != nil {
		t.Fatalf("no md5 challenge: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown: %v, want the context's error", err)
	}
	if el := time.Since(start); el > time.Second {
		t.Fatalf("Shutdown took %v with a 300 ms context and two handshakes pending", el)
	}
	for _, c := range []net.Conn{silent, half} {
		expectClosed(t, c, nil, time.Second)
	}
}

// TestResultsListEveryOutcome ties Results to resultString: every sentinel
// a test can end with gives a listed name, and every listed name comes from
// one, so the metrics' series made from Results match the labels sessions
// get.
func TestResultsListEveryOutcome(t *testing.T) {
	t.Parallel()
	got := map[string]bool{}
	for _, err := range []error{nil, ErrAuthFailed, ErrLimit, ErrStalled, ErrTimeout, ErrProtocol, ErrUnsupported, ErrRefused, errors.New("other")} {
		got[ResultString(err)] = true
	}
	want := map[string]bool{}
	for _, r := range Results() {
		want[r] = true
	}
	if !maps.Equal(got, want) {
		t.Fatalf("ResultString gives %v, Results lists %v", slices.Sorted(maps.Keys(got)), Results())
	}
}
