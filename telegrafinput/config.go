package telegrafinput

import (
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/btest-go/btest/core"
)

// ErrConfig is wrapped by every error about the configuration file.
var ErrConfig = errors.New("invalid configuration")

// Defaults for options left out of the configuration file.
const (
	DefaultConcurrency     = 1
	DefaultDuration        = 10 * time.Second
	DefaultConnectionCount = 1
	DefaultProtocol        = "tcp"
	DefaultDirection       = "receive"
	// MaxConcurrency bounds concurrency: each running test holds up to 255
	// connections and a core's worth of CPU.
	MaxConcurrency = 64
)

// Config is the btest-telegraf configuration file (TOML). sample.conf
// documents every option; Load fills in the defaults and checks it.
type Config struct {
	// Interval, when positive, runs a round every Interval on the program's
	// own clock (inputs.execd signal = "none"). Zero, the default, runs one
	// round per line read from stdin (signal = "STDIN").
	Interval Duration `toml:"interval"`
	// Concurrency is how many targets are tested at once.
	Concurrency int `toml:"concurrency"`
	// RoundTimeout bounds a whole round; tests still running when it ends
	// are stopped and reported as budget_exceeded. Zero means no bound.
	RoundTimeout Duration `toml:"round_timeout"`
	// StartJitter delays each round by a random time below it, so many
	// Telegraf hosts do not all test one server at the same moment.
	StartJitter Duration `toml:"start_jitter"`
	// IntervalPoints adds one btest_interval point per second of each test.
	IntervalPoints bool `toml:"interval_points"`
	// Targets are the servers to test, in order.
	Targets []Target `toml:"targets"`
}

// Target is one test run every round.
type Target struct {
	// Address is the server's host name or IP address, optionally with
	// ":port" (then Port must be left out).
	Address string `toml:"address"`
	// Port is the server's TCP port; default 2000.
	Port int `toml:"port"`
	// User and Password authenticate when the server asks. Either may
	// be "${ENV}" to read it from the environment.
	User     string `toml:"user"`
	Password string `toml:"password"`
	// Protocol is "tcp" or "udp".
	Protocol string `toml:"protocol"`
	// Direction is "receive" (the server sends), "transmit" (we send) or
	// "both".
	Direction string `toml:"direction"`
	// Duration is how long the test sends data.
	Duration Duration `toml:"duration"`
	// ConnectionCount is the TCP connection or UDP stream count, 1-255.
	ConnectionCount int `toml:"connection_count"`
	// LocalTxSpeed and RemoteTxSpeed cap what we and the server send, in
	// bit/s ("100M" or 100000000); zero is unlimited.
	LocalTxSpeed  BitRate `toml:"local_tx_speed"`
	RemoteTxSpeed BitRate `toml:"remote_tx_speed"`
	// UDPTxSize is the IP packet size the server sends in UDP tests and
	// LocalUDPTxSize the one we send; 28-64000, or 0 for the default
	// (core's for UDPTxSize, UDPTxSize for LocalUDPTxSize).
	UDPTxSize      int `toml:"udp_tx_size"`
	LocalUDPTxSize int `toml:"local_udp_tx_size"`
	// RandomData sends random payload instead of zeros.
	RandomData bool `toml:"random_data"`
	// HandshakeTimeout bounds connecting and each handshake step.
	HandshakeTimeout Duration `toml:"handshake_timeout"`
	// Tags are added to this target's points.
	Tags map[string]string `toml:"tags"`

	host, port string // the source and port tags
}

// Duration is a TOML duration: a string such as "10s" or "1m30s", or a
// number of seconds. "${ENV}" in a string is replaced first.
type Duration time.Duration

