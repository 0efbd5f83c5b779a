package caddymodule

import (
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/btest-go/btest/core"
	"github.com/btest-go/btest/core/wire"
	"github.com/btest-go/btest/internal/testutil"
)

// The attacks of core's attack suite, against the Caddy app built from
// cmd/xcaddy-build: after each, Caddy's site answers, its goroutines and
// fds are back to their idle counts and a legitimate test passes. Short
// here; BTEST_ATTACK_LONG=1 runs each flood for 30 s.
// legitSpeed is the rate of the legitimate tests run beside and after
// the attacks, both ways: they show Caddy still serves, which a paced test
// shows as well as one at line rate, and line rate would spend both cores
// for the test's length, starving the package's other tests.
const legitSpeed = 100_000_000

// TestAttackerProcess is the attacker of testutil.AttackerProcess; it
// does nothing unless an attack test started it.
func TestAttackerProcess(t *testing.T) { testutil.RunAttacker(t) }

func TestCaddyAttacks(t *testing.T) {
	// In a process of its own, beside the package's other tests: what it
	// measures is its own Caddy's memory, goroutines and descriptors, and
	// its floods' thousand goroutines would starve the other tests'
	// clients in a shared process.
	if testutil.Isolate(t) {
		return
	}
	pt := newPortsUDP(t, 8) // the status flood's tests come one at a time
	p := startCaddy(t, pt.caddyfile("auth none", "progress_timeout 2s"), "caddyfile", pt.admin, nil, pt.btest, pt.http)
	pid := strconv.Itoa(p.cmd.Process.Pid)
	legit := func(what string) {
		t.Helper()
		runClient(t, core.ClientConfig{Address: pt.btest, LocalAddress: "127.0.0.2", Direction: core.Both, Duration: time.Second,
			LocalTxSpeed: legitSpeed, RemoteTxSpeed: legitSpeed})
		if body, err := getSite("http://"+pt.http, 5*time.Second); err != nil || !strings.Contains(body, "site up") {
			t.Fatalf("after %s the site does not answer: %q %v", what, body, err)
		}
	}
	legit("start")
	p.waitMetric(t, "warm-up test ended", func(v float64) bool { return v == 0 }, "caddy_btest_sessions_active")
	idle := procState(t, p, pid)
	back := func(what string) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		var now caddyState
		for time.Now().Before(deadline) {
			now = procState(t, p, pid)
			if now.goroutines <= idle.goroutines+2 && now.fds <= idle.fds {
				legit(what)
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Fatalf("after %s: goroutines %d (idle %d), fds %d (idle %d)", what, now.goroutines, idle.goroutines, now.fds, idle.fds)
	}
	flood := 2 * time.Second
	if os.Getenv("BTEST_ATTACK_LONG") != "" {
		flood = 30 * time.Second
	}

	t.Run("status flood", func(t *testing.T) {
		end := time.Now().Add(flood)
		var peak int64
		floods := 0
		frames := lies()
		for time.Now().Before(end) {
			c, err := udpTest(pt.btest)
			if err != nil {
				time.Sleep(20 * time.Millisecond)
				continue
			}
			floods++
			c.SetWriteDeadline(end)
			for {
				if _, err := c.Write(frames); err != nil {
					break
				}
			}
			c.Close()
			peak = max(peak, procState(t, p, pid).rss)
		}
		growth := peak - idle.rss
		t.Logf("caddy under a status flood for %v: %d floods, RSS %d MiB idle, peak growth %.1f MiB", flood, floods, idle.rss>>20, float64(growth)/(1<<20))
		if growth > 32<<20 {
			t.Errorf("caddy RSS grew by %d MiB (bound 32 MiB)", growth>>20)
		}
		p.waitMetric(t, "floods counted as anomalies", func(v float64) bool { return v >= 1 }, "caddy_btest_protocol_anomalies_total")
		p.waitMetric(t, "floods ended as protocol errors", func(v float64) bool { return v >= 1 }, "caddy_btest_sessions_total", `result="protocol_error"`)
		back("the status flood")
	})

	t.Run("idle connections", func(t *testing.T) {
		stop := testutil.AttackerProcess(t, "idle", pt.btest, 1000)
		// The legitimate test starts once the flood has filled its
		// source's share, so that it runs beside a full one. (Once,
		// with the flood's thousand goroutines in this process on a
		// loaded machine, the client read nothing for 2 s and Caddy
		// ended its test as stalled: the attacker is another program,
		// as a real one is.)
		refusals := func() float64 {
			return metric(p.metrics(t), "caddy_btest_refusals_total", `reason="too_many_handshakes_per_source"`)
		}
		for deadline := time.Now().Add(20 * time.Second); refusals() < 1; {
			if time.Now().After(deadline) {
				t.Fatalf("the flood was never refused per source (attacker: %s)", stop())
			}
			time.Sleep(20 * time.Millisecond)
		}
		start := time.Now()
		sum := runClient(t, core.ClientConfig{Address: pt.btest, LocalAddress: "127.0.0.2", Direction: core.Both, Duration: 2 * time.Second,
			LocalTxSpeed: legitSpeed, RemoteTxSpeed: legitSpeed})
		took := time.Since(start)
		_, siteErr := getSite("http://"+pt.http, 5*time.Second)
		t.Logf("2 s test from 127.0.0.2 beside 1,000 idle connections from 127.0.0.1: took %v, rx %d B; %s", took.Round(time.Millisecond), sum.RxBytes, stop())
		if took > 6*time.Second || siteErr != nil {
			t.Fatalf("test took %v; site: %v", took, siteErr)
		}
		back("the idle flood")
	})

	t.Run("stalled readers", func(t *testing.T) {
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for i := 0; len(conns) < 20 && i < 200; i++ {
			if c, err := stalled(pt.btest); err == nil {
				conns = append(conns, c)
			} else {
				time.Sleep(100 * time.Millisecond) // 10 new tests a second per source
			}
		}
		opened := time.Now()
		p.waitMetric(t, "all stalled readers ended", func(v float64) bool { return v >= 20 }, "caddy_btest_sessions_total", `result="stalled"`)
		if el := time.Since(opened); len(conns) < 20 || el > 4*time.Second {
			t.Fatalf("%d stalled readers; the last ended %v after they were open (progress_timeout 2s)", len(conns), el)
		}
		for _, c := range conns {
			c.Close()
		}
		conns = nil
		back("the stalled readers")
	})

	t.Run("churn", func(t *testing.T) {
		var wg sync.WaitGroup
		for w := range 8 {
			wg.Go(func() {
				for i := w; i < 5000; i += 8 {
					if c, err := net.DialTimeout("tcp", pt.btest, 2*time.Second); err == nil {
						if i%2 == 0 {
							c.Write([]byte("GET / HTTP/1.1\r\n\r\n"))
						}
						c.Close()
					}
				}
			})
		}
		wg.Wait()
		back("the churn")
	})
}

// caddyState is what an attack must give back.
type caddyState struct {
	goroutines, fds int
	rss             int64
}

func procState(t *testing.T, p *caddyProc, pid string) caddyState {
	t.Helper()
	ents, err := os.ReadDir("/proc/" + pid + "/fd")
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	st := caddyState{goroutines: int(metric(p.metrics(t), "go_goroutines")), fds: len(ents)}
	b, _ := os.ReadFile("/proc/" + pid + "/status")
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
			st.rss = kb << 10
		}
	}
	return st
}

