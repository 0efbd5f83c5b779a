package packaging

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

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
	// cgroup v2 charges socket buffers to the service, so MemoryMax must
	// hold them beside the process (README, "Worst-case memory"): with the
	// default limits, every test a UDP test, each with a receive and a
	// send buffer of twice net.core.rmem_max/wmem_max (the kernel doubles
	// what it grants; 4 MiB is the newer kernels' default), beside the
	// process's UDP worst case (170 MiB of tests, 2.5 MiB of handshakes,
	// 30 MiB fixed).
	const udpGranted = 4 << 20
	udpWorst := uint64(core.DefaultMaxSessions)*2*2*udpGranted + (170+3+30)<<20
	memMax := strings.Join(d["MemoryMax"], "")
	if n, err := parseSize(memMax); err != nil || n < udpWorst {
		t.Errorf("MemoryMax=%q (%v), want at least %d MiB (the README's worst case for the defaults, socket buffers included)", memMax, err, udpWorst>>20)
	}
	// The README names the unit's value where it explains it.
	s, _, _ := installSection(t)
	if !strings.Contains(s, "`MemoryMax="+memMax+"`") {
		t.Errorf("the README's Install section does not name MemoryMax=%s", memMax)
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

// parseSize reads a systemd byte size: a number with an optional K, M, G
// or T suffix (powers of 1024).
func parseSize(v string) (uint64, error) {
	shift := 0
	if i := strings.IndexAny(v, "KMGT"); i >= 0 && i == len(v)-1 {
		shift = 10 * (1 + strings.IndexByte("KMGT", v[i]))
		v = v[:i]
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, err
	}
	return n << shift, nil
}

// defaultsExample is one BTEST_ARGS line of btest.default: the active one,
// or a commented example with what it is for.
type defaultsExample struct {
	args, note string
}

// defaultsExamples returns btest.default's BTEST_ARGS lines.
func defaultsExamples(t *testing.T) []defaultsExample {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "packaging", "btest.default"))
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`^#?\s*BTEST_ARGS="([^"]*)"\s*(.*)$`)
	var ex []defaultsExample
	for _, l := range strings.Split(string(b), "\n") {
		if m := re.FindStringSubmatch(l); m != nil {
			ex = append(ex, defaultsExample{m[1], m[2]})
		}
	}
	if len(ex) < 2 {
		t.Fatalf("btest.default has %d BTEST_ARGS lines, want the setting and examples", len(ex))
	}
	return ex
}

// TestDefaultsExamples checks the examples in btest.default, which an
// operator copies: the server's own flag parser accepts each, one shows
// MD5 for RouterOS before 6.43, and none spells out EC-SRP5, which --user
// already means (spelling it out suggests the plain line is something
// else).
func TestDefaultsExamples(t *testing.T) {
	t.Parallel()
	bin := filepath.Join(t.TempDir(), "btest")
	run(t, repoRoot(t), 5*time.Minute, "go", "build", "-o", bin, "./cmd/btest")
	var md5 bool
	for _, ex := range defaultsExamples(t) {
		// --help last: every flag before it is parsed (names and typed
		// values), then the server prints its help instead of starting.
		args := append(append([]string{"--server"}, strings.Fields(ex.args)...), "--help")
		if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
			t.Errorf("BTEST_ARGS=%q: btest %s: %v\n%s", ex.args, strings.Join(args, " "), err, out)
		}
		if strings.Contains(ex.args, "--ecsrp5") || strings.Contains(ex.args, "--auth ecsrp5") {
			t.Errorf("BTEST_ARGS=%q: EC-SRP5 is already what --user means", ex.args)
		}
		if strings.Contains(ex.args, "--auth md5") {
			md5 = true
			if !strings.Contains(ex.note, "6.43") {
				t.Errorf("BTEST_ARGS=%q %s: say it is for RouterOS older than 6.43", ex.args, ex.note)
			}
		}
	}
	if !md5 {
		t.Error("btest.default has no --auth md5 example (RouterOS older than 6.43)")
	}
}
