package telegrafinput

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/btest-go/btest/core"
	"github.com/btest-go/btest/internal/testutil"
)

// syncBuffer is a buffer that tests read while the program writes.
type syncBuffer = testutil.Buffer

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// testConfig parses a configuration with n targets 192.0.2.1..n after
// the round options in head.
func testConfig(t *testing.T, head string, n int) *Config {
	t.Helper()
	var b strings.Builder
	b.WriteString(head + "\n")
	for i := range n {
		fmt.Fprintf(&b, "[[targets]]\naddress = \"192.0.2.%d\"\n", i+1)
	}
	cfg, _, err := Parse([]byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// fakeTests counts running tests, the most at once, and holds each test
// until the test (or ctx) lets it go.
type fakeTests struct {
	running, most, started atomic.Int32
	release                chan struct{}
}

func (f *fakeTests) run(ctx context.Context, cc core.ClientConfig) (core.Summary, error) {
	n := f.running.Add(1)
	defer f.running.Add(-1)
	for {
		m := f.most.Load()
		if n <= m || f.most.CompareAndSwap(m, n) {
			break
		}
	}
	f.started.Add(1)
	start := time.Now()
	select {
	case <-f.release:
	case <-ctx.Done():
	}
	return core.Summary{Connections: 1, Duration: time.Since(start) + time.Nanosecond, RxBytes: 1000, RxBps: 8000,
		LocalCPU: -1, RemoteCPU: -1}, nil
}

func TestTriggerCollapses(t *testing.T) {
	t.Parallel()
	trig := NewTrigger()
	if !trig.Fire() {
		t.Fatal("first Fire did not queue a round")
	}
	for range 5 {
		if trig.Fire() {
			t.Fatal("Fire queued a second round while one was pending")
		}
	}
	<-trig.ch
	select {
	case <-trig.ch:
		t.Fatal("six Fires left more than one round pending")
	default:
	}
	if !trig.Fire() {
		t.Fatal("Fire after the pending round was taken did not queue one")
	}
}

// TestServeCollapsesAndNeverOverlaps fires many triggers while a round
// runs: they become exactly one more round, which starts only after the
// first has finished.
func TestServeCollapsesAndNeverOverlaps(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, "concurrency = 2", 2)
	f := &fakeTests{release: make(chan struct{})}
	out, errs := &syncBuffer{}, &syncBuffer{}
	r := &Runner{Config: cfg, Out: out, Log: NewLogger(errs), RunTest: f.run}
	ctx, cancel := context.WithCancel(context.Background())
	trig := NewTrigger()
	done := make(chan struct{})
	go func() { r.Serve(ctx, trig); close(done) }()

	trig.Fire()
	waitFor(t, "round 1's tests", func() bool { return f.started.Load() == 2 })
	for range 10 {
		trig.Fire()
	}
	time.Sleep(20 * time.Millisecond)
	if n := f.started.Load(); n != 2 {
		t.Fatalf("%d tests started while round 1 still ran; rounds overlap", n)
	}
	f.release <- struct{}{}
	f.release <- struct{}{}
	waitFor(t, "round 2's tests", func() bool { return f.started.Load() == 4 })
	f.release <- struct{}{}
	f.release <- struct{}{}
	waitFor(t, "round 2's points", func() bool { return strings.Count(out.String(), "\n") == 4 })
	time.Sleep(50 * time.Millisecond)
	if n := f.started.Load(); n != 4 {
		t.Fatalf("10 piled triggers gave %d rounds, want 1", (n-2)/2)
	}
	if m := f.most.Load(); m != 2 {
		t.Errorf("at most %d tests ran at once, want concurrency 2", m)
	}
	cancel()
	<-done
	if !strings.Contains(errs.String(), "W! round 1 took") || !strings.Contains(errs.String(), "10 trigger(s) came meanwhile") {
		t.Errorf("no warning about the slow round:\n%s", errs)
	}
	if got := decodeLines(t, out.Bytes()); len(got) != 4 {
		t.Errorf("%d points, want 4", len(got))
	}
}

func TestRoundConcurrencyAndOrder(t *testing.T) {
	t.Parallel()
	for _, conc := range []int{1, 3} {
		t.Run(fmt.Sprint(conc), func(t *testing.T) {
			cfg := testConfig(t, fmt.Sprintf("concurrency = %d", conc), 7)
			f := &fakeTests{release: make(chan struct{})}
			go func() {
				// Let one test go each time as many run as the round
				// allows (or every one left): a runner that starts
				// fewer at once shows as a lower peak, one that starts
				// more as a higher one. A loaded machine starts them
				// slowly, so wait for them rather than a fixed time.
				for i := range 7 {
					full := int32(min(conc, 7-i))
					for deadline := time.Now().Add(2 * time.Second); f.running.Load() < full && time.Now().Before(deadline); {
						time.Sleep(time.Millisecond)
					}
					f.release <- struct{}{}
				}
			}()
			out := &syncBuffer{}
			r := &Runner{Config: cfg, Out: out, Log: NewLogger(&syncBuffer{}), RunTest: f.run}
			if err := r.Round(context.Background()); err != nil {
				t.Fatal(err)
			}
			if m := int(f.most.Load()); m != conc {
				t.Errorf("at most %d tests at once, want %d", m, conc)
			}
			points := decodeLines(t, out.Bytes())
			if len(points) != 7 {
				t.Fatalf("%d points, want 7", len(points))
			}
			for i, p := range points {
				if want := fmt.Sprintf("192.0.2.%d", i+1); p.tags["source"] != want {
					t.Errorf("point %d is from %s, want %s (configuration order)", i, p.tags["source"], want)
				}
			}
		})
	}
}

// TestRoundBudget: round_timeout stops the running test and reports it,
// with what it measured, and the tests that could not start, as
// budget_exceeded.
func TestRoundBudget(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, "round_timeout = \"150ms\"", 3)
	f := &fakeTests{release: make(chan struct{})}
	out, errs := &syncBuffer{}, &syncBuffer{}
	r := &Runner{Config: cfg, Out: out, Log: NewLogger(errs), RunTest: f.run}
	start := time.Now()
	if err := r.Round(context.Background()); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 150*time.Millisecond || d > 5*time.Second {
		t.Errorf("round took %v with a 150ms budget", d)
	}
	points := decodeLines(t, out.Bytes())
	if len(points) != 3 {
		t.Fatalf("%d points, want 3:\n%s", len(points), out)
	}
	for i, p := range points {
		if p.tags["result"] != "budget_exceeded" || p.fields["result_code"] != int64(BudgetExceeded) {
			t.Errorf("point %d: %v %v", i, p.tags, p.fields)
		}
	}
	if _, ok := points[0].fields["rx_bps"]; !ok {
		t.Errorf("the test the budget cut short lost its measurements: %v", points[0].fields)
	}
	if len(points[1].fields) != 1 || len(points[2].fields) != 1 {
		t.Errorf("tests that never started have measurements: %v %v", points[1].fields, points[2].fields)
	}
	if n := strings.Count(errs.String(), "W! "); n != 3 {
		t.Errorf("%d warnings, want one per test:\n%s", n, errs)
	}
}

