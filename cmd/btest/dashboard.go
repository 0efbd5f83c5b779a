package main

import (
	"crypto/subtle"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"github.com/btest-go/btest/core"
	"github.com/btest-go/btest/dashboard"
)

// httpAddr completes the address of an HTTP endpoint flag (--dashboard,
// --debug-addr): a bare port means loopback, so the page is not on the
// network unless asked for.
func httpAddr(flag, s string) (string, error) {
	if p, err := strconv.Atoi(s); err == nil {
		if p < 0 || p > 65535 {
			return "", fmt.Errorf("%s: port %d out of range", flag, p)
		}
		return net.JoinHostPort("127.0.0.1", s), nil
	}
	if _, _, err := net.SplitHostPort(s); err != nil {
		return "", fmt.Errorf("%s: want HOST:PORT or PORT, got %q", flag, s)
	}
	return s, nil
}

// isLoopback reports whether a listener's address reaches only this host.
func isLoopback(a net.Addr) bool {
	ap, err := netip.ParseAddrPort(a.String())
	return err == nil && ap.Addr().IsLoopback()
}

// startDashboard serves the live dashboard of srv on addr. When the server
// has a user with a password, the page asks for the same user and password
// (HTTP basic authentication); otherwise it is open, and a warning says so
// when addr is not loopback.
func startDashboard(addr string, st *dashboard.State, srv *core.Server, users []core.User, log *slog.Logger) (*http.Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--dashboard: %w", err)
	}
	var h http.Handler = dashboard.NewHandler(st, func() dashboard.Facts { return dashboard.FactsOf(srv.Facts()) })
	protected := len(users) == 1 && users[0].Password != ""
	if protected {
		h = basicAuth(h, users[0].Name, users[0].Password)
	}
	if !isLoopback(ln.Addr()) && !protected {
		log.Warn("the dashboard is open to the network without a password: anyone who reaches it sees the clients' addresses and user names; bind it to 127.0.0.1 or give the server -a USER with a password",
			"addr", ln.Addr().String())
	}
	if !isLoopback(ln.Addr()) && protected {
		log.Warn("the dashboard asks for the btest password over plain HTTP: it crosses the network readable by anyone on the path; bind it to 127.0.0.1 and reach it through an SSH tunnel or a TLS proxy (Caddy's btest_dashboard)",
			"addr", ln.Addr().String())
	}
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: time.Minute}
	go hs.Serve(ln)
	log.Info("dashboard", "url", "http://"+ln.Addr().String()+"/", "password", protected)
	return hs, nil
}

// basicAuth lets through requests with the user and password, and holds
// wrong passwords to the bounds of a loginLimiter.
func basicAuth(next http.Handler, user, password string) http.Handler {
	return basicAuthAt(next, user, password, &loginLimiter{}, time.Now)
}

func basicAuthAt(next http.Handler, user, password string, lim *loginLimiter, now func() time.Time) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		if !ok {
			// A browser's first request, before it asks for the
			// password: not a guess.
			unauthorized(w)
			return
		}
		src := loginSource(r.RemoteAddr)
		if !lim.take(src, now()) {
			w.Header().Set("Retry-After", strconv.Itoa(int(loginEvery/time.Second)))
			http.Error(w, "too many wrong passwords: try again later", http.StatusTooManyRequests)
			return
		}
		userOK := subtle.ConstantTimeCompare([]byte(u), []byte(user)) == 1
		passOK := subtle.ConstantTimeCompare([]byte(p), []byte(password)) == 1
		if !userOK || !passOK {
			unauthorized(w)
			return
		}
		lim.giveBack(src)
		next.ServeHTTP(w, r)
	})
}

func unauthorized(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", `Basic realm="btest", charset="UTF-8"`)
	http.Error(w, "unauthorized", http.StatusUnauthorized)
}
