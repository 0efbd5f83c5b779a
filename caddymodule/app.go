// Package caddymodule is the btest app for Caddy: a MikroTik Bandwidth Test
// server that runs inside Caddy next to its websites, configured with a
// `btest` global option in the Caddyfile or the "btest" app in JSON,
// reloaded with the rest of Caddy's config, logging through Caddy's logs
// and exporting metrics on Caddy's admin /metrics endpoint.
//
// Build Caddy with it:
//
//	xcaddy build --with github.com/btest-go/btest/caddymodule
package caddymodule

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/btest-go/btest/core"
	"github.com/btest-go/btest/core/ecsrp5"
	"github.com/btest-go/btest/dashboard"
	"github.com/btest-go/btest/internal/version"
)

func init() {
	caddy.RegisterModule(new(App))
}

// Defaults for App fields left empty.
const (
	// DefaultListen is where RouterOS clients look for a btest server.
	DefaultListen = "tcp/:2000"
	// DefaultPort is the port of a listen address that names none.
	DefaultPort = core.DefaultPort
	// DefaultUDPPorts is the range of per-session UDP data ports.
	DefaultUDPPorts = "2001-2999"
	// DefaultAuth is what RouterOS >= 6.43 servers ask for.
	DefaultAuth = "ecsrp5"
	// DefaultMaxSessions caps concurrent tests (RouterOS's default).
	DefaultMaxSessions = core.DefaultMaxSessions
	// DefaultMaxSessionsPerIP caps concurrent tests from one address.
	DefaultMaxSessionsPerIP = core.DefaultMaxSessionsPerIP
	// DefaultMaxConnections caps the TCP connections of one test.
	DefaultMaxConnections = core.DefaultMaxConnections
	// DefaultMaxDuration ends tests that run longer.
	DefaultMaxDuration = core.DefaultMaxDuration
	// DefaultHandshakeTimeout bounds each step of a client's handshake.
	DefaultHandshakeTimeout = core.DefaultHandshakeTimeout
	// DefaultGracePeriod is how long running tests may go on after the
	// config that started them is stopped (reload or exit).
	DefaultGracePeriod = 10 * time.Second
)

