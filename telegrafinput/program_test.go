package telegrafinput

import (
	"context"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/btest-go/btest/core"

	"github.com/btest-go/btest/internal/testserver"
	"github.com/btest-go/btest/internal/testutil"
)

// testPorts keeps this package's servers apart from every other test's.
var testPorts = testutil.NewPorts(testutil.RangeTelegrafInput)

// startServer runs our btest server on loopback for the test, with MD5
// authentication for user "btest", password "secret".
func startServer(t *testing.T) string {
	t.Helper()
	return startServerWatched(t).addr
}

// watchedServer is a test server that tells what it saw.
type watchedServer struct {
	addr string
	// sent gets the bytes the server sent in each test that ended well.
	sent <-chan uint64
	// started gets a value as each test passes its handshake.
	started <-chan struct{}
}

// startServerWatched is startServer, watched.
func startServerWatched(t *testing.T) watchedServer {
	t.Helper()
	sent := make(chan uint64, 16)
	started := make(chan struct{}, 16)
	_, addr := testserver.Start(t, testPorts, core.ServerConfig{
		Auth:  core.AuthMD5,
		Users: []core.User{{Name: "btest", Password: "secret"}},
		Observer: &core.Observer{
			SessionStarted: func(core.SessionInfo) {
				select {
				case started <- struct{}{}:
				default:
				}
			},
			SessionEnded: func(_ core.SessionInfo, sum core.Summary, err error) {
				if err == nil {
					select {
					case sent <- sum.TxBytes:
					default:
					}
				}
			},
		},
	})
	return watchedServer{addr: addr, sent: sent, started: started}
}

