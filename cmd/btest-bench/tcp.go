package main

import (
	"context"
	"fmt"
)

// TCP cases: each of our directions at 1 and 4 connections beside the
// iperf3 mode that moves data the same way. Bytes are what the receiving
// side counted.
func init() {
	for _, n := range []int{1, 4} {
		nArgs := []string{"-n", fmt.Sprint(n)}
		iperfP := []string{"-P", fmt.Sprint(n)}
		register(
			benchCase{
				Name:   fmt.Sprintf("tcp receive x%d", n),
				Ours:   oursTCP(append([]string{"-r"}, nArgs...)...),
				Iperf:  iperfTCP(append([]string{"-R"}, iperfP...)...),
				Target: 1.3,
			},
			benchCase{
				Name:   fmt.Sprintf("tcp transmit x%d", n),
				Ours:   oursTCP(append([]string{"-t"}, nArgs...)...),
				Iperf:  iperfTCP(iperfP...),
				Target: 1.3,
			},
			benchCase{
				Name:   fmt.Sprintf("tcp both x%d", n),
				Ours:   oursTCP(append([]string{"-t", "-r"}, nArgs...)...),
				Iperf:  iperfTCP(append([]string{"--bidir"}, iperfP...)...),
				Target: 1.3,
			},
		)
	}
}

func oursTCP(args ...string) func(context.Context, *env) (measure, error) {
	return func(ctx context.Context, e *env) (measure, error) {
		m, _, err := runOurs(ctx, e, args...)
		return m, err
	}
}

func iperfTCP(args ...string) func(context.Context, *env) (measure, error) {
	return func(ctx context.Context, e *env) (measure, error) {
		r, cpu, err := runIperf(ctx, e, args...)
		if err != nil {
			return measure{}, err
		}
		s := r.End.SumReceived
		return measure{Bytes: s.Bytes + r.End.SumReceivedBidirReverse.Bytes, Seconds: s.Seconds, CPU: cpu}, nil
	}
}
