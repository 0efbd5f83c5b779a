package cpuload

import (
	"runtime"
	"testing"
	"time"
)

func TestPercentUnderLoad(t *testing.T) {
	if _, _, ok := readProcStat(); !ok {
		t.Skip("no /proc/stat on this system")
	}
	var s Sampler
	s.Percent()
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
	p := s.Percent()
	if p < 30 || p > 100 {
		t.Fatalf("load %d%% while every core spun", p)
	}
}