// writeConfig writes a configuration with a good target (duration d,
// capped at 20 Mbit/s to spare CI's CPU) and one with a wrong password.
func writeConfig(t *testing.T, addr, head string, d time.Duration) string {
	t.Helper()
	conf := head + `
[[targets]]
  address = "` + addr + `"
  user = "btest"
  password = "secret"
  duration = "` + d.String() + `"
  remote_tx_speed = "20M"

[[targets]]
  address = "` + addr + `"
  user = "btest"
  password = "wrong"
`
	p := filepath.Join(t.TempDir(), "btest.conf")
	if err := os.WriteFile(p, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// program runs Main in the background with stdin from a pipe.
type program struct {
	stdin          *io.PipeWriter
	stdout, stderr *syncBuffer
	cancel         context.CancelFunc
	code           chan int
}

func startProgram(t *testing.T, args ...string) *program {
	t.Helper()
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	p := &program{stdin: pw, stdout: &syncBuffer{}, stderr: &syncBuffer{}, cancel: cancel, code: make(chan int, 1)}
	go func() { p.code <- Main(ctx, args, pr, p.stdout, p.stderr, nil) }()
	t.Cleanup(func() {
		cancel()
		pw.Close()
	})
	return p
}

// exit waits for Main to return; stopping must be quick even mid-test.
func (p *program) exit(t *testing.T) int {
	t.Helper()
	select {
	case c := <-p.code:
		return c
	case <-time.After(5 * time.Second):
		t.Fatalf("program did not stop within 5s\nstderr:\n%s", p.stderr)
		return -1
	}
}

func (p *program) lines() int { return strings.Count(p.stdout.String(), "\n") }

func TestMainStdinRounds(t *testing.T) {
	t.Parallel()
	srv := startServerWatched(t)
	addr := srv.addr
	p := startProgram(t, "-config", writeConfig(t, addr, "", 300*time.Millisecond))
	io.WriteString(p.stdin, "\n")
	waitFor(t, "round 1", func() bool { return p.lines() == 2 })
	// Triggers that pile up while round 2 runs give one more round. They
	// go once round 2's good test runs (300 ms): round 1 may still be
	// finishing after its two lines, and triggers sent then once merged
	// into round 2 alone (a loaded CI machine, beside a make run).
	io.WriteString(p.stdin, "\n")
	for range 2 { // round 1's test, then round 2's
		select {
		case <-srv.started:
		case <-time.After(10 * time.Second):
			t.Fatalf("round 2's test did not start; stderr:\n%s", p.stderr.String())
		}
	}
	io.WriteString(p.stdin, "\n\n\n")
	waitFor(t, "rounds 2 and 3", func() bool { return p.lines() == 6 })
	time.Sleep(500 * time.Millisecond)
	if n := p.lines(); n != 6 {
		t.Errorf("%d lines after 1+1+3 triggers, want 6 (3 rounds)", n)
	}
	p.stdin.Close()
	if c := p.exit(t); c != ExitOK {
		t.Errorf("exit code %d after stdin EOF, want 0", c)
	}
	points := decodeLines(t, p.stdout.Bytes())
	for i, pt := range points {
		want := "success"
		if i%2 == 1 {
			want = "auth_failed"
		}
		if pt.tags["result"] != want {
			t.Errorf("point %d: result %q, want %q", i, pt.tags["result"], want)
		}
	}
	// The units, without a rate threshold (a loaded machine may move far
	// less than 20 Mbit/s in 300 ms): the bytes received are some, and
	// no more than the server sent in that test (bits would be eight
	// times more); the time is in seconds (the test asked for 0.3;
	// milliseconds would be 300), of the order of what was asked: the
	// client counts from a moment after the test's timer starts, and on
	// a loaded CI machine that moment once came 75 ms later (0.225 s);
	// the rate is those bytes over that time, in bit/s.
	rx, _ := points[0].fields["rx_bps"].(float64)
	bytes, _ := points[0].fields["rx_bytes"].(int64)
	secs, _ := points[0].fields["duration_seconds"].(float64)
	var sent uint64
	select {
	case sent = <-srv.sent: // round 1's test, the first to end well
	case <-time.After(5 * time.Second):
		t.Fatal("the server reported no test that ended well")
	}
	if bytes <= 0 || uint64(bytes) > sent || secs < 0.1 || secs > 30 || math.Abs(rx-float64(bytes)*8/secs) > rx/100 {
		t.Errorf("rx_bps %v for a test of %v B (the server sent %d B) in %v s", points[0].fields["rx_bps"], points[0].fields["rx_bytes"], sent, points[0].fields["duration_seconds"])
	}
	errs := p.stderr.String()
	for _, s := range []string{"I! btest-telegraf: 2 target(s), a round per line on stdin", "W! " + addr + " tcp receive: auth_failed",
		"I! btest-telegraf: stdin closed; stopping"} {
		if !strings.Contains(errs, s) {
			t.Errorf("stderr lacks %q:\n%s", s, errs)
		}
	}
	for line := range strings.Lines(errs) {
		if len(line) < 3 || !strings.Contains("EWID", line[:1]) || line[1:3] != "! " {
			t.Errorf("stderr line without a Telegraf level prefix: %q", line)
		}
	}
}

// TestMainStopMidTest: stdin EOF (Telegraf stopping) and a signal (ctx)
// each end a long test at once, exit 0, and write no partial point.
func TestMainStopMidTest(t *testing.T) {
	t.Parallel()
	addr := startServer(t)
	conf := writeConfig(t, addr, "", time.Minute)
	for _, how := range []string{"stdin EOF", "signal"} {
		t.Run(how, func(t *testing.T) {
			p := startProgram(t, "-config", conf)
			io.WriteString(p.stdin, "\n")
			waitFor(t, "the test to start", func() bool { return strings.Contains(p.stderr.String(), "I! btest-telegraf") })
			time.Sleep(300 * time.Millisecond)
			start := time.Now()
			if how == "signal" {
				p.cancel()
			} else {
				p.stdin.Close()
			}
			if c := p.exit(t); c != ExitOK {
				t.Errorf("exit code %d, want 0", c)
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("stopping took %v", d)
			}
			// The wrong-password target never started (concurrency 1):
			// nothing was finished, so nothing is written.
			if out := p.stdout.String(); out != "" {
				t.Errorf("output after stopping mid-test: %q", out)
			}
			if !strings.Contains(p.stderr.String(), "were interrupted and are not reported") {
				t.Errorf("stderr:\n%s", p.stderr)
			}
		})
	}
}

func TestMainInterval(t *testing.T) {
	t.Parallel()
	addr := startServer(t)
	p := startProgram(t, "-config", writeConfig(t, addr, `interval = "400ms"`, 200*time.Millisecond))
	// In interval mode stdin lines are not triggers.
	io.WriteString(p.stdin, "\n\n\n")
	waitFor(t, "two rounds", func() bool { return p.lines() >= 4 })
	p.cancel()
	if c := p.exit(t); c != ExitOK {
		t.Errorf("exit code %d", c)
	}
	if !strings.Contains(p.stderr.String(), "a round every 400ms") {
		t.Errorf("stderr:\n%s", p.stderr)
	}
	decodeLines(t, p.stdout.Bytes())
}

func TestMainOnce(t *testing.T) {
	t.Parallel()
	addr := startServer(t)
	var out, errs syncBuffer
	code := Main(context.Background(), []string{"-once", "-config", writeConfig(t, addr, "", 200*time.Millisecond)},
		strings.NewReader(""), &out, &errs, nil)
	if code != ExitOK {
		t.Fatalf("exit %d\n%s", code, errs.String())
	}
	if got := decodeLines(t, out.Bytes()); len(got) != 2 {
		t.Errorf("%d points, want 2", len(got))
	}
}

func TestMainUsageAndConfigErrors(t *testing.T) {
	t.Parallel()
	bad := filepath.Join(t.TempDir(), "bad.conf")
	os.WriteFile(bad, []byte("[[targets]]\naddress = \"192.0.2.1\"\nprotocol = \"icmp\"\n"), 0o600)
	tests := []struct {
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{[]string{}, ExitUsage, "", "E! btest-telegraf: -config FILE is required"},
		{[]string{"-config", bad, "extra"}, ExitUsage, "", `unexpected argument "extra"`},
		{[]string{"-bogus"}, ExitUsage, "", "flag provided but not defined"},
		{[]string{"-h"}, ExitOK, "", "usage: btest-telegraf"},
		{[]string{"-config", bad}, ExitFailure, "", `E! btest-telegraf: ` + bad + `: invalid configuration: [[targets]] #1 (192.0.2.1): "protocol": unknown protocol "icmp"`},
		{[]string{"-config", "/nonexistent.conf"}, ExitFailure, "", "E! btest-telegraf: invalid configuration: open /nonexistent.conf: no such file"},
		{[]string{"-sample-config"}, ExitOK, SampleConfig(), ""},
	}
	for _, tc := range tests {
		var out, errs syncBuffer
		code := Main(context.Background(), tc.args, strings.NewReader(""), &out, &errs, nil)
		if code != tc.code || out.String() != tc.stdout || !strings.Contains(errs.String(), tc.stderr) {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want %d, %q, %q", tc.args, code, out.String(), errs.String(),
				tc.code, tc.stdout, tc.stderr)
		}
	}
}

// TestMainExtraTriggers: SIGHUP/SIGUSR1/SIGUSR2 (the extra channel)
// trigger rounds like stdin lines do.
func TestMainExtraTriggers(t *testing.T) {
	t.Parallel()
	addr := startServer(t)
	pr, pw := io.Pipe()
	defer pw.Close()
	extra := make(chan struct{}, 1)
	var out, errs syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	code := make(chan int, 1)
	go func() {
		code <- Main(ctx, []string{"-config", writeConfig(t, addr, "", 200*time.Millisecond)}, pr, &out, &errs, extra)
	}()
	extra <- struct{}{}
	waitFor(t, "a round", func() bool { return strings.Count(out.String(), "\n") == 2 })
	cancel()
	if c := <-code; c != ExitOK {
		t.Errorf("exit %d", c)
	}
}
