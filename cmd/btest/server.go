package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/btest-go/btest/core"
	"github.com/btest-go/btest/core/ecsrp5"
	"github.com/btest-go/btest/dashboard"
	"github.com/btest-go/btest/internal/version"
)

// shutdownGrace is how long running tests may go on after SIGINT/SIGTERM.
const shutdownGrace = 5 * time.Second

// newLogger is the server's log (info and up; debug with -v) and the
// client's (warnings only: its output is the live display; debug with -v).
func newLogger(o *options, w io.Writer) *slog.Logger {
	lvl := slog.LevelInfo
	if !o.server {
		lvl = slog.LevelWarn
	}
	if o.verbose {
		lvl = slog.LevelDebug
	}
	opts := &slog.HandlerOptions{Level: lvl}
	if o.logFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// serverConfig turns the flags into a core.ServerConfig.
func serverConfig(o *options, log *slog.Logger) (core.ServerConfig, error) {
	cfg := core.ServerConfig{
		MaxSessions:      o.maxSessions,
		MaxSessionsPerIP: o.maxSessionsPerIP,
		MaxConnections:   o.maxConnections,
		MaxDuration:      o.maxDuration,
		MaxTxRate:        o.maxTxRateBits,
		HandshakeTimeout: o.handshakeTimeout,
		UDPIdleTimeout:   o.udpIdleTimeout,
		UDPPortFirst:     o.udpFirst,
		UDPPortLast:      o.udpLast,
		Allow:            o.allowP,
		Deny:             o.denyP,
		SocketBuffer:     o.socketBuffer,
		Logger:           log,

		MaxHandshakes:             o.limits.maxHandshakes,
		MaxHandshakesPerSource:    o.limits.maxHandshakesPerSource,
		MaxHandshakeRate:          o.limits.maxHandshakeRate,
		MaxHandshakeRatePerSource: o.limits.maxHandshakeRatePerSource,
		SourcePrefixV4:            o.limits.sourcePrefixV4,
		SourcePrefixV6:            o.limits.sourcePrefixV6,
		CommandTimeout:            o.limits.commandTimeout,
		ProgressTimeout:           o.limits.progressTimeout,
		MaxStatusRate:             o.limits.maxStatusRate,
		ReadBufferMemory:          o.limits.readBufferMemory,
	}
	auth := o.auth
	switch {
	case o.ecsrp5:
		if auth != "" && auth != "ecsrp5" {
			return cfg, fmt.Errorf("--ecsrp5 conflicts with --auth %s", auth)
		}
		auth = "ecsrp5"
	case auth == "" && o.user != "":
		auth = defaultAuth.String()
	}
	mode, err := core.ParseAuthMode(auth)
	if err != nil {
		return cfg, fmt.Errorf("--auth: %w", err)
	}
	cfg.Auth = mode
	if mode == core.AuthNone {
		// A password given to a server without -a would protect nothing:
		// the server would run open while its operator thinks otherwise.
		if o.user == "" {
			for _, f := range []string{"password", "password-file", "verifier", "verifier-file"} {
				if o.changed[f] {
					return cfg, fmt.Errorf("%s without -a USER: the server would run without authentication; add -a USER to protect it", flagName(f))
				}
			}
			if o.passwordFromEnv {
				log.Warn("$BTEST_PASSWORD is set but unused: without -a USER the server runs without authentication")
			}
		}
		return cfg, nil
	}
	if o.user == "" {
		return cfg, fmt.Errorf("--auth %s needs -a USER and -p PASS (or --verifier)", mode)
	}
	if len(o.user) > core.MaxUserName || strings.IndexByte(o.user, 0) >= 0 {
		return cfg, fmt.Errorf("-a: a user name has at most %d bytes and no NUL", core.MaxUserName)
	}
	u := core.User{Name: o.user, Password: o.password}
	if o.verifier != "" {
		v, err := ecsrp5.ParseVerifier(o.verifier)
		if err != nil {
			return cfg, fmt.Errorf("--verifier: %w", err)
		}
		u.Verifier = &v
	}
	if o.password == "" && (u.Verifier == nil || mode == core.AuthMD5) {
		// The empty password is one anybody can type: refuse it rather
		// than serve a test to everyone behind a login that means nothing.
		alt := ""
		if mode == core.AuthECSRP5 {
			alt = " (or --verifier)"
		}
		return cfg, fmt.Errorf("-a %s has no password: give -p PASS, --password-file FILE or $BTEST_PASSWORD%s", o.user, alt)
	}
	cfg.Users = []core.User{u}
	return cfg, nil
}

// openToAll reports whether a listener takes tests from anyone who reaches
// it: no authentication, on an address beyond this host. The bare container
// and a quick `btest -s` run this way; on a public address that is anyone's
// traffic generator, paid for by this host's egress.
func openToAll(auth core.AuthMode, a net.Addr) bool {
	return auth == core.AuthNone && !isLoopback(a)
}

// flagName spells a flag for a message: "-p/--password", "--auth".
func flagName(long string) string {
	if f := newCLI(&options{}).all.Lookup(long); f != nil && f.Shorthand != "" {
		return "-" + f.Shorthand + "/--" + long
	}
	return "--" + long
}

// runServer runs the server of cfg (from serverConfig) until ctx ends.
func runServer(ctx context.Context, o *options, cfg core.ServerConfig, log *slog.Logger) error {
	v := version.Get()
	log.Info("btest server starting", "version", v.Version, "revision", v.ShortRevision(), "go", v.GoVersion)
	var dash *dashboard.State
	if o.dashboard != "" {
		dash = dashboard.New()
		defer dash.Close()
		cfg.Observer = core.JoinObservers(cfg.Observer, dash.Observer())
	}
	srv, err := core.NewServer(cfg)
	if err != nil {
		return badConfig{err} // what serverConfig could not see
	}
	if dash != nil {
		hs, err := startDashboard(o.dashboard, dash, srv, cfg.Users, log)
		if err != nil {
			return err
		}
		// Close, not Shutdown: event streams never end by themselves.
		defer hs.Close()
	}
	addrs := o.listen
	if len(addrs) == 0 {
		addrs = []string{":" + strconv.Itoa(o.port)}
	}
	var lns []net.Listener
	for _, a := range addrs {
		if _, _, err := net.SplitHostPort(a); err != nil {
			a = net.JoinHostPort(a, strconv.Itoa(o.port)) // "::1" or "127.0.0.1"
		}
		ln, err := net.Listen("tcp", a)
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			return fmt.Errorf("listen %s: %w", a, err)
		}
		lns = append(lns, ln)
		log.Info("btest server listening", "addr", ln.Addr().String(), "auth", cfg.Auth.String(),
			"udp_ports", fmt.Sprintf("%d-%d", cfg.UDPPortFirst, cfg.UDPPortLast))
		if openToAll(cfg.Auth, ln.Addr()) {
			log.Warn("the server takes tests without authentication on an address open to the network: anyone who reaches it can run tests at this host's expense; give -a USER with a password, and --max-tx-rate on a link billed by the byte",
				"addr", ln.Addr().String())
		}
	}
	if o.debugAddr != "" {
		dbg, err := startDebug(o.debugAddr, log)
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			return err
		}
		defer dbg.Close()
	}
	errs := make(chan error, len(lns))
	var wg sync.WaitGroup
	for _, ln := range lns {
		wg.Go(func() { errs <- srv.Serve(context.Background(), ln) })
	}
	select {
	case <-ctx.Done():
		log.Info("btest server shutting down", "grace", shutdownGrace)
	case err = <-errs:
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	srv.Shutdown(sctx)
	wg.Wait()
	if err != nil && !errors.Is(err, core.ErrServerClosed) {
		return err
	}
	return nil
}
