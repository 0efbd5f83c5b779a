package packaging

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/btest-go/btest/core"
)

// unitDirectives returns the [Service] directives of a unit file; a
// directive given twice keeps every value.
func unitDirectives(t *testing.T, path string) map[string][]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	d := map[string][]string{}
	section := ""
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		switch {
		case l == "" || l[0] == '#':
		case l[0] == '[':
			section = l
		case section == "[Service]":
			k, v, _ := strings.Cut(l, "=")
			d[k] = append(d[k], v)
		}
	}
	return d
}

// TestUnitDirectives checks the unit against what the issue asks of it,
// with no tool: each hardening directive, the credential, and limits sized
// from the server's defaults.
func TestUnitDirectives(t *testing.T) {
	t.Parallel()
	d := unitDirectives(t, filepath.Join(repoRoot(t), "packaging", "btest.service"))
	for k, want := range map[string]string{
		"NoNewPrivileges":         "yes",
		"ProtectSystem":           "strict",
		"ProtectHome":             "yes",
		"PrivateTmp":              "yes",
		"PrivateDevices":          "yes",
		"DynamicUser":             "yes",
		"RestrictAddressFamilies": "AF_INET AF_INET6",
		"SystemCallFilter":        "@system-service",
		"CapabilityBoundingSet":   "",
		"LoadCredential":          "password:/etc/btest/password",
		"EnvironmentFile":         "-/etc/default/btest",
		"KillSignal":              "SIGTERM",
		// A bad BTEST_ARGS exits with 2 (bad usage, as `btest --help`
		// says): restarting cannot fix it, and restarts every RestartSec
		// until the start limit would push the usage error out of sight.
		"Restart":                  "on-failure",
		"RestartPreventExitStatus": "2",
	} {
		if v, ok := d[k]; !ok || v[0] != want {
			t.Errorf("%s=%q, want %q", k, v, want)
		}
	}
	if got := strings.Join(d["ExecStart"], ""); strings.Contains(got, "password") || !strings.HasPrefix(got, "/usr/bin/btest --server ") {
		t.Errorf("ExecStart=%s: want /usr/bin/btest --server and no password on the command line", got)
	}
	// One descriptor per TCP connection of every test, one per UDP data
	// port, one per handshake in progress, plus the listeners and the
	// runtime's own.
	need := core.DefaultMaxSessions*core.DefaultMaxConnections +
		(core.DefaultUDPPortLast - core.DefaultUDPPortFirst + 1) + core.DefaultMaxHandshakes + 64
	if n, err := strconv.Atoi(strings.Join(d["LimitNOFILE"], "")); err != nil || n < need {
		t.Errorf("LimitNOFILE=%v, want at least %d", d["LimitNOFILE"], need)
	}
	if got := strings.Join(d["MemoryMax"], ""); got != "1G" {
		t.Errorf("MemoryMax=%q, want 1G (the README's worst case for the defaults)", got)
	}
	// No reload: the server does not handle SIGHUP (it ends), so
	// `systemctl reload` must not be offered; /etc/default/btest says to
	// restart.
	if v, ok := d["ExecReload"]; ok {
		t.Errorf("ExecReload=%q: the server has no reload", v)
	}
	def, err := os.ReadFile(filepath.Join(repoRoot(t), "packaging", "btest.default"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(def), "systemctl restart btest") {
		t.Error("btest.default does not say that changes need `systemctl restart btest`")
	}
	// The stop timeout must leave the server its 5 s grace period.
	if got := strings.Join(d["TimeoutStopSec"], ""); got != "15s" {
		t.Errorf("TimeoutStopSec=%q, want 15s", got)
	}
}
