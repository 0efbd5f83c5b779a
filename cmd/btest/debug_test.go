package main

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestRedactArgs: every spelling the flag set takes for a password or a
// verifier loses its value, and nothing else changes.
func TestRedactArgs(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ in, want []string }{
		{[]string{"-s", "-a", "admin", "-p", "pw"}, []string{"-s", "-a", "admin", "-p", "***"}},
		{[]string{"-s", "-ppw"}, []string{"-s", "-p***"}},
		{[]string{"-s", "-p=pw"}, []string{"-s", "-p=***"}},
		{[]string{"-c", "h", "-trp", "pw"}, []string{"-c", "h", "-trp", "***"}},
		{[]string{"-c", "h", "-trppw"}, []string{"-c", "h", "-trp***"}},
		{[]string{"--password", "pw"}, []string{"--password", "***"}},
		{[]string{"--password=pw"}, []string{"--password=***"}},
		{[]string{"-password", "pw"}, []string{"-password", "***"}},
		{[]string{"-password=pw"}, []string{"-password=***"}},
		{[]string{"--verifier", "s:x:1", "--verifier=s:x:1"}, []string{"--verifier", "***", "--verifier=***"}},
		// Values that look like flags stay values; other flags keep theirs.
		{[]string{"-a", "-p", "-p", "-pw"}, []string{"-a", "-p", "-p", "***"}},
		{[]string{"-n", "20", "-n20", "-d", "10s", "--listen", "-p"}, []string{"-n", "20", "-n20", "-d", "10s", "--listen", "-p"}},
		{[]string{"-c", "h", "--", "-p", "x"}, []string{"-c", "h", "--", "-p", "x"}},
		{[]string{"-p"}, []string{"-p"}},
	} {
		in := append([]string(nil), c.in...)
		if got := redactArgs(c.in); !reflect.DeepEqual(got, c.want) {
			t.Errorf("redactArgs(%q) = %q, want %q", c.in, got, c.want)
		}
		if !reflect.DeepEqual(in, c.in) {
			t.Errorf("redactArgs changed its argument to %q", c.in)
		}
	}
}

// TestDebugVarsHidePassword reads /debug/vars, whose "cmdline" is os.Args
// at request time, after main has redacted it. Not parallel: it sets
// os.Args.
func TestDebugVarsHidePassword(t *testing.T) {
	saved := os.Args
	t.Cleanup(func() { os.Args = saved })
	os.Args = []string{"btest", "-s", "-a", "admin", "-p", "hunter2", "--debug-addr", "127.0.0.1:1"}
	args := redactProcessArgs()
	if args[4] != "hunter2" {
		t.Fatalf("run would get %q, not the password", args)
	}
	addr := cliPorts.TCPAddr(t)
	srv, err := startDebug(addr, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	resp, err := http.Get("http://" + addr + "/debug/vars")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var vars struct{ Cmdline []string }
	if err := json.NewDecoder(resp.Body).Decode(&vars); err != nil {
		t.Fatal(err)
	}
	if want := []string{"btest", "-s", "-a", "admin", "-p", "***", "--debug-addr", "127.0.0.1:1"}; !reflect.DeepEqual(vars.Cmdline, want) {
		t.Fatalf("/debug/vars cmdline %q, want %q", vars.Cmdline, want)
	}
}

// TestDebugAddr: a bare port means loopback, as for --dashboard, and an
// address open to the network is served with a warning.
func TestDebugAddr(t *testing.T) {
	t.Parallel()
	port := strconv.Itoa(cliPorts.TCP(t))
	_, logs := startCLIServer(t, "--debug-addr", port)
	var resp *http.Response
	var err error
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if resp, err = http.Get("http://127.0.0.1:" + port + "/debug/vars"); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		t.Fatalf("--debug-addr %s: %v\n%s", port, err, logs)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || strings.Contains(logs.String(), "level=WARN") {
		t.Fatalf("status %d; log:\n%s", resp.StatusCode, logs)
	}

	open := strconv.Itoa(cliPorts.TCP(t))
	_, logs = startCLIServer(t, "--debug-addr", ":"+open)
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline) && !strings.Contains(logs.String(), "debug endpoint"); {
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "debug") {
		t.Fatalf("no warning for --debug-addr :%s:\n%s", open, logs)
	}
	for _, bad := range []string{"99999", "localhost"} {
		code, stderr := runServerOnce(t, "--debug-addr", bad)
		if code != 2 || !strings.Contains(stderr, "--debug-addr") {
			t.Errorf("--debug-addr %s: exit %d, stderr %q", bad, code, stderr)
		}
	}
}
