package core

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/btest-go/btest/core/ecsrp5"
	"github.com/btest-go/btest/internal/testutil"
)

// recorder is an Observer that keeps what the server reported.
type recorder struct {
	mu       sync.Mutex
	started  []SessionInfo
	ended    []Summary
	errs     []error
	refusals []RefusalReason
	endedCh  chan struct{}
}

func newRecorder() *recorder { return &recorder{endedCh: make(chan struct{}, 1000)} }

func (r *recorder) SessionStarted(i SessionInfo) {
	r.mu.Lock()
	r.started = append(r.started, i)
	r.mu.Unlock()
}
func (r *recorder) SessionInterval(SessionInfo, IntervalStats) {}
func (r *recorder) SessionEnded(i SessionInfo, s Summary, err error) {
	r.mu.Lock()
	r.ended = append(r.ended, s)
	r.errs = append(r.errs, err)
	r.mu.Unlock()
	r.endedCh <- struct{}{}
}
func (r *recorder) Refused(_ netip.Addr, reason RefusalReason) {
	r.mu.Lock()
	r.refusals = append(r.refusals, reason)
	r.mu.Unlock()
}

// observer hands the recorder's methods to a server.
func (r *recorder) observer() *Observer {
	return &Observer{SessionStarted: r.SessionStarted, SessionInterval: r.SessionInterval,
		SessionEnded: r.SessionEnded, Refused: r.Refused}
}

func (r *recorder) waitEnded(t testing.TB) (Summary, error) {
	t.Helper()
	select {
	case <-r.endedCh:
	case <-time.After(10 * time.Second):
		t.Fatal("server session did not end")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ended[len(r.ended)-1], r.errs[len(r.errs)-1]
}

func (r *recorder) refusalList() []RefusalReason {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]RefusalReason(nil), r.refusals...)
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

// startServer runs a server on a loopback port and stops it at cleanup.
func startServer(t *testing.T, cfg ServerConfig, network, addr string) (*Server, string, *recorder) {
	t.Helper()
	rec := newRecorder()
	cfg = withTestPorts(t, cfg)
	if cfg.Observer == nil {
		cfg.Observer = rec.observer()
	}
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	s, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := listen(t, network, addr)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(context.Background(), ln) }()
	t.Cleanup(func() {
		s.Close()
		if err := <-done; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve returned %v", err)
		}
	})
	return s, ln.Addr().String(), rec
}

// checkNoLeak fails when goroutines started by a test are still running
// at its end.
func checkNoLeak(t *testing.T) { testutil.CheckLeaks(t) }

// measuresTiming marks a test whose result is a measurement of rates,
// loss or time, which a CPU starved by the rest of the suite would skew.
// make test runs the suite with BTEST_ALONE=later, so that these skip,
// and then them in a step of their own, alone on the machine (the
// Makefile's test-alone names them), with BTEST_ALONE=now: there they run
// side by side, each at a few Mbit/s.
func measuresTiming(t *testing.T) {
	t.Helper()
	switch os.Getenv("BTEST_ALONE") {
	case "later":
		t.Skip("make test runs it in a step of its own, alone (BTEST_ALONE=later)")
	case "now":
		t.Parallel()
	}
}

// heavySlots bounds how many parallel tests move data at line rate (or at
// hundreds of Mbit/s) at once. Each keeps several goroutines busy, and all
// of them at once would fill the Go scheduler's run queue until every other
// test's timers and readers wait for seconds on a 2-core machine.
var heavySlots = make(chan struct{}, 2)

// heavyTest takes a slot for the rest of the (parallel) test.
func heavyTest(t *testing.T) {
	t.Helper()
	heavySlots <- struct{}{}
	t.Cleanup(func() { <-heavySlots })
}

// corePorts keeps this package's servers on ports no other package, no
// make run and no outgoing connection uses.
var corePorts = testutil.NewPorts(testutil.RangeCore)

