package cpuload

import (
	"runtime"
	"testing"
	"time"
)

func TestSampleUnderLoad(t *testing.T) {
	if _, _, ok := readProcStat(); !ok {
		t.Skip("no /proc/stat on this system")
	}
	var s Sampler
	// A first reading has nothing recent to compare with: the load since
	// boot is not the load now.
	if p := s.Sample(); p != -1 {
		t.Fatalf("first sample %d%%, want -1 (unknown)", p)
	}
	stop := time.Now().Add(300 * time.Millisecond)
	done := make(chan struct{})
	for range runtime.NumCPU() {
		go func() {
			for time.Now().Before(stop) {
			}
			done <- struct{}{}
		}()
	}
	for range runtime.NumCPU() {
		<-done
	}
	p := s.Sample()
	if p < 30 || p > 100 {
		t.Fatalf("load %d%% while every core spun", p)
	}
	// Another call at once gets the same value, not a window of a few
	// ticks.
	if q := s.Sample(); q != p {
		t.Fatalf("sample right after %d%% gave %d%%", p, q)
	}
}

func TestSampleForgetsOldReadings(t *testing.T) {
	if _, _, ok := readProcStat(); !ok {
		t.Skip("no /proc/stat on this system")
	}
	var s Sampler
	s.Sample()
	s.mu.Lock()
	s.at = s.at.Add(-maxWindow - time.Second)
	s.mu.Unlock()
	if p := s.Sample(); p != -1 {
		t.Fatalf("sample over a stale window %d%%, want -1 (unknown)", p)
	}
}
