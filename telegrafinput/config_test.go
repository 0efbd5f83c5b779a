package telegrafinput

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/btest-go/btest/core"
)

func TestParseDefaults(t *testing.T) {
	cfg, warn, err := Parse([]byte(`
[[targets]]
  address = "192.0.2.1"
`))
	if err != nil {
		t.Fatal(err)
	}
	if len(warn) != 0 {
		t.Errorf("warnings: %q", warn)
	}
	if cfg.Interval != 0 || cfg.Concurrency != DefaultConcurrency || cfg.RoundTimeout != 0 || cfg.StartJitter != 0 {
		t.Errorf("round defaults: %+v", cfg)
	}
	tg := cfg.Targets[0]
	if tg.Protocol != "tcp" || tg.Direction != "receive" || time.Duration(tg.Duration) != DefaultDuration ||
		tg.ConnectionCount != 1 || tg.Port != core.DefaultPort || tg.host != "192.0.2.1" || tg.port != "2000" {
		t.Errorf("target defaults: %+v", tg)
	}
	cc := tg.clientConfig()
	if cc.Address != "192.0.2.1:2000" || cc.UDP || cc.Direction != core.Receive || cc.Duration != 10*time.Second {
		t.Errorf("client config: %+v", cc)
	}
}

func TestParseAllOptions(t *testing.T) {
	t.Setenv("BTEST_TEST_PASSWORD", `pa$$"word`)
	t.Setenv("BTEST_TEST_EMPTY", "")
	cfg, warn, err := Parse([]byte(`
interval = "1m"
concurrency = 3
round_timeout = 50
start_jitter = "2.5s"
interval_points = true

[[targets]]
  address = "[2001:db8::1]:2100"
  user = "monitor"
  password = "${BTEST_TEST_PASSWORD}"
  protocol = "UDP"
  direction = "tx"
  duration = 5.5
  connection_count = 4
  local_tx_speed = "1.5G"
  remote_tx_speed = 250000000
  udp_tx_size = 1400
  local_udp_tx_size = 1200
  random_data = true
  handshake_timeout = "${BTEST_TEST_EMPTY:-3s}"
  [targets.tags]
    site = "${BTEST_TEST_UNSET:-ams1}"
    cost = "$$5"

[[targets]]
  address = "2001:db8::2"
  port = 2200
`))
	if err != nil {
		t.Fatal(err)
	}
	if len(warn) != 0 {
		t.Errorf("warnings: %q", warn)
	}
	if time.Duration(cfg.Interval) != time.Minute || cfg.Concurrency != 3 || time.Duration(cfg.RoundTimeout) != 50*time.Second ||
		time.Duration(cfg.StartJitter) != 2500*time.Millisecond || !cfg.IntervalPoints {
		t.Errorf("round options: %+v", cfg)
	}
	got := cfg.Targets[0].clientConfig()
	want := core.ClientConfig{
		Address: "[2001:db8::1]:2100", UDP: true, Direction: core.Transmit, Connections: 4,
		LocalTxSpeed: 1500000000, RemoteTxSpeed: 250000000, Duration: 5500 * time.Millisecond, Random: true,
		User: "monitor", Password: `pa$$"word`, UDPTxSize: 1400, LocalUDPTxSize: 1200, HandshakeTimeout: 3 * time.Second,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("client config\n got %+v\nwant %+v", got, want)
	}
	if tags := cfg.Targets[0].Tags; tags["site"] != "ams1" || tags["cost"] != "$5" {
		t.Errorf("tags: %v", tags)
	}
	if tg := cfg.Targets[1]; tg.host != "2001:db8::2" || tg.port != "2200" || tg.clientConfig().Address != "[2001:db8::2]:2200" {
		t.Errorf("bare IPv6 address: %+v", tg)
	}
}

