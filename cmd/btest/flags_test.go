package main

import (
	"bytes"
	"context"
	"flag"
	"net/netip"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/btest-go/btest/core/ecsrp5"
)

var updateREADME = flag.Bool("update", false, "rewrite the README's btest --help block from the binary")

// TestFlagSpellings parses every documented spelling, GNU style and the
// single-dash long forms that earlier versions took, and checks the option
// each one sets.
func TestFlagSpellings(t *testing.T) {
	t.Parallel()
	type check func(*options) bool
	secretFile := writeFile(t, t.TempDir(), "secret", "from-file\n")
	cases := []struct {
		args []string
		ok   check
	}{
		{[]string{"-s"}, func(o *options) bool { return o.server }},
		{[]string{"--server"}, func(o *options) bool { return o.server }},
		{[]string{"-server"}, func(o *options) bool { return o.server }},
		{[]string{"-c", "h"}, func(o *options) bool { return o.client == "h" }},
		{[]string{"--client=h"}, func(o *options) bool { return o.client == "h" }},
		{[]string{"-client", "h"}, func(o *options) bool { return o.client == "h" }},
		{[]string{"-ch"}, func(o *options) bool { return o.client == "h" }},
		{[]string{"-c", "h", "-t"}, func(o *options) bool { return o.transmit && !o.receive }},
		{[]string{"-c", "h", "--transmit"}, func(o *options) bool { return o.transmit }},
		{[]string{"-c", "h", "-transmit"}, func(o *options) bool { return o.transmit }},
		{[]string{"-c", "h", "-r"}, func(o *options) bool { return o.receive && !o.transmit }},
		{[]string{"-c", "h", "--receive"}, func(o *options) bool { return o.receive }},
		{[]string{"-c", "h", "-receive"}, func(o *options) bool { return o.receive }},
		{[]string{"-c", "h", "-tr"}, func(o *options) bool { return o.transmit && o.receive }},
		{[]string{"-c", "h", "-rt"}, func(o *options) bool { return o.transmit && o.receive }},
		{[]string{"-c", "h", "-t", "-r"}, func(o *options) bool { return o.transmit && o.receive }},
		{[]string{"-c", "h", "-tru"}, func(o *options) bool { return o.transmit && o.receive && o.udp }},
		{[]string{"-c", "h", "-trn", "4"}, func(o *options) bool { return o.transmit && o.receive && o.connections == 4 }},
		{[]string{"-c", "h", "-u"}, func(o *options) bool { return o.udp }},
		{[]string{"-c", "h", "--udp"}, func(o *options) bool { return o.udp }},
		{[]string{"-c", "h", "-udp"}, func(o *options) bool { return o.udp }},
		{[]string{"-c", "h", "--proto", "udp"}, func(o *options) bool { return o.udp }},
		{[]string{"-c", "h", "--proto=UDP"}, func(o *options) bool { return o.udp }},
		{[]string{"-c", "h", "-proto", "udp"}, func(o *options) bool { return o.udp }},
		{[]string{"-c", "h", "-proto=udp"}, func(o *options) bool { return o.udp }},
		{[]string{"-c", "h", "-n", "20"}, func(o *options) bool { return o.connections == 20 }},
		{[]string{"-c", "h", "-n20"}, func(o *options) bool { return o.connections == 20 }},
		{[]string{"-c", "h", "--connections", "20"}, func(o *options) bool { return o.connections == 20 }},
		{[]string{"-c", "h", "-connections=20"}, func(o *options) bool { return o.connections == 20 }},
		{[]string{"-c", "h", "-b", "100M"}, func(o *options) bool { return o.bandwidth == "100M" }},
		{[]string{"-c", "h", "--bandwidth", "100M"}, func(o *options) bool { return o.bandwidth == "100M" }},
		{[]string{"-c", "h", "-bandwidth", "100M"}, func(o *options) bool { return o.bandwidth == "100M" }},
		{[]string{"-c", "h", "--local-tx-speed", "1G"}, func(o *options) bool { return o.localTx == "1G" }},
		{[]string{"-c", "h", "-local-tx-speed", "1G"}, func(o *options) bool { return o.localTx == "1G" }},
		{[]string{"-c", "h", "--remote-tx-speed", "1G"}, func(o *options) bool { return o.remoteTx == "1G" }},
		{[]string{"-c", "h", "-remote-tx-speed=1G"}, func(o *options) bool { return o.remoteTx == "1G" }},
		{[]string{"-c", "h", "-d", "30"}, func(o *options) bool { return time.Duration(o.duration) == 30*time.Second }},
		{[]string{"-c", "h", "-d", "1.5"}, func(o *options) bool { return time.Duration(o.duration) == 1500*time.Millisecond }},
		{[]string{"-c", "h", "--duration", "1m"}, func(o *options) bool { return time.Duration(o.duration) == time.Minute }},
		{[]string{"-c", "h", "-duration", "10s"}, func(o *options) bool { return time.Duration(o.duration) == 10*time.Second }},
		{[]string{"-c", "h", "--random"}, func(o *options) bool { return o.random }},
		{[]string{"-c", "h", "-random"}, func(o *options) bool { return o.random }},
		{[]string{"-c", "h", "--udp-size", "9000"}, func(o *options) bool { return o.udpSize == 9000 }},
		{[]string{"-c", "h", "-udp-size", "9000"}, func(o *options) bool { return o.udpSize == 9000 }},
		{[]string{"-c", "h", "--local-udp-size", "500"}, func(o *options) bool { return o.localUDPSize == 500 }},
		{[]string{"-c", "h", "-local-udp-size=500"}, func(o *options) bool { return o.localUDPSize == 500 }},
		// RouterOS's /tool bandwidth-test names.
		{[]string{"-c", "h", "--remote-udp-tx-size", "9000"}, func(o *options) bool { return o.udpSize == 9000 }},
		{[]string{"-c", "h", "-remote-udp-tx-size=9000"}, func(o *options) bool { return o.udpSize == 9000 }},
		{[]string{"-c", "h", "--local-udp-tx-size", "500"}, func(o *options) bool { return o.localUDPSize == 500 }},
		{[]string{"-c", "h", "-local-udp-tx-size", "500"}, func(o *options) bool { return o.localUDPSize == 500 }},
		{[]string{"-c", "h", "--random-data"}, func(o *options) bool { return o.random }},
		{[]string{"-c", "h", "-random-data"}, func(o *options) bool { return o.random }},
		{[]string{"-c", "h", "--connection-count", "20"}, func(o *options) bool { return o.connections == 20 }},
		{[]string{"-c", "h", "-connection-count=20"}, func(o *options) bool { return o.connections == 20 }},
		{[]string{"-c", "h", "-P", "2100"}, func(o *options) bool { return o.port == 2100 }},
		{[]string{"-c", "h", "--port", "2100"}, func(o *options) bool { return o.port == 2100 }},
		{[]string{"-c", "h", "-port", "2100"}, func(o *options) bool { return o.port == 2100 }},
		{[]string{"-c", "h", "-a", "u", "-p", "pw"}, func(o *options) bool { return o.user == "u" && o.password == "pw" }},
		{[]string{"-c", "h", "--user", "u", "--password", "pw"}, func(o *options) bool { return o.user == "u" && o.password == "pw" }},
		{[]string{"-c", "h", "-user", "u", "-password", "pw"}, func(o *options) bool { return o.user == "u" && o.password == "pw" }},
		// A value that looks like a flag is a value, never rewritten.
		{[]string{"-c", "h", "-p", "-server"}, func(o *options) bool { return o.password == "-server" && !o.server }},
		{[]string{"-c", "h", "--password", "-tr"}, func(o *options) bool { return o.password == "-tr" && !o.transmit }},
		{[]string{"-c", "h", "-v"}, func(o *options) bool { return o.verbose }},
		{[]string{"-c", "h", "--verbose"}, func(o *options) bool { return o.verbose }},
		{[]string{"-c", "h", "-verbose"}, func(o *options) bool { return o.verbose }},
		{[]string{"-c", "h", "--json"}, func(o *options) bool { return o.jsonOut }},
		{[]string{"-c", "h", "-json"}, func(o *options) bool { return o.jsonOut }},
		{[]string{"-c", "h", "--interval", "2s"}, func(o *options) bool { return o.interval == 2*time.Second }},
		{[]string{"-c", "h", "-interval=2s"}, func(o *options) bool { return o.interval == 2*time.Second }},
		{[]string{"-c", "h", "--handshake-timeout", "3s"}, func(o *options) bool { return o.handshakeTimeout == 3*time.Second }},
		{[]string{"-c", "h", "-handshake-timeout", "3s"}, func(o *options) bool { return o.handshakeTimeout == 3*time.Second }},
		{[]string{"-c", "h", "--socket-buffer", "65536"}, func(o *options) bool { return o.socketBuffer == 65536 }},
		{[]string{"-c", "h", "-socket-buffer=65536"}, func(o *options) bool { return o.socketBuffer == 65536 }},
		{[]string{"-s", "--listen", "127.0.0.1:1", "--listen", "[::1]:1"}, func(o *options) bool {
			return reflect.DeepEqual(o.listen, []string{"127.0.0.1:1", "[::1]:1"})
		}},
		{[]string{"-s", "-listen", "127.0.0.1:1", "-listen=[::1]:1"}, func(o *options) bool {
			return reflect.DeepEqual(o.listen, []string{"127.0.0.1:1", "[::1]:1"})
		}},
		{[]string{"-s", "--auth", "md5"}, func(o *options) bool { return o.auth == "md5" }},
		{[]string{"-s", "-auth=none"}, func(o *options) bool { return o.auth == "none" }},
		{[]string{"-s", "--ecsrp5"}, func(o *options) bool { return o.ecsrp5 }},
		{[]string{"-s", "-ecsrp5"}, func(o *options) bool { return o.ecsrp5 }},
		{[]string{"-s", "--verifier", "v"}, func(o *options) bool { return o.verifier == "v" }},
		{[]string{"-s", "-verifier", "v"}, func(o *options) bool { return o.verifier == "v" }},
		{[]string{"-s", "--max-sessions", "5", "--max-sessions-per-ip", "2", "--max-connections", "7"}, func(o *options) bool {
			return o.maxSessions == 5 && o.maxSessionsPerIP == 2 && o.maxConnections == 7
		}},
		{[]string{"-s", "-max-sessions", "5", "-max-sessions-per-ip=2", "-max-connections", "7"}, func(o *options) bool {
			return o.maxSessions == 5 && o.maxSessionsPerIP == 2 && o.maxConnections == 7
		}},
		{[]string{"-s", "--max-duration", "10m", "--max-tx-rate", "1G"}, func(o *options) bool {
			return o.maxDuration == 10*time.Minute && o.maxTxRateBits == 1e9
		}},
		{[]string{"-s", "-max-duration=10m", "-max-tx-rate", "1G"}, func(o *options) bool {
			return o.maxDuration == 10*time.Minute && o.maxTxRateBits == 1e9
		}},
		{[]string{"-s", "--udp-ports", "3001-3010", "--udp-idle-timeout", "5s"}, func(o *options) bool {
			return o.udpFirst == 3001 && o.udpLast == 3010 && o.udpIdleTimeout == 5*time.Second
		}},
		{[]string{"-s", "-udp-ports=3001-3010", "-udp-idle-timeout", "5s"}, func(o *options) bool {
			return o.udpFirst == 3001 && o.udpLast == 3010 && o.udpIdleTimeout == 5*time.Second
		}},
		{[]string{"-s", "--max-handshakes", "64", "--max-handshakes-per-source", "4", "--max-handshake-rate", "-1",
			"--max-handshake-rate-per-source", "3", "--source-prefix-v4", "24", "--source-prefix-v6", "48",
			"--command-timeout", "1s", "--progress-timeout", "20s", "--max-status-rate", "16", "--read-buffer-memory", "1048576"}, func(o *options) bool {
			return o.limits == limitFlags{64, 4, -1, 3, 24, 48, 16, time.Second, 20 * time.Second, 1 << 20}
		}},
		{[]string{"-s", "-max-handshakes=64", "-max-handshakes-per-source", "4", "-max-handshake-rate", "-1",
			"-max-handshake-rate-per-source", "3", "-source-prefix-v4", "24", "-source-prefix-v6", "48",
			"-command-timeout", "1s", "-progress-timeout", "20s", "-max-status-rate", "16", "-read-buffer-memory", "1048576"}, func(o *options) bool {
			return o.limits == limitFlags{64, 4, -1, 3, 24, 48, 16, time.Second, 20 * time.Second, 1 << 20}
		}},
		{[]string{"-s", "--allow", "10.0.0.0/8", "--allow", "::ffff:192.0.2.1", "--deny", "10.1.0.0/16"}, func(o *options) bool {
			return reflect.DeepEqual(o.allowP, []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.1/32")}) &&
				reflect.DeepEqual(o.denyP, []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")})
		}},
		{[]string{"-s", "-allow", "10.0.0.0/8", "-deny=10.1.0.0/16"}, func(o *options) bool {
			return len(o.allowP) == 1 && len(o.denyP) == 1
		}},
		{[]string{"-s", "--debug-addr", "127.0.0.1:6060"}, func(o *options) bool { return o.debugAddr == "127.0.0.1:6060" }},
		{[]string{"-s", "-debug-addr", "127.0.0.1:6060"}, func(o *options) bool { return o.debugAddr == "127.0.0.1:6060" }},
		{[]string{"-s", "--dashboard", "127.0.0.1:8081"}, func(o *options) bool { return o.dashboard == "127.0.0.1:8081" }},
		{[]string{"-s", "-dashboard", "8081"}, func(o *options) bool { return o.dashboard == "127.0.0.1:8081" }},
		{[]string{"-s", "--log-format", "json"}, func(o *options) bool { return o.logFormat == "json" }},
		{[]string{"-s", "-log-format=json"}, func(o *options) bool { return o.logFormat == "json" }},
		{[]string{"-s", "-a", "u", "--password-file", secretFile}, func(o *options) bool { return o.password == "from-file" }},
		{[]string{"-s", "-a", "u", "-password-file", secretFile}, func(o *options) bool { return o.password == "from-file" }},
		{[]string{"-s", "--verifier-file", secretFile}, func(o *options) bool { return o.verifier == "from-file" }},
		{[]string{"-s", "-verifier-file=" + secretFile}, func(o *options) bool { return o.verifier == "from-file" }},
		{[]string{"--version"}, func(o *options) bool { return o.version }},
		{[]string{"-version"}, func(o *options) bool { return o.version }},
	}
	for _, c := range cases {
		o, err := parseFlags(c.args, new(bytes.Buffer))
		if err != nil {
			t.Errorf("%q: %v", c.args, err)
			continue
		}
		if !c.ok(o) {
			t.Errorf("%q: options %+v", c.args, *o)
		}
	}
}

// TestEveryFlagHasASpellingTest keeps TestFlagSpellings complete: a new
// flag must be added there, in its GNU and its single-dash form.
func TestEveryFlagHasASpellingTest(t *testing.T) {
	t.Parallel()
	src, err := os.ReadFile("flags_test.go")
	if err != nil {
		t.Fatal(err)
	}
	newCLI(&options{}).all.VisitAll(func(f *pflag.Flag) {
		if f.Name == "help" {
			return
		}
		if !bytes.Contains(src, []byte(`"--`+f.Name)) {
			t.Errorf("flag --%s has no spelling test", f.Name)
		}
		if !bytes.Contains(src, []byte(`"-`+f.Name)) {
			t.Errorf("flag -%s (single dash) has no spelling test", f.Name)
		}
	})
}

// TestRouterOSNamesInHelp: each RouterOS name is shown beside the flag it
// spells.
func TestRouterOSNamesInHelp(t *testing.T) {
	t.Parallel()
	var help bytes.Buffer
	newCLI(&options{}).usage(&help)
	for alias, name := range routerOSNames {
		var line string
		for l := range strings.Lines(help.String()) {
			if strings.Contains(l, "--"+name+" ") {
				line = l
			}
		}
		if !strings.Contains(line, "RouterOS: "+alias) {
			t.Errorf("help line of --%s does not name %s: %q", name, alias, line)
		}
	}
}

// TestUsageErrors: bad usage exits 2 and names what was wrong.
func TestUsageErrors(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-c", "x", "--bogus"}, "--bogus"},
		{[]string{"-c", "x", "-Z"}, "'Z'"},
		{[]string{"-c", "x", "-trZ"}, "'Z'"},
		{[]string{"-c", "x", "-n", "many"}, "connections"},
		{[]string{"-c", "x", "-n", "300"}, "--connections"},
		{[]string{"-c", "x", "--udp-size"}, "udp-size"},
		{[]string{"-c", "x", "-r", "-b", "5G"}, "4.29"},
		{[]string{"-c", "x", "--remote-tx-speed", "4.3G"}, "--remote-tx-speed"},
		{[]string{"-s", "--udp-ports", "9-1"}, "--udp-ports"},
		{[]string{"-s", "--allow", "10.0.0.0/33"}, "--allow"},
		{[]string{"-c", "x", "--log-format", "jsn"}, "--log-format"},
		{[]string{"-c", "x", "--udp-size", "20"}, "--udp-size"},
		{[]string{"-c", "x", "-u", "--udp-size", "64001"}, "--udp-size"},
		{[]string{"-c", "x", "-u", "--local-udp-size", "27"}, "--local-udp-size"},
		{[]string{"-c", "x", "--handshake-timeout", "-1s"}, "--handshake-timeout"},
		{[]string{"-c", "x", "-u", "--proto", "tcp"}, "--proto"},
		{[]string{"-c", "x", "--interval", "0"}, "--interval"},
		{[]string{"-c", "x", "--interval", "-1s"}, "--interval"},
		{[]string{"-c", "x", "--interval", "10ms"}, "--interval"},
		{[]string{"-c", "x", "--socket-buffer", "-5"}, "--socket-buffer"},
		{[]string{"-c", "x", "--auth", "md5"}, "--auth"},
		{[]string{"-c", "x", "--max-duration", "1m"}, "--max-duration"},
		{[]string{"-c", "x", "--listen", "127.0.0.1:1"}, "--listen"},
		{[]string{"-c", "x", "--verifier-file", "/nonexistent"}, "--verifier-file"},
	} {
		var out, errOut bytes.Buffer
		if code := run(context.Background(), c.args, &out, &errOut); code != 2 {
			t.Errorf("%q: exit %d, want 2", c.args, code)
		}
		if !strings.Contains(errOut.String(), c.want) {
			t.Errorf("%q: stderr %q does not name %q", c.args, errOut.String(), c.want)
		}
		if !strings.Contains(errOut.String(), "see 'btest --help'") {
			t.Errorf("%q: stderr %q lacks the --help hint", c.args, errOut.String())
		}
	}
	// Local rates are paced by the client and are not limited by the wire;
	// neither is -b for a test in which the server does not send.
	for _, args := range [][]string{{"-c", "x", "-t", "-b", "5G"}, {"-c", "x", "--local-tx-speed", "20G"}} {
		o, err := parseFlags(args, new(bytes.Buffer))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := clientConfig(o); err != nil {
			t.Errorf("%q: %v", args, err)
		}
	}
}

// TestHelp: --help is grouped, ends with examples, exits 0, and is what
// the README shows.
func TestHelp(t *testing.T) {
	t.Parallel()
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"--help"}, &out, &errOut); code != 0 {
		t.Fatalf("--help exit %d: %s", code, errOut.String())
	}
	help := out.String()
	last := -1
	for _, g := range []string{"\nClient:\n", "\nServer:\n", "\nAuthentication:\n", "\nConnection:\n", "\nLimits (server):\n", "\nOutput:\n", "\nExamples:\n"} {
		i := strings.Index(help, g)
		if i < 0 || i < last {
			t.Errorf("help lacks %q or has it out of order", strings.TrimSpace(g))
		}
		last = i
	}
	if strings.Count(help, "--transmit") != 1 || !strings.Contains(help, "-t, --transmit") {
		t.Errorf("help does not list -t, --transmit exactly once:\n%s", help)
	}
	out.Reset()
	if code := run(context.Background(), []string{"-h"}, &out, &errOut); code != 0 || out.String() != help {
		t.Errorf("-h exit %d or different output", code)
	}

	const start, end = "<!-- btest-help:start -->\n", "<!-- btest-help:end -->"
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	i, j := bytes.Index(readme, []byte(start)), bytes.Index(readme, []byte(end))
	if i < 0 || j < i {
		t.Fatal("README.md lacks the btest-help markers")
	}
	want := "```text\n$ btest --help\n" + help + "```\n"
	if got := string(readme[i+len(start) : j]); got != want {
		if *updateREADME {
			readme = append(readme[:i+len(start):i+len(start)], append([]byte(want), readme[j:]...)...)
			if err := os.WriteFile("../../README.md", readme, 0o644); err != nil {
				t.Fatal(err)
			}
			return
		}
		t.Errorf("README.md's btest --help block is out of date; run: go test ./cmd/btest -run TestHelp -update")
	}
}