// App is a MikroTik Bandwidth Test (btest) server. RouterOS's
// /tool bandwidth-test and other btest clients test TCP and UDP throughput
// against it, with MD5 or EC-SRP5 authentication.
//
// String fields of users and listen addresses may hold placeholders such
// as {env.BTEST_PASSWORD}, resolved when the config is loaded, so secrets
// need not be written into the config; {env.NAME:default} gives a value
// for a variable that is not set.
//
// A number or duration left at 0 takes its default; a negative one is an
// error, except where a field says what it means (no limit).
//
// On a config reload the new config starts listening before the old one
// stops; tests that are running finish under the config they started with,
// for at most grace_period.
type App struct {
	// Listen holds the TCP network addresses to accept clients on, in
	// Caddy's network address form ("tcp/:2000", "127.0.0.1:2000",
	// "[::1]:2000", "tcp6/[2001:db8::1]:2000", a port range
	// "tcp/:2000-2001"). An address without a port uses 2000. Default:
	// ["tcp/:2000"], every interface, IPv4 and IPv6.
	Listen []string `json:"listen,omitempty"`

	// UDPPorts is the range of UDP ports, "first-last" (or one port,
	// "port"), the server hands out to UDP tests, one per test; the client receives on the port
	// + 256. Open both ranges in firewalls. Configs that use the same
	// range share one set of ports across reloads, so a running test keeps
	// its port. Default: "2001-2999".
	UDPPorts string `json:"udp_ports,omitempty"`

	// Auth is the authentication clients must pass: "none", "md5" (RouterOS
	// before 6.43; needs plaintext passwords) or "ecsrp5" (RouterOS 6.43
	// and later). Default: "ecsrp5".
	Auth string `json:"auth,omitempty"`

	// Users are the accounts clients log in with (md5 and ecsrp5).
	Users []User `json:"users,omitempty"`

	// MaxSessions caps concurrent tests. Default: 100.
	MaxSessions int `json:"max_sessions,omitempty"`

	// MaxSessionsPerIP caps concurrent tests from one client address.
	// Default: 20.
	MaxSessionsPerIP int `json:"max_sessions_per_ip,omitempty"`

	// MaxConnections caps the TCP connections (or UDP streams) one test
	// may ask for, at most 255. Default: 100.
	MaxConnections int `json:"max_connections,omitempty"`

	// MaxDuration ends tests that run longer. A negative duration means no
	// limit. Default: 1h.
	MaxDuration caddy.Duration `json:"max_duration,omitempty"`

	// MaxTxRate caps what the server sends to one test, in bit/s; a client
	// that asks for less gets less. Default: 0, no cap.
	MaxTxRate uint64 `json:"max_tx_rate,omitempty"`

	// Allow, when not empty, admits only clients inside these networks
	// (CIDR prefixes or single addresses, IPv4 or IPv6).
	Allow []string `json:"allow,omitempty"`

	// Deny refuses clients inside these networks, checked after Allow.
	Deny []string `json:"deny,omitempty"`

	// HandshakeTimeout bounds each step of a client's handshake (the
	// command, each authentication message). Default: 10s.
	HandshakeTimeout caddy.Duration `json:"handshake_timeout,omitempty"`

	// MaxHandshakes caps the connections in their handshake, from all
	// clients. Default: 256.
	MaxHandshakes int `json:"max_handshakes,omitempty"`

	// MaxHandshakesPerSource caps the connections of one source (see
	// source_prefix_v4) in their handshake, so one address cannot take
	// every handshake slot; the secondary connections a test of that
	// source still waits for are allowed beyond it. Default: 16.
	MaxHandshakesPerSource int `json:"max_handshakes_per_source,omitempty"`

	// MaxHandshakeRate caps new tests per second from all clients (an
	// EC-SRP5 handshake costs about 0.2 ms of CPU), with a burst of one
	// second's worth; -1 means no limit. Default: 200.
	MaxHandshakeRate int `json:"max_handshake_rate,omitempty"`

	// MaxHandshakeRatePerSource caps new tests per second from one source,
	// with a burst of as many; -1 means no limit. Default: 10.
	MaxHandshakeRatePerSource int `json:"max_handshake_rate_per_source,omitempty"`

	// SourcePrefixV4 is the prefix length, 1-32, that groups IPv4 client
	// addresses into one source for max_sessions_per_ip and the
	// per-source handshake limits. Default: 32, one address.
	SourcePrefixV4 int `json:"source_prefix_v4,omitempty"`

	// SourcePrefixV6 is the same for IPv6 client addresses, 1-128.
	// Default: 64, one /64, what one customer is routed.
	SourcePrefixV6 int `json:"source_prefix_v6,omitempty"`

	// CommandTimeout bounds the wait for a client's command after the
	// server's HELLO; RouterOS sends it at once. Default: 3s.
	CommandTimeout caddy.Duration `json:"command_timeout,omitempty"`

	// ProgressTimeout ends a test as "stalled" when no byte moved for so
	// long in a TCP direction that should carry data (a client that stops
	// reading), or no status message arrived in a UDP test. Default: 15s.
	ProgressTimeout caddy.Duration `json:"progress_timeout,omitempty"`

	// MaxStatusRate closes the control connection of a UDP test that
	// sends more than this many status messages' worth of bytes in a
	// second; a real client sends one. Default: 64.
	MaxStatusRate int `json:"max_status_rate,omitempty"`

	// ReadBufferMemory is the budget, in bytes, of the large (1 MiB)
	// receive buffers fast TCP connections get; the others read into
	// 32 KiB. It bounds the server's memory together with max_sessions
	// and max_connections. Default: 134217728 (128 MiB).
	ReadBufferMemory int64 `json:"read_buffer_memory,omitempty"`

	// GracePeriod is how long tests that are running may go on when this
	// config stops, on a reload or when Caddy exits; they are ended after
	// it. A reload does not wait for them; an exit does. Default: 10s.
	GracePeriod caddy.Duration `json:"grace_period,omitempty"`

	ctx          caddy.Context
	logger       *zap.Logger
	addrs        []caddy.NetworkAddress
	srv          *core.Server
	releasePorts func()
	dash         *dashboard.State // shared across reloads, see sharedDashboard
	releaseDash  func()

	listeners []net.Listener
	serving   sync.WaitGroup
	started   bool
	stopping  atomic.Bool
	// drainLater is set when Stop left running tests to finish in the
	// background; that goroutine then gives the UDP ports back.
	drainLater bool
}

// User is one account of the btest server.
type User struct {
	// Name is the user name the client logs in with.
	Name string `json:"name,omitempty"`

	// Password is the user's plaintext password. md5 authentication needs
	// it; ecsrp5 needs it or Verifier. Use a placeholder such as
	// {env.BTEST_PASSWORD} to keep it out of the config.
	Password string `json:"password,omitempty"`

	// Verifier is a stored EC-SRP5 verifier, "<salt hex>:<x_gamma hex>:<parity>",
	// as `btest verifier -a USER -p PASS` prints it, so the server needs no
	// plaintext password (ecsrp5 only). When set it is used instead of
	// Password for ecsrp5.
	Verifier string `json:"verifier,omitempty"`
}