// TestParseErrors is the validation table: every bad configuration fails
// at start, wraps ErrConfig, and names the key in quotes.
func TestParseErrors(t *testing.T) {
	os.Unsetenv("BTEST_TEST_UNSET")
	const tgt = "[[targets]]\naddress = \"192.0.2.1\"\n"
	tests := []struct {
		name, conf, want string
	}{
		{"syntax", "interval = ", "interval"},
		{"unknown key", "intervall = \"1s\"\n" + tgt, `"intervall"`},
		{"unknown target key", tgt + "speed = \"1M\"\n", `"targets.speed"`},
		{"no targets", "concurrency = 1\n", `"targets"`},
		{"wrong type", tgt + "connection_count = \"many\"\n", "connection_count"},
		{"negative interval", "interval = \"-1s\"\n" + tgt, `"interval"`},
		{"bad interval", "interval = \"soon\"\n" + tgt, "interval"},
		{"negative round_timeout", "round_timeout = -5\n" + tgt, `"round_timeout"`},
		{"negative start_jitter", "start_jitter = \"-1ms\"\n" + tgt, `"start_jitter"`},
		{"concurrency zero is default but negative is not", "concurrency = -1\n" + tgt, `"concurrency"`},
		{"concurrency too high", "concurrency = 65\n" + tgt, `"concurrency"`},
		{"no address", "[[targets]]\nprotocol = \"tcp\"\n", `"address"`},
		{"port twice", "[[targets]]\naddress = \"192.0.2.1:2000\"\nport = 2001\n", `"port"`},
		{"port range", tgt + "port = 70000\n", `"port"`},
		{"address port range", "[[targets]]\naddress = \"192.0.2.1:0\"\n", `"address"`},
		{"address garbage", "[[targets]]\naddress = \"http://192.0.2.1/\"\n", `"address"`},
		{"protocol", tgt + "protocol = \"sctp\"\n", `"protocol"`},
		{"direction", tgt + "direction = \"sideways\"\n", `"direction"`},
		{"duration negative", tgt + "duration = \"-10s\"\n", `"duration"`},
		{"duration garbage", tgt + "duration = \"ten seconds\"\n", "duration"},
		{"handshake_timeout negative", tgt + "handshake_timeout = \"-1s\"\n", `"handshake_timeout"`},
		{"connection_count", tgt + "connection_count = 256\n", `"connection_count"`},
		{"udp_tx_size", tgt + "protocol = \"udp\"\nudp_tx_size = 27\n", `"udp_tx_size"`},
		{"local_udp_tx_size", tgt + "protocol = \"udp\"\nlocal_udp_tx_size = 64001\n", `"local_udp_tx_size"`},
		{"speed garbage", tgt + "remote_tx_speed = \"fast\"\n", "remote_tx_speed"},
		{"speed negative", tgt + "local_tx_speed = -1\n", "local_tx_speed"},
		{"remote speed above 32 bits", tgt + "remote_tx_speed = \"4.3G\"\n", `"remote_tx_speed"`},
		{"password without user", tgt + "password = \"x\"\n", `"password"`},
		{"unset env", tgt + "user = \"u\"\npassword = \"${BTEST_TEST_UNSET}\"\n", `"password": environment variable "BTEST_TEST_UNSET"`},
		{"unset env in a duration", tgt + "duration = \"${BTEST_TEST_UNSET}\"\n", `BTEST_TEST_UNSET`},
		{"bad env name", tgt + "user = \"${1X}\"\n", `"user"`},
		{"unterminated env", "[[targets]]\naddress = \"${HOST\"\n", `"address"`},
		{"reserved tag", tgt + "[targets.tags]\nresult = \"x\"\n", `"tags.result"`},
		{"empty tag value", tgt + "[targets.tags]\nsite = \"\"\n", `"tags.site"`},
		{"second target", tgt + "[[targets]]\naddress = \"192.0.2.2\"\ndirection = \"up\"\n", `[[targets]] #2 (192.0.2.2): "direction"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := Parse([]byte(tc.conf))
			if err == nil {
				t.Fatalf("no error for\n%s", tc.conf)
			}
			if !errors.Is(err, ErrConfig) {
				t.Errorf("error does not wrap ErrConfig: %v", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not name %s", err, tc.want)
			}
		})
	}
}

// TestLocalTxSpeedAnyRate: only what the server is asked to send travels
// in the command's 32-bit field; this host paces itself at any rate, as
// the btest CLI's --local-tx-speed does.
func TestLocalTxSpeedAnyRate(t *testing.T) {
	tg := testTarget(t, "address = \"192.0.2.1\"\ndirection = \"both\"\nlocal_tx_speed = \"40G\"\nremote_tx_speed = \"4.29G\"")
	if got := tg.clientConfig(); got.LocalTxSpeed != 40e9 || got.RemoteTxSpeed != 4.29e9 {
		t.Errorf("speeds: local %d, remote %d; want 40G and 4.29G", got.LocalTxSpeed, got.RemoteTxSpeed)
	}
}

func TestParseWarnings(t *testing.T) {
	const tgt = "[[targets]]\naddress = \"192.0.2.1\"\n"
	tests := []struct{ name, conf, want string }{
		{"udp size on tcp", tgt + "udp_tx_size = 1000\n", `"udp_tx_size" has no effect`},
		{"test longer than the budget", "round_timeout = \"5s\"\n" + tgt, `"round_timeout"`},
		{"jitter not below interval", "interval = \"10s\"\nstart_jitter = \"10s\"\n" + tgt, `"start_jitter"`},
		{"sub-second test", tgt + "duration = \"500ms\"\n", `"duration"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, warn, err := Parse([]byte(tc.conf))
			if err != nil {
				t.Fatal(err)
			}
			if len(warn) != 1 || !strings.Contains(warn[0], tc.want) {
				t.Errorf("warnings %q, want one naming %s", warn, tc.want)
			}
		})
	}
}