// UnmarshalTOML implements toml.Unmarshaler.
func (d *Duration) UnmarshalTOML(v any) error {
	switch v := v.(type) {
	case string:
		s, err := expandEnv(v)
		if err != nil {
			return err
		}
		if strings.TrimSpace(s) == "" {
			*d = 0
			return nil
		}
		x, err := time.ParseDuration(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("duration %q: want a number with a unit such as \"10s\" or \"1m30s\"", s)
		}
		*d = Duration(x)
	case int64:
		if v > math.MaxInt64/int64(time.Second) || v < math.MinInt64/int64(time.Second) {
			return fmt.Errorf("duration %d seconds is out of range", v)
		}
		*d = Duration(time.Duration(v) * time.Second)
	case float64:
		if math.IsNaN(v) || math.Abs(v) > float64(math.MaxInt64)/float64(time.Second) {
			return fmt.Errorf("duration %v seconds is out of range", v)
		}
		*d = Duration(v * float64(time.Second))
	default:
		return fmt.Errorf("duration: want a string such as \"10s\" or a number of seconds, not %T", v)
	}
	return nil
}

// BitRate is a TOML rate in bit/s: a number, or a string with an SI suffix
// as core.ParseBitRate reads it ("100M", "1.5G"). "${ENV}" in a string is
// replaced first.
type BitRate uint64

// UnmarshalTOML implements toml.Unmarshaler.
func (r *BitRate) UnmarshalTOML(v any) error {
	switch v := v.(type) {
	case string:
		s, err := expandEnv(v)
		if err != nil {
			return err
		}
		x, err := core.ParseBitRate(s)
		if err != nil {
			return err
		}
		*r = BitRate(x)
	case int64:
		if v < 0 {
			return fmt.Errorf("rate %d is negative", v)
		}
		*r = BitRate(v)
	default:
		return fmt.Errorf("rate: want a number of bit/s or a string such as \"100M\", not %T", v)
	}
	return nil
}

// Load reads and checks the configuration file at path.
func Load(path string) (*Config, []string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	cfg, warnings, err := Parse(b)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, warnings, nil
}