// CaddyModule returns the Caddy module information.
func (*App) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "btest",
		New: func() caddy.Module { return new(App) },
	}
}

// Provision applies defaults, resolves placeholders, parses every field and
// sets up the btest server. It binds no socket.
func (a *App) Provision(ctx caddy.Context) error {
	if err := a.checkNumbers(); err != nil {
		return err
	}
	a.ctx = ctx
	a.logger = ctx.Logger()
	a.setDefaults()

	repl := caddy.NewReplacer()
	cfg := core.ServerConfig{
		MaxSessions:      a.MaxSessions,
		MaxSessionsPerIP: a.MaxSessionsPerIP,
		MaxConnections:   a.MaxConnections,
		MaxDuration:      time.Duration(a.MaxDuration),
		MaxTxRate:        a.MaxTxRate,
		HandshakeTimeout: time.Duration(a.HandshakeTimeout),

		MaxHandshakes:             a.MaxHandshakes,
		MaxHandshakesPerSource:    a.MaxHandshakesPerSource,
		MaxHandshakeRate:          a.MaxHandshakeRate,
		MaxHandshakeRatePerSource: a.MaxHandshakeRatePerSource,
		SourcePrefixV4:            a.SourcePrefixV4,
		SourcePrefixV6:            a.SourcePrefixV6,
		CommandTimeout:            time.Duration(a.CommandTimeout),
		ProgressTimeout:           time.Duration(a.ProgressTimeout),
		MaxStatusRate:             a.MaxStatusRate,
		ReadBufferMemory:          a.ReadBufferMemory,
	}
	var err error
	if cfg.Auth, err = core.ParseAuthMode(a.Auth); err != nil {
		return fmt.Errorf("auth: %w", err)
	}
	for i, s := range a.Listen {
		s, err := resolve(repl, s)
		if err != nil {
			return fmt.Errorf("listen address %d %q: %w", i, a.Listen[i], err)
		}
		na, err := caddy.ParseNetworkAddressWithDefaults(s, "tcp", DefaultPort)
		if err != nil {
			return fmt.Errorf("listen address %q: %w", s, err)
		}
		a.addrs = append(a.addrs, na)
	}
	if cfg.Users, err = a.users(repl, cfg.Auth); err != nil {
		return err
	}
	if cfg.Allow, err = core.ParsePrefixes(a.Allow); err != nil {
		return fmt.Errorf("allow: %w", err)
	}
	if cfg.Deny, err = core.ParsePrefixes(a.Deny); err != nil {
		return fmt.Errorf("deny: %w", err)
	}
	first, last, err := core.ParsePortRange(a.UDPPorts)
	if err != nil {
		return fmt.Errorf("udp_ports: %w", err)
	}
	if cfg.UDPPorts, a.releasePorts, err = sharedPortPool(first, last); err != nil {
		return fmt.Errorf("udp_ports: %w", err)
	}
	cfg.UDPPortFirst, cfg.UDPPortLast = first, last

	if err := registerMetrics(ctx.GetMetricsRegistry()); err != nil {
		return fmt.Errorf("registering metrics: %w", err)
	}
	if a.dash, a.releaseDash, err = sharedDashboard(); err != nil {
		return fmt.Errorf("dashboard: %w", err)
	}
	cfg.Observer = core.JoinObservers(newObserver().hooks(), a.dash.Observer())
	// The core logs one line per session start and end through slog; this
	// handler turns them into zap lines of the app's logger.
	cfg.Logger = ctx.Slogger()

	if a.srv, err = core.NewServer(cfg); err != nil {
		return err
	}
	return nil
}

func (a *App) setDefaults() {
	if len(a.Listen) == 0 {
		a.Listen = []string{DefaultListen}
	}
	if a.UDPPorts == "" {
		a.UDPPorts = DefaultUDPPorts
	}
	if a.Auth == "" {
		a.Auth = DefaultAuth
	}
	if a.MaxSessions == 0 {
		a.MaxSessions = DefaultMaxSessions
	}
	if a.MaxSessionsPerIP == 0 {
		a.MaxSessionsPerIP = DefaultMaxSessionsPerIP
	}
	if a.MaxConnections == 0 {
		a.MaxConnections = DefaultMaxConnections
	}
	if a.MaxDuration == 0 {
		a.MaxDuration = caddy.Duration(DefaultMaxDuration)
	}
	if a.HandshakeTimeout == 0 {
		a.HandshakeTimeout = caddy.Duration(DefaultHandshakeTimeout)
	}
	if a.GracePeriod == 0 {
		a.GracePeriod = caddy.Duration(DefaultGracePeriod)
	}
}

