package main

import (
	"errors"
	"fmt"
	"io"
	"math"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/btest-go/btest/core"
)

// options holds every command-line setting.
type options struct {
	// mode
	server  bool
	client  string
	help    bool
	version bool

	// shared
	port      int
	user      string
	password  string
	verbose   bool
	logFormat string

	// server
	listen            []string
	auth              string
	ecsrp5            bool
	verifier          string
	passwordFile      string
	verifierFile      string
	maxSessions       int
	maxSessionsPerIP  int
	maxConnections    int
	maxDuration       time.Duration
	maxTxRate         string
	handshakeTimeout  time.Duration
	udpPorts          string
	allow, deny       []string
	socketBuffer      int
	debugAddr         string
	dashboard         string
	udpIdleTimeout    time.Duration
	limits            limitFlags
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

	// changed holds the long names of the flags given on the command
	// line, to tell a value given from a default.
	changed map[string]bool
	// passwordFromEnv is set when the password came from $BTEST_PASSWORD.
	passwordFromEnv bool
	// ignored says which client flags a server was given (checkModes).
	ignored []string
}

// limitFlags are the server's hardening limits (see README, Running a
// public server).
type limitFlags struct {
	maxHandshakes, maxHandshakesPerSource         int
	maxHandshakeRate, maxHandshakeRatePerSource   int
	sourcePrefixV4, sourcePrefixV6, maxStatusRate int
	commandTimeout, progressTimeout               time.Duration
	readBufferMemory                              int64
}

// durationFlag accepts Go durations ("10s", "1m") and bare seconds ("10"),
// as btest-rs's -d does.
type durationFlag time.Duration

func (d *durationFlag) String() string {
	if *d == 0 {
		return "0"
	}
	return time.Duration(*d).String()
}

// Type names the value in --help.
func (d *durationFlag) Type() string { return "duration" }