// Parse decodes a configuration, fills in defaults, expands "${ENV}"
// references and checks every value. It returns the non-fatal problems
// as warnings. Errors wrap ErrConfig and name the offending key.
func Parse(b []byte) (*Config, []string, error) {
	var cfg Config
	md, err := toml.Decode(string(b), &cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if un := md.Undecoded(); len(un) > 0 {
		keys := make([]string, len(un))
		for i, k := range un {
			keys[i] = strconv.Quote(k.String())
		}
		return nil, nil, fmt.Errorf("%w: unknown key %s", ErrConfig, strings.Join(keys, ", "))
	}
	warnings, err := cfg.check()
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return &cfg, warnings, nil
}

// check fills in defaults and validates; see Parse.
func (c *Config) check() ([]string, error) {
	var warn []string
	for _, d := range []struct {
		key string
		v   Duration
	}{{"interval", c.Interval}, {"round_timeout", c.RoundTimeout}, {"start_jitter", c.StartJitter}} {
		if d.v < 0 {
			return nil, fmt.Errorf("%q must not be negative, got %q", d.key, time.Duration(d.v))
		}
	}
	switch {
	case c.Concurrency == 0:
		c.Concurrency = DefaultConcurrency
	case c.Concurrency < 0 || c.Concurrency > MaxConcurrency:
		return nil, fmt.Errorf("%q must be 1-%d, got %d", "concurrency", MaxConcurrency, c.Concurrency)
	}
	if len(c.Targets) == 0 {
		return nil, fmt.Errorf("no %q: add at least one [[targets]] table", "targets")
	}
	if c.Interval > 0 && c.StartJitter >= c.Interval {
		warn = append(warn, fmt.Sprintf("%q (%v) is not shorter than %q (%v): rounds will start late",
			"start_jitter", time.Duration(c.StartJitter), "interval", time.Duration(c.Interval)))
	}
	for i := range c.Targets {
		t := &c.Targets[i]
		w, err := t.check()
		where := fmt.Sprintf("[[targets]] #%d", i+1)
		if t.Address != "" {
			where += fmt.Sprintf(" (%s)", t.Address)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		for _, s := range w {
			warn = append(warn, where+": "+s)
		}
		if c.RoundTimeout > 0 && t.Duration >= c.RoundTimeout {
			warn = append(warn, fmt.Sprintf("%s: %q (%v) does not fit in %q (%v): the test will be cut short",
				where, "duration", time.Duration(t.Duration), "round_timeout", time.Duration(c.RoundTimeout)))
		}
	}
	return warn, nil
}

// reservedTags are the tags every point carries; Target.Tags must not
// redefine them.
var reservedTags = []string{"source", "port", "protocol", "direction", "result"}

// check fills in the target's defaults and validates it.
func (t *Target) check() ([]string, error) {
	var warn []string
	for _, s := range []struct {
		key string
		v   *string
	}{{"address", &t.Address}, {"user", &t.User}, {"password", &t.Password},
		{"protocol", &t.Protocol}, {"direction", &t.Direction}} {
		x, err := expandEnv(*s.v)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", s.key, err)
		}
		*s.v = x
	}
	if t.Address == "" {
		return nil, fmt.Errorf("%q is required", "address")
	}
	host, port, err := net.SplitHostPort(t.Address)
	switch {
	case err == nil:
		if t.Port != 0 {
			return nil, fmt.Errorf("%q %q has a port and %q is set too: use one", "address", t.Address, "port")
		}
		p, perr := strconv.Atoi(port)
		if perr != nil || p < 1 || p > 65535 {
			return nil, fmt.Errorf("%q %q: port must be 1-65535", "address", t.Address)
		}
	case strings.Count(t.Address, ":") > 1 || !strings.Contains(t.Address, ":"):
		// A bare host name or IPv4 address, or a bare IPv6 address.
		host = strings.Trim(t.Address, "[]")
		if t.Port == 0 {
			t.Port = core.DefaultPort
		}
		if t.Port < 1 || t.Port > 65535 {
			return nil, fmt.Errorf("%q must be 1-65535, got %d", "port", t.Port)
		}
		port = strconv.Itoa(t.Port)
	default:
		return nil, fmt.Errorf("%q %q: %w", "address", t.Address, err)
	}
	if host == "" || strings.ContainsAny(host, " \t\r\n/") {
		return nil, fmt.Errorf("%q %q: want a host name or IP address", "address", t.Address)
	}
	t.host, t.port = host, port

	t.Protocol = strings.ToLower(t.Protocol)
	switch t.Protocol {
	case "":
		t.Protocol = DefaultProtocol
	case "tcp", "udp":
	default:
		return nil, fmt.Errorf("%q: unknown protocol %q (want \"tcp\" or \"udp\")", "protocol", t.Protocol)
	}
	if t.Direction == "" {
		t.Direction = DefaultDirection
	}
	dir, err := core.ParseDirection(t.Direction)
	if err != nil {
		return nil, fmt.Errorf("%q: %w", "direction", err)
	}
	t.Direction = dir.String()

	switch {
	case t.Duration == 0:
		t.Duration = Duration(DefaultDuration)
	case t.Duration < 0:
		return nil, fmt.Errorf("%q must be positive, got %q", "duration", time.Duration(t.Duration))
	case t.Duration < Duration(time.Second):
		warn = append(warn, fmt.Sprintf("%q %v is shorter than one report interval (1s): rates will be rough",
			"duration", time.Duration(t.Duration)))
	}
	if t.HandshakeTimeout < 0 {
		return nil, fmt.Errorf("%q must not be negative, got %q", "handshake_timeout", time.Duration(t.HandshakeTimeout))
	}
	switch {
	case t.ConnectionCount == 0:
		t.ConnectionCount = DefaultConnectionCount
	case t.ConnectionCount < 1 || t.ConnectionCount > 255:
		return nil, fmt.Errorf("%q must be 1-255, got %d", "connection_count", t.ConnectionCount)
	}
	for _, s := range []struct {
		key string
		v   int
	}{{"udp_tx_size", t.UDPTxSize}, {"local_udp_tx_size", t.LocalUDPTxSize}} {
		if s.v != 0 && (s.v < 28 || s.v > 64000) {
			return nil, fmt.Errorf("%q must be 28-64000 bytes, got %d", s.key, s.v)
		}
		if s.v != 0 && t.Protocol != "udp" {
			warn = append(warn, fmt.Sprintf("%q has no effect with protocol %q", s.key, t.Protocol))
		}
	}
	// The command asks the server for its rate in a 32-bit bit/s field
	// (docs/protocol.md, §4.3); this host paces what it sends itself, at
	// any rate.
	if t.RemoteTxSpeed > core.MaxRemoteTxSpeed {
		return nil, fmt.Errorf("%q %d bit/s cannot be asked of the server: the protocol's speed field caps it at %d (%s; \"0\" is unlimited)",
			"remote_tx_speed", uint64(t.RemoteTxSpeed), uint64(core.MaxRemoteTxSpeed), core.FormatBitRate(core.MaxRemoteTxSpeed))
	}
	if t.Password != "" && t.User == "" {
		return nil, fmt.Errorf("%q is set but %q is empty", "password", "user")
	}
	for k, v := range t.Tags {
		x, err := expandEnv(v)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", "tags."+k, err)
		}
		t.Tags[k] = x
		switch {
		case k == "" || x == "":
			return nil, fmt.Errorf("%q: tag keys and values must not be empty", "tags."+k)
		case slices.Contains(reservedTags, k):
			return nil, fmt.Errorf("%q: tag %q is set by btest-telegraf itself", "tags."+k, k)
		case strings.ContainsAny(k+x, "\n\r"):
			return nil, fmt.Errorf("%q: tag keys and values must not hold line breaks", "tags."+k)
		}
	}
	return warn, nil
}

