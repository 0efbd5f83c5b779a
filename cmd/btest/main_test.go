package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/btest-go/btest/core"
	"github.com/btest-go/btest/core/ecsrp5"
	"github.com/btest-go/btest/internal/testutil"
)

// cliPorts keeps this package's servers apart from every other test's.
var cliPorts = testutil.NewPorts(testutil.RangeCLI)

// startCLIServer runs `btest -s` in-process until the test ends.
func startCLIServer(t *testing.T, args ...string) (string, *testutil.Buffer) {
	t.Helper()
	addr := cliPorts.TCPAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	logs := &testutil.Buffer{}
	done := make(chan int)
	args = append([]string{"-s", "--listen", addr, "--udp-ports", cliPorts.UDPRange(t, 4)}, args...)
	go func() { done <- run(ctx, args, logs, logs) }()
	t.Cleanup(func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("server exit code %d; log:\n%s", code, logs)
		}
	})
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return addr, logs
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("server did not start; log:\n%s", logs)
	return "", nil
}

func TestClientServerJSON(t *testing.T) {
	t.Parallel()
	addr, logs := startCLIServer(t, "-a", "admin", "-p", "secret", "--ecsrp5")
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"-c", addr, "-t", "-r", "-n", "4", "-d", "2", "--json", "-a", "admin", "-p", "secret"}, &out, &errOut)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	var intervals int
	var sum summaryJSON
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("not JSON: %q", sc.Text())
		}
		switch m["type"] {
		case "interval":
			intervals++
		case "summary":
			json.Unmarshal(sc.Bytes(), &sum)
		}
	}
	if intervals < 1 || sum.Result != "ok" || sum.TxBytes == 0 || sum.RxBytes == 0 || sum.Connections != 4 || sum.Direction != "both" {
		t.Fatalf("intervals %d, summary %+v", intervals, sum)
	}
	// The server logs the end once it sees the client close: wait for it.
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline) && !strings.Contains(logs.String(), "btest session end"); {
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(logs.String(), "btest session end") || !strings.Contains(logs.String(), "user=admin") {
		t.Fatalf("server log lacks the session:\n%s", logs)
	}
	if strings.Contains(logs.String(), "secret") {
		t.Fatal("server log contains the password")
	}
}

// TestWrongPasswordExitCode: a rejected login exits 1 with a sentence
// that says what to check; -v adds the handshake's own account.
func TestWrongPasswordExitCode(t *testing.T) {
	t.Parallel()
	for _, auth := range []string{"ecsrp5", "md5"} {
		addr, _ := startCLIServer(t, "-a", "admin", "-p", "secret", "--auth", auth)
		for _, c := range []struct {
			args       []string
			want, hide string
		}{
			{[]string{"-a", "admin", "-p", "nope"}, `btest: authentication failed for user "admin": check -a and -p` + "\n", ""},
			{[]string{"-a", "admin", "-p", "nope", "-v"}, `authentication failed for user "admin"`, "detail"},
			{[]string{"-p", "nope"}, "btest: the server requires a user name and password: use -a USER and -p PASS (or $BTEST_PASSWORD)\n", ""},
		} {
			var out, errOut bytes.Buffer
			code := run(context.Background(), append([]string{"-c", addr, "-d", "1"}, c.args...), &out, &errOut)
			got := errOut.String()
			if c.hide == "" && got != c.want || c.hide != "" && (!strings.Contains(got, c.want) || !strings.Contains(got, "btest: detail: ")) || code != 1 {
				t.Errorf("%s %q: exit %d, stderr %q, want %q", auth, c.args, code, got, c.want)
			}
		}
	}
}

// TestClientErrorRefused: a server that closes the connection before it
// says HELLO or after the command refused the test; the message says
// what that means in words a user can act on.
func TestClientErrorRefused(t *testing.T) {
	t.Parallel()
	err := fmt.Errorf("%w: the server closed the connection before its HELLO", core.ErrRefused)
	msg, detail := clientError(&options{}, err)
	for _, w := range []string{"refused", "not allowed", "too many", "full"} {
		if !strings.Contains(msg, w) {
			t.Errorf("%q lacks %q", msg, w)
		}
	}
	if detail != err.Error() {
		t.Errorf("detail %q, want %q", detail, err.Error())
	}
	// Other errors are printed as they are.
	other := errors.New("connecting to x:2000: no such host")
	if msg, detail := clientError(&options{}, other); msg != other.Error() || detail != "" {
		t.Errorf("clientError(%v) = %q, %q", other, msg, detail)
	}
}

