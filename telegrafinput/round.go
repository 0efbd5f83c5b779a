package telegrafinput

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"time"

	"github.com/btest-go/btest/core"
)

// errBudget is the cause of a round that ran out of round_timeout.
var errBudget = errors.New("round_timeout reached")

// Runner runs rounds of tests and writes their points.
type Runner struct {
	// Config is a checked configuration (from Load or Parse).
	Config *Config
	// Out receives the line protocol (the program's stdout).
	Out io.Writer
	// Log receives human messages (the program's stderr).
	Log *Logger
	// RunTest runs one test; nil means core.RunClient.
	RunTest func(context.Context, core.ClientConfig) (core.Summary, error)

	enc    Encoder
	rounds int
}

// Round runs every target once, at most Config.Concurrency at a time,
// then writes all their points with one Write, so a reader never sees a
// round half-written. A failed test is a point, not an error: the error
// returned is about writing. When ctx ends (the program is stopping) the
// running tests are stopped and left out, since their numbers would be
// partial; tests that finished before are written.
func (r *Runner) Round(ctx context.Context) error {
	cfg := r.Config
	r.rounds++
	if j := time.Duration(cfg.StartJitter); j > 0 {
		if err := sleep(ctx, rand.N(j)); err != nil {
			return nil
		}
	}
	start := time.Now()
	rctx := ctx
	if b := time.Duration(cfg.RoundTimeout); b > 0 {
		var cancel context.CancelFunc
		rctx, cancel = context.WithTimeoutCause(ctx, b, errBudget)
		defer cancel()
	}

	out := make([]*Outcome, len(cfg.Targets))
	sem := make(chan struct{}, cfg.Concurrency)
	var wg sync.WaitGroup
launch:
	for i := range cfg.Targets {
		select {
		case sem <- struct{}{}:
		case <-rctx.Done():
			break launch
		}
		if rctx.Err() != nil {
			break launch // both cases were ready; the budget wins
		}
		wg.Go(func() {
			defer func() { <-sem }()
			out[i] = r.test(ctx, rctx, &cfg.Targets[i])
		})
	}
	wg.Wait()

	stopping := ctx.Err() != nil
	r.enc.IntervalPoints = cfg.IntervalPoints
	r.enc.Reset()
	var failed, interrupted int
	for i, o := range out {
		switch {
		case o == nil && stopping:
			interrupted++
			continue
		case o == nil:
			// The budget ran out before this test could start.
			o = &Outcome{Target: &cfg.Targets[i], Start: time.Now(), Result: BudgetExceeded, Err: errBudget}
			r.logOutcome(o)
		}
		if o.Result != Success {
			failed++
		}
		if err := r.enc.Encode(o); err != nil {
			r.Log.Errorf("%s: %v", o.Target.name(), err)
		}
	}
	if interrupted > 0 {
		r.Log.Infof("stopping: %d test(s) of round %d were interrupted and are not reported", interrupted, r.rounds)
	}
	r.Log.Debugf("round %d: %d test(s), %d failed, in %v", r.rounds, len(out)-interrupted, failed, time.Since(start).Round(time.Millisecond))
	if len(r.enc.Bytes()) == 0 {
		return nil
	}
	if _, err := r.Out.Write(r.enc.Bytes()); err != nil {
		return fmt.Errorf("writing round %d: %w", r.rounds, err)
	}
	return nil
}

// test runs one target. It returns nil when ctx (not the round's budget,
// rctx) stopped the test: the program is stopping.
func (r *Runner) test(ctx, rctx context.Context, t *Target) (o *Outcome) {
	o = &Outcome{Target: t, Start: time.Now()}
	defer func() {
		// A bug in one test must not stop the monitoring.
		if p := recover(); p != nil {
			o.Err, o.Result = fmt.Errorf("panic: %v", p), Error
			r.logOutcome(o)
		}
	}()
	cc := t.clientConfig()
	cc.Logger = r.Log.Slog().With("target", t.name())
	var mu sync.Mutex
	if r.Config.IntervalPoints {
		cc.OnInterval = func(st core.IntervalStats) {
			mu.Lock()
			o.Intervals = append(o.Intervals, st)
			mu.Unlock()
		}
	}
	run := r.RunTest
	if run == nil {
		run = core.RunClient
	}
	sum, err := run(rctx, cc)
	mu.Lock()
	defer mu.Unlock()
	if ctx.Err() != nil {
		return nil
	}
	o.Summary, o.Err, o.Result = sum, err, Classify(err)
	if rctx.Err() != nil && errors.Is(context.Cause(rctx), errBudget) &&
		(err == nil || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)) {
		o.Err, o.Result = errBudget, BudgetExceeded
	}
	r.logOutcome(o)
	return o
}

// logOutcome tells the log about a test: failures as warnings (they are
// measurements, not faults of the program), successes at debug level.
func (r *Runner) logOutcome(o *Outcome) {
	if o.Result == Success {
		s := &o.Summary
		r.Log.Debugf("%s: success: tx %s, rx %s, lost %d, %v",
			o.Target.name(), core.FormatBitRate(s.TxBps), core.FormatBitRate(s.RxBps), s.LostPackets,
			s.Duration.Round(time.Millisecond))
		return
	}
	r.Log.Warnf("%s: %s: %v", o.Target.name(), o.Result, o.Err)
}

// name describes the target in log messages.
func (t *Target) name() string {
	return fmt.Sprintf("%s %s %s", net.JoinHostPort(t.host, t.port), t.Protocol, t.Direction)
}

// sleep waits d or until ctx ends, whichever comes first.
func sleep(ctx context.Context, d time.Duration) error {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
