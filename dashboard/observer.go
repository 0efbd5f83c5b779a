package dashboard

import "github.com/btest-go/btest/core"

// Observer returns the observer to give one core.Server
// (ServerConfig.Observer; join it with others by core.JoinObservers). Each
// call starts a new generation, as each server numbers its sessions from 1:
// servers of a config reload report into one State side by side. Its
// funcs take a lock for a few stores and never wait for a reader.
func (s *State) Observer() *core.Observer {
	gen := s.gens.Add(1)
	return &core.Observer{
		SessionStarted:  func(i core.SessionInfo) { s.started(gen, i) },
		SessionInterval: func(i core.SessionInfo, st core.IntervalStats) { s.interval(gen, i, st) },
		SessionEnded:    func(i core.SessionInfo, sum core.Summary, err error) { s.ended(gen, i, sum, err) },
		Refused:         s.refused,
	}
}
