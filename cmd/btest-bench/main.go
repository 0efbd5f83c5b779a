// Command btest-bench runs our btest server and client beside iperf3 on
// loopback, in the same run, and prints throughput, machine-wide CPU cost
// and the ratio ours/iperf3 per case (medians of several runs).
//
//	go run ./cmd/btest-bench -btest ./bin/btest [-iperf3 PATH] [-duration 10s] [-runs 3] [-only REGEXP]
//	go run ./cmd/btest-bench -btest ./bin/btest -pacing [-duration 10s] [-only REGEXP]
//
// -iperf3 names the iperf3 binary to compare with (default: iperf3 on PATH,
// Debian's 3.12). From iperf3 3.20 on, the UDP cases where both our sides
// use GSO and GRO run iperf3 with --gsro too; the header says which version
// was measured. -pacing prints instead how close rate limits land to the
// rate asked, TCP and UDP, for each side's sends.
//
// It is a benchmark, not a test: it never fails on a slow result. CPU cost is
// read from /proc/stat because loopback receive work runs in softirq context
// outside both processes.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// env is what every case gets: the binaries and the servers to talk to.
type env struct {
	btest     string // our binary
	btestAddr string // our server, host:port
	iperf     iperf3 // the iperf3 compared with
	iperfPort int    // iperf3 server port on 127.0.0.1
	duration  time.Duration
}

// measure is one run of one side of a case.
type measure struct {
	Bytes   uint64  // payload bytes moved (both directions added)
	Seconds float64 // wall time of the data phase
	CPU     float64 // machine-wide busy CPU seconds during the run
	Packets uint64  // UDP datagrams received (0 for TCP)
	LossPct float64 // UDP loss percent (receive side)
}

func (m measure) gbps() float64 {
	if m.Seconds <= 0 {
		return 0
	}
	return float64(m.Bytes) * 8 / m.Seconds / 1e9
}

func (m measure) cpuPerGB() float64 {
	if m.Bytes == 0 {
		return 0
	}
	return m.CPU / (float64(m.Bytes) / 1e9)
}

// benchCase pairs a run of ours with the iperf3 run it is compared to.
type benchCase struct {
	Name  string
	Ours  func(ctx context.Context, e *env) (measure, error)
	Iperf func(ctx context.Context, e *env) (measure, error)
	// Target is the ratio ours/iperf3 the case should reach (0: none).
	Target float64
	// UDP cases print packet rates and loss.
	UDP bool
}

var cases []benchCase

// register adds cases; files of this package call it from init.
func register(c ...benchCase) { cases = append(cases, c...) }