// listen listens on addr; "127.0.0.1:0" or "[::1]:0" get a port of this
// package's range instead of the kernel's choice.
func listen(t testing.TB, network, addr string) (net.Listener, error) {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil || port != "0" {
		return net.Listen(network, addr)
	}
	return corePorts.Listen(t, host), nil
}

// withTestPorts gives a server config UDP data ports of this package's
// range unless the test chose its own.
func withTestPorts(t testing.TB, cfg ServerConfig) ServerConfig {
	t.Helper()
	if cfg.UDPPorts == nil && cfg.UDPPortFirst == 0 {
		cfg.UDPPortFirst, cfg.UDPPortLast = corePorts.UDP(t, 8)
	}
	return cfg
}

func TestTCPMatrix(t *testing.T) {
	t.Parallel()
	type authCase struct {
		name      string
		mode      AuthMode
		user, pw  string
		wantError error
	}
	auths := []authCase{
		{"none", AuthNone, "", "", nil},
		{"md5", AuthMD5, "admin", "secret", nil},
		{"md5-wrong", AuthMD5, "admin", "wrong", ErrAuthFailed},
	}
	for _, a := range auths {
		for _, dir := range []Direction{Receive, Transmit, Both} {
			for _, n := range []int{1, 20} {
				t.Run(fmt.Sprintf("%s/%s/%d", a.name, dir, n), func(t *testing.T) {
					t.Parallel()
					// The cases without auth move data as fast as the
					// machine can; the MD5 cases through the pacer, at
					// 500 Mbit/s, so the matrix covers both send paths
					// and does not spend the whole suite's CPU twice.
					var speed uint64
					if a.mode == AuthMD5 {
						speed = 500_000_000
					} else {
						heavyTest(t)
					}
					cfg := ServerConfig{Auth: a.mode}
					if a.mode != AuthNone {
						cfg.Users = []User{{Name: "admin", Password: "secret"}}
					}
					srv, addr, rec := startServer(t, cfg, "tcp", "127.0.0.1:0")
					var intervals []IntervalStats
					// The test runs 1.5 s, and on until the server's first
					// status arrived where one is due (it goes a second
					// after the server's test starts, after the last JOIN,
					// which a loaded machine delays), at most 30 s ...
					ctx, stop := context.WithTimeout(context.Background(), 30*time.Second)
					defer stop()
					sum, err := RunClient(ctx, ClientConfig{
						Address: addr, Direction: dir, Connections: n,
						User: a.user, Password: a.pw,
						LocalTxSpeed: speed, RemoteTxSpeed: speed,
						Interval: 500 * time.Millisecond,
						OnInterval: func(s IntervalStats) {
							intervals = append(intervals, s)
							// ... and until a MiB arrived each way that
							// carries data: a loaded machine may hold a
							// paced sender back for the first seconds.
							// Two reports at least: a loop starved for
							// seconds sends its first one late, past
							// everything else this waits for.
							flowed := (dir == Transmit || s.RxBytes >= 1<<20) && (dir == Receive || s.TxBytes >= 1<<20)
							if s.Elapsed >= 1500*time.Millisecond && (dir == Receive || s.RemoteCPU >= 0) && flowed && len(intervals) >= 2 {
								stop()
							}
						},
					})
					if a.wantError != nil {
						if !errors.Is(err, a.wantError) {
							t.Fatalf("err %v, want %v", err, a.wantError)
						}
						// The server keeps serving the next client.
						if _, err := RunClient(context.Background(), ClientConfig{
							Address: addr, Direction: dir, Duration: 300 * time.Millisecond,
							User: "admin", Password: "secret",
						}); err != nil {
							t.Fatalf("next client after a failed login: %v", err)
						}
						if refs := rec.refusalList(); len(refs) != 1 || refs[0] != RefusedAuthFailed {
							t.Fatalf("refusals %v", refs)
						}
						return
					}
					if err != nil {
						t.Fatalf("client: %v", err)
					}
					ssum, serr := rec.waitEnded(t)
					if serr != nil {
						t.Fatalf("server session error: %v", serr)
					}
					if ssum.Connections != n || sum.Connections != n {
						t.Fatalf("connections: server %d client %d, want %d", ssum.Connections, sum.Connections, n)
					}
					if len(intervals) < 2 {
						t.Fatalf("%d interval reports", len(intervals))
					}
					// Bytes flow in the requested direction only, and what
					// the client counts matches what the server counts.
					const minBytes = 1 << 20
					checkFlow := func(what string, sent, got uint64, want bool) {
						t.Helper()
						if !want {
							if got > 1024 || sent > 0 {
								t.Errorf("%s: unexpected data: sent %d received %d", what, sent, got)
							}
							return
						}
						if got < minBytes {
							t.Errorf("%s: only %d bytes received", what, got)
						}
						// Stated tolerance: the sender counts bytes into its
						// socket buffer, so up to the largest autotuned send
						// plus receive buffer per connection (tcp_wmem and
						// tcp_rmem maxima) can still be in flight when the
						// test closes; the receiver may count up to 1 KiB
						// more (status frames in `both`).
						slack := uint64(n)*maxInFlight() + 1024
						if sent+1024 < got || sent > got+slack {
							t.Errorf("%s: sender counted %d, receiver %d", what, sent, got)
						}
					}
					checkFlow("client->server", sum.TxBytes, ssum.RxBytes, dir != Receive)
					checkFlow("server->client", ssum.TxBytes, sum.RxBytes, dir != Transmit)
					if dir != Receive && sum.RemoteCPU < 0 {
						t.Errorf("client saw no status from the server (remote cpu %d)", sum.RemoteCPU)
					}
					if srv.ActiveSessions() != 0 {
						t.Errorf("%d sessions still active", srv.ActiveSessions())
					}
				})
			}
		}
	}
}