// runServerOnce runs `btest -s` with args on a test port and a context
// that has already ended: a server that starts stops again at once (exit
// 0), so a test of usage errors can never leave one running.
func runServerOnce(t *testing.T, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	args = append([]string{"-s", "--listen", cliPorts.TCPAddr(t), "--udp-ports", cliPorts.UDPRange(t, 4)}, args...)
	var out, errOut bytes.Buffer
	code := run(ctx, args, &out, &errOut)
	return code, errOut.String()
}

// TestServerPasswordRequired: a server that authenticates has a password,
// and a password given to a server is never silently left unused.
func TestServerPasswordRequired(t *testing.T) {
	t.Parallel()
	secretFile := writeFile(t, t.TempDir(), "secret", "s3cret\n")
	v, err := ecsrp5.NewVerifier("admin", "pw", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-a", "admin"}, "$BTEST_PASSWORD"},
		{[]string{"-a", "admin", "--auth", "md5"}, "--password-file"},
		{[]string{"-a", "admin", "--ecsrp5", "-p", ""}, "-p PASS"},
		{[]string{"-p", "secret"}, "-a USER"},
		{[]string{"--password", "secret", "--ecsrp5"}, "-a USER"},
		{[]string{"--password-file", secretFile}, "--password-file"},
		{[]string{"--verifier", v.String()}, "--verifier"},
		{[]string{"--auth", "md5"}, "-a USER"},
	} {
		code, stderr := runServerOnce(t, c.args...)
		if code != 2 || !strings.Contains(stderr, c.want) || !strings.Contains(stderr, "btest --help") {
			t.Errorf("%q: exit %d, stderr %q; want 2 and %q", c.args, code, stderr, c.want)
		}
	}
	// The open server and the protected ones still start.
	for _, args := range [][]string{{}, {"-a", "admin", "-p", "pw"}, {"-a", "admin", "--verifier", v.String()}} {
		if code, stderr := runServerOnce(t, args...); code != 0 {
			t.Errorf("%q: exit %d, stderr %q", args, code, stderr)
		}
	}
}