func main() {
	var e env
	var runs int
	var only string
	var scale bool
	flag.StringVar(&e.btest, "btest", "./bin/btest", "path of the btest binary")
	flag.StringVar(&e.iperf.path, "iperf3", "iperf3", "path of the iperf3 binary to compare with")
	flag.DurationVar(&e.duration, "duration", 10*time.Second, "length of each run")
	flag.IntVar(&runs, "runs", 3, "runs per case (the median is reported)")
	flag.StringVar(&only, "only", "", "run only cases matching this regexp")
	flag.BoolVar(&scale, "scale", true, "also run the 200-session scale benchmark")
	pacingOnly := flag.Bool("pacing", false, "run only the pacing-accuracy table (rate limits, TCP and UDP, both sides)")
	flag.Parse()
	re, err := regexp.Compile(only)
	if err != nil {
		fatal(err)
	}
	ctx := context.Background()
	// The pacing table measures our own limits only: it needs no iperf3.
	if !*pacingOnly {
		if err := e.iperf.probe(ctx); err != nil {
			fatal(err)
		}
	}

	srv, addr, err := startOurServer(ctx, e.btest)
	if err != nil {
		fatal(err)
	}
	defer srv.stop()
	e.btestAddr = addr
	if !*pacingOnly {
		iperf, port, err := startIperfServer(ctx, e.iperf.path)
		if err != nil {
			fatal(err)
		}
		defer iperf.stop()
		e.iperfPort = port
	}

	host, _ := os.Hostname()
	fmt.Printf("btest-bench %s on %s (%d CPUs, load average %s), %v per run, median of %d\n",
		time.Now().UTC().Format("2006-01-02 15:04"), host, numCPU(), loadAvg(), e.duration, runs)
	if *pacingOnly {
		runPacing(ctx, &e, re)
		return
	}
	fmt.Printf("against iperf3 %s (%s)%s\n\n", e.iperf.version, e.iperf.path, e.iperf.gsroNote())
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "case\tours Gbit/s\tiperf3 Gbit/s\tratio\ttarget\tours CPU s/GB\tiperf3 CPU s/GB\tours kpps\tours loss %\tiperf3 kpps\tiperf3 loss %\t")
	for _, c := range cases {
		if !re.MatchString(c.Name) {
			continue
		}
		fmt.Fprintf(os.Stderr, "running %s ...\n", c.Name)
		var ours, theirs []measure
		for range runs {
			// Alternate so drift in machine load hits both alike.
			m, err := c.Ours(ctx, &e)
			if err != nil {
				fmt.Fprintf(os.Stderr, "%s (ours): %v\n", c.Name, err)
			}
			ours = append(ours, m)
			if c.Iperf != nil {
				m, err = c.Iperf(ctx, &e)
				if err != nil {
					fmt.Fprintf(os.Stderr, "%s (iperf3): %v\n", c.Name, err)
				}
				theirs = append(theirs, m)
			}
		}
		o := median(ours)
		t := median(theirs)
		ratio := "-"
		if t.gbps() > 0 {
			ratio = fmt.Sprintf("%.2f", o.gbps()/t.gbps())
		}
		target := "-"
		if c.Target > 0 {
			target = fmt.Sprintf(">=%.1f", c.Target)
		}
		udpCols := "-\t-\t-\t-\t"
		if c.UDP {
			udpCols = fmt.Sprintf("%.0f\t%.2f\t%.0f\t%.2f\t", float64(o.Packets)/max(o.Seconds, 1e-9)/1e3, o.LossPct,
				float64(t.Packets)/max(t.Seconds, 1e-9)/1e3, t.LossPct)
		}
		fmt.Fprintf(tw, "%s\t%.2f\t%.2f\t%s\t%s\t%.3f\t%.3f\t%s\n", c.Name, o.gbps(), t.gbps(), ratio, target,
			o.cpuPerGB(), t.cpuPerGB(), udpCols)
	}
	tw.Flush()
	if scale && re.MatchString("scale") {
		fmt.Println()
		if err := runScale(ctx, &e); err != nil {
			fmt.Fprintln(os.Stderr, "scale:", err)
		}
	}
}

// median returns the run with the median throughput.
func median(ms []measure) measure {
	if len(ms) == 0 {
		return measure{}
	}
	s := slices.Clone(ms)
	slices.SortFunc(s, func(a, b measure) int {
		switch {
		case a.gbps() < b.gbps():
			return -1
		case a.gbps() > b.gbps():
			return 1
		}
		return 0
	})
	return s[len(s)/2]
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "btest-bench:", err)
	os.Exit(1)
}

// process is a background server process.
type process struct{ cmd *exec.Cmd }

func (p *process) stop() {
	if p.cmd.Process != nil {
		p.cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { p.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(3 * time.Second):
			p.cmd.Process.Kill()
		}
	}
}

func startProcess(ctx context.Context, name string, args ...string) (*process, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = nil, nil
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	return &process{cmd}, nil
}

// loadAvg is the machine's 1, 5 and 15 minute load average, to read the
// figures by: on a shared machine only the ratios of one run compare.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func numCPU() int {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return 0
	}
	return strings.Count(string(b), "processor\t:")
}
