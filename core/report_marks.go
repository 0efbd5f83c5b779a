package core

import (
	"sync"
	"time"
)

// reportMark is the running total of reported bytes at a report's arrival.
type reportMark struct {
	at    time.Time
	total uint64
}

// maxReportMarks bounds the marks a reportMarks keeps.
const maxReportMarks = 4 * statusHonoured

// reportMarks holds recent marks of a peer's reports, so that an interval
// can show the reports that arrived some time before its end (see
// udpEngine.shown). It keeps at most maxReportMarks: when full, every
// other mark goes, so the marks span twice as long at half the
// resolution. A peer that reports every udpFastStatus (our receiver, for
// an unlimited sender) fills them in a third of a second, and dropping
// only the newest would lose the reports between: the first interval of
// an unlimited test showed a third of a second of reports as its second.
type reportMarks struct {
	mu    sync.Mutex
	marks []reportMark
}

// add records total as the running total at at, which is never before
// the last mark's.
func (r *reportMarks) add(at time.Time, total uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.marks) == maxReportMarks {
		// Keep the first (the base of the next interval) and every
		// other one after it.
		n := 0
		for i := 0; i < len(r.marks); i += 2 {
			r.marks[n] = r.marks[i]
			n++
		}
		r.marks = r.marks[:n]
	}
	r.marks = append(r.marks, reportMark{at, total})
}

// before returns the running total as of t: the last mark's at or before
// t (0 if none). Marks older than that one go: t never moves back.
func (r *reportMarks) before(t time.Time) uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	var total uint64
	i := 0
	for ; i < len(r.marks) && !r.marks[i].at.After(t); i++ {
		total = r.marks[i].total
	}
	if i > 0 {
		// Keep the last mark at or before t: it is the base next time.
		r.marks = append(r.marks[:0], r.marks[i-1:]...)
	}
	return total
}
