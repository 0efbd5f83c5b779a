package telegrafinput

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/influxdata/line-protocol/v2/lineprotocol"

	"github.com/btest-go/btest/core"
)

// point is one decoded line.
type point struct {
	measurement string
	tags        map[string]string
	fields      map[string]any
	time        time.Time
}

// decodeLines parses b with line-protocol's own decoder, so the tests
// check what InfluxDB and Telegraf will read, not what we meant to write.
func decodeLines(t *testing.T, b []byte) []point {
	t.Helper()
	if len(b) > 0 && b[len(b)-1] != '\n' {
		t.Fatalf("output does not end in a newline: %q", b)
	}
	dec := lineprotocol.NewDecoderWithBytes(b)
	var out []point
	for dec.Next() {
		m, err := dec.Measurement()
		if err != nil {
			t.Fatalf("measurement: %v\n%s", err, b)
		}
		p := point{measurement: string(m), tags: map[string]string{}, fields: map[string]any{}}
		for {
			k, v, err := dec.NextTag()
			if err != nil {
				t.Fatalf("tag: %v\n%s", err, b)
			}
			if k == nil {
				break
			}
			p.tags[string(k)] = string(v)
		}
		for {
			k, v, err := dec.NextField()
			if err != nil {
				t.Fatalf("field: %v\n%s", err, b)
			}
			if k == nil {
				break
			}
			p.fields[string(k)] = v.Interface()
		}
		p.time, err = dec.Time(lineprotocol.Nanosecond, time.Time{})
		if err != nil {
			t.Fatalf("time: %v\n%s", err, b)
		}
		if p.time.IsZero() {
			t.Fatalf("point without a timestamp:\n%s", b)
		}
		out = append(out, p)
	}
	return out
}

// testTarget parses one [[targets]] table.
func testTarget(t *testing.T, body string) *Target {
	t.Helper()
	cfg, _, err := Parse([]byte("[[targets]]\n" + body))
	if err != nil {
		t.Fatal(err)
	}
	return &cfg.Targets[0]
}

