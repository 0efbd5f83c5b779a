package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/btest-go/btest/dashboard"
)

func TestDashboardAddr(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"8081":           "127.0.0.1:8081",
		"127.0.0.1:8081": "127.0.0.1:8081",
		"[::1]:8081":     "[::1]:8081",
		":8081":          ":8081",
	} {
		if got, err := httpAddr("--dashboard", in); err != nil || got != want {
			t.Errorf("httpAddr(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"99999", "localhost", "-1"} {
		if _, err := httpAddr("--dashboard", bad); err == nil {
			t.Errorf("httpAddr(%q) accepted", bad)
		}
	}
}

// getState fetches api/state as user/password ("" for none).
func getState(t *testing.T, url, user, password string) (int, dashboard.Snapshot) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url+"api/state", nil)
	if user != "" {
		req.SetBasicAuth(user, password)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var snap dashboard.Snapshot
	if resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(&snap); err != nil {
			t.Fatal(err)
		}
	} else {
		io.Copy(io.Discard, resp.Body)
	}
	return resp.StatusCode, snap
}

// TestDashboardFlag runs `btest -s --dashboard` with a user: the page asks
// for the server's user and password and shows a client's test.
func TestDashboardFlag(t *testing.T) {
	t.Parallel()
	port := strconv.Itoa(cliPorts.TCP(t))
	addr, logs := startCLIServer(t, "-a", "admin", "-p", "secret", "--dashboard", port)
	url := "http://127.0.0.1:" + port + "/"
	var code int
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			code = resp.StatusCode
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("dashboard not up: %v\n%s", err, logs)
		}
	}
	if code != http.StatusUnauthorized {
		t.Fatalf("page without a password: %d, want 401", code)
	}
	if c, _ := getState(t, url, "admin", "wrong"); c != http.StatusUnauthorized {
		t.Fatalf("wrong password: %d, want 401", c)
	}
	if c, snap := getState(t, url, "admin", "secret"); c != http.StatusOK || snap.Server.Auth != "ecsrp5" || len(snap.Server.Listeners) != 1 || snap.Server.Listeners[0] != addr {
		t.Fatalf("state: %d %+v", c, snap.Server)
	}
	if c := run(context.Background(), []string{"-c", addr, "-r", "-d", "1", "-a", "admin", "-p", "secret", "--remote-tx-speed", "10M"}, io.Discard, io.Discard); c != 0 {
		t.Fatalf("client exit %d", c)
	}
	// The recent list also holds startCLIServer's probe of the port (a
	// handshake_error refusal).
	var snap dashboard.Snapshot
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if _, snap = getState(t, url, "admin", "secret"); snap.Totals.Sessions == 1 {
			break
		}
	}
	if len(snap.Recent) == 0 || snap.Recent[0].Result != "ok" || snap.Recent[0].User != "admin" || snap.Recent[0].Direction != "receive" {
		t.Fatalf("recent %+v", snap.Recent)
	}
	if strings.Contains(logs.String(), "open to the network") {
		t.Error("warned about a loopback dashboard with a password")
	}
}

// A dashboard on every interface without a password is allowed, with a
// warning.
func TestDashboardOpenWarns(t *testing.T) {
	t.Parallel()
	port := strconv.Itoa(cliPorts.TCP(t))
	_, logs := startCLIServer(t, "--dashboard", ":"+port)
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline) && !strings.Contains(logs.String(), "open to the network"); {
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(logs.String(), "open to the network") {
		t.Fatalf("no warning for an open dashboard on :%s:\n%s", port, logs)
	}
	if c, _ := getState(t, "http://127.0.0.1:"+port+"/", "", ""); c != http.StatusOK {
		t.Fatalf("open dashboard: %d", c)
	}
}
