package caddymodule

import (
	"encoding/json"
	"net/netip"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/btest-go/btest/core"
	"github.com/btest-go/btest/internal/version"
)

// validate provisions and validates a btest app config in process, as
// `caddy validate` does.
func validate(t *testing.T, app string) error {
	t.Helper()
	var cfg caddy.Config
	if err := json.Unmarshal([]byte(`{"admin":{"disabled":true},"apps":{"btest":`+app+`}}`), &cfg); err != nil {
		t.Fatal(err)
	}
	return caddy.Validate(&cfg)
}

func TestProvisionErrors(t *testing.T) {
	const verifier = "37c33fe6674ce8b6dc95b5a38a51e175:5c96fd09fee39ae6c509604bd322e6a23f9797e8e6be58342648959b6bfd76af:1"
	cases := []struct {
		name, app, want string
	}{
		{"default auth needs users", `{}`, "auth ecsrp5 needs at least one user"},
		{"md5 needs users", `{"auth":"md5"}`, "auth md5 needs at least one user"},
		{"unknown auth", `{"auth":"sha1"}`, `auth: unknown auth mode "sha1"`},
		{"udp listener", `{"auth":"none","listen":["udp/127.0.0.1:2000"]}`, `network "udp" is not tcp, tcp4 or tcp6`},
		{"unix listener", `{"auth":"none","listen":["unix//tmp/btest.sock"]}`, `network "unix" is not tcp`},
		{"bad listener", `{"auth":"none","listen":["127.0.0.1:http"]}`, `listen address "127.0.0.1:http"`},
		{"listener twice", `{"auth":"none","listen":["127.0.0.1:2000","tcp/127.0.0.1"]}`, "listen address 127.0.0.1:2000 is given twice"},
		{"unset name", `{"users":[{"name":"{env.BTEST_TEST_UNSET}","password":"x"}]}`, `user 0: name "{env.BTEST_TEST_UNSET}" is empty`},
		{"unset password", `{"users":[{"name":"bob","password":"{env.BTEST_TEST_UNSET}"}]}`, `user "bob" has no password (or it resolved to empty) and no verifier`},
		{"no password", `{"users":[{"name":"bob"}]}`, `user "bob" has no password`},
		{"unknown placeholder", `{"users":[{"name":"bob","password":"pa{ss}word"}]}`, `user "bob": password: unknown placeholder`},
		{"bad verifier", `{"users":[{"name":"bob","verifier":"00:11:1"}]}`, `user "bob": ecsrp5: verifier salt`},
		{"md5 with verifier only", `{"auth":"md5","users":[{"name":"bob","verifier":"` + verifier + `"}]}`, `user "bob" has only an EC-SRP5 verifier; md5 auth needs a password`},
		{"user twice", `{"users":[{"name":"bob","password":"a"},{"name":"bob","password":"b"}]}`, `user "bob" is configured twice`},
		{"bad allow", `{"auth":"none","allow":["10.0.0.0/40"]}`, `allow: invalid network "10.0.0.0/40"`},
		{"bad deny", `{"auth":"none","deny":["example.com"]}`, `deny: invalid network "example.com"`},
		{"bad udp ports", `{"auth":"none","udp_ports":"2000-1000"}`, `udp_ports: invalid port range "2000-1000"`},
		{"udp ports beyond client range", `{"auth":"none","udp_ports":"65000-65400"}`, `udp_ports: invalid port range "65000-65400"`},
		{"negative grace", `{"auth":"none","grace_period":"-1s"}`, "grace_period -1s is negative"},
		{"negative handshake timeout", `{"auth":"none","handshake_timeout":"-2s"}`, "handshake_timeout -2s is negative"},
		{"too many connections", `{"auth":"none","max_connections":300}`, "max_connections 300 is out of range 1-255 (0: the default)"},
		{"negative sessions", `{"auth":"none","max_sessions":-1}`, "max_sessions -1 is negative"},
		{"negative sessions per ip", `{"auth":"none","max_sessions_per_ip":-3}`, "max_sessions_per_ip -3 is negative"},
		{"negative connections", `{"auth":"none","max_connections":-1}`, "max_connections -1 is out of range 1-255 (0: the default)"},
		{"negative handshakes", `{"auth":"none","max_handshakes":-1}`, "max_handshakes -1 is negative"},
		{"negative handshakes per source", `{"auth":"none","max_handshakes_per_source":-2}`, "max_handshakes_per_source -2 is negative"},
		{"handshake rate below -1", `{"auth":"none","max_handshake_rate":-5}`, "max_handshake_rate -5 is below -1 (-1: no limit)"},
		{"handshake rate per source below -1", `{"auth":"none","max_handshake_rate_per_source":-2}`, "max_handshake_rate_per_source -2 is below -1 (-1: no limit)"},
		{"negative v4 prefix", `{"auth":"none","source_prefix_v4":-1}`, "source_prefix_v4 -1 is out of range 1-32 (0: the default)"},
		{"long v4 prefix", `{"auth":"none","source_prefix_v4":33}`, "source_prefix_v4 33 is out of range 1-32 (0: the default)"},
		{"negative v6 prefix", `{"auth":"none","source_prefix_v6":-64}`, "source_prefix_v6 -64 is out of range 1-128"},
		{"long v6 prefix", `{"auth":"none","source_prefix_v6":129}`, "source_prefix_v6 129 is out of range 1-128"},
		{"negative command timeout", `{"auth":"none","command_timeout":"-1s"}`, "command_timeout -1s is negative"},
		{"negative progress timeout", `{"auth":"none","progress_timeout":"-15s"}`, "progress_timeout -15s is negative"},
		{"negative status rate", `{"auth":"none","max_status_rate":-1}`, "max_status_rate -1 is negative"},
		{"negative read buffer memory", `{"auth":"none","read_buffer_memory":-1}`, "read_buffer_memory -1 is negative"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := validate(t, tc.app)
			if err == nil {
				t.Fatalf("%s: no error", tc.app)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q\ndoes not contain %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "pa{ss}word") {
				t.Fatalf("error shows the password: %q", err)
			}
		})
	}
}