// TestServerUsageErrors: what is wrong with a server's flags exits 2,
// before the server starts, and names the flag.
func TestServerUsageErrors(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--log-format", "jsn"}, "--log-format"},
		{[]string{"--auth", "md5"}, "-a USER"},
		{[]string{"-a", "admin", "-p", "pw", "--auth", "sha"}, "--auth"},
		{[]string{"-a", "admin", "-p", "pw", "--ecsrp5", "--auth", "md5"}, "--ecsrp5"},
		{[]string{"-a", "admin", "--verifier", "nonsense"}, "--verifier"},
		{[]string{"-a", strings.Repeat("u", 222), "-p", "pw"}, "-a"},
		{[]string{"--source-prefix-v4", "33"}, "--source-prefix-v4"},
		{[]string{"--source-prefix-v6", "-1"}, "--source-prefix-v6"},
		{[]string{"--command-timeout", "-1s"}, "--command-timeout"},
		{[]string{"--progress-timeout", "-1s"}, "--progress-timeout"},
		{[]string{"--udp-idle-timeout", "-1s"}, "--udp-idle-timeout"},
		{[]string{"--handshake-timeout", "-1s"}, "--handshake-timeout"},
		{[]string{"--socket-buffer", "-1"}, "--socket-buffer"},
	} {
		code, stderr := runServerOnce(t, c.args...)
		if code != 2 || !strings.Contains(stderr, c.want) || !strings.Contains(stderr, "btest --help") {
			t.Errorf("%q: exit %d, stderr %q; want 2 and %q", c.args, code, stderr, c.want)
		}
	}
}

