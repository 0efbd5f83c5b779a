// Package cpuload samples the machine's CPU utilisation, the value btest
// peers exchange in byte 1 of every status message.
package cpuload

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
	"sync"
	"time"
)

// Sampler reports the CPU load over the last stretch of time between its
// calls. It is safe for concurrent use; callers share one per process.
type Sampler struct {
	mu          sync.Mutex
	at          time.Time // when busy and total were read; zero: never
	busy, total uint64
	last        int
}

const (
	// minWindow is the shortest stretch a load is computed over: the
	// kernel counts in ticks of 10 ms, so shorter ones are mostly
	// rounding. A call sooner than that after the last one gets the last
	// value; many sessions share one sampler and call it each second.
	minWindow = 200 * time.Millisecond
	// maxWindow is the oldest reading a load is computed from. An older
	// one (or none: the first call in a process) would give the average
	// since then, which says nothing of now: the first status message of
	// a server idle for an hour, or of a fresh process, read the load
	// since boot. A minute, not a few seconds: a TCP client with
	// --interval 10s reads the load once an interval, and each of its
	// readings must still count.
	maxWindow = time.Minute
)

// Sample returns the machine-wide CPU load in percent (0..100) since the
// previous reading, or -1 when it is not known: on the first call, after
// more than maxWindow (a minute) without one, and on systems without
// /proc/stat.
func (s *Sampler) Sample() int {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	age := now.Sub(s.at)
	if !s.at.IsZero() && age < minWindow {
		// Not worth reading /proc/stat: a UDP receiver asks every
		// 10 ms.
		return s.last
	}
	busy, total, ok := readProcStat()
	switch {
	case !ok:
		return -1
	case s.at.IsZero() || age > maxWindow || total < s.total || busy < s.busy:
		s.at, s.busy, s.total, s.last = now, busy, total, -1
		return -1
	case total == s.total:
		return s.last
	}
	db, dt := busy-s.busy, total-s.total
	s.at, s.busy, s.total = now, busy, total
	s.last = int(min(100, (db*100+dt/2)/dt))
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