func (d *durationFlag) Set(s string) error {
	if n, err := strconv.ParseFloat(s, 64); err == nil {
		if n < 0 || math.IsNaN(n) || n > math.MaxInt64/float64(time.Second) {
			return fmt.Errorf("invalid duration %q", s)
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

// flagGroup is one titled block of --help.
type flagGroup struct {
	title string
	set   *pflag.FlagSet
}

// cli is the parsed-to-be command line: every flag in its group, and the
// set that holds them all.
type cli struct {
	all    *pflag.FlagSet
	groups []flagGroup
	// only maps a flag's name to the mode it belongs to, "server" or
	// "client"; flags of both modes are not in it.
	only map[string]string
}

func (c *cli) group(title string) *pflag.FlagSet {
	fs := pflag.NewFlagSet(title, pflag.ContinueOnError)
	fs.SortFlags = false
	c.groups = append(c.groups, flagGroup{title, fs})
	return fs
}

// newCLI declares every flag. Short forms follow RouterOS's
// /tool bandwidth-test and btest-rs, whose users type -t, -r, -tr, -n 20.
func newCLI(o *options) *cli {
	c := &cli{}

	fs := c.group("Client")
	fs.StringVarP(&o.client, "client", "c", "", "run a test against the server at `HOST` (host, host:port, [IPv6]:port)")
	fs.BoolVarP(&o.transmit, "transmit", "t", false, "the client sends (upload); with -r: both directions")
	fs.BoolVarP(&o.receive, "receive", "r", false, "the client receives (download, the default); with -t: both")
	fs.StringVar(&o.proto, "proto", "tcp", "`tcp` or udp")
	fs.BoolVarP(&o.udp, "udp", "u", false, "same as --proto udp")
	fs.IntVarP(&o.connections, "connections", "n", 1, "TCP connections or UDP streams, 1-255 (RouterOS: connection-count, where 20 is the default)")
	fs.StringVarP(&o.bandwidth, "bandwidth", "b", "", "cap each direction, e.g. 100M (sets both tx speeds below)")
	fs.StringVar(&o.localTx, "local-tx-speed", "", "cap what the client sends, bit/s (e.g. 100M; any rate)")
	fs.StringVar(&o.remoteTx, "remote-tx-speed", "", "cap what the server sends, bit/s (e.g. 100M; at most 4.29G, the wire's 32-bit field)")
	fs.VarP(&o.duration, "duration", "d", "test length, e.g. 10s, 1m or seconds (default: until interrupted)")
	fs.BoolVar(&o.random, "random", false, "random payload instead of zeros (RouterOS: random-data)")
	fs.IntVar(&o.udpSize, "udp-size", core.DefaultUDPTxSize, fmt.Sprintf("UDP packet size the server sends, IP bytes, %d-%d (RouterOS: remote-udp-tx-size)", minUDPSize, maxUDPSize))
	fs.IntVar(&o.localUDPSize, "local-udp-size", 0, "UDP packet size the client sends (default: --udp-size; RouterOS: local-udp-tx-size)")

	fs = c.group("Server")
	fs.BoolVarP(&o.server, "server", "s", false, "run a server")
	fs.StringSliceVar(&o.listen, "listen", nil, "listen on `ADDR` (repeatable; default :PORT on IPv4 and IPv6)")
	fs.StringVar(&o.udpPorts, "udp-ports", fmt.Sprintf("%d-%d", core.DefaultUDPPortFirst, core.DefaultUDPPortLast), "UDP data port range `FIRST-LAST`")
	fs.StringSliceVar(&o.allow, "allow", nil, "admit only clients in this `CIDR` (repeatable)")
	fs.StringSliceVar(&o.deny, "deny", nil, "refuse clients in this `CIDR` (repeatable)")
	fs.StringVar(&o.dashboard, "dashboard", "", "serve the live dashboard on `ADDR` (a bare port: 127.0.0.1; asks for -a/-p when the server has them)")
	fs.StringVar(&o.debugAddr, "debug-addr", "", "serve expvar, and pprof in builds with -tags pprof, on `ADDR` (a bare port: 127.0.0.1; keep it on loopback)")

	fs = c.group("Authentication")
	fs.StringVarP(&o.user, "user", "a", "", "user name (server: the one account; enables authentication)")
	fs.StringVarP(&o.password, "password", "p", "", "password (better: $BTEST_PASSWORD, kept out of the process list)")
	fs.StringVar(&o.auth, "auth", "", "server: none, md5 or ecsrp5 (default: "+defaultAuth.String()+" with -a, none without)")
	fs.BoolVar(&o.ecsrp5, "ecsrp5", false, "server: same as --auth ecsrp5")
	fs.StringVar(&o.verifier, "verifier", "", "server: stored EC-SRP5 verifier for -a instead of a password (see 'btest verifier')")
	fs.StringVar(&o.passwordFile, "password-file", "", "read the password from `FILE` (first line)")
	fs.StringVar(&o.verifierFile, "verifier-file", "", "server: read the EC-SRP5 verifier from `FILE`")

	fs = c.group("Connection")
	fs.IntVarP(&o.port, "port", "P", core.DefaultPort, "TCP port the client connects to and the server listens on")
	fs.DurationVar(&o.handshakeTimeout, "handshake-timeout", core.DefaultHandshakeTimeout, "deadline for each handshake step")
	fs.IntVar(&o.socketBuffer, "socket-buffer", 0, "SO_SNDBUF/SO_RCVBUF in bytes (0 = kernel autotuning, faster on Linux)")

	fs = c.group("Limits (server)")
	fs.IntVar(&o.maxSessions, "max-sessions", core.DefaultMaxSessions, "concurrent tests")
	fs.IntVar(&o.maxSessionsPerIP, "max-sessions-per-ip", core.DefaultMaxSessionsPerIP, "concurrent tests per source (an IPv4 address, an IPv6 /64)")
	fs.IntVar(&o.maxConnections, "max-connections", core.DefaultMaxConnections, "TCP connections or UDP streams per test (at most 255)")
	fs.DurationVar(&o.maxDuration, "max-duration", core.DefaultMaxDuration, "longest test (negative = no limit; 0 = the default)")
	fs.StringVar(&o.maxTxRate, "max-tx-rate", "0", "cap on what the server sends per test, e.g. 1G (0 = none)")
	fs.DurationVar(&o.udpIdleTimeout, "udp-idle-timeout", 0, "end a UDP test after no status message for this long (0 = --progress-timeout)")
	l := &o.limits
	fs.IntVar(&l.maxHandshakes, "max-handshakes", core.DefaultMaxHandshakes, "connections in their handshake, all clients")
	fs.IntVar(&l.maxHandshakesPerSource, "max-handshakes-per-source", core.DefaultMaxHandshakesPerSource, "connections in their handshake from one source")
	fs.IntVar(&l.maxHandshakeRate, "max-handshake-rate", core.DefaultMaxHandshakeRate, "new tests per second, all clients (-1 = no limit)")
	fs.IntVar(&l.maxHandshakeRatePerSource, "max-handshake-rate-per-source", core.DefaultMaxHandshakeRatePerSource, "new tests per second from one source (-1 = no limit)")
	fs.IntVar(&l.sourcePrefixV4, "source-prefix-v4", core.DefaultSourcePrefixV4, "prefix length that makes IPv4 clients one source")
	fs.IntVar(&l.sourcePrefixV6, "source-prefix-v6", core.DefaultSourcePrefixV6, "prefix length that makes IPv6 clients one source")
	fs.DurationVar(&l.commandTimeout, "command-timeout", core.DefaultCommandTimeout, "wait for the command after HELLO")
	fs.DurationVar(&l.progressTimeout, "progress-timeout", core.DefaultProgressTimeout, "end a test in which nothing moved for this long (stalled)")
	fs.IntVar(&l.maxStatusRate, "max-status-rate", core.DefaultMaxStatusRate, "close a UDP control connection sending more status messages a second")
	fs.Int64Var(&l.readBufferMemory, "read-buffer-memory", core.DefaultReadBufferMemory, "bytes of large receive buffers for fast TCP connections")

	fs = c.group("Output")
	fs.DurationVar(&o.interval, "interval", time.Second, "report interval (at least 20ms)")
	fs.BoolVar(&o.jsonOut, "json", false, "print one JSON object per interval and a summary")
	fs.StringVar(&o.logFormat, "log-format", "text", "log format (the server's, and the client's with -v): text or json")
	fs.BoolVarP(&o.verbose, "verbose", "v", false, "debug logging")
	fs.BoolVarP(&o.help, "help", "h", false, "show this help")
	fs.BoolVar(&o.version, "version", false, "print the version and exit")

	c.all = pflag.NewFlagSet("btest", pflag.ContinueOnError)
	c.all.SortFlags = false
	c.all.SetNormalizeFunc(routerOSName)
	c.only = make(map[string]string)
	for _, g := range c.groups {
		c.all.AddFlagSet(g.set)
		mode := map[string]string{"Client": "client", "Server": "server", "Limits (server)": "server"}[g.title]
		if mode != "" {
			g.set.VisitAll(func(f *pflag.Flag) { c.only[f.Name] = mode })
		}
	}
	for _, n := range []string{"auth", "ecsrp5", "verifier", "verifier-file"} {
		c.only[n] = "server"
	}
	for _, n := range []string{"interval", "json"} {
		c.only[n] = "client"
	}
	delete(c.only, "server")
	delete(c.only, "client")
	return c
}

// routerOSNames maps the parameter names of RouterOS's /tool
// bandwidth-test to our flags, so that "--connection-count 20" typed from
// a router's habit works. The speeds' names (local-tx-speed,
// remote-tx-speed) are ours too.
var routerOSNames = map[string]string{
	"connection-count":   "connections",
	"random-data":        "random",
	"remote-udp-tx-size": "udp-size",
	"local-udp-tx-size":  "local-udp-size",
}

// routerOSName is the flag set's normalize function: RouterOS's names
// become ours.
func routerOSName(_ *pflag.FlagSet, name string) pflag.NormalizedName {
	if n, ok := routerOSNames[name]; ok {
		return pflag.NormalizedName(n)
	}
	return pflag.NormalizedName(name)
}

// checkModes finds flags of the other mode, which would be ignored. A
// client refuses them (a server limit given to a client is a mistake the
// user is there to see). A server names them in o.ignored and starts: it
// may be a service whose arguments worked before these checks, and an
// upgrade must not stop it for a flag it never used.
func (c *cli) checkModes(o *options) error {
	mode := "client"
	if o.server {
		mode = "server"
	} else if o.client == "" {
		return nil // no mode: run says so
	}
	var err error
	c.all.Visit(func(f *pflag.Flag) {
		m := c.only[f.Name]
		if err != nil || m == "" || m == mode {
			return
		}
		msg := fmt.Sprintf("%s is a %s flag: a %s ignores it", flagName(f.Name), m, mode)
		if mode == "server" {
			o.ignored = append(o.ignored, msg)
			return
		}
		err = errors.New(msg)
	})
	return err
}

// minInterval is the shortest --interval, RouterOS's: shorter reports are
// mostly the noise of the clock and the scheduler.
const minInterval = 20 * time.Millisecond

// The IP packet sizes a UDP test may ask for (core.ClientConfig.UDPTxSize).
const (
	minUDPSize = 28
	maxUDPSize = 64000
)

// defaultAuth is what `btest -s -a USER` asks clients for, the same as the
// Caddy app: EC-SRP5, because every RouterOS since 6.43 (2018) speaks it, as
// client and as server, and it lets the server keep a verifier instead of
// the plaintext password. --auth md5 serves RouterOS older than 6.43.
const defaultAuth = core.AuthECSRP5

const usageHead = `btest: MikroTik Bandwidth Test server and client.

Usage:
  btest -s [--listen ADDR]... [-a USER -p PASS [--auth ecsrp5|md5]]   run a server
  btest -c HOST [-t] [-r] [-u] [-n N] [-b RATE] [-d 10s]              run a test
  btest verifier -a USER [-p PASS]                                    print an EC-SRP5 verifier
`

const usageTail = `Examples:
  btest -s                                   server without authentication on :2000
  BTEST_PASSWORD=secret btest -s -a admin    server with EC-SRP5 (RouterOS >= 6.43)
  btest -c 192.0.2.1 -tr -n 20 -d 30s        TCP both directions, 20 connections
  btest -c 192.0.2.1 -u -r -b 100M           UDP download at 100 Mbit/s
  btest -c router.example -u -t --json       UDP upload, JSON lines for scripts

The password may also come from --password-file, $BTEST_PASSWORD or, under
systemd, the credentials "password" and "verifier" (LoadCredential=) in
$CREDENTIALS_DIRECTORY. UDP uses sendmmsg/recvmmsg with GSO/GRO on Linux and
a portable one-datagram-per-call path elsewhere. Exit status: 0 done,
1 the test failed (the reason is printed), 2 bad usage.
`

// usage writes the grouped help.
func (c *cli) usage(w io.Writer) {
	fmt.Fprint(w, usageHead)
	for _, g := range c.groups {
		fmt.Fprintf(w, "\n%s:\n%s", g.title, g.set.FlagUsages())
	}
	fmt.Fprint(w, "\n"+usageTail)
}

// normalizeArgs keeps the single-dash long spellings that the standard
// library's flag package accepted ("-server", "-proto=udp"), which scripts
// use: an argument "-name" whose name is a long flag becomes "--name".
// Everything else (short flags, "-tr", values) is left to pflag. It follows
// which arguments are flag values, so a value is never rewritten.
func normalizeArgs(fs *pflag.FlagSet, args []string) []string {
	out := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" || a == "-" || !strings.HasPrefix(a, "-") {
			if a == "--" {
				return append(out, args[i:]...)
			}
			out = append(out, a)
			continue
		}
		var takesNext bool
		if strings.HasPrefix(a, "--") {
			name, _, inline := strings.Cut(a[2:], "=")
			f := fs.Lookup(name)
			takesNext = f != nil && !inline && f.NoOptDefVal == ""
		} else if name, _, inline := strings.Cut(a[1:], "="); len(name) > 1 && fs.Lookup(name) != nil {
			a = "-" + a
			takesNext = !inline && fs.Lookup(name).NoOptDefVal == ""
		} else {
			takesNext = clusterTakesNext(fs, a[1:])
		}
		out = append(out, a)
		if takesNext && i+1 < len(args) {
			i++
			out = append(out, args[i])
		}
	}
	return out
}

// clusterTakesNext reports whether a cluster of short flags ("tr", "n",
// "tn20") ends in a flag that takes the next argument as its value.
func clusterTakesNext(fs *pflag.FlagSet, cluster string) bool {
	for i := range len(cluster) {
		f := fs.ShorthandLookup(cluster[i : i+1])
		if f == nil {
			return false // pflag reports the unknown flag
		}
		if f.NoOptDefVal == "" {
			return i == len(cluster)-1 // otherwise the value is inline
		}
	}
	return false
}

// parseFlags parses args; pflag.ErrHelp means --help was printed to out.
func parseFlags(args []string, out io.Writer) (*options, error) {
	o := &options{}
	c := newCLI(o)
	c.all.SetOutput(io.Discard) // we print the errors and the help ourselves
	if err := c.all.Parse(normalizeArgs(c.all, args)); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			c.usage(out)
			return nil, err
		}
		return nil, err
	}
	if o.help {
		c.usage(out)
		return nil, pflag.ErrHelp
	}
	if o.version {
		return o, nil
	}
	o.changed = make(map[string]bool)
	c.all.Visit(func(f *pflag.Flag) { o.changed[f.Name] = true })
	if c.all.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", c.all.Arg(0))
	}
	if o.server && o.client != "" {
		return nil, errors.New("-s and -c exclude each other")
	}
	if err := c.checkModes(o); err != nil {
		return nil, err
	}
	if err := o.loadSecrets(os.Getenv); err != nil {
		return nil, err
	}
	return o, o.check()
}