// users resolves placeholders in the configured accounts and parses their
// verifiers. Errors name the user, never a password.
func (a *App) users(repl *caddy.Replacer, mode core.AuthMode) ([]core.User, error) {
	out := make([]core.User, 0, len(a.Users))
	for i, u := range a.Users {
		name, err := resolve(repl, u.Name)
		if err != nil {
			return nil, fmt.Errorf("user %d: name: %w", i, err)
		}
		if name == "" {
			return nil, fmt.Errorf("user %d: name %q is empty", i, u.Name)
		}
		pw, err := resolve(repl, u.Password)
		if err != nil {
			return nil, fmt.Errorf("user %q: password: %w", name, err)
		}
		cu := core.User{Name: name, Password: pw}
		vs, err := resolve(repl, u.Verifier)
		if err != nil {
			return nil, fmt.Errorf("user %q: verifier: %w", name, err)
		}
		if vs != "" {
			v, err := ecsrp5.ParseVerifier(vs)
			if err != nil {
				return nil, fmt.Errorf("user %q: %w", name, err)
			}
			cu.Verifier = &v
		}
		if mode != core.AuthNone && pw == "" && cu.Verifier == nil {
			return nil, fmt.Errorf("user %q has no password (or it resolved to empty) and no verifier", name)
		}
		out = append(out, cu)
	}
	return out, nil
}

// Validate checks the settings Provision does not need to parse.
func (a *App) Validate() error {
	seen := make(map[string]bool, len(a.addrs))
	for _, na := range a.addrs {
		if seen[na.String()] {
			return fmt.Errorf("listen address %s is given twice", na)
		}
		seen[na.String()] = true
		switch na.Network {
		case "tcp", "tcp4", "tcp6":
		default:
			return fmt.Errorf("listen address %s: network %q is not tcp, tcp4 or tcp6", na, na.Network)
		}
	}
	return a.checkNumbers()
}

// checkNumbers rejects out-of-range limits and timeouts with the config's
// own field names, where the core would take a negative number for its
// default or name the field in Go. 0 is every field's default; the
// handshake rates take -1 for no limit and max_duration any negative
// duration. Provision runs it before it makes the server.
func (a *App) checkNumbers() error {
	for _, f := range []struct {
		name     string
		v        int64
		min, max int64 // max 0: no upper bound
	}{
		{"max_sessions", int64(a.MaxSessions), 0, 0},
		{"max_sessions_per_ip", int64(a.MaxSessionsPerIP), 0, 0},
		{"max_connections", int64(a.MaxConnections), 0, 255},
		{"max_handshakes", int64(a.MaxHandshakes), 0, 0},
		{"max_handshakes_per_source", int64(a.MaxHandshakesPerSource), 0, 0},
		{"max_handshake_rate", int64(a.MaxHandshakeRate), -1, 0},
		{"max_handshake_rate_per_source", int64(a.MaxHandshakeRatePerSource), -1, 0},
		{"source_prefix_v4", int64(a.SourcePrefixV4), 0, 32},
		{"source_prefix_v6", int64(a.SourcePrefixV6), 0, 128},
		{"max_status_rate", int64(a.MaxStatusRate), 0, 0},
		{"read_buffer_memory", a.ReadBufferMemory, 0, 0},
	} {
		switch {
		case f.max > 0 && (f.v < f.min || f.v > f.max):
			return fmt.Errorf("%s %d is out of range 1-%d (0: the default)", f.name, f.v, f.max)
		case f.v < f.min && f.min == -1:
			return fmt.Errorf("%s %d is below -1 (-1: no limit)", f.name, f.v)
		case f.v < f.min:
			return fmt.Errorf("%s %d is negative", f.name, f.v)
		}
	}
	for _, f := range []struct {
		name string
		v    caddy.Duration
	}{
		{"handshake_timeout", a.HandshakeTimeout},
		{"command_timeout", a.CommandTimeout},
		{"progress_timeout", a.ProgressTimeout},
		{"grace_period", a.GracePeriod},
	} {
		if f.v < 0 {
			return fmt.Errorf("%s %v is negative", f.name, time.Duration(f.v))
		}
	}
	return nil
}