func TestProvisionGood(t *testing.T) {
	const verifier = "37c33fe6674ce8b6dc95b5a38a51e175:5c96fd09fee39ae6c509604bd322e6a23f9797e8e6be58342648959b6bfd76af:1"
	t.Setenv("BTEST_TEST_PW", "from-env")
	for _, app := range []string{
		`{"auth":"none"}`,
		`{"users":[{"name":"{env.BTEST_TEST_UNSET:btest}","password":"{env.BTEST_TEST_PW}"}]}`,
		`{"users":[{"name":"alice","verifier":"` + verifier + `"}]}`,
		`{"auth":"md5","users":[{"name":"bob","password":"a\\{b\\}c"}],"listen":["[::1]:2000","127.0.0.1","tcp/:3000-3002"],
		  "udp_ports":"40000","allow":["::1","10.0.0.0/8"],"deny":["10.1.0.0/16"],"max_duration":"-1s","max_tx_rate":1000000,
		  "max_sessions":5,"max_sessions_per_ip":1,"max_connections":255,"handshake_timeout":"3s","grace_period":"1m"}`,
		// The values that mean "no limit", and the ends of each range.
		`{"auth":"none","max_handshake_rate":-1,"max_handshake_rate_per_source":-1,"source_prefix_v4":1,"source_prefix_v6":128,
		  "max_handshakes":1,"max_handshakes_per_source":1,"command_timeout":"1ms","progress_timeout":"1h","max_status_rate":1,
		  "read_buffer_memory":1}`,
		`{"auth":"none","source_prefix_v4":32,"source_prefix_v6":1,"max_connections":1}`,
	} {
		if err := validate(t, app); err != nil {
			t.Errorf("%s: %v", app, err)
		}
	}
}

// TestValidateDoesNotBind holds the btest port with a plain listener (no
// SO_REUSEPORT, so no second socket could bind it) and validates a config
// that listens there.
func TestValidateDoesNotBind(t *testing.T) {
	ln := testPorts.Listen(t, "127.0.0.1")
	defer ln.Close()
	if err := validate(t, `{"auth":"none","listen":["`+ln.Addr().String()+`"]}`); err != nil {
		t.Fatalf("validate with the port taken: %v", err)
	}
}