// TestServerIgnoresClientFlags: a server given a client's flag says so and
// starts, so that a service's arguments that worked before the mode checks
// do not stop it after an upgrade.
func TestServerIgnoresClientFlags(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-t"}, "-t/--transmit"},
		{[]string{"-u"}, "--udp"},
		{[]string{"-d", "10s"}, "--duration"},
		{[]string{"--json"}, "--json"},
		{[]string{"--interval", "2s"}, "--interval"},
	} {
		code, stderr := runServerOnce(t, c.args...)
		if code != 0 || !strings.Contains(stderr, "level=WARN") || !strings.Contains(stderr, c.want+" is a client flag") {
			t.Errorf("%q: exit %d, stderr %q; want 0 and a warning naming %q", c.args, code, stderr, c.want)
		}
	}
}

// TestServerEnvPasswordWithoutUser: $BTEST_PASSWORD may be set for the
// client; a server without -a still runs open, but says so.
func TestServerEnvPasswordWithoutUser(t *testing.T) {
	t.Setenv("BTEST_PASSWORD", "envsecret")
	code, stderr := runServerOnce(t)
	if code != 0 || !strings.Contains(stderr, "level=WARN") || !strings.Contains(stderr, "BTEST_PASSWORD") {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
}

// TestVerifierNeedsPassword: a verifier of the empty password is no
// protection; `btest verifier` refuses to make one.
func TestVerifierNeedsPassword(t *testing.T) {
	t.Setenv("BTEST_PASSWORD", "")
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"verifier", "-a", "admin"}, &out, &errOut); code != 2 || out.Len() != 0 || !strings.Contains(errOut.String(), "$BTEST_PASSWORD") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out.String(), errOut.String())
	}
}

// TestMaxDurationHelp: --max-duration 0 is the default hour and only a
// negative value lifts the limit (core.ServerConfig), which the help says.
func TestMaxDurationHelp(t *testing.T) {
	t.Parallel()
	u := newCLI(&options{}).all.Lookup("max-duration").Usage
	if !strings.Contains(u, "0 = the default") || !strings.Contains(u, "negative = no limit") {
		t.Errorf("--max-duration help %q does not say what 0 and negative values do", u)
	}
	for in, want := range map[string]time.Duration{"0": 0, "-1s": -time.Second} {
		o, err := parseFlags([]string{"-s", "--max-duration", in}, new(bytes.Buffer))
		if err != nil || o.maxDuration != want {
			t.Errorf("--max-duration %s: %v, %v", in, o, err)
		}
	}
}