// lies is 64 KiB of well-formed status messages that each claim 4 GB.
func lies() []byte {
	b := make([]byte, 0, 64<<10)
	for i := uint32(1); len(b)+wire.StatusSize <= cap(b); i++ {
		f := wire.Status{Seq: i, Bytes: 0xffffffff}.Marshal()
		b = append(b, f[:]...)
	}
	return b
}

// handshakeRaw sends cmd after HELLO and reads n bytes of answer, which
// must start with the OK result.
func handshakeRaw(addr string, cmd wire.Command, n int) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	b := make([]byte, max(n, 4))
	m := cmd.Marshal()
	if _, err = io.ReadFull(c, b[:4]); err == nil {
		c.Write(m[:])
		_, err = io.ReadFull(c, b[:n])
	}
	if err != nil || b[0] != 1 {
		c.Close()
		return nil, fmt.Errorf("no OK (% x): %v", b, err)
	}
	c.SetDeadline(time.Time{})
	return c, nil
}

// udpTest opens a UDP test in which the server sends 10 Mbit/s.
func udpTest(addr string) (net.Conn, error) {
	c, err := handshakeRaw(addr, wire.Command{Proto: wire.UDP, Direction: wire.ServerSends, ConnCount: 1, TxSize: 1500, RemoteTxSpeed: 10_000_000}, 6)
	return c, err
}

// stalled opens a TCP test in which the server sends, and never reads.
func stalled(addr string) (net.Conn, error) {
	c, err := handshakeRaw(addr, wire.Command{Proto: wire.TCP, Direction: wire.ServerSends, ConnCount: 1, TxSize: 32768}, 4)
	if err == nil {
		c.(*net.TCPConn).SetReadBuffer(16 << 10)
	}
	return c, err
}