func TestEncodeRoundTrip(t *testing.T) {
	t.Parallel()
	start := time.Date(2025, 5, 1, 12, 0, 0, 123456789, time.UTC)
	tcp := testTarget(t, `address = "router.example.net"`)
	udp := testTarget(t, "address = \"[2001:db8::1]:2001\"\nprotocol = \"udp\"\ndirection = \"both\"\nudp_tx_size = 1000")
	udpTx := testTarget(t, "address = \"192.0.2.7\"\nprotocol = \"udp\"\ndirection = \"transmit\"")
	udpRx := testTarget(t, "address = \"192.0.2.9\"\nprotocol = \"udp\"")
	tagged := testTarget(t, "address = \"192.0.2.8\"\n[targets.tags]\n\"odd key\" = \"a, b=c \\\\ d\"\nsite = \"ams1\"")

	tcpTags := map[string]string{"source": "router.example.net", "port": "2000", "protocol": "tcp", "direction": "receive"}
	with := func(m map[string]string, kv ...string) map[string]string {
		m = maps.Clone(m)
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	full := core.Summary{
		Proto: core.ProtoTCP, Direction: core.Receive, Connections: 20, Duration: 10 * time.Second,
		TxBytes: 1 << 20, RxBytes: 1250000000, TxBps: 838860.8, RxBps: 1e9,
		LocalCPU: 12, RemoteCPU: 87, Intervals: 10,
	}
	tests := []struct {
		name string
		o    Outcome
		want []point
	}{{
		name: "tcp success",
		o:    Outcome{Target: tcp, Start: start, Summary: full},
		want: []point{{Measurement, with(tcpTags, "result", "success"), map[string]any{
			"tx_bps": 838860.8, "rx_bps": 1e9, "tx_bytes": int64(1 << 20), "rx_bytes": int64(1250000000),
			"duration_seconds": 10.0, "connections": int64(20), "local_cpu": int64(12), "remote_cpu": int64(87),
			"result_code": int64(0),
		}, start}},
	}, {
		name: "cpu unknown",
		o: Outcome{Target: tcp, Start: start, Summary: core.Summary{
			Connections: 1, Duration: time.Second, RxBytes: 10, RxBps: 80, LocalCPU: -1, RemoteCPU: -1}},
		want: []point{{Measurement, with(tcpTags, "result", "success"), map[string]any{
			"tx_bps": 0.0, "rx_bps": 80.0, "tx_bytes": int64(0), "rx_bytes": int64(10),
			"duration_seconds": 1.0, "connections": int64(1), "result_code": int64(0),
		}, start}},
	}, {
		name: "udp both with loss",
		o: Outcome{Target: udp, Start: start, Summary: core.Summary{
			Connections: 1, Duration: 2 * time.Second, TxBytes: 500000, RxBytes: 970 * 1000,
			TxBps: 2e6, RxBps: 3.88e6, TxPackets: 500, RxPackets: 970, LostPackets: 30, StartupLostPackets: 20,
			LocalCPU: 5, RemoteCPU: -1}},
		want: []point{{Measurement, map[string]string{"source": "2001:db8::1", "port": "2001", "protocol": "udp",
			"direction": "both", "result": "success"}, map[string]any{
			"tx_bps": 2e6, "rx_bps": 3.88e6, "tx_bytes": int64(500000), "rx_bytes": int64(970000),
			"duration_seconds": 2.0, "connections": int64(1), "local_cpu": int64(5),
			"tx_packets": int64(500), "rx_packets": int64(970),
			"lost_packets": int64(30), "startup_lost_packets": int64(20), "loss_percent": 3.0,
			"path_loss_percent": 1.0, "result_code": int64(0),
		}, start}},
	}, {
		// A peer that is not btest-go cannot tell its start-up apart: all
		// its loss is the path's, as far as anyone can know.
		name: "udp receive from a peer that cannot tell its start-up",
		o: Outcome{Target: udpRx, Start: start, Summary: core.Summary{
			Connections: 1, Duration: time.Second, RxBytes: 1500 * 98, RxBps: 1176000,
			RxPackets: 98, LostPackets: 2, LocalCPU: -1, RemoteCPU: -1}},
		want: []point{{Measurement, map[string]string{"source": "192.0.2.9", "port": "2000", "protocol": "udp",
			"direction": "receive", "result": "success"}, map[string]any{
			"tx_bps": 0.0, "rx_bps": 1176000.0, "tx_bytes": int64(0), "rx_bytes": int64(147000),
			"duration_seconds": 1.0, "connections": int64(1), "rx_packets": int64(98),
			"lost_packets": int64(2), "startup_lost_packets": int64(0), "loss_percent": 2.0,
			"path_loss_percent": 2.0, "result_code": int64(0),
		}, start}},
	}, {
		name: "udp transmit has no receive loss",
		o: Outcome{Target: udpTx, Start: start, Summary: core.Summary{
			Connections: 1, Duration: time.Second, TxBytes: 1500, TxBps: 12000, TxPackets: 1, LocalCPU: -1, RemoteCPU: -1}},
		want: []point{{Measurement, map[string]string{"source": "192.0.2.7", "port": "2000", "protocol": "udp",
			"direction": "transmit", "result": "success"}, map[string]any{
			"tx_bps": 12000.0, "rx_bps": 0.0, "tx_bytes": int64(1500), "rx_bytes": int64(0),
			"duration_seconds": 1.0, "connections": int64(1), "tx_packets": int64(1), "result_code": int64(0),
		}, start}},
	}, {
		name: "escaped extra tags",
		o:    Outcome{Target: tagged, Start: start, Result: ConnectionFailed, Err: errors.New("refused")},
		want: []point{{Measurement, map[string]string{"source": "192.0.2.8", "port": "2000", "protocol": "tcp",
			"direction": "receive", "result": "connection_failed", "site": "ams1", "odd key": `a, b=c \ d`},
			map[string]any{"result_code": int64(2)}, start}},
	}, {
		name: "failure after data flowed keeps the measurements",
		o: Outcome{Target: tcp, Start: start, Result: Error, Err: errors.New("server closed the connection"),
			Summary: core.Summary{Connections: 1, Duration: 3 * time.Second, RxBytes: 3000, RxBps: 8000,
				LocalCPU: -1, RemoteCPU: -1}},
		want: []point{{Measurement, with(tcpTags, "result", "error"), map[string]any{
			"tx_bps": 0.0, "rx_bps": 8000.0, "tx_bytes": int64(0), "rx_bytes": int64(3000),
			"duration_seconds": 3.0, "connections": int64(1), "result_code": int64(9),
		}, start}},
	}, {
		name: "not finite rates and huge counters",
		o: Outcome{Target: tcp, Start: start, Summary: core.Summary{
			Connections: 1, Duration: time.Second, TxBytes: math.MaxUint64, TxBps: math.Inf(1), RxBps: math.NaN(),
			LocalCPU: -1, RemoteCPU: -1}},
		want: []point{{Measurement, with(tcpTags, "result", "success"), map[string]any{
			"tx_bytes": int64(math.MaxInt64), "rx_bytes": int64(0),
			"duration_seconds": 1.0, "connections": int64(1), "result_code": int64(0),
		}, start}},
	}}
	// Every failure kind, before any data flowed: result and result_code
	// only, so dashboards count failures without averaging in zeros.
	for r := Timeout; r <= Error; r++ {
		tests = append(tests, struct {
			name string
			o    Outcome
			want []point
		}{
			name: r.String(),
			o:    Outcome{Target: tcp, Start: start, Result: r, Err: fmt.Errorf("failed: %s", r)},
			want: []point{{Measurement, with(tcpTags, "result", r.String()), map[string]any{"result_code": int64(r)}, start}},
		})
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var e Encoder
			if err := e.Encode(&tc.o); err != nil {
				t.Fatal(err)
			}
			got := decodeLines(t, e.Bytes())
			if len(got) != len(tc.want) {
				t.Fatalf("got %d points, want %d:\n%s", len(got), len(tc.want), e.Bytes())
			}
			for i := range got {
				comparePoint(t, got[i], tc.want[i])
			}
			if t.Failed() {
				t.Logf("line: %s", e.Bytes())
			}
		})
	}
}

