package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// clockTicks is USER_HZ, the unit of /proc/stat on Linux.
const clockTicks = 100

// busyCPU returns the machine's busy CPU time so far, in seconds.
func busyCPU() float64 {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Scan()
	fields := strings.Fields(sc.Text())
	var busy uint64
	for i, s := range fields[1:] {
		v, _ := strconv.ParseUint(s, 10, 64)
		if i != 3 && i != 4 { // idle, iowait
			busy += v
		}
	}
	return float64(busy) / clockTicks
}

// freePort asks the kernel for a free loopback TCP port.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func waitListening(addr string) error {
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("nothing listening on %s", addr)
}

// startOurServer runs `btest -s` on a free loopback port.
func startOurServer(ctx context.Context, bin string, extra ...string) (*process, string, error) {
	port, err := freePort()
	if err != nil {
		return nil, "", err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	// Every test comes from 127.0.0.1, and the scale run starts 200 at
	// once: the per-source limits of a public server are lifted.
	args := append([]string{"-s", "--listen", addr, "--max-sessions", "1000", "--max-sessions-per-ip", "1000",
		"--max-handshakes", "1000", "--max-handshakes-per-source", "1000",
		"--max-handshake-rate", "-1", "--max-handshake-rate-per-source", "-1"}, extra...)
	p, err := startProcess(ctx, bin, args...)
	if err != nil {
		return nil, "", err
	}
	if err := waitListening(addr); err != nil {
		p.stop()
		return nil, "", err
	}
	return p, addr, nil
}

func startIperfServer(ctx context.Context, bin string) (*process, int, error) {
	port, err := freePort()
	if err != nil {
		return nil, 0, err
	}
	p, err := startProcess(ctx, bin, "-s", "-B", "127.0.0.1", "-p", strconv.Itoa(port))
	if err != nil {
		return nil, 0, err
	}
	if err := waitListening("127.0.0.1:" + strconv.Itoa(port)); err != nil {
		p.stop()
		return nil, 0, err
	}
	return p, port, nil
}

// ourSummary is the part of `btest --json`'s summary line the bench reads.
type ourSummary struct {
	Type        string  `json:"type"`
	Duration    float64 `json:"duration_seconds"`
	TxBytes     uint64  `json:"tx_bytes"`
	RxBytes     uint64  `json:"rx_bytes"`
	TxBps       float64 `json:"tx_bps"` // over the time the counts cover (UDP: the peer's last report)
	RxBps       float64 `json:"rx_bps"`
	LostPackets uint64  `json:"lost_packets"`
	Result      string  `json:"result"`
	Error       string  `json:"error"`
}

// runOurs runs our client with args and measures it. rxOnly counts only
// received bytes (the sender's count includes data still in flight).
func runOurs(ctx context.Context, e *env, args ...string) (measure, ourSummary, error) {
	secs := strconv.FormatFloat(e.duration.Seconds(), 'f', -1, 64)
	full := append([]string{"-c", e.btestAddr, "--json", "-d", secs}, args...)
	cpu0 := busyCPU()
	out, err := exec.CommandContext(ctx, e.btest, full...).Output()
	cpu := busyCPU() - cpu0
	var s ourSummary
	for _, line := range bytes.Split(out, []byte("\n")) {
		if bytes.Contains(line, []byte(`"summary"`)) {
			json.Unmarshal(line, &s)
		}
	}
	if err != nil {
		return measure{}, s, fmt.Errorf("btest %v: %w (%s)", full, err, s.Error)
	}
	return measure{Bytes: s.TxBytes + s.RxBytes, Seconds: s.Duration, CPU: cpu}, s, nil
}

// iperfResult is the part of iperf3 -J the bench reads.
type iperfResult struct {
	End struct {
		SumSent                 iperfSum `json:"sum_sent"`
		SumReceived             iperfSum `json:"sum_received"`
		SumReceivedBidirReverse iperfSum `json:"sum_received_bidir_reverse"`
		Sum                     iperfSum `json:"sum"`
	} `json:"end"`
	Error string `json:"error"`
}

type iperfSum struct {
	Seconds     float64 `json:"seconds"`
	Bytes       uint64  `json:"bytes"`
	Packets     uint64  `json:"packets"`
	LostPackets uint64  `json:"lost_packets"`
	LostPercent float64 `json:"lost_percent"`
}

// runIperf runs an iperf3 client against the bench's iperf3 server.
func runIperf(ctx context.Context, e *env, args ...string) (iperfResult, float64, error) {
	secs := strconv.Itoa(int(e.duration.Seconds()))
	full := append([]string{"-c", "127.0.0.1", "-p", strconv.Itoa(e.iperfPort), "-J", "-t", secs}, args...)
	cpu0 := busyCPU()
	out, err := exec.CommandContext(ctx, e.iperf.path, full...).Output()
	cpu := busyCPU() - cpu0
	var r iperfResult
	json.Unmarshal(out, &r)
	if err != nil || r.Error != "" {
		return r, cpu, fmt.Errorf("iperf3 %v: %v %s", full, err, r.Error)
	}
	return r, cpu, nil
}
