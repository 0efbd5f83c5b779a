// Package cpuload samples the machine's CPU utilisation, the value btest
// peers exchange in byte 1 of every status message.
package cpuload

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
	"sync"
)

// Sampler reports the CPU load since its previous call. It is safe for
// concurrent use; callers share one per process.
type Sampler struct {
	mu          sync.Mutex
	busy, total uint64
	last        uint8
}

// Percent returns the machine-wide CPU load in percent (0..100) since the
// previous call, or the last value when /proc/stat is unreadable or too
// little time has passed. On systems without /proc/stat it returns 0.
func (s *Sampler) Percent() uint8 {
	busy, total, ok := readProcStat()
	s.mu.Lock()
	defer s.mu.Unlock()
	if !ok {
		return s.last
	}
	db, dt := busy-s.busy, total-s.total
	s.busy, s.total = busy, total
	if dt == 0 || busy < db {
		return s.last
	}
	s.last = uint8(min(100, (db*100+dt/2)/dt))
	return s.last
}

// Shared is the process-wide sampler.
var Shared Sampler

func readProcStat() (busy, total uint64, ok bool) {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return 0, 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	if !sc.Scan() {
		return 0, 0, false
	}
	fields := bytes.Fields(sc.Bytes())
	if len(fields) < 5 || string(fields[0]) != "cpu" {
		return 0, 0, false
	}
	for i, f := range fields[1:] {
		v, err := strconv.ParseUint(string(f), 10, 64)
		if err != nil {
			return 0, 0, false
		}
		total += v
		// user nice system idle iowait irq softirq steal ...: idle and
		// iowait are not busy.
		if i != 3 && i != 4 {
			busy += v
		}
	}
	return busy, total, true
}