func comparePoint(t *testing.T, got, want point) {
	t.Helper()
	if got.measurement != want.measurement {
		t.Errorf("measurement %q, want %q", got.measurement, want.measurement)
	}
	if !maps.Equal(got.tags, want.tags) {
		t.Errorf("tags %v\nwant %v", got.tags, want.tags)
	}
	if !maps.Equal(got.fields, want.fields) {
		t.Errorf("fields %v\nwant %v", got.fields, want.fields)
	}
	if !got.time.Equal(want.time) {
		t.Errorf("time %v, want %v (nanoseconds must survive)", got.time, want.time)
	}
}

func TestEncodeIntervalPoints(t *testing.T) {
	t.Parallel()
	start := time.Unix(1700000000, 5)
	udp := testTarget(t, "address = \"192.0.2.1\"\nprotocol = \"udp\"")
	o := Outcome{Target: udp, Start: start, Summary: core.Summary{Connections: 1, Duration: 2 * time.Second,
		RxBytes: 3000, RxBps: 12000, LocalCPU: -1, RemoteCPU: -1},
		Intervals: []core.IntervalStats{
			{Elapsed: time.Second, Interval: time.Second, RxBps: 12000, LostPackets: 3, StartupLostPackets: 2, LocalCPU: 3, RemoteCPU: -1},
			// The login took 0.7 s: the second's end is At, not
			// Start plus Elapsed.
			{Elapsed: 2 * time.Second, Interval: time.Second, At: start.Add(2700 * time.Millisecond), TxBps: 8, RxBps: 12000, LocalCPU: 4, RemoteCPU: 9},
		}}
	tags := map[string]string{"source": "192.0.2.1", "port": "2000", "protocol": "udp", "direction": "receive", "result": "success"}

	var off Encoder
	if err := off.Encode(&o); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(off.Bytes()), "\n"); n != 1 {
		t.Fatalf("interval points off: %d lines, want 1", n)
	}

	e := Encoder{IntervalPoints: true}
	if err := e.Encode(&o); err != nil {
		t.Fatal(err)
	}
	got := decodeLines(t, e.Bytes())
	if len(got) != 3 {
		t.Fatalf("got %d points, want 3:\n%s", len(got), e.Bytes())
	}
	comparePoint(t, got[1], point{IntervalMeasurement, tags, map[string]any{
		"tx_bps": 0.0, "rx_bps": 12000.0, "elapsed_seconds": 1.0, "local_cpu": int64(3), "lost_packets": int64(3),
		"startup_lost_packets": int64(2),
	}, start.Add(time.Second)})
	comparePoint(t, got[2], point{IntervalMeasurement, tags, map[string]any{
		"tx_bps": 8.0, "rx_bps": 12000.0, "elapsed_seconds": 2.0, "local_cpu": int64(4), "remote_cpu": int64(9),
		"lost_packets": int64(0), "startup_lost_packets": int64(0),
	}, start.Add(2700 * time.Millisecond)})
}