func TestLoadNamesTheFile(t *testing.T) {
	_, _, err := Load("/nonexistent/btest.conf")
	if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "/nonexistent/btest.conf") {
		t.Errorf("missing file: %v", err)
	}
	p := t.TempDir() + "/btest.conf"
	os.WriteFile(p, []byte("concurrency = 2\n"), 0o600)
	if _, _, err := Load(p); err == nil || !strings.Contains(err.Error(), p) {
		t.Errorf("bad file: %v", err)
	}
}

// TestSampleConfig checks that sample.conf parses and documents every
// option with its default, so the README (which copies it) cannot drift
// from the code.
func TestSampleConfig(t *testing.T) {
	cfg, warn, err := Parse([]byte(SampleConfig()))
	if err != nil {
		t.Fatal(err)
	}
	if len(warn) != 0 {
		t.Errorf("warnings: %q", warn)
	}
	// Uncomment every "# key = value" line: the defaults it shows must
	// parse to the same configuration as leaving them out.
	var uncommented []string
	for line := range strings.Lines(SampleConfig()) {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "# ") && strings.Contains(trimmed, " = ") && !strings.Contains(trimmed, "[[") &&
			!strings.HasPrefix(trimmed, "# [") && !strings.Contains(trimmed, `"ams1"`) && !strings.Contains(trimmed, "command") &&
			!strings.Contains(trimmed, "signal") && !strings.Contains(trimmed, "data_format") {
			line = strings.Replace(line, "# ", "", 1)
		}
		uncommented = append(uncommented, line)
	}
	full, _, err := Parse([]byte(strings.Join(uncommented, "")))
	if err != nil {
		t.Fatalf("sample with defaults uncommented: %v", err)
	}
	// udp_tx_size is shown as 1500, which core also defaults to; the
	// parsed value differs only in being explicit. local_udp_tx_size is
	// not zeroed: its default follows udp_tx_size, so a fixed size shown
	// as its default would be wrong whenever udp_tx_size is set.
	full.Targets[0].UDPTxSize = 0
	full.Targets[0].HandshakeTimeout = 0 // shown as core's default, 10s
	// udp_tx_size on a tcp target warns; that is the point of the warning.
	if !reflect.DeepEqual(cfg, full) {
		t.Errorf("defaults shown in sample.conf differ from the real ones:\n shown %+v\n  real %+v", full, cfg)
	}

	for _, typ := range []reflect.Type{reflect.TypeFor[Config](), reflect.TypeFor[Target]()} {
		for f := range typ.Fields() {
			key := f.Tag.Get("toml")
			if key == "" || key == "targets" || key == "tags" {
				continue
			}
			if !strings.Contains(SampleConfig(), key+" = ") {
				t.Errorf("sample.conf does not show option %q", key)
			}
		}
	}
	for line := range strings.Lines(SampleConfig()) {
		if s := strings.TrimSpace(line); strings.HasPrefix(s, "##") && len(s) > 3 && !strings.HasPrefix(s, "## ") {
			t.Errorf("documentation line without a space: %q", s)
		}
	}
}

