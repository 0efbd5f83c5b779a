package core

import (
	"net/netip"

	"github.com/btest-go/btest/core/udpio"
)

// udpReport is what a UDP test's side counted locally, for tests.
type udpReport struct {
	Server                    bool
	SentPkts, SentBytes       uint64
	RcvdPkts, RcvdBytes, Lost uint64
	Sample                    []byte // start of the first datagram received
	SampleLen                 int
	Features                  udpio.Features
	GSO                       bool   // a sender still used GSO at the end
	Coalesced                 uint64 // GRO messages that held several datagrams
	Summary                   Summary
	// Ports are the local ports of the side's data sockets, still open
	// while done runs (a test reads their kernel drop counts).
	Ports []uint16
}

// udpTestHooks lets tests steer and observe the UDP engine of one server
// or client: ServerConfig.udpHooks and ClientConfig.udpHooks, set by tests
// in this package only, so that tests with their own servers can run in
// parallel. A nil *udpTestHooks changes nothing.
type udpTestHooks struct {
	// opts forces I/O options (to exercise the fallback paths).
	opts udpio.Options
	// dest rewrites where a side sends its datagrams (to put a relay in
	// the path).
	dest func(server bool, dst netip.AddrPort) netip.AddrPort
	// done sees each side's local counts when its test ends.
	done func(udpReport)
	// started sees each side's engine as its data phase begins (to
	// watch its counters while it runs).
	started func(*udpEngine)
	// trace sees the inputs of every start-up and cruise verdict.
	trace func(format string, args ...any)
}

func (h *udpTestHooks) options() udpio.Options {
	if h == nil {
		return udpio.Options{}
	}
	return h.opts
}

func (h *udpTestHooks) destination(server bool, dst netip.AddrPort) netip.AddrPort {
	if h == nil || h.dest == nil {
		return dst
	}
	return h.dest(server, dst)
}

func (h *udpTestHooks) tracer() func(string, ...any) {
	if h == nil {
		return nil
	}
	return h.trace
}

func (e *udpEngine) report(sum Summary) {
	h := e.hooks
	if h == nil || h.done == nil {
		return
	}
	r := udpReport{Server: e.server, Features: e.features, Summary: sum, Lost: sum.LostPackets}
	for _, s := range e.socks {
		r.Ports = append(r.Ports, s.LocalAddr().Port())
	}
	for _, t := range e.tx {
		r.SentPkts += t.pkts.Load()
		r.SentBytes += t.bytes.Load()
		r.GSO = r.GSO || t.snd.GSO()
	}
	for _, x := range e.rx {
		r.RcvdPkts += x.pkts.Load()
		r.RcvdBytes += x.bytes.Load()
		r.Coalesced += x.coalesced
		if r.Sample == nil && x.sample != nil {
			r.Sample, r.SampleLen = x.sample, x.sampleLen
		}
	}
	h.done(r)
}