// TestEncodeKeepsGoodLines shows that a point that cannot be encoded is
// left out whole and the next one is still written.
func TestEncodeKeepsGoodLines(t *testing.T) {
	t.Parallel()
	good := testTarget(t, `address = "192.0.2.1"`)
	bad := *good
	bad.Tags = map[string]string{"bad\ntag": "x"} // Parse rejects this; Encode must survive it anyway
	var e Encoder
	if err := e.Encode(&Outcome{Target: &bad, Start: time.Unix(1, 0)}); err == nil {
		t.Fatal("no error for a tag key with a line break")
	}
	if err := e.Encode(&Outcome{Target: good, Start: time.Unix(2, 0)}); err != nil {
		t.Fatal(err)
	}
	got := decodeLines(t, e.Bytes())
	if len(got) != 1 || !got[0].time.Equal(time.Unix(2, 0)) {
		t.Fatalf("want only the good point, got %q", e.Bytes())
	}
}

func TestResultCodesAreStable(t *testing.T) {
	t.Parallel()
	// Dashboards and alerts hold these numbers: changing one is a break.
	want := map[Result]string{
		0: "success", 1: "timeout", 2: "connection_failed", 3: "auth_failed", 4: "refused",
		5: "unsupported", 6: "protocol_error", 7: "limit", 8: "budget_exceeded", 9: "error",
	}
	for r, name := range want {
		if r.String() != name {
			t.Errorf("Result(%d) = %q, want %q", int(r), r.String(), name)
		}
	}
	if got := Result(len(want)).String(); got != "result(10)" {
		t.Errorf("unknown result = %q", got)
	}
}

