package core

import (
	"testing"
	"time"
)

// A peer that reports every udpFastStatus fills the marks many times over
// between two interval reports: each interval must still get the total as
// of its own point in time, within the thinned marks' resolution, and the
// marks stay bounded.
func TestReportMarksFastReports(t *testing.T) {
	var r reportMarks
	t0 := time.Unix(1000, 0)
	const perReport = 125_000 // bytes: 100 Mbit/s in 10 ms reports
	totalAt := func(d time.Duration) uint64 { return uint64(d/udpFastStatus) * perReport }
	lag := 500 * time.Millisecond
	next := time.Second
	for d := udpFastStatus; d <= 5*time.Second; d += udpFastStatus {
		r.add(t0.Add(d), totalAt(d))
		if n := len(r.marks); n > maxReportMarks {
			t.Fatalf("%d marks kept, more than %d", n, maxReportMarks)
		}
		if d < next {
			continue
		}
		as := next - lag
		got, want := r.before(t0.Add(as)), totalAt(as)
		// The marks are at most a few reports apart after thinning.
		if got > want || want-got > totalAt(100*time.Millisecond) {
			t.Fatalf("interval at %v: total as of %v read %d, want %d (at most 100 ms short)", next, as, got, want)
		}
		next += time.Second
	}
}

// A peer that reports once a second, off our ticks by some milliseconds,
// lands each report in the interval it belongs to.
func TestReportMarksSlowReports(t *testing.T) {
	var r reportMarks
	t0 := time.Unix(1000, 0)
	lag := 500 * time.Millisecond
	var last uint64
	for s := 1; s <= 5; s++ {
		at := time.Duration(s)*time.Second + time.Duration(s%3)*20*time.Millisecond - 20*time.Millisecond
		r.add(t0.Add(at), uint64(s)*1000)
		got := r.before(t0.Add(time.Duration(s)*time.Second + time.Second - lag))
		if got-last != 1000 {
			t.Fatalf("second %d showed %d bytes, want 1000", s, got-last)
		}
		last = got
	}
}