// check validates and converts the settings of the chosen mode.
func (o *options) check() error {
	var err error
	if o.maxTxRateBits, err = core.ParseBitRate(o.maxTxRate); err != nil {
		return fmt.Errorf("--max-tx-rate: %w", err)
	}
	if o.udpFirst, o.udpLast, err = core.ParsePortRange(o.udpPorts); err != nil {
		return fmt.Errorf("--udp-ports: %w", err)
	}
	if o.allowP, err = core.ParsePrefixes(o.allow); err != nil {
		return fmt.Errorf("--allow: %w", err)
	}
	if o.denyP, err = core.ParsePrefixes(o.deny); err != nil {
		return fmt.Errorf("--deny: %w", err)
	}
	switch strings.ToLower(o.proto) {
	case "tcp":
		if o.udp && o.changed["proto"] {
			return errors.New("-u/--udp conflicts with --proto tcp")
		}
	case "udp":
		o.udp = true
	default:
		return fmt.Errorf("--proto: want tcp or udp, got %q", o.proto)
	}
	if o.dashboard != "" {
		if o.dashboard, err = httpAddr("--dashboard", o.dashboard); err != nil {
			return err
		}
	}
	if o.debugAddr != "" {
		if o.debugAddr, err = httpAddr("--debug-addr", o.debugAddr); err != nil {
			return err
		}
	}
	switch f := strings.ToLower(o.logFormat); f {
	case "text", "json":
		o.logFormat = f
	default:
		return fmt.Errorf("--log-format: want text or json, got %q", o.logFormat)
	}
	if o.port < 1 || o.port > 65535 {
		return fmt.Errorf("--port %d out of range", o.port)
	}
	// The UDP sizes are checked in every test, as core checks them: a
	// wrong one is a typo to report, not a value to ignore in TCP.
	if o.udpSize < minUDPSize || o.udpSize > maxUDPSize {
		return fmt.Errorf("--udp-size %d: want %d-%d (IP bytes)", o.udpSize, minUDPSize, maxUDPSize)
	}
	if o.localUDPSize != 0 && (o.localUDPSize < minUDPSize || o.localUDPSize > maxUDPSize) {
		return fmt.Errorf("--local-udp-size %d: want %d-%d (IP bytes), or 0 for --udp-size", o.localUDPSize, minUDPSize, maxUDPSize)
	}
	for _, d := range []struct {
		flag string
		v    time.Duration
	}{{"--handshake-timeout", o.handshakeTimeout}, {"--command-timeout", o.limits.commandTimeout},
		{"--progress-timeout", o.limits.progressTimeout}, {"--udp-idle-timeout", o.udpIdleTimeout}} {
		if d.v < 0 {
			return fmt.Errorf("%s %v: want a positive duration (or 0 for the default)", d.flag, d.v)
		}
	}
	if o.interval < minInterval {
		return fmt.Errorf("--interval %v: want at least %v (RouterOS takes 20ms-5s)", o.interval, minInterval)
	}
	if o.socketBuffer < 0 {
		return fmt.Errorf("--socket-buffer %d: want a size in bytes, or 0 for the kernel's autotuning", o.socketBuffer)
	}
	if p := o.limits.sourcePrefixV4; p < 1 || p > 32 {
		return fmt.Errorf("--source-prefix-v4 %d: want 1-32", p)
	}
	if p := o.limits.sourcePrefixV6; p < 1 || p > 128 {
		return fmt.Errorf("--source-prefix-v6 %d: want 1-128", p)
	}
	if o.client != "" && (o.connections < 1 || o.connections > 255) {
		return fmt.Errorf("--connections %d: want 1-255", o.connections)
	}
	return nil
}