// TestDocsExampleOutput: every line of the README's example output has
// the tags and fields the encoder writes for a test of its kind, and every
// field it shows is in the metrics tables, so the examples cannot drift
// from the code when a field is added.
func TestDocsExampleOutput(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Skip("README.md not found:", err)
	}
	doc := string(b)
	section := func(from, to string) string {
		t.Helper()
		i := strings.Index(doc, from)
		if i < 0 {
			t.Fatalf("README.md has no %q", strings.TrimSpace(from))
		}
		j := strings.Index(doc[i:], to)
		if j < 0 {
			t.Fatalf("README.md has no %q after %q", strings.TrimSpace(to), strings.TrimSpace(from))
		}
		return doc[i : i+j]
	}
	metrics := section("\n### Metrics\n", "\n### Example output\n")
	examples := section("\n### Example output\n", "\n### Grafana and InfluxQL\n")
	var lines []byte
	blocks := 0
	for rest := examples; ; {
		i := strings.Index(rest, "```text\n")
		if i < 0 {
			break
		}
		rest = rest[i+len("```text\n"):]
		end := strings.Index(rest, "```")
		if end < 0 {
			t.Fatal("unterminated text block in the example output")
		}
		lines = append(lines, rest[:end]...)
		rest = rest[end:]
		blocks++
	}
	points := decodeLines(t, lines)
	if blocks == 0 || len(points) == 0 {
		t.Fatal("no example output in README.md")
	}
	kinds := map[string]bool{}
	for _, p := range points {
		name := fmt.Sprintf("%s,%s/%s/%s", p.measurement, p.tags["protocol"], p.tags["direction"], p.tags["result"])
		kinds[name] = true
		result := Result(-1)
		for r := Success; r <= Error; r++ {
			if r.String() == p.tags["result"] {
				result = r
			}
		}
		if result < 0 {
			t.Errorf("%s: unknown result tag", name)
			continue
		}
		// The same test, encoded: a target with the point's tags, data
		// flowed when the point has measurements, and the CPU loads
		// known when the point has them (the only fields that depend on
		// what was measured rather than on the kind of test).
		conf := fmt.Sprintf("address = %q\nport = %s\nprotocol = %q\ndirection = %q\n",
			p.tags["source"], p.tags["port"], p.tags["protocol"], p.tags["direction"])
		extra := ""
		for k, v := range p.tags {
			if !slices.Contains(reservedTags, k) && k != "host" {
				extra += fmt.Sprintf("%q = %q\n", k, v)
			}
		}
		if extra != "" {
			conf += "[targets.tags]\n" + extra
		}
		cpu := func(k string) int {
			if _, ok := p.fields[k]; ok {
				return 1
			}
			return -1
		}
		o := Outcome{Target: testTarget(t, conf), Start: time.Unix(1, 0), Result: result}
		_, interval := p.fields["elapsed_seconds"]
		_, flowed := p.fields["duration_seconds"]
		if interval || flowed {
			o.Summary = core.Summary{Duration: time.Second, LocalCPU: cpu("local_cpu"), RemoteCPU: cpu("remote_cpu")}
			o.Intervals = []core.IntervalStats{{Elapsed: time.Second, LocalCPU: cpu("local_cpu"), RemoteCPU: cpu("remote_cpu")}}
		}
		e := Encoder{IntervalPoints: true}
		if err := e.Encode(&o); err != nil {
			t.Fatal(err)
		}
		enc := decodeLines(t, e.Bytes())
		want := enc[0]
		if p.measurement == IntervalMeasurement {
			if len(enc) < 2 {
				t.Errorf("%s: the encoder writes no interval point for it", name)
				continue
			}
			want = enc[1]
		}
		delete(p.tags, "host") // Telegraf adds it
		if got, want := slices.Sorted(maps.Keys(p.tags)), slices.Sorted(maps.Keys(want.tags)); !slices.Equal(got, want) {
			t.Errorf("%s: README shows tags %v, the encoder writes %v", name, got, want)
		}
		if got, want := slices.Sorted(maps.Keys(p.fields)), slices.Sorted(maps.Keys(want.fields)); !slices.Equal(got, want) {
			t.Errorf("%s: README shows fields %v,\nthe encoder writes %v", name, got, want)
		}
		for k := range p.fields {
			if !strings.Contains(metrics, "`"+k+"`") {
				t.Errorf("%s: field %q is not in the metrics tables", name, k)
			}
		}
	}
	t.Logf("example points checked: %v", slices.Sorted(maps.Keys(kinds)))
}