func TestTCPIPv6(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Skip("no IPv6 loopback:", err)
	}
	ln.Close()
	_, addr, rec := startServer(t, ServerConfig{}, "tcp", "[::1]:0")
	sum, err := RunClient(context.Background(), ClientConfig{Address: addr, Direction: Both, Connections: 4, Duration: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ss, _ := rec.waitEnded(t)
	if sum.RxBytes == 0 || ss.RxBytes == 0 {
		t.Fatalf("no data over IPv6: %+v %+v", sum, ss)
	}
}

func TestTCPSpeedLimit(t *testing.T) {
	// Not beside the parallel tests, which would starve its paced
	// senders and receivers of CPU: its cases run in parallel, alone.
	measuresTiming(t)
	const rate = 4_000_000
	for _, tc := range []struct {
		dir Direction
		n   int
	}{{Receive, 1}, {Receive, 20}, {Transmit, 1}, {Transmit, 20}} {
		t.Run(fmt.Sprintf("%s/%d", tc.dir, tc.n), func(t *testing.T) {
			t.Parallel()
			_, addr, rec := startServer(t, ServerConfig{}, "tcp", "127.0.0.1:0")
			cfg := ClientConfig{Address: addr, Direction: tc.dir, Connections: tc.n, Duration: 3 * time.Second}
			if tc.dir == Receive {
				cfg.RemoteTxSpeed = rate
			} else {
				cfg.LocalTxSpeed = rate
			}
			sum, err := RunClient(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			ss, _ := rec.waitEnded(t)
			got := float64(ss.RxBytes) * 8 / sum.Duration.Seconds()
			if tc.dir == Receive {
				got = float64(sum.RxBytes) * 8 / sum.Duration.Seconds()
			}
			if got < rate*0.9 || got > rate*1.1 {
				t.Fatalf("rate %.0f bit/s, want %d +-10%% (whole test, %d connections)", got, rate, tc.n)
			}
		})
	}
}

func TestECSRP5(t *testing.T) {
	t.Parallel()
	v := mustVerifier(t, "antar", "pw2")
	users := []User{{Name: "admin", Password: "secret"}, {Name: "antar", Verifier: &v}}
	for _, tc := range []struct {
		user, pw string
		dir      Direction
		n        int
		want     error
		udp      bool
	}{
		{"admin", "secret", Receive, 1, nil, true},
		{"admin", "secret", Transmit, 1, nil, true},
		{"antar", "pw2", Both, 2, nil, true},
		{"admin", "wrong", Both, 1, ErrAuthFailed, true},
		{"admin", "secret", Receive, 1, nil, false},
		{"admin", "secret", Receive, 20, nil, false},
		{"admin", "secret", Transmit, 1, nil, false},
		{"admin", "secret", Transmit, 20, nil, false},
		{"admin", "secret", Both, 1, nil, false},
		{"admin", "secret", Both, 20, nil, false},
		{"antar", "pw2", Receive, 20, nil, false},
		{"antar", "pw2", Both, 1, nil, false},
		{"admin", "wrong", Receive, 1, ErrAuthFailed, false},
		{"nobody", "secret", Receive, 20, ErrAuthFailed, false},
	} {
		proto := map[bool]string{false: "tcp", true: "udp"}[tc.udp]
		t.Run(fmt.Sprintf("%s-%s-%s-%s-%d", proto, tc.user, tc.pw, tc.dir, tc.n), func(t *testing.T) {
			t.Parallel()
			_, addr, rec := startServer(t, ServerConfig{Auth: AuthECSRP5, Users: users}, "tcp", "127.0.0.1:0")
			sum, err := RunClient(context.Background(), ClientConfig{
				Address: addr, UDP: tc.udp, Direction: tc.dir, Connections: tc.n, Duration: 1500 * time.Millisecond,
				User: tc.user, Password: tc.pw, RemoteTxSpeed: 50e6, LocalTxSpeed: 50e6,
			})
			if tc.want != nil {
				if !errors.Is(err, tc.want) {
					t.Fatalf("err %v, want %v", err, tc.want)
				}
				// The user reads this: it says what failed once.
				if n := strings.Count(err.Error(), "authentication failed"); n != 1 {
					t.Fatalf("err %q says %q %d times", err, "authentication failed", n)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			ss, _ := rec.waitEnded(t)
			// Each receiver counted data: what a UDP sender reports
			// as sent comes from the other side's status, which a
			// loaded machine may delay past a short test's first
			// report.
			flowed := (tc.dir == Transmit || sum.RxBytes > 0) && (tc.dir == Receive || ss.RxBytes > 0)
			if sum.Connections != tc.n || !flowed || sum.Proto.String() != proto {
				t.Fatalf("no data after ec-srp5: client %+v server %+v", sum, ss)
			}
			rec.mu.Lock()
			user := rec.started[0].User
			rec.mu.Unlock()
			if user != tc.user {
				t.Fatalf("session user %q", user)
			}
		})
	}
}

func mustVerifier(t *testing.T, user, pw string) ecsrp5.Verifier {
	v, err := ecsrp5.NewVerifier(user, pw, nil)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// maxInFlight is the most TCP payload one loopback connection can hold in
// its socket buffers: the tcp_wmem and tcp_rmem maxima.
func maxInFlight() uint64 {
	var total uint64
	for _, f := range []string{"/proc/sys/net/ipv4/tcp_wmem", "/proc/sys/net/ipv4/tcp_rmem"} {
		b, err := os.ReadFile(f)
		fields := strings.Fields(string(b))
		if err != nil || len(fields) != 3 {
			return 64 << 20
		}
		v, err := strconv.ParseUint(fields[2], 10, 64)
		if err != nil {
			return 64 << 20
		}
		total += v
	}
	return total
}