// Start binds the listeners and serves clients on them. The listeners come
// from Caddy, so on a reload the new config binds while the old one still
// holds the same addresses.
func (a *App) Start() error {
	for _, na := range a.addrs {
		lns, err := na.ListenAll(a.ctx, net.ListenConfig{})
		if err != nil {
			a.closeListeners()
			return fmt.Errorf("listening on %s: %w", na, err)
		}
		for _, ln := range lns {
			l, ok := ln.(net.Listener)
			if !ok {
				a.closeListeners()
				return fmt.Errorf("listening on %s: got a %T, not a stream listener", na, ln)
			}
			a.listeners = append(a.listeners, l)
		}
	}
	a.started = true
	for _, ln := range a.listeners {
		a.logger.Info("btest server listening",
			zap.String("address", ln.Addr().String()),
			zap.String("auth", a.Auth),
			zap.Int("users", len(a.Users)),
			zap.String("udp_ports", a.UDPPorts),
			zap.String("version", version.Get().Version),
			zap.String("revision", version.Get().ShortRevision()))
		a.serving.Add(1)
		go a.serve(ln)
	}
	return nil
}

func (a *App) serve(ln net.Listener) {
	defer a.serving.Done()
	err := a.srv.Serve(context.Background(), ln)
	if !errors.Is(err, core.ErrServerClosed) && !a.stopping.Load() {
		a.logger.Error("btest listener failed", zap.String("address", ln.Addr().String()), zap.Error(err))
	}
}

func (a *App) closeListeners() {
	for _, ln := range a.listeners {
		if err := ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			a.logger.Error("closing btest listener", zap.String("address", ln.Addr().String()), zap.Error(err))
		}
	}
}

// Stop closes the listeners at once and lets running tests go on for
// grace_period, then ends them. When Caddy exits, Stop waits for that
// (at most grace_period: the core's Shutdown then closes what is left,
// handshakes included); on a reload it returns at once and
// the tests finish in the background under this config.
func (a *App) Stop() error {
	a.stopping.Store(true)
	a.closeListeners()
	grace := time.Duration(a.GracePeriod)
	if n := a.srv.ActiveSessions(); n > 0 {
		a.logger.Info("btest config stopping; running tests may finish",
			zap.Int("sessions", n), zap.Duration("grace_period", grace))
	}
	if caddy.Exiting() {
		<-a.drain(grace)
		return nil
	}
	a.drainLater = true
	go func() {
		// The ports go back only when every session has let go of its own.
		<-a.drain(grace)
		a.releasePorts()
	}()
	return nil
}

// drain shuts the server down. The channel it returns closes once the
// running tests and handshakes ended, by themselves or at the end of
// grace, when the core's Shutdown closes every connection left, and every
// connection goroutine has finished.
func (a *App) drain(grace time.Duration) <-chan struct{} {
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		ctx, cancel := context.WithTimeout(context.Background(), grace)
		defer cancel()
		if err := a.srv.Shutdown(ctx); err != nil {
			a.logger.Info("btest grace period over; ended running tests and handshakes", zap.Duration("grace_period", grace))
		}
		a.serving.Wait()
	}()
	return finished
}

// Cleanup gives back what Provision took: the server (when it never
// started) and the reference to the shared UDP port pool (unless a
// background drain still needs it and gives it back itself).
func (a *App) Cleanup() error {
	if a.releaseDash != nil {
		a.releaseDash()
	}
	if a.drainLater {
		return nil
	}
	if a.srv != nil && !a.started {
		a.srv.Close()
	}
	if a.releasePorts != nil {
		a.releasePorts()
	}
	return nil
}

// resolve replaces placeholders in s. Besides Caddy's global placeholders
// ({env.NAME}, {system.hostname}, {file.PATH}, ...) it takes
// {env.NAME:default}, which gives default when NAME is not set, as the
// Caddyfile's {$NAME:default} does. An unknown placeholder is an error, so
// a literal brace in a password must be escaped with a backslash.
func resolve(repl *caddy.Replacer, s string) (string, error) {
	return repl.ReplaceFunc(s, func(key string, val any) (any, error) {
		if name, def, ok := strings.Cut(key, ":"); ok && strings.HasPrefix(name, "env.") {
			if v, set := os.LookupEnv(strings.TrimPrefix(name, "env.")); set {
				return v, nil
			}
			return def, nil
		}
		if val == nil {
			// No key in the message: it may be part of a password.
			return nil, errors.New("unknown placeholder (escape a literal brace as \\{)")
		}
		return val, nil
	})
}

// Interface guards
var (
	_ caddy.App          = (*App)(nil)
	_ caddy.Provisioner  = (*App)(nil)
	_ caddy.Validator    = (*App)(nil)
	_ caddy.CleanerUpper = (*App)(nil)
)
