package core

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"
)

// BenchmarkUDPStability runs unlimited UDP tests back to back (10 of 5 s)
// and fails when, after the first second, a second carries no traffic or
// falls below a quarter of the test's median: the collapse both
// independent peers show in about half their runs. It is a throughput
// property, so it runs with make bench on a quiet machine, not in make test.
// It reports the lowest second as a fraction of its test's median.
func BenchmarkUDPStability(b *testing.B) {
	t := b
	runs, d := 10, 5*time.Second
	worst := 1.0
	const frac = 0.25
	_, addr, obs := startUDPServer(t, ServerConfig{}, "127.0.0.1:0")
	dirs := []Direction{Receive, Transmit, Both}
	for i := range runs {
		dir := dirs[i%len(dirs)]
		var mu sync.Mutex
		var cl []IntervalStats
		_, err := RunClient(context.Background(), ClientConfig{
			Address: addr, UDP: true, Direction: dir, Duration: d,
			OnInterval: func(s IntervalStats) { mu.Lock(); cl = append(cl, s); mu.Unlock() },
		})
		if err != nil {
			t.Fatalf("run %d: %v", i+1, err)
		}
		if _, err := obs.waitEnded(t); err != nil {
			t.Fatalf("run %d: server: %v", i+1, err)
		}
		sv := obs.takeIntervals()
		check := func(side string, iv []IntervalStats) {
			var r []float64
			for _, s := range iv {
				if s.Interval > 900*time.Millisecond {
					r = append(r, s.RxBps)
				}
			}
			if len(r) < int(d/time.Second)-2 {
				t.Errorf("run %d %s: %d full intervals", i+1, side, len(r))
				return
			}
			sorted := slices.Sorted(slices.Values(r))
			med := sorted[len(sorted)/2]
			t.Logf("run %d %s %s: median %.3g bit/s, per second %.3g", i+1, dir, side, med, r)
			for k, v := range r[1:] {
				worst = min(worst, v/med)
				if v <= 0 || v < frac*med {
					t.Errorf("run %d %s %s: second %d at %.3g bit/s, under %.0f%% of the median %.3g", i+1, dir, side, k+2, v, frac*100, med)
				}
			}
		}
		if dir != Transmit {
			check("client rx", cl)
		}
		if dir != Receive {
			check("server rx", sv)
		}
	}
	b.ReportMetric(worst, "worst-second/median")
}
