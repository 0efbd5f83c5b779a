package telegrafinput

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/influxdata/line-protocol/v2/lineprotocol"

	"github.com/btest-go/btest/core"
)

// Measurement names.
const (
	// Measurement holds one point per test.
	Measurement = "btest"
	// IntervalMeasurement holds one point per report interval (one
	// second) of a test when interval_points is on.
	IntervalMeasurement = "btest_interval"
)

// Outcome is what one test produced: the input of the encoder.
type Outcome struct {
	// Target is the test's configuration.
	Target *Target
	// Start is when the test started; it is the point's timestamp.
	Start time.Time
	// Result classifies Err (or says the round's budget ended the test).
	Result Result
	// Err is RunClient's error, nil on success.
	Err error
	// Summary is RunClient's summary. Its measurements are written
	// when data flowed (Summary.Duration > 0), whatever the result.
	Summary core.Summary
	// Intervals are the test's interval reports (interval_points).
	Intervals []core.IntervalStats
}

// Encoder writes outcomes as InfluxDB line protocol with nanosecond
// timestamps. The zero value is ready to use.
type Encoder struct {
	// IntervalPoints also writes each outcome's interval reports.
	IntervalPoints bool

	enc  lineprotocol.Encoder
	tags []tag
}

type tag struct{ k, v string }

// Bytes returns the lines encoded since the last Reset.
func (e *Encoder) Bytes() []byte { return e.enc.Bytes() }

// Reset empties the buffer, keeping its memory.
func (e *Encoder) Reset() { e.enc.Reset() }

// Encode appends o's points: one btest point, then its btest_interval
// points when IntervalPoints is set. A point that cannot be encoded is
// left out whole and reported in the error; the others are kept.
func (e *Encoder) Encode(o *Outcome) error {
	e.enc.SetPrecision(lineprotocol.Nanosecond)
	e.setTags(o)
	if err := e.line(Measurement, o.Start, func() { e.testFields(o) }); err != nil {
		return err
	}
	if !e.IntervalPoints {
		return nil
	}
	for i := range o.Intervals {
		st := &o.Intervals[i]
		err := e.line(IntervalMeasurement, intervalTime(o, st), func() { e.intervalFields(o, st) })
		if err != nil {
			return err
		}
	}
	return nil
}

// setTags collects o's tags, sorted by key as line protocol wants them.
func (e *Encoder) setTags(o *Outcome) {
	t := o.Target
	e.tags = append(e.tags[:0],
		tag{"direction", t.Direction},
		tag{"port", t.port},
		tag{"protocol", t.Protocol},
		tag{"result", o.Result.String()},
		tag{"source", t.host},
	)
	for k, v := range t.Tags {
		e.tags = append(e.tags, tag{k, v})
	}
	slices.SortFunc(e.tags, func(a, b tag) int { return strings.Compare(a.k, b.k) })
}

// line encodes one point; fields adds its fields.
func (e *Encoder) line(m string, ts time.Time, fields func()) error {
	e.enc.StartLine(m)
	for _, t := range e.tags {
		e.enc.AddTag(t.k, t.v)
	}
	fields()
	e.enc.EndLine(ts)
	if err := e.enc.Err(); err != nil {
		e.enc.ClearErr()
		return fmt.Errorf("encoding %s point: %w", m, err)
	}
	return nil
}

func (e *Encoder) testFields(o *Outcome) {
	s := &o.Summary
	if s.Duration > 0 {
		e.float("tx_bps", s.TxBps)
		e.float("rx_bps", s.RxBps)
		e.uint("tx_bytes", s.TxBytes)
		e.uint("rx_bytes", s.RxBytes)
		e.float("duration_seconds", s.Duration.Seconds())
		e.int("connections", int64(s.Connections))
		if s.LocalCPU >= 0 {
			e.int("local_cpu", int64(s.LocalCPU))
		}
		if s.RemoteCPU >= 0 {
			e.int("remote_cpu", int64(s.RemoteCPU))
		}
		if o.Target.Protocol == "udp" && o.Target.Direction != core.Receive.String() {
			e.uint("tx_packets", s.TxPackets)
		}
		if receives(o.Target) {
			startup := min(s.StartupLostPackets, s.LostPackets)
			e.uint("rx_packets", s.RxPackets)
			e.uint("lost_packets", s.LostPackets)
			e.uint("startup_lost_packets", startup)
			e.float("loss_percent", lossPercent(s.LostPackets, s.LostPackets, s.RxPackets))
			// The path's share as a field of its own: InfluxQL 1.x cannot
			// aggregate an expression of two fields without a subquery,
			// and an alert wants one number that the probe's own
			// start-up overshoot does not move.
			e.float("path_loss_percent", lossPercent(s.LostPackets-startup, s.LostPackets, s.RxPackets))
		}
	}
	e.int("result_code", int64(o.Result))
}

func (e *Encoder) intervalFields(o *Outcome, st *core.IntervalStats) {
	e.float("tx_bps", st.TxBps)
	e.float("rx_bps", st.RxBps)
	e.float("elapsed_seconds", st.Elapsed.Seconds())
	if st.LocalCPU >= 0 {
		e.int("local_cpu", int64(st.LocalCPU))
	}
	if st.RemoteCPU >= 0 {
		e.int("remote_cpu", int64(st.RemoteCPU))
	}
	if receives(o.Target) {
		e.uint("lost_packets", st.LostPackets)
		e.uint("startup_lost_packets", min(st.StartupLostPackets, st.LostPackets))
	}
}

// receives says the target's test measures UDP loss: it is UDP and the
// server sends.
func receives(t *Target) bool {
	return t.Protocol == "udp" && t.Direction != core.Transmit.String()
}

// intervalTime is the timestamp of a per-second point: the end of the
// second it covers. Start plus Elapsed would be early by the time the
// connection and the login took (Elapsed counts from the data phase),
// seconds against a slow router; only a test without At falls back to it.
func intervalTime(o *Outcome, st *core.IntervalStats) time.Time {
	if !st.At.IsZero() {
		return st.At
	}
	return o.Start.Add(st.Elapsed)
}

// lossPercent is part out of lost+received, in percent; part is all of
// lost or the path's share of it.
func lossPercent(part, lost, received uint64) float64 {
	if part == 0 {
		return 0
	}
	return 100 * float64(part) / (float64(lost) + float64(received))
}

func (e *Encoder) float(k string, v float64) {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return // line protocol has no NaN or Inf: leave the field out
	}
	e.enc.AddField(k, lineprotocol.MustNewValue(v))
}

// int writes a signed integer field ("i" suffix): InfluxDB 1.x does not
// accept unsigned ("u") fields.
func (e *Encoder) int(k string, v int64) {
	e.enc.AddField(k, lineprotocol.IntValue(v))
}

func (e *Encoder) uint(k string, v uint64) {
	e.int(k, int64(min(v, math.MaxInt64)))
}
