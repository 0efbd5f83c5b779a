package caddymodule

import (
	"errors"
	"net/netip"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/btest-go/btest/core"
	"github.com/btest-go/btest/internal/version"
)

// The collectors live for the whole process, so counters run on across
// reloads and tests of an old config that are still finishing count in the
// new config's registry; each config registers them in its own registry.
var (
	sessionsActive = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "caddy", Subsystem: "btest",
		Name: "sessions_active",
		Help: "Number of btest tests running now.",
	}, []string{"proto"})
	sessionsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "btest",
		Name: "sessions_total",
		Help: "Number of btest tests ended, by protocol, direction (client's view: receive, transmit, both) and result.",
	}, []string{"proto", "direction", "result"})
	bytesTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "btest",
		Name: "bytes_total",
		Help: "Test bytes, by protocol and direction from the server's view (sent, received): TCP payload; UDP datagrams with their IP and UDP headers, as btest counts them; updated every second while tests run.",
	}, []string{"proto", "direction"})
	authFailures = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "btest",
		Name: "auth_failures_total",
		Help: "Number of btest clients that failed authentication.",
	})
	refusals = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "btest",
		Name: "refusals_total",
		Help: "Number of btest connections turned away, by reason.",
	}, []string{"reason"})
	anomalies = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "btest",
		Name: "protocol_anomalies_total",
		Help: "Number of things btest clients sent that were not believed: status reports of more bytes than the server sent (clamped), status messages beyond the protocol's rate (dropped), flooded control connections, UDP sequence jumps too large to be loss; counted when each test ends.",
	})
	udpPorts = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "caddy", Subsystem: "btest",
		Name: "udp_ports_in_use",
		Help: "Number of UDP data ports held by running btest tests.",
	}, func() float64 { return float64(udpPortsInUse()) })
	// buildInfo follows the Prometheus convention for versions (as
	// go_build_info does): a constant 1 whose labels name the build.
	buildInfo = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "caddy", Subsystem: "btest",
		Name: "build_info",
		Help: "Always 1; the labels tell which btest-go build runs: module version and VCS revision.",
		ConstLabels: prometheus.Labels{
			"version":  version.Get().Version,
			"revision": version.Get().ShortRevision(),
		},
	}, func() float64 { return 1 })
)

func init() {
	// Every reason the core reports, and every proto, direction and
	// result of an ended test (2 x 3 x 9 series), is exported at zero
	// from the start, so dashboards show 0 rather than no data.
	for _, r := range core.RefusalReasons() {
		refusals.WithLabelValues(string(r))
	}
	for _, p := range []core.Proto{core.ProtoTCP, core.ProtoUDP} {
		sessionsActive.WithLabelValues(p.String())
		bytesTotal.WithLabelValues(p.String(), "sent")
		bytesTotal.WithLabelValues(p.String(), "received")
		for _, d := range []core.Direction{core.Receive, core.Transmit, core.Both} {
			for _, r := range core.Results() {
				sessionsTotal.WithLabelValues(p.String(), d.String(), r)
			}
		}
	}
}

// registerMetrics adds the btest collectors to reg; collectors reg already
// has (a second btest app in one config) are fine.
func registerMetrics(reg prometheus.Registerer) error {
	if reg == nil {
		return nil
	}
	for _, c := range []prometheus.Collector{sessionsActive, sessionsTotal, bytesTotal, authFailures, refusals, anomalies, udpPorts, buildInfo} {
		if err := reg.Register(c); err != nil {
			if are := (prometheus.AlreadyRegisteredError{}); errors.As(err, &are) {
				continue
			}
			return err
		}
	}
	return nil
}

// observer feeds one server's events into the collectors. Session IDs are
// unique per server only, so every server has its own observer.
type observer struct {
	mu sync.Mutex
	// counted holds, per running session, the bytes already added to
	// bytesTotal: sent, received.
	counted map[uint64][2]uint64
}

func newObserver() *observer {
	return &observer{counted: make(map[uint64][2]uint64)}
}

// SessionStarted is the core.Observer func of that name.
func (o *observer) SessionStarted(info core.SessionInfo) {
	sessionsActive.WithLabelValues(info.Proto.String()).Inc()
	o.mu.Lock()
	o.counted[info.ID] = [2]uint64{}
	o.mu.Unlock()
}

// SessionInterval is the core.Observer func of that name.
func (o *observer) SessionInterval(info core.SessionInfo, st core.IntervalStats) {
	o.addBytes(info, st.TxBytes, st.RxBytes, false)
}

// SessionEnded is the core.Observer func of that name.
func (o *observer) SessionEnded(info core.SessionInfo, sum core.Summary, err error) {
	// Totals first: whoever sees the test gone from sessions_active sees
	// it counted.
	o.addBytes(info, sum.TxBytes, sum.RxBytes, true)
	anomalies.Add(float64(sum.Anomalies))
	sessionsTotal.WithLabelValues(info.Proto.String(), info.Direction.String(), core.ResultString(err)).Inc()
	sessionsActive.WithLabelValues(info.Proto.String()).Dec()
}

// addBytes adds what a session moved since its last report.
func (o *observer) addBytes(info core.SessionInfo, tx, rx uint64, last bool) {
	o.mu.Lock()
	prev := o.counted[info.ID]
	if last {
		delete(o.counted, info.ID)
	} else {
		o.counted[info.ID] = [2]uint64{max(tx, prev[0]), max(rx, prev[1])}
	}
	o.mu.Unlock()
	if tx > prev[0] {
		bytesTotal.WithLabelValues(info.Proto.String(), "sent").Add(float64(tx - prev[0]))
	}
	if rx > prev[1] {
		bytesTotal.WithLabelValues(info.Proto.String(), "received").Add(float64(rx - prev[1]))
	}
}

// Refused is the core.Observer func of that name.
func (o *observer) Refused(_ netip.Addr, reason core.RefusalReason) {
	refusals.WithLabelValues(string(reason)).Inc()
	if reason == core.RefusedAuthFailed {
		authFailures.Inc()
	}
}

// hooks hands the observer's methods to a core.Server.
func (o *observer) hooks() *core.Observer {
	return &core.Observer{SessionStarted: o.SessionStarted, SessionInterval: o.SessionInterval,
		SessionEnded: o.SessionEnded, Refused: o.Refused}
}
