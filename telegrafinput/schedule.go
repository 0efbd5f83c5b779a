package telegrafinput

import (
	"context"
	"sync/atomic"
	"time"
)

// Trigger asks for rounds. Requests made while a round runs collapse into
// one pending round: a slow round is neither doubled nor followed by a
// backlog of rounds.
type Trigger struct {
	ch    chan struct{}
	fired atomic.Uint64
}

// NewTrigger returns a Trigger with no round pending.
func NewTrigger() *Trigger { return &Trigger{ch: make(chan struct{}, 1)} }

// Fire requests a round without blocking. It reports false when a round
// was already pending, so this request merged into it.
func (t *Trigger) Fire() bool {
	t.fired.Add(1)
	select {
	case t.ch <- struct{}{}:
		return true
	default:
		return false
	}
}

// Serve runs a round each time trig fires, one round at a time, until ctx
// ends. A round that failed to write is logged, not fatal.
func (r *Runner) Serve(ctx context.Context, trig *Trigger) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-trig.ch:
		}
		if ctx.Err() != nil {
			return // stopping wins over a pending round
		}
		before, start := trig.fired.Load(), time.Now()
		if err := r.Round(ctx); err != nil {
			r.Log.Errorf("%v", err)
		}
		if n := trig.fired.Load() - before; n > 0 && ctx.Err() == nil {
			r.Log.Warnf("round %d took %v, and %d trigger(s) came meanwhile: they merged into one round that starts now; "+
				"a longer interval, a higher concurrency or shorter tests would keep up",
				r.rounds, time.Since(start).Round(time.Millisecond), n)
		}
	}
}

// Tick fires trig now and every d until ctx ends: the program's own
// schedule when the configuration sets interval (inputs.execd
// signal = "none").
func Tick(ctx context.Context, trig *Trigger, d time.Duration) {
	trig.Fire()
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			trig.Fire()
		}
	}
}
