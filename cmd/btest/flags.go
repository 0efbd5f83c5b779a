package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/btest-go/btest/core"
)

// options holds every command-line setting.
type options struct {
	// mode
	server bool
	client string

	// shared
	port      int
	user      string
	password  string
	verbose   bool
	logFormat string

	// server
	listen            listFlag
	auth              string
	ecsrp5            bool
	verifier          string
	maxSessions       int
	maxSessionsPerIP  int
	maxConnections    int
	maxDuration       time.Duration
	maxTxRate         string
	handshakeTimeout  time.Duration
	udpPorts          string
	allow, deny       listFlag
	socketBuffer      int
	debugAddr         string
	udpIdleTimeout    time.Duration
	maxTxRateBits     uint64
	udpFirst, udpLast int
	allowP, denyP     []netip.Prefix

	// client
	transmit, receive bool
	proto             string
	udp               bool
	connections       int
	bandwidth         string
	localTx, remoteTx string
	duration          durationFlag
	random            bool
	udpSize           int
	localUDPSize      int
	interval          time.Duration
	jsonOut           bool
}

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

// durationFlag accepts Go durations ("10s", "1m") and bare seconds ("10"),
// as btest-rs's -d does.
type durationFlag time.Duration

func (d *durationFlag) String() string { return time.Duration(*d).String() }
func (d *durationFlag) Set(s string) error {
	if n, err := strconv.ParseFloat(s, 64); err == nil {
		if n < 0 {
			return errors.New("negative duration")
		}
		*d = durationFlag(n * float64(time.Second))
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil || v < 0 {
		return fmt.Errorf("invalid duration %q (want e.g. 10s, 1m, 30)", s)
	}
	*d = durationFlag(v)
	return nil
}

const usageText = `btest: MikroTik Bandwidth Test server and client.

Server:
  btest -s [--listen ADDR]... [-a USER -p PASS [--ecsrp5 | --auth md5]]
Client:
  btest -c HOST [-t] [-r] [--proto tcp|udp] [-n N] [-b RATE] [--duration 10s]
Verifier (EC-SRP5 credentials without a plaintext password):
  btest verifier -a USER -p PASS

The password may also come from $BTEST_PASSWORD.

Flags:
`

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("btest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usageText)
		fs.PrintDefaults()
	}
	alias := func(long, short string) { fs.Var(fs.Lookup(long).Value, short, "alias for --"+long) }

	fs.BoolVar(&o.server, "server", false, "run a server")
	alias("server", "s")
	fs.StringVar(&o.client, "client", "", "run a test against the server at `HOST` (host, host:port, IPv6)")
	alias("client", "c")
	fs.IntVar(&o.port, "port", core.DefaultPort, "server TCP port (client); default listen port (server)")
	alias("port", "P")
	fs.StringVar(&o.user, "user", "", "user name")
	alias("user", "a")
	fs.StringVar(&o.password, "password", "", "password (or set $BTEST_PASSWORD)")
	alias("password", "p")
	fs.BoolVar(&o.verbose, "verbose", false, "debug logging")
	alias("verbose", "v")
	fs.StringVar(&o.logFormat, "log-format", "text", "server log format: text or json")

	fs.Var(&o.listen, "listen", "server listen `ADDR` (repeatable; default :PORT, IPv4 and IPv6)")
	fs.StringVar(&o.auth, "auth", "", "server authentication: none, md5 or ecsrp5 (default: md5 with -a, none without)")
	fs.BoolVar(&o.ecsrp5, "ecsrp5", false, "server: use EC-SRP5 authentication (RouterOS >= 6.43)")
	fs.StringVar(&o.verifier, "verifier", "", "server: stored EC-SRP5 verifier for -a instead of a password (from 'btest verifier')")
	fs.IntVar(&o.maxSessions, "max-sessions", core.DefaultMaxSessions, "server: concurrent tests")
	fs.IntVar(&o.maxSessionsPerIP, "max-sessions-per-ip", core.DefaultMaxSessionsPerIP, "server: concurrent tests per client address")
	fs.IntVar(&o.maxConnections, "max-connections", core.DefaultMaxConnections, "server: TCP connections or UDP streams per test (max 255)")
	fs.DurationVar(&o.maxDuration, "max-duration", core.DefaultMaxDuration, "server: longest test")
	fs.StringVar(&o.maxTxRate, "max-tx-rate", "0", "server: cap on what the server sends per test (e.g. 1G; 0 = none)")
	fs.DurationVar(&o.handshakeTimeout, "handshake-timeout", core.DefaultHandshakeTimeout, "server and client: deadline for each handshake step")
	fs.StringVar(&o.udpPorts, "udp-ports", fmt.Sprintf("%d-%d", core.DefaultUDPPortFirst, core.DefaultUDPPortLast), "server: UDP data port range FIRST-LAST")
	fs.DurationVar(&o.udpIdleTimeout, "udp-idle-timeout", core.DefaultUDPIdleTimeout, "server: end a UDP test after no status for this long")
	fs.Var(&o.allow, "allow", "server: only admit clients in this `CIDR` (repeatable)")
	fs.Var(&o.deny, "deny", "server: refuse clients in this `CIDR` (repeatable)")
	fs.StringVar(&o.debugAddr, "debug-addr", "", "server: serve pprof and expvar on this `ADDR` (keep it on loopback)")
	fs.IntVar(&o.socketBuffer, "socket-buffer", 0, "SO_SNDBUF/SO_RCVBUF in bytes (0 = kernel autotuning)")

	fs.BoolVar(&o.transmit, "transmit", false, "client sends (upload); with -r: both")
	alias("transmit", "t")
	fs.BoolVar(&o.receive, "receive", false, "client receives (download, the default); with -t: both")
	alias("receive", "r")
	fs.StringVar(&o.proto, "proto", "tcp", "tcp or udp")
	fs.BoolVar(&o.udp, "udp", false, "alias for --proto udp")
	alias("udp", "u")
	fs.IntVar(&o.connections, "connections", 1, "TCP connections or UDP streams (1-255; RouterOS default 20)")
	alias("connections", "n")
	fs.StringVar(&o.bandwidth, "bandwidth", "", "cap each direction of the test, e.g. 100M (sets both local and remote tx speed)")
	alias("bandwidth", "b")
	fs.StringVar(&o.localTx, "local-tx-speed", "", "cap what the client sends (bit/s, e.g. 100M)")
	fs.StringVar(&o.remoteTx, "remote-tx-speed", "", "cap what the server sends (bit/s, e.g. 100M)")
	fs.Var(&o.duration, "duration", "test length (e.g. 10s, 1m, or seconds; default: until interrupted)")
	alias("duration", "d")
	fs.BoolVar(&o.random, "random", false, "random payload instead of zeros")
	fs.IntVar(&o.udpSize, "udp-size", core.DefaultUDPTxSize, "UDP packet size the server sends (IP bytes, 28-64000)")
	fs.IntVar(&o.localUDPSize, "local-udp-size", 0, "UDP packet size the client sends (default: --udp-size)")
	fs.DurationVar(&o.interval, "interval", time.Second, "report interval")
	fs.BoolVar(&o.jsonOut, "json", false, "print one JSON object per interval and a summary")

	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if o.server && o.client != "" {
		return nil, errors.New("-s and -c exclude each other")
	}
	if o.password == "" {
		o.password = os.Getenv("BTEST_PASSWORD")
	}
	return o, o.check()
}

