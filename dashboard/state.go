package dashboard

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/btest-go/btest/core"
)

// Sizes of the rings: memory stays bounded whatever the server does.
const (
	// RecentSize is how many finished tests (and refusal entries) are kept.
	RecentSize = 100
	// ThroughputSeconds is how much server-wide history is kept.
	ThroughputSeconds = 600
	// SessionHistory is how many seconds of a running test's rates are kept.
	SessionHistory = 300
	// MaxActive bounds the running tests shown; a server's max_sessions
	// is normally far below it.
	MaxActive = 1024
)

// stale is how old a test's last report may be and still count in the
// server-wide rate (reports come once a second).
const stale = 2500 * time.Millisecond

// State is a btest server's live state. Feed it with Observer; it is safe
// for concurrent use. Close stops its clock.
type State struct {
	hub  *hub
	now  func() time.Time
	gens atomic.Uint32 // observers handed out, so session IDs of servers stay apart

	mu         sync.Mutex
	active     map[sessionKey]*session
	order      uint64 // start order of active sessions
	recent     ring[Recent]
	seq        uint64
	refusals   map[core.RefusalReason]uint64
	totals     Totals
	throughput ring[point]

	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

// sessionKey tells sessions of different servers apart: each server
// numbers its sessions from 1.
type sessionKey struct {
	gen uint32
	id  uint64
}

func (k sessionKey) String() string { return fmt.Sprintf("%d-%d", k.gen, k.id) }

type point struct {
	t      int64
	tx, rx float64
}

type session struct {
	key     sessionKey
	order   uint64
	info    core.SessionInfo
	last    core.IntervalStats
	lastAt  time.Time
	reports int
	hist    ring[point]
}

// New returns an empty State whose clock ticks every second.
func New() *State {
	s := newState(time.Now)
	go s.run(time.Second)
	return s
}

func newState(now func() time.Time) *State {
	return &State{
		hub:        newHub(),
		now:        now,
		active:     make(map[sessionKey]*session),
		recent:     newRing[Recent](RecentSize),
		refusals:   make(map[core.RefusalReason]uint64),
		throughput: newRing[point](ThroughputSeconds),
		stop:       make(chan struct{}),
		done:       make(chan struct{}),
	}
}

// Close stops the clock and ends every event stream. The observers stay
// usable (tests of a stopping server may still report).
func (s *State) Close() error {
	s.closeOnce.Do(func() {
		close(s.stop)
		<-s.done
		s.hub.closeAll()
	})
	return nil
}

func (s *State) run(every time.Duration) {
	defer close(s.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.tick()
		}
	}
}

// tick closes a second: it records the server-wide rate and sends the
// tick event.
func (s *State) tick() {
	now := s.now()
	s.mu.Lock()
	tk := Tick{Now: now, Active: make([]Active, 0, len(s.active)), Refusals: s.refusalsCopy()}
	for _, ss := range s.sorted() {
		if ss.reports > 0 && now.Sub(ss.lastAt) < stale {
			tk.TxBps += ss.last.TxBps
			tk.RxBps += ss.last.RxBps
		}
		tk.Active = append(tk.Active, ss.view(false))
	}
	s.throughput.push(point{now.Unix(), tk.TxBps, tk.RxBps})
	tk.RecentSeq, tk.Totals = s.seq, s.totals
	s.mu.Unlock()
	s.hub.publish(event("tick", tk))
}

// Snapshot returns the whole state (Server is left for the caller).
func (s *State) Snapshot() Snapshot {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	snap := Snapshot{
		Now:       now,
		Active:    make([]Active, 0, len(s.active)),
		Recent:    make([]Recent, 0, s.recent.len()),
		RecentSeq: s.seq,
		Refusals:  s.refusalsCopy(),
		Totals:    s.totals,
		Throughput: Series{
			T:  make([]int64, 0, s.throughput.len()),
			Tx: make([]float64, 0, s.throughput.len()),
			Rx: make([]float64, 0, s.throughput.len()),
		},
	}
	for _, ss := range s.sorted() {
		snap.Active = append(snap.Active, ss.view(true))
	}
	s.recent.each(func(r *Recent) { snap.Recent = append(snap.Recent, *r) })
	// Newest first, as the page lists them.
	for i, j := 0, len(snap.Recent)-1; i < j; i, j = i+1, j-1 {
		snap.Recent[i], snap.Recent[j] = snap.Recent[j], snap.Recent[i]
	}
	s.throughput.each(func(p *point) { snap.Throughput.append(p) })
	return snap
}

func (sr *Series) append(p *point) {
	sr.T = append(sr.T, p.t)
	sr.Tx = append(sr.Tx, p.tx)
	sr.Rx = append(sr.Rx, p.rx)
}

func (s *State) refusalsCopy() map[core.RefusalReason]uint64 {
	m := make(map[core.RefusalReason]uint64, len(s.refusals))
	for k, v := range s.refusals {
		m[k] = v
	}
	return m
}

