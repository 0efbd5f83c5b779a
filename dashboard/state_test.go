package dashboard

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/btest-go/btest/core"
)

// clock is a settable time source for the state.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// newTestState returns a state whose clock the test moves and ticks.
func newTestState(t *testing.T) (*State, *clock) {
	t.Helper()
	c := &clock{t: time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)}
	s := newState(c.now)
	close(s.done) // no clock goroutine: the test calls tick
	t.Cleanup(func() { s.Close() })
	return s, c
}

func info(id uint64, remote string) core.SessionInfo {
	return core.SessionInfo{
		ID: id, Remote: netip.MustParseAddrPort(remote), User: "alice",
		Proto: core.ProtoUDP, Direction: core.Both, Connections: 2, TxSize: 1500,
		Started: time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC),
	}
}

func TestRingsAreBounded(t *testing.T) {
	t.Parallel()
	s, c := newTestState(t)
	obs := s.Observer()
	for i := range uint64(RecentSize + 150) {
		obs.SessionStarted(info(i+1, "192.0.2.1:5000"))
		obs.SessionEnded(info(i+1, "192.0.2.1:5000"), core.Summary{Duration: time.Second}, nil)
	}
	obs.SessionStarted(info(9999, "192.0.2.2:5000"))
	for i := range SessionHistory + 77 {
		c.add(time.Second)
		obs.SessionInterval(info(9999, "192.0.2.2:5000"), core.IntervalStats{Elapsed: time.Duration(i+1) * time.Second, TxBps: float64(i), RxBps: 1})
	}
	for range ThroughputSeconds + 33 {
		c.add(time.Second)
		s.tick()
	}
	snap := s.Snapshot()
	if len(snap.Recent) != RecentSize {
		t.Fatalf("recent holds %d entries, want %d", len(snap.Recent), RecentSize)
	}
	if snap.Recent[0].Seq != RecentSize+150 || snap.Recent[RecentSize-1].Seq != 151 {
		t.Errorf("recent runs from seq %d to %d, want the newest %d first down to 151", snap.Recent[0].Seq, snap.Recent[RecentSize-1].Seq, RecentSize+150)
	}
	if n := len(snap.Throughput.T); n != ThroughputSeconds || len(snap.Throughput.Tx) != n || len(snap.Throughput.Rx) != n {
		t.Fatalf("throughput holds %d/%d/%d points, want %d", n, len(snap.Throughput.Tx), len(snap.Throughput.Rx), ThroughputSeconds)
	}
	if len(snap.Active) != 1 {
		t.Fatalf("%d active, want 1", len(snap.Active))
	}
	h := snap.Active[0].History
	if len(h.T) != SessionHistory {
		t.Fatalf("session history holds %d points, want %d", len(h.T), SessionHistory)
	}
	// Oldest first, ending with the newest report.
	if h.Tx[len(h.Tx)-1] != float64(SessionHistory+76) || h.Tx[0] != 77 {
		t.Errorf("session history from %v to %v, want 77 to %d", h.Tx[0], h.Tx[len(h.Tx)-1], SessionHistory+76)
	}
	if snap.Totals.Sessions != RecentSize+150 {
		t.Errorf("totals count %d sessions, want %d", snap.Totals.Sessions, RecentSize+150)
	}
}

func TestActiveBounded(t *testing.T) {
	t.Parallel()
	s, _ := newTestState(t)
	obs := s.Observer()
	for i := range uint64(MaxActive + 10) {
		obs.SessionStarted(info(i+1, "192.0.2.1:5000"))
	}
	if n := len(s.Snapshot().Active); n != MaxActive {
		t.Fatalf("%d active, want the bound %d", n, MaxActive)
	}
}

func TestServerRateSumsFreshReports(t *testing.T) {
	t.Parallel()
	s, c := newTestState(t)
	obs := s.Observer()
	obs.SessionStarted(info(1, "192.0.2.1:5000"))
	obs.SessionStarted(info(2, "192.0.2.2:5000"))
	obs.SessionInterval(info(1, "192.0.2.1:5000"), core.IntervalStats{TxBps: 100e6, RxBps: 5e6})
	c.add(time.Second)
	obs.SessionInterval(info(2, "192.0.2.2:5000"), core.IntervalStats{TxBps: 20e6, RxBps: 1e6})
	s.tick()
	c.add(2 * time.Second) // session 1 went silent: its rate no longer counts
	obs.SessionInterval(info(2, "192.0.2.2:5000"), core.IntervalStats{TxBps: 30e6, RxBps: 2e6})
	s.tick()
	tp := s.Snapshot().Throughput
	if tp.Tx[0] != 120e6 || tp.Rx[0] != 6e6 || tp.Tx[1] != 30e6 || tp.Rx[1] != 2e6 {
		t.Fatalf("server rates tx %v rx %v, want [120e6 30e6] [6e6 2e6]", tp.Tx, tp.Rx)
	}
}

// Two servers (a config reload) number sessions from 1 each; their
// sessions must not overwrite each other.
func TestGenerationsKeepSessionsApart(t *testing.T) {
	t.Parallel()
	s, _ := newTestState(t)
	a, b := s.Observer(), s.Observer()
	a.SessionStarted(info(1, "192.0.2.1:5000"))
	b.SessionStarted(info(1, "192.0.2.2:5000"))
	a.SessionEnded(info(1, "192.0.2.1:5000"), core.Summary{}, errors.New("boom"))
	snap := s.Snapshot()
	if len(snap.Active) != 1 || snap.Active[0].Remote != "192.0.2.2:5000" {
		t.Fatalf("active %+v, want the second server's session", snap.Active)
	}
	if r := snap.Recent[0]; r.Remote != "192.0.2.1:5000" || r.Result == "ok" || r.Error != "boom" {
		t.Fatalf("recent %+v", r)
	}
}

