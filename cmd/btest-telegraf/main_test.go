//go:build unix

package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/btest-go/btest/core"

	"github.com/btest-go/btest/internal/testserver"
	"github.com/btest-go/btest/internal/testutil"
)

// These tests run the built program as Telegraf does: stdin a pipe,
// signals from outside.

var binary string

func TestMain(m *testing.M) {
	// make test builds the program once for this package's tests and
	// telegrafinput's (BTEST_TELEGRAF_BIN).
	if binary = os.Getenv("BTEST_TELEGRAF_BIN"); binary != "" {
		if _, err := os.Stat(binary); err != nil {
			fmt.Fprintln(os.Stderr, "BTEST_TELEGRAF_BIN:", err)
			os.Exit(1)
		}
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "btest-telegraf-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "btest-telegraf")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building btest-telegraf: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// testPorts keeps this package's servers apart from every other test's.
var testPorts = testutil.NewPorts(testutil.RangeTelegrafCmd)

// startServer runs our btest server on loopback without authentication.
func startServer(t *testing.T) string {
	t.Helper()
	_, addr := testserver.Start(t, testPorts, core.ServerConfig{})
	return addr
}

type proc struct {
	cmd            *exec.Cmd
	stdin          io.WriteCloser
	stdout, stderr *testutil.Buffer
	exited         chan error
}

// start runs btest-telegraf with one target of the given duration.
func start(t *testing.T, d time.Duration) *proc {
	t.Helper()
	conf := filepath.Join(t.TempDir(), "btest.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf("[[targets]]\naddress = %q\nduration = %q\nremote_tx_speed = \"10M\"\n",
		startServer(t), d)), 0o600)
	p := &proc{cmd: exec.Command(binary, "-config", conf), stdout: &testutil.Buffer{}, stderr: &testutil.Buffer{},
		exited: make(chan error, 1)}
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	testutil.DieWithTest(p.cmd)
	var err error
	if p.stdin, err = p.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.exited <- p.cmd.Wait() }()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.exited
	})
	waitFor(t, "the start message", func() bool { return strings.Contains(p.stderr.String(), "I! btest-telegraf: 1 target(s)") })
	return p
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// wait returns the exit code, failing when the program takes longer than
// Telegraf's 5 s grace before it escalates.
func (p *proc) wait(t *testing.T) int {
	t.Helper()
	select {
	case err := <-p.exited:
		p.exited <- err // for the cleanup
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0
	case <-time.After(5 * time.Second):
		t.Fatalf("btest-telegraf did not exit within 5s\nstderr:\n%s", p.stderr)
		return -1
	}
}

// TestStopsMidTest: stdin EOF, SIGTERM and SIGINT each stop a running
// minute-long test at once, with exit code 0 and no partial output.
func TestStopsMidTest(t *testing.T) {
	t.Parallel()
	for _, how := range []string{"EOF", "SIGTERM", "SIGINT"} {
		t.Run(how, func(t *testing.T) {
			p := start(t, time.Minute)
			io.WriteString(p.stdin, "\n")
			time.Sleep(500 * time.Millisecond)
			switch how {
			case "EOF":
				p.stdin.Close()
			case "SIGTERM":
				p.cmd.Process.Signal(syscall.SIGTERM)
			case "SIGINT":
				p.cmd.Process.Signal(syscall.SIGINT)
			}
			if code := p.wait(t); code != 0 {
				t.Errorf("exit code %d, want 0\nstderr:\n%s", code, p.stderr)
			}
			if out := p.stdout.String(); out != "" {
				t.Errorf("partial test written: %q", out)
			}
			if !strings.Contains(p.stderr.String(), "I! stopping: 1 test(s) of round 1 were interrupted") {
				t.Errorf("stderr:\n%s", p.stderr)
			}
		})
	}
}

// TestSignalTriggers: with signal = "SIGHUP", "SIGUSR1" or "SIGUSR2" in
// inputs.execd, each signal is a round, not the end of the program.
func TestSignalTriggers(t *testing.T) {
	t.Parallel()
	p := start(t, 200*time.Millisecond)
	for i, sig := range []syscall.Signal{syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGUSR2} {
		p.cmd.Process.Signal(sig)
		waitFor(t, fmt.Sprintf("the round for %v", sig), func() bool { return strings.Count(p.stdout.String(), "\n") == i+1 })
	}
	p.stdin.Close()
	if code := p.wait(t); code != 0 {
		t.Errorf("exit code %d", code)
	}
	for line := range strings.Lines(p.stdout.String()) {
		if !strings.HasPrefix(line, "btest,") || !strings.Contains(line, "result=success") {
			t.Errorf("line %q", line)
		}
	}
}

func TestBadConfigExits1(t *testing.T) {
	t.Parallel()
	conf := filepath.Join(t.TempDir(), "btest.conf")
	os.WriteFile(conf, []byte("[[targets]]\naddress = \"192.0.2.1\"\nconnection_count = 300\n"), 0o600)
	out, err := exec.Command(binary, "-config", conf).CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("exit %v, want 1", err)
	}
	// Telegraf's log: the version first (I!), then the error (E!).
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	last := lines[len(lines)-1]
	if !strings.HasPrefix(lines[0], "I! btest-telegraf ") || !strings.HasPrefix(last, "E! ") || !strings.Contains(last, `"connection_count" must be 1-255`) {
		t.Errorf("output %q", out)
	}
}