// TestRoundStopLeavesOutInterrupted: when the program stops mid-round,
// finished tests are written and the interrupted one is not (its numbers
// would be partial).
func TestRoundStopLeavesOutInterrupted(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, "", 2)
	f := &fakeTests{release: make(chan struct{})}
	out, errs := &syncBuffer{}, &syncBuffer{}
	r := &Runner{Config: cfg, Out: out, Log: NewLogger(errs), RunTest: f.run}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		f.release <- struct{}{} // the first test finishes
		for f.started.Load() < 2 {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	if err := r.Round(ctx); err != nil {
		t.Fatal(err)
	}
	points := decodeLines(t, out.Bytes())
	if len(points) != 1 || points[0].tags["source"] != "192.0.2.1" || points[0].tags["result"] != "success" {
		t.Fatalf("want only the finished test, got:\n%s", out)
	}
	if !strings.Contains(errs.String(), "I! stopping: 1 test(s) of round 1 were interrupted") {
		t.Errorf("log:\n%s", errs)
	}
}

// TestRoundFailuresAreData: every failure kind gives a point and a
// warning, never an error from Round.
func TestRoundFailuresAreData(t *testing.T) {
	t.Parallel()
	errsByHost := map[string]error{
		"192.0.2.1:2000": fmt.Errorf("%w: bad password", core.ErrAuthFailed),
		"192.0.2.2:2000": fmt.Errorf("%w: busy", core.ErrRefused),
		"192.0.2.3:2000": fmt.Errorf("reading status: %w", core.ErrTimeout),
		"192.0.2.4:2000": nil,
	}
	cfg := testConfig(t, "concurrency = 4", 4)
	out, errs := &syncBuffer{}, &syncBuffer{}
	r := &Runner{Config: cfg, Out: out, Log: NewLogger(errs), RunTest: func(_ context.Context, cc core.ClientConfig) (core.Summary, error) {
		if cc.Address == "192.0.2.4:2000" {
			panic("a bug in one test")
		}
		return core.Summary{LocalCPU: -1, RemoteCPU: -1}, errsByHost[cc.Address]
	}}
	if err := r.Round(context.Background()); err != nil {
		t.Fatal(err)
	}
	points := decodeLines(t, out.Bytes())
	want := []string{"auth_failed", "refused", "timeout", "error"}
	if len(points) != len(want) {
		t.Fatalf("%d points, want %d:\n%s", len(points), len(want), out)
	}
	for i, p := range points {
		if p.tags["result"] != want[i] {
			t.Errorf("point %d: result %q, want %q", i, p.tags["result"], want[i])
		}
	}
	for _, s := range []string{"W! 192.0.2.1:2000 tcp receive: auth_failed: authentication failed: bad password",
		"W! 192.0.2.4:2000 tcp receive: error: panic: a bug in one test"} {
		if !strings.Contains(errs.String(), s) {
			t.Errorf("log lacks %q:\n%s", s, errs)
		}
	}
}

