package packaging

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/btest-go/btest/internal/testutil"
)

// logBuffer collects a process's output for a test that reads it while the
// process runs.
type logBuffer = testutil.Buffer

// server is a btest server process started by a test.
type server struct {
	cmd  *exec.Cmd
	logs *logBuffer
	done chan error
}

// startServer starts cmd and waits until addr accepts TCP connections.
func startServer(t *testing.T, cmd *exec.Cmd, addr string) *server {
	t.Helper()
	s := &server{cmd: cmd, logs: &logBuffer{}, done: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = s.logs, s.logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", cmd.Path, err)
	}
	go func() { s.done <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-s.done
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-s.done:
			t.Fatalf("server exited at start: %v\n%s", err, s.logs)
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return s
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("server did not listen on %s within 10 s:\n%s", addr, s.logs)
	return nil
}

// stop sends SIGTERM, as systemd and docker stop do, and requires a clean
// exit (status 0) within the unit's TimeoutStopSec.
func (s *server) stop(t *testing.T) {
	t.Helper()
	start := time.Now()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	select {
	case err := <-s.done:
		if err != nil {
			t.Errorf("server exit after SIGTERM: %v\n%s", err, s.logs)
		}
		t.Logf("server stopped %s after SIGTERM", time.Since(start).Round(time.Millisecond))
	case <-time.After(15 * time.Second):
		t.Errorf("server still running 15 s after SIGTERM:\n%s", s.logs)
	}
}

// summary is the client's final --json line.
type summary struct {
	Type      string  `json:"type"`
	Proto     string  `json:"protocol"`
	Direction string  `json:"direction"`
	TxBytes   uint64  `json:"tx_bytes"`
	RxBytes   uint64  `json:"rx_bytes"`
	Duration  float64 `json:"duration_seconds"`
}

// runClient runs `btest -c addr ... --json` and returns its summary, or
// the error and output when the test failed.
func runClient(t *testing.T, bin string, env []string, addr string, args ...string) (summary, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"-c", addr, "--json"}, args...)...)
	cmd.Env = env
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var sum summary
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		var s summary
		if json.Unmarshal(sc.Bytes(), &s) == nil && s.Type == "summary" {
			sum = s
		}
	}
	return sum, strings.TrimSpace(errOut.String()), err
}

// requireTest runs a client test that must move data both ways.
func requireTest(t *testing.T, bin string, env []string, addr string, args ...string) {
	t.Helper()
	sum, stderr, err := runClient(t, bin, env, addr, args...)
	if err != nil {
		t.Fatalf("btest -c %s %v: %v\n%s", addr, args, err, stderr)
	}
	if sum.Type != "summary" || sum.TxBytes == 0 || sum.RxBytes == 0 {
		t.Fatalf("btest -c %s %v: summary %+v, want data both ways\n%s", addr, args, sum, stderr)
	}
	t.Logf("%s %s: sent %d, received %d bytes in %.1f s", sum.Proto, sum.Direction, sum.TxBytes, sum.RxBytes, sum.Duration)
}

// checkLogs requires journald-friendly logs: a level on every line, no
// terminal colour codes.
func checkLogs(t *testing.T, logs string) {
	t.Helper()
	if strings.Contains(logs, "\x1b[") {
		t.Errorf("server log has ANSI escapes:\n%q", logs)
	}
	for _, l := range strings.Split(strings.TrimSpace(logs), "\n") {
		if !strings.Contains(l, "level=") {
			t.Errorf("server log line without a level: %q", l)
		}
	}
}