// sorted returns the active sessions in start order (s.mu held).
func (s *State) sorted() []*session {
	out := make([]*session, 0, len(s.active))
	for _, ss := range s.active {
		out = append(out, ss)
	}
	// Insertion sort: a handful of sessions, already mostly in order.
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].order < out[j-1].order; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// view is what the page shows of a running test (s.mu held).
func (ss *session) view(history bool) Active {
	i := ss.info
	a := Active{
		ID: ss.key.String(), Remote: i.Remote.String(), User: i.User,
		Proto: i.Proto.String(), Direction: i.Direction.String(),
		Connections: i.Connections, TxSize: i.TxSize, Random: i.Random,
		TxLimitBps: i.TxRate, UDPPort: i.UDPPort, Started: i.Started,
		LocalCPU: -1, RemoteCPU: -1,
	}
	if ss.reports > 0 {
		l := ss.last
		a.ElapsedS = l.Elapsed.Seconds()
		a.TxBps, a.RxBps, a.TxBytes, a.RxBytes = l.TxBps, l.RxBps, l.TxBytes, l.RxBytes
		a.LostPackets, a.LossPct = known(i, l.LostTotal, intervalLoss(l))
		a.LocalCPU, a.RemoteCPU = l.LocalCPU, l.RemoteCPU
	}
	if history {
		a.History = &Series{
			T:  make([]int64, 0, ss.hist.len()),
			Tx: make([]float64, 0, ss.hist.len()),
			Rx: make([]float64, 0, ss.hist.len()),
		}
		ss.hist.each(func(p *point) { a.History.append(p) })
	}
	return a
}

func (s *State) started(gen uint32, info core.SessionInfo) {
	key := sessionKey{gen, info.ID}
	s.mu.Lock()
	if len(s.active) >= MaxActive {
		s.mu.Unlock()
		return
	}
	s.order++
	ss := &session{key: key, order: s.order, info: info, hist: newRing[point](SessionHistory)}
	s.active[key] = ss
	a := ss.view(true)
	s.mu.Unlock()
	s.hub.publish(event("start", a))
}

// interval records a test's once-a-second report: a map lookup and a few
// stores under the lock, no allocation.
func (s *State) interval(gen uint32, info core.SessionInfo, st core.IntervalStats) {
	now := s.now()
	s.mu.Lock()
	if ss := s.active[sessionKey{gen, info.ID}]; ss != nil {
		ss.last, ss.lastAt = st, now
		ss.reports++
		ss.hist.push(point{now.Unix(), st.TxBps, st.RxBps})
	}
	s.mu.Unlock()
}

func (s *State) ended(gen uint32, info core.SessionInfo, sum core.Summary, err error) {
	key := sessionKey{gen, info.ID}
	r := Recent{
		ID: key.String(), Ended: s.now(), Remote: info.Remote.String(), User: info.User,
		Proto: info.Proto.String(), Direction: info.Direction.String(), Connections: sum.Connections,
		DurationS: sum.Duration.Seconds(), TxBps: sum.TxBps, RxBps: sum.RxBps,
		TxBytes: sum.TxBytes, RxBytes: sum.RxBytes,
		TxPackets: sum.TxPackets, RxPackets: sum.RxPackets,
		Result: core.ResultString(err),
	}
	r.LostPackets, r.LossPct = known(info, sum.LostPackets, summaryLoss(sum))
	if r.Connections == 0 {
		r.Connections = info.Connections
	}
	if err != nil {
		r.Error = err.Error()
	}
	s.mu.Lock()
	delete(s.active, key)
	s.seq++
	r.Seq = s.seq
	s.recent.push(r)
	s.totals.Sessions++
	if err != nil {
		s.totals.Failed++
	}
	s.totals.TxBytes += sum.TxBytes
	s.totals.RxBytes += sum.RxBytes
	s.mu.Unlock()
	s.hub.publish(event("end", r))
}

// refused counts a refusal. Refusals in a row from one address for one
// reason share an entry, so a flood does not push the tests out of the
// recent list; they reach event readers through the next tick.
func (s *State) refused(remote netip.Addr, reason core.RefusalReason) {
	now := s.now()
	addr := remote.Unmap().String()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refusals[reason]++
	s.totals.Refused++
	s.seq++
	if l := s.recent.last(); l != nil && l.Result == "refused" && l.Remote == addr && l.Reason == reason {
		l.Count++
		l.Ended, l.Seq = now, s.seq
		return
	}
	s.recent.push(Recent{Seq: s.seq, Ended: now, Remote: addr, Result: "refused", Reason: reason, Count: 1})
}

// event formats one Server-Sent Events message.
func event(name string, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		// Our own types always marshal; keep the stream well-formed anyway.
		b = []byte(`{}`)
	}
	out := make([]byte, 0, len(name)+len(b)+16)
	out = append(out, "event: "...)
	out = append(out, name...)
	out = append(out, "\ndata: "...)
	out = append(out, b...)
	return append(out, "\n\n"...)
}
