package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// UDP cases: our pair, unlimited, in each direction at tx_size 1500 and
// 9000, with GSO and GRO, against a receiver without GRO, and without GSO,
// beside iperf3 -u -b 0 in the same direction (-R, --bidir) with the same IP
// packet size (-l 1472 for tx_size 1500). Where both our sides use GSO and
// GRO and iperf3 has them (3.20+), iperf3 runs with --gsro as well.
// Throughput is goodput: UDP payload the receiving side counted, as iperf3
// reports it. Loss is over the whole run, the start-up (our unlimited
// senders search for the path's rate) included. Each of our runs gets a server of its own,
// so a variant can switch a feature off in the server's environment.
func init() {
	for _, c := range []struct {
		name      string
		args      []string
		size      int
		srvEnv    []string
		cliEnv    []string
		target    float64
		direction string
		gsro      bool // GSO and GRO on both our sides
	}{
		{"udp receive 1500", []string{"-r"}, 1500, nil, nil, 1.5, "receive", true},
		{"udp transmit 1500", []string{"-t"}, 1500, nil, nil, 1.5, "transmit", true},
		{"udp both 1500", []string{"-t", "-r"}, 1500, nil, nil, 1.5, "both", true},
		{"udp receive 1500, rx without GRO", []string{"-r"}, 1500, nil, []string{"BTEST_UDP_NO_GRO=1"}, 1.1, "receive", false},
		{"udp transmit 1500, rx without GRO", []string{"-t"}, 1500, []string{"BTEST_UDP_NO_GRO=1"}, nil, 1.1, "transmit", false},
		{"udp receive 1500, no GSO", []string{"-r"}, 1500, []string{"BTEST_UDP_NO_GSO=1"}, nil, 1.1, "receive", false},
		{"udp transmit 1500, no GSO", []string{"-t"}, 1500, nil, []string{"BTEST_UDP_NO_GSO=1"}, 1.1, "transmit", false},
		{"udp receive 9000", []string{"-r"}, 9000, nil, nil, 0, "receive", true},
		{"udp transmit 9000", []string{"-t"}, 9000, nil, nil, 0, "transmit", true},
	} {
		register(benchCase{
			Name:   c.name,
			Ours:   oursUDP(c.direction, c.size, c.srvEnv, c.cliEnv, c.args...),
			Iperf:  iperfUDP(c.direction, c.size, c.gsro),
			Target: c.target,
			UDP:    true,
		})
	}
}

// sessionEnd is the part of our server's "btest session end" log record
// the bench reads.
type sessionEnd struct {
	Msg         string `json:"msg"`
	RxBytes     uint64 `json:"rx_bytes"`
	LostPackets uint64 `json:"lost_packets"`
	Duration    string `json:"duration"`
}

// oursUDP runs one UDP test of ours against a server of its own.
func oursUDP(direction string, size int, srvEnv, cliEnv []string, args ...string) func(context.Context, *env) (measure, error) {
	return func(ctx context.Context, e *env) (measure, error) {
		port, err := freePort()
		if err != nil {
			return measure{}, err
		}
		addr := "127.0.0.1:" + strconv.Itoa(port)
		// A UDP port range of its own, away from other servers on the
		// machine (the client binds the range + 256).
		first := 40000 + rand.IntN(100)*200
		srv := exec.CommandContext(ctx, e.btest, "-s", "--listen", addr, "--log-format", "json",
			"--udp-ports", fmt.Sprintf("%d-%d", first, first+99))
		srv.Env = append(os.Environ(), srvEnv...)
		logs, err := srv.StderrPipe()
		if err != nil {
			return measure{}, err
		}
		if err := srv.Start(); err != nil {
			return measure{}, fmt.Errorf("start server: %w", err)
		}
		p := &process{srv}
		defer p.stop()
		ends := make(chan sessionEnd, 4)
		go func() {
			sc := bufio.NewScanner(logs)
			for sc.Scan() {
				var s sessionEnd
				if json.Unmarshal(sc.Bytes(), &s) == nil && s.Msg == "btest session end" {
					ends <- s
				}
			}
		}()
		if err := waitListening(addr); err != nil {
			return measure{}, err
		}
		secs := strconv.FormatFloat(e.duration.Seconds(), 'f', -1, 64)
		full := append([]string{"-c", addr, "--json", "-d", secs, "--proto", "udp", "--udp-size", strconv.Itoa(size)}, args...)
		cli := exec.CommandContext(ctx, e.btest, full...)
		cli.Env = append(os.Environ(), cliEnv...)
		cpu0 := busyCPU()
		out, err := cli.Output()
		cpu := busyCPU() - cpu0
		var sum ourSummary
		for _, line := range strings.Split(string(out), "\n") {
			if strings.Contains(line, `"summary"`) {
				json.Unmarshal([]byte(line), &sum)
			}
		}
		if err != nil {
			return measure{}, fmt.Errorf("btest %v: %w (%s)", full, err, sum.Error)
		}
		var end sessionEnd
		select {
		case end = <-ends:
		case <-time.After(5 * time.Second):
			return measure{}, fmt.Errorf("no session end from the server")
		}
		payload := uint64(size - 28)
		m := measure{Seconds: sum.Duration, CPU: cpu}
		var rxBytes, lost uint64
		if direction != "transmit" { // the client received
			rxBytes += sum.RxBytes
			lost += sum.LostPackets
		}
		if direction != "receive" { // the server received
			rxBytes += end.RxBytes
			lost += end.LostPackets
		}
		// Our byte counts are IP packets (tx_size each); goodput is payload.
		m.Packets = rxBytes / uint64(size)
		m.Bytes = m.Packets * payload
		if m.Packets+lost > 0 {
			m.LossPct = 100 * float64(lost) / float64(m.Packets+lost)
		}
		return m, nil
	}
}

// iperfUDP runs iperf3 unlimited in UDP mode, in our case's direction with
// the same IP packet size; goodput is what its receivers got. gsro adds
// --gsro when the iperf3 compared with has it.
func iperfUDP(direction string, size int, gsro bool) func(context.Context, *env) (measure, error) {
	return func(ctx context.Context, e *env) (measure, error) {
		args := []string{"-u", "-b", "0", "-l", strconv.Itoa(size - 28)}
		switch direction {
		case "receive":
			args = append(args, "-R")
		case "both":
			args = append(args, "--bidir")
		}
		if gsro && e.iperf.gsro {
			args = append(args, "--gsro")
		}
		r, cpu, err := runIperf(ctx, e, args...)
		if err != nil {
			return measure{}, err
		}
		s := r.End.SumReceived
		if s.Seconds == 0 { // iperf3 before 3.11 has only "sum"
			s = r.End.Sum
		}
		// In --bidir the reverse stream's receiver has a sum of its own.
		rev := r.End.SumReceivedBidirReverse
		got := s.Packets - s.LostPackets + rev.Packets - rev.LostPackets
		m := measure{Bytes: s.Bytes + rev.Bytes, Seconds: s.Seconds, CPU: cpu, Packets: got}
		if all := s.Packets + rev.Packets; all > 0 {
			m.LossPct = 100 * float64(s.LostPackets+rev.LostPackets) / float64(all)
		}
		return m, nil
	}
}
