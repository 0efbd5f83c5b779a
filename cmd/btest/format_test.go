package main

import (
	"strings"
	"testing"
	"time"

	"github.com/btest-go/btest/core"
)

// Loss is shown where the client counts it: for what it receives. A test
// that only transmits must not claim "lost 0": the server counted it.
func TestLineShowsLossOnlyWhereCounted(t *testing.T) {
	st := core.IntervalStats{Elapsed: time.Second, TxBps: 1e6, RxBps: 2e6, LostPackets: 3, StartupLostPackets: 2, LocalCPU: 5, RemoteCPU: -1}
	sum := core.Summary{Proto: core.ProtoUDP, Duration: time.Second, LostPackets: 7, StartupLostPackets: 2}
	for _, c := range []struct {
		d             core.Direction
		line, summary string // "" when no loss may show
	}{
		{core.Receive, "lost 3 (2 in the start-up)", "lost 7 (2 in the start-up)"},
		{core.Both, "lost 3 (2 in the start-up)", "lost 7 (2 in the start-up)"},
		{core.Transmit, "", ""},
	} {
		line, summary := formatInterval(c.d, true, time.Second, st), formatSummary(c.d, sum)
		for _, out := range []struct{ text, want string }{{line, c.line}, {summary, c.summary}} {
			shows := strings.Contains(out.text, "lost")
			if out.want == "" && shows || out.want != "" && !strings.Contains(out.text, out.want) {
				t.Errorf("%v: %q, want %q", c.d, out.text, out.want)
			}
		}
	}
	if line := formatInterval(core.Receive, false, time.Second, st); strings.Contains(line, "lost") {
		t.Errorf("TCP line shows loss: %q", line)
	}
}

// TestLineElapsedPrecision: lines of a sub-second --interval show when
// they were taken, not "[   0.0s]" for the first ones.
func TestLineElapsedPrecision(t *testing.T) {
	for _, c := range []struct {
		every, elapsed time.Duration
		want           string
	}{
		{time.Second, 3 * time.Second, "[   3.0s]"},
		{500 * time.Millisecond, 1500 * time.Millisecond, "[   1.5s]"},
		{250 * time.Millisecond, 250 * time.Millisecond, "[   0.25s]"},
		{20 * time.Millisecond, 40 * time.Millisecond, "[   0.04s]"},
		{125 * time.Millisecond, 125 * time.Millisecond, "[   0.125s]"},
		{time.Second, 12345 * time.Second, "[12345.0s]"},
	} {
		st := core.IntervalStats{Elapsed: c.elapsed, Interval: c.every}
		if line := formatInterval(core.Receive, false, c.every, st); !strings.HasPrefix(line, c.want) {
			t.Errorf("every %v at %v: %q, want %q", c.every, c.elapsed, line, c.want)
		}
	}
}