// check validates and converts the settings of the chosen mode.
func (o *options) check() error {
	var err error
	if o.maxTxRateBits, err = core.ParseBitRate(o.maxTxRate); err != nil {
		return fmt.Errorf("--max-tx-rate: %w", err)
	}
	first, last, ok := strings.Cut(o.udpPorts, "-")
	if !ok {
		last = first
	}
	if o.udpFirst, err = strconv.Atoi(first); err == nil {
		o.udpLast, err = strconv.Atoi(last)
	}
	if err != nil {
		return fmt.Errorf("--udp-ports: want FIRST-LAST, got %q", o.udpPorts)
	}
	for _, p := range o.allow {
		pr, err := parsePrefix(p)
		if err != nil {
			return fmt.Errorf("--allow: %w", err)
		}
		o.allowP = append(o.allowP, pr)
	}
	for _, p := range o.deny {
		pr, err := parsePrefix(p)
		if err != nil {
			return fmt.Errorf("--deny: %w", err)
		}
		o.denyP = append(o.denyP, pr)
	}
	switch strings.ToLower(o.proto) {
	case "tcp":
	case "udp":
		o.udp = true
	default:
		return fmt.Errorf("--proto: want tcp or udp, got %q", o.proto)
	}
	if o.port < 1 || o.port > 65535 {
		return fmt.Errorf("--port %d out of range", o.port)
	}
	return nil
}

// parsePrefix accepts a CIDR or a bare address (a /32 or /128).
func parsePrefix(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("invalid address or CIDR %q", s)
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}