func TestRefusalsCoalesce(t *testing.T) {
	t.Parallel()
	s, _ := newTestState(t)
	obs := s.Observer()
	a := netip.MustParseAddr("::ffff:198.51.100.7")
	for range 50 {
		obs.Refused(a, core.RefusedAuthFailed)
	}
	obs.Refused(a, core.RefusedSessionsPerIP)
	obs.Refused(a, core.RefusedAuthFailed)
	snap := s.Snapshot()
	if len(snap.Recent) != 3 {
		t.Fatalf("%d recent entries, want 3: %+v", len(snap.Recent), snap.Recent)
	}
	want := []struct {
		reason core.RefusalReason
		count  uint64
	}{{core.RefusedAuthFailed, 1}, {core.RefusedSessionsPerIP, 1}, {core.RefusedAuthFailed, 50}}
	for i, w := range want {
		r := snap.Recent[i]
		if r.Reason != w.reason || r.Count != w.count || r.Result != "refused" || r.Remote != "198.51.100.7" {
			t.Errorf("entry %d = %+v, want %s ×%d from 198.51.100.7", i, r, w.reason, w.count)
		}
	}
	if snap.Refusals[core.RefusedAuthFailed] != 51 || snap.Refusals[core.RefusedSessionsPerIP] != 1 || snap.Totals.Refused != 52 {
		t.Errorf("refusal counters %v totals %d", snap.Refusals, snap.Totals.Refused)
	}
	if snap.RecentSeq != 52 {
		t.Errorf("recent_seq %d, want 52 (one per refusal)", snap.RecentSeq)
	}
}

func TestLossPct(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		lost, rx uint64
		want     float64
	}{{0, 0, 0}, {0, 100, 0}, {1, 99, 1}, {5, 0, 100}} {
		if got := lossPct(c.lost, c.rx); fmt.Sprintf("%.6f", got) != fmt.Sprintf("%.6f", c.want) {
			t.Errorf("lossPct(%d, %d) = %v, want %v", c.lost, c.rx, got, c.want)
		}
	}
}

// The server counts loss only of what it receives: a test in which it only
// sends (direction receive, the client's view) or a TCP test has no loss
// figure, null in the JSON, rather than a 0 % the client would contradict.
func TestLossOnlyWhereServerReceives(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		proto core.Proto
		dir   core.Direction
		known bool
	}{
		{core.ProtoUDP, core.Receive, false},
		{core.ProtoUDP, core.Transmit, true},
		{core.ProtoUDP, core.Both, true},
		{core.ProtoTCP, core.Both, false},
	} {
		name := c.proto.String() + " " + c.dir.String()
		s, clk := newTestState(t)
		obs := s.Observer()
		in := info(1, "192.0.2.1:5000")
		in.Proto, in.Direction = c.proto, c.dir
		obs.SessionStarted(in)
		clk.add(time.Second)
		obs.SessionInterval(in, core.IntervalStats{Elapsed: time.Second, TxBps: 1e6, RxPackets: 99, LostPackets: 1, LostTotal: 1})
		sum := core.Summary{Duration: time.Second, TxPackets: 100, RxPackets: 99, LostPackets: 1}
		a := s.Snapshot().Active[0]
		obs.SessionEnded(in, sum, nil)
		r := s.Snapshot().Recent[0]
		aj, _ := json.Marshal(a)
		rj, _ := json.Marshal(r)
		if !c.known {
			if a.LossPct != nil || a.LostPackets != nil || r.LossPct != nil || r.LostPackets != nil ||
				!strings.Contains(string(aj), `"lost_packets":null,"loss_pct":null`) || !strings.Contains(string(rj), `"lost_packets":null,"loss_pct":null`) {
				t.Errorf("%s: a loss figure for what the server did not receive:\nactive %s\nrecent %s", name, aj, rj)
			}
			continue
		}
		if a.LossPct == nil || *a.LossPct != 1 || a.LostPackets == nil || *a.LostPackets != 1 ||
			r.LossPct == nil || *r.LossPct != 1 || r.LostPackets == nil || *r.LostPackets != 1 {
			t.Errorf("%s: loss on the way to the server not shown:\nactive %s\nrecent %s", name, aj, rj)
		}
	}
}

// BenchmarkObserverInterval measures what a running test costs the
// dashboard once a second: one SessionInterval call (with 100 tests
// running).
func BenchmarkObserverInterval(b *testing.B) {
	s := newState(time.Now)
	close(s.done)
	obs := s.Observer()
	for i := range uint64(100) {
		obs.SessionStarted(info(i+1, "192.0.2.1:5000"))
	}
	st := core.IntervalStats{Elapsed: time.Second, TxBps: 1e9, RxBps: 1e9}
	in := info(50, "192.0.2.1:5000")
	b.ReportAllocs()
	for b.Loop() {
		obs.SessionInterval(in, st)
	}
}

func TestObserverIntervalAllocatesNothing(t *testing.T) {
	s, _ := newTestState(t)
	obs := s.Observer()
	in := info(1, "192.0.2.1:5000")
	obs.SessionStarted(in)
	st := core.IntervalStats{Elapsed: time.Second, TxBps: 1e9}
	if n := testing.AllocsPerRun(1000, func() { obs.SessionInterval(in, st) }); n != 0 {
		t.Fatalf("SessionInterval allocates %v times per call", n)
	}
}