func TestPasswordFromEnv(t *testing.T) {
	t.Setenv("BTEST_PASSWORD", "envsecret")
	addr, _ := startCLIServer(t, "-a", "admin")
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"-c", addr, "-d", "1", "-a", "admin"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
}

func TestLiveLines(t *testing.T) {
	t.Parallel()
	addr, _ := startCLIServer(t)
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"-c", addr, "-r", "-d", "2.2", "-b", "20M"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) < 4 || !strings.Contains(lines[1], "rx ") || !strings.HasPrefix(lines[len(lines)-1], "done:") {
		t.Fatalf("output:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "Mbps") {
		t.Fatalf("20M test shows no Mbps rates:\n%s", out.String())
	}
}

func TestVerifierCommand(t *testing.T) {
	t.Parallel()
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"verifier", "-a", "admin", "-p", "pw"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	v, err := ecsrp5.ParseVerifier(strings.TrimSpace(out.String()))
	if err != nil {
		t.Fatalf("output %q: %v", out.String(), err)
	}
	if v != ecsrp5.DeriveVerifier("admin", "pw", v.Salt) {
		t.Fatal("verifier does not match the password")
	}
	// A server configured with it accepts the password.
	addr, _ := startCLIServer(t, "-a", "admin", "--ecsrp5", "--verifier", strings.TrimSpace(out.String()))
	out.Reset()
	if code := run(context.Background(), []string{"-c", addr, "-d", "1", "-a", "admin", "-p", "pw"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
}

func TestFlagErrors(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{},
		{"-s", "-c", "x"},
		{"-c", "x", "--proto", "sctp"},
		{"-c", "x", "-b", "fast"},
		{"-c", "x", "-d", "-3"},
		{"-s", "--udp-ports", "a-b"},
		{"-s", "--allow", "10.0.0.0/33"},
		{"-c", "x", "extra"},
	} {
		var out, errOut bytes.Buffer
		if code := run(context.Background(), args, &out, &errOut); code != 2 {
			t.Errorf("%v: exit %d, want 2 (stderr %q)", args, code, errOut.String())
		}
	}
}

func TestClientConfigMapping(t *testing.T) {
	t.Parallel()
	o, err := parseFlags([]string{"-c", "::1", "-P", "2100", "-t", "-r", "-n", "20", "-b", "1.5G", "--remote-tx-speed", "10M", "-d", "30", "--random"}, new(bytes.Buffer))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := clientConfig(o)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Address != "[::1]:2100" || cfg.Direction != core.Both || cfg.Connections != 20 ||
		cfg.LocalTxSpeed != 1.5e9 || cfg.RemoteTxSpeed != 10e6 || cfg.Duration != 30*time.Second || !cfg.Random {
		t.Fatalf("config %+v", cfg)
	}
}

// TestMain fails the run when a test leaves goroutines behind: the tests
// run in parallel, so the check is made once, at the end.
func TestMain(m *testing.M) { testutil.VerifyTestMain(m) }

// TestJSONFailureSummary: a test that never started still ends with a
// summary, which reports what was asked and -1 for the CPU loads nobody
// measured, as interval lines do.
func TestJSONFailureSummary(t *testing.T) {
	t.Parallel()
	addr := cliPorts.TCPAddr(t) // nothing listens there
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"-c", addr, "-n", "3", "-u", "-t", "--json"}, &out, &errOut); code != 1 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	var sum map[string]any
	if err := json.Unmarshal(out.Bytes(), &sum); err != nil {
		t.Fatalf("output %q: %v", out.String(), err)
	}
	want := map[string]any{"type": "summary", "server": addr, "protocol": "udp", "direction": "transmit", "connections": 3.0,
		"local_cpu": -1.0, "remote_cpu": -1.0, "result": "error", "tx_bytes": 0.0, "duration_seconds": 0.0}
	for k, v := range want {
		if sum[k] != v {
			t.Errorf("%s = %v, want %v", k, sum[k], v)
		}
	}
	if e, _ := sum["error"].(string); !strings.Contains(e, "connect") {
		t.Errorf("error %q does not say what failed", e)
	}
}