// clientConfig is the core configuration of the target's test.
func (t *Target) clientConfig() core.ClientConfig {
	return core.ClientConfig{
		Address:          net.JoinHostPort(t.host, t.port),
		UDP:              t.Protocol == "udp",
		Direction:        must(core.ParseDirection(t.Direction)),
		Connections:      t.ConnectionCount,
		LocalTxSpeed:     uint64(t.LocalTxSpeed),
		RemoteTxSpeed:    uint64(t.RemoteTxSpeed),
		Duration:         time.Duration(t.Duration),
		Random:           t.RandomData,
		User:             t.User,
		Password:         t.Password,
		UDPTxSize:        t.UDPTxSize,
		LocalUDPTxSize:   t.LocalUDPTxSize,
		HandshakeTimeout: time.Duration(t.HandshakeTimeout),
	}
}

// must returns v; check has already proven err nil.
func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// expandEnv replaces "${NAME}" with the environment variable NAME and
// "${NAME:-default}" with its value or, when it is unset or empty, the
// default. "$$" is a literal "$"; any other "$" is kept as is. An unset
// variable without a default is an error, so a missing password is
// caught at start instead of failing every test.
func expandEnv(s string) (string, error) {
	if !strings.Contains(s, "$") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '$' || i+1 == len(s) {
			b.WriteByte(c)
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
			continue
		case '{':
		default:
			b.WriteByte(c)
			continue
		}
		end := strings.IndexByte(s[i:], '}')
		if end < 0 {
			return "", fmt.Errorf("unterminated %q in %q", "${", s)
		}
		ref := s[i+2 : i+end]
		name, def, hasDef := strings.Cut(ref, ":-")
		if !validEnvName(name) {
			return "", fmt.Errorf("bad environment variable name %q in %q", name, s)
		}
		v, ok := os.LookupEnv(name)
		switch {
		case hasDef && v == "":
			v = def
		case !ok:
			return "", fmt.Errorf("environment variable %q is not set", name)
		}
		b.WriteString(v)
		i += end
	}
	return b.String(), nil
}

func validEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		if c != '_' && !(c >= 'A' && c <= 'Z') && !(c >= 'a' && c <= 'z') && !(i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}
