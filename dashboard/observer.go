package dashboard

import (
	"net/netip"

	"github.com/btest-go/btest/core"
)

// TEMPORARY until core.Observer becomes a struct (API.md).
type legacy struct {
	s   *State
	gen uint32
}

func (o legacy) SessionStarted(i core.SessionInfo) { o.s.started(o.gen, i) }
func (o legacy) SessionInterval(i core.SessionInfo, st core.IntervalStats) {
	o.s.interval(o.gen, i, st)
}
func (o legacy) SessionEnded(i core.SessionInfo, sum core.Summary, err error) {
	o.s.ended(o.gen, i, sum, err)
}
func (o legacy) Refused(a netip.Addr, r core.RefusalReason) { o.s.refused(a, r) }

// Observer returns the observer to give one core.Server.
func (s *State) Observer() core.Observer { return legacy{s, s.gens.Add(1)} }