func TestRoundJitterStops(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t, "start_jitter = \"1h\"", 1)
	out := &syncBuffer{}
	r := &Runner{Config: cfg, Out: out, Log: NewLogger(&syncBuffer{}), RunTest: (&fakeTests{}).run}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := r.Round(ctx); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("stopping during the start jitter took %v", d)
	}
	if out.String() != "" {
		t.Errorf("output from a round stopped before it started: %q", out)
	}
}

func TestTick(t *testing.T) {
	t.Parallel()
	trig := NewTrigger()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { Tick(ctx, trig, 10*time.Millisecond); close(done) }()
	for range 3 {
		select {
		case <-trig.ch:
		case <-time.After(10 * time.Second):
			t.Fatal("Tick did not fire")
		}
	}
	cancel()
	<-done
}

func TestLoggerOneLinePerMessage(t *testing.T) {
	t.Parallel()
	var b syncBuffer
	l := NewLogger(&b)
	l.Warnf("two\nlines\r\n")
	l.Errorf("e")
	l.Infof("i")
	l.Debugf("d")
	l.Slog().Debug("core says", "k", "v\nw")
	want := "W! two | lines\nE! e\nI! i\nD! d\n"
	if got := b.String(); !strings.HasPrefix(got, want) || !strings.HasPrefix(got[len(want):], `D! msg="core says" k="v\nw"`) ||
		strings.Count(got, "\n") != 5 {
		t.Errorf("log:\n%s", got)
	}
}