func TestResolve(t *testing.T) {
	t.Setenv("BTEST_TEST_SET", "value")
	t.Setenv("BTEST_TEST_EMPTY", "")
	repl := caddy.NewReplacer()
	for in, want := range map[string]string{
		"plain":                          "plain",
		"{env.BTEST_TEST_SET}":           "value",
		"{env.BTEST_TEST_SET:default}":   "value",
		"{env.BTEST_TEST_UNSET:default}": "default",
		"{env.BTEST_TEST_UNSET:a:b}":     "a:b",
		"{env.BTEST_TEST_EMPTY:default}": "", // set but empty: as the Caddyfile's {$X:default}
		"{env.BTEST_TEST_UNSET}":         "",
		"pre-{env.BTEST_TEST_SET}-post":  "pre-value-post",
		`\{literal\}`:                    "{literal}",
		"{env.BTEST_TEST_UNSET:}":        "",
	} {
		got, err := resolve(repl, in)
		if err != nil || got != want {
			t.Errorf("resolve(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"{env}", "x{env.BTEST_TEST_UNSET:d}y{nope}", "{http.request.host}"} {
		if got, err := resolve(repl, in); err == nil {
			t.Errorf("resolve(%q) = %q, want an unknown-placeholder error", in, got)
		}
	}
}

// TestSharedPortPool: configs with one range share one pool while any of
// them holds it; the last release forgets it.
func TestSharedPortPool(t *testing.T) {
	p1, rel1, err := sharedPortPool(45001, 45010)
	if err != nil {
		t.Fatal(err)
	}
	p2, rel2, err := sharedPortPool(45001, 45010)
	if err != nil {
		t.Fatal(err)
	}
	if p1 != p2 {
		t.Fatal("two configs with one range got two pools")
	}
	port, err := p1.Acquire(1, func(int) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	if got := udpPortsInUse(); got < 1 {
		t.Fatalf("udpPortsInUse = %d with a port taken", got)
	}
	rel1()
	rel1() // a second call must not drop the other reference
	p3, rel3, _ := sharedPortPool(45001, 45010)
	if p3 != p1 {
		t.Fatal("pool forgotten while a config still holds it")
	}
	if q, _ := p3.Acquire(1, func(int) error { return nil }); q == port {
		t.Fatalf("port %d handed out twice", q)
	}
	rel2()
	rel3()
	p4, rel4, _ := sharedPortPool(45001, 45010)
	defer rel4()
	if p4 == p1 {
		t.Fatal("pool kept after every config released it")
	}
}

func TestRegisterMetricsTwice(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	for range 2 {
		if err := registerMetrics(reg); err != nil {
			t.Fatalf("registering again: %v", err)
		}
	}
	// Another registry (the next config's) takes the same collectors.
	if err := registerMetrics(prometheus.NewPedanticRegistry()); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Gather(); err != nil {
		t.Fatalf("gather: %v", err)
	}
}

// TestBuildInfoMetric checks caddy_btest_build_info: 1, labelled with the
// running build's version and revision.
func TestBuildInfoMetric(t *testing.T) {
	samples := gatheredLabels(t, "caddy_btest_build_info")
	if len(samples) == 0 {
		t.Fatal("no caddy_btest_build_info among the gathered metrics")
	}
	v := version.Get()
	if len(samples) != 1 || samples[0].value != 1 {
		t.Fatalf("build_info = %v, want one sample of 1", samples)
	}
	if l := samples[0].labels; l["version"] != v.Version || l["revision"] != v.ShortRevision() {
		t.Errorf("build_info labels %v, want version %q revision %q", l, v.Version, v.ShortRevision())
	}
}

// TestSessionsTotalSeries: every proto, direction and result series of
// caddy_btest_sessions_total is exported from the start, at 0, so a
// dashboard shows 0 rather than "No data" before the first such test.
func TestSessionsTotalSeries(t *testing.T) {
	have := map[string]bool{}
	for _, m := range gatheredLabels(t, "caddy_btest_sessions_total") {
		have[m.labels["proto"]+" "+m.labels["direction"]+" "+m.labels["result"]] = true
	}
	var missing []string
	for _, p := range []core.Proto{core.ProtoTCP, core.ProtoUDP} {
		for _, d := range []core.Direction{core.Receive, core.Transmit, core.Both} {
			for _, r := range core.Results() {
				if k := p.String() + " " + d.String() + " " + r; !have[k] {
					missing = append(missing, k)
				}
			}
		}
	}
	if len(missing) > 0 {
		t.Fatalf("caddy_btest_sessions_total has no series for %d of %d label sets: %v", len(missing), 2*3*len(core.Results()), missing)
	}
}

// sample is one gathered series: its labels and its value (a gauge's or a
// counter's).
type sample struct {
	labels map[string]string
	value  float64
}

// gatheredLabels registers our metrics on a fresh registry and returns
// the series of the metric called name, as exported before any test ran.
func gatheredLabels(t *testing.T, name string) []sample {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	if err := registerMetrics(reg); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out []sample
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.Metric {
			l := map[string]string{}
			for _, lp := range m.Label {
				l[lp.GetName()] = lp.GetValue()
			}
			out = append(out, sample{l, m.GetGauge().GetValue() + m.GetCounter().GetValue()})
		}
	}
	return out
}

func value(t *testing.T, c prometheus.Collector) float64 {
	t.Helper()
	ch := make(chan prometheus.Metric, 1)
	c.Collect(ch)
	var m dto.Metric
	if err := (<-ch).Write(&m); err != nil {
		t.Fatal(err)
	}
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	}
	t.Fatal("not a counter or gauge")
	return 0
}

// TestObserver checks that bytes count once each, whether they arrive in
// interval reports or the final summary, and that two servers' sessions
// with the same ID do not mix.
func TestObserver(t *testing.T) {
	sent := bytesTotal.WithLabelValues("udp", "sent")
	recv := bytesTotal.WithLabelValues("udp", "received")
	active := sessionsActive.WithLabelValues("udp")
	ended := sessionsTotal.WithLabelValues("udp", "both", "ok")
	limited := sessionsTotal.WithLabelValues("udp", "both", "limit")
	s0, r0, a0, e0, l0 := value(t, sent), value(t, recv), value(t, active), value(t, ended), value(t, limited)

	o1, o2 := newObserver(), newObserver()
	info := core.SessionInfo{ID: 7, Proto: core.ProtoUDP, Direction: core.Both}
	o1.SessionStarted(info)
	o2.SessionStarted(info)
	if got := value(t, active) - a0; got != 2 {
		t.Fatalf("active +%v, want +2", got)
	}
	o1.SessionInterval(info, core.IntervalStats{TxBytes: 100, RxBytes: 10})
	o2.SessionInterval(info, core.IntervalStats{TxBytes: 1000, RxBytes: 0})
	o1.SessionInterval(info, core.IntervalStats{TxBytes: 250, RxBytes: 10})
	if got := value(t, sent) - s0; got != 1250 {
		t.Fatalf("sent +%v during the tests, want +1250", got)
	}
	o1.SessionEnded(info, core.Summary{TxBytes: 300, RxBytes: 40}, nil)
	o2.SessionEnded(info, core.Summary{TxBytes: 1000, RxBytes: 5}, core.ErrLimit)
	if got := value(t, sent) - s0; got != 1300 {
		t.Fatalf("sent +%v, want +1300", got)
	}
	if got := value(t, recv) - r0; got != 45 {
		t.Fatalf("received +%v, want +45", got)
	}
	if got := value(t, active) - a0; got != 0 {
		t.Fatalf("active +%v after both ended", got)
	}
	if value(t, ended)-e0 != 1 || value(t, limited)-l0 != 1 {
		t.Fatal("sessions_total not counted by result")
	}

	auth := value(t, authFailures)
	o1.Refused(netip.Addr{}, core.RefusedAuthFailed)
	o1.Refused(netip.Addr{}, core.RefusedBadCommand)
	if value(t, authFailures)-auth != 1 {
		t.Fatal("auth failure not counted")
	}
	if value(t, refusals.WithLabelValues(string(core.RefusedBadCommand))) < 1 {
		t.Fatal("refusal not counted")
	}
	if len(o1.counted)+len(o2.counted) != 0 {
		t.Fatal("ended sessions still tracked")
	}
}