func TestExpandEnv(t *testing.T) {
	t.Setenv("BTEST_A", "alpha")
	t.Setenv("BTEST_EMPTY", "")
	os.Unsetenv("BTEST_UNSET")
	for in, want := range map[string]string{
		"plain":                    "plain",
		"${BTEST_A}":               "alpha",
		"x${BTEST_A}y${BTEST_A}":   "xalphayalpha",
		"${BTEST_EMPTY}":           "",
		"${BTEST_EMPTY:-d}":        "d",
		"${BTEST_UNSET:-d:-e}":     "d:-e",
		"${BTEST_A:-d}":            "alpha",
		"$$":                       "$",
		"$$${BTEST_A}":             "$alpha",
		"a$b":                      "a$b",
		"end$":                     "end$",
		"${BTEST_UNSET:-}":         "",
		"${BTEST_A}${BTEST_EMPTY}": "alpha",
	} {
		got, err := expandEnv(in)
		if err != nil || got != want {
			t.Errorf("expandEnv(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"${BTEST_UNSET}", "${", "${}", "${A B}", "${BTEST_A"} {
		if got, err := expandEnv(in); err == nil {
			t.Errorf("expandEnv(%q) = %q, want an error", in, got)
		}
	}
}

func readExample(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "examples", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestExamples checks the example configurations even where the
// end-to-end test, which runs them, skips.
func TestExamples(t *testing.T) {
	t.Setenv("BTEST_SERVER", "192.0.2.1")
	t.Setenv("BTEST_PASSWORD", "secret")
	os.Unsetenv("BTEST_USER")
	cfg, warn, err := Parse([]byte(readExample(t, "btest-telegraf.conf")))
	if err != nil {
		t.Fatal(err)
	}
	if len(warn) != 0 {
		t.Errorf("warnings: %q", warn)
	}
	for _, tg := range cfg.Targets {
		if tg.host != "192.0.2.1" || tg.User != "admin" || tg.Password != "secret" {
			t.Errorf("target %+v does not take the environment", tg)
		}
	}
	tc := readExample(t, "telegraf.conf")
	for _, s := range []string{`command = ["btest-telegraf", "-config", "/etc/telegraf/btest.conf"]`, `signal = "STDIN"`,
		`data_format = "influx"`, "[[outputs.influxdb]]"} {
		if !strings.Contains(tc, s) {
			t.Errorf("examples/telegraf.conf lacks %s", s)
		}
	}
	if !strings.Contains(SampleConfig(), `command = ["btest-telegraf", "-config", "/etc/telegraf/btest.conf"]`) {
		t.Error("sample.conf does not show the execd command")
	}
}

// TestDocsShowSampleConfig: the configuration reference in the docs is
// sample.conf, word for word, in the README.
func TestDocsShowSampleConfig(t *testing.T) {
	const marker = "```toml @sample.conf\n"
	found := false
	for _, p := range []string{"../README.md"} {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		doc := string(b)
		i := strings.Index(doc, marker)
		if i < 0 {
			continue
		}
		found = true
		rest := doc[i+len(marker):]
		end := strings.Index(rest, "```")
		if end < 0 || rest[:end] != SampleConfig() {
			t.Errorf("%s: the block after %q is not sample.conf; copy telegrafinput/sample.conf into it", p, strings.TrimSpace(marker))
		}
	}
	if !found {
		t.Errorf("README.md does not show sample.conf in a %q block", strings.TrimSpace(marker))
	}
}
