package caddymodule

import (
	"fmt"
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/btest-go/btest/dashboard"
)

func init() {
	caddy.RegisterModule(new(Dashboard))
	httpcaddyfile.RegisterHandlerDirective("btest_dashboard", parseDashboardCaddyfile)
	// After basic_auth, forward_auth, handle and route; before respond,
	// reverse_proxy and file_server, which often serve the rest of the
	// site without a matcher: the usual site (auth, the dashboard's path,
	// everything else) needs no route block.
	httpcaddyfile.RegisterDirectiveOrder("btest_dashboard", httpcaddyfile.Before, "respond")
}

// Dashboard is the live web page of the btest app: the tests running now
// with a graph each, the last finished ones, refusals by reason and the
// server's throughput over the last ten minutes, with api/state (JSON)
// and api/events (Server-Sent Events) for scripts. It answers every
// request it gets and uses relative URLs, so mount it under any path
// (e.g. /btest/*). It has no access control of its own: put basic_auth
// (or forward_auth) in front of it.
//
// It needs the btest app in the same config. The history (recent tests,
// throughput) lives as long as Caddy runs and survives config reloads.
type Dashboard struct {
	h *dashboard.Handler
}

// CaddyModule returns the Caddy module information.
func (*Dashboard) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "http.handlers.btest_dashboard",
		New: func() caddy.Module { return new(Dashboard) },
	}
}

// Provision finds the btest app of this config.
func (d *Dashboard) Provision(ctx caddy.Context) error {
	v, err := ctx.AppIfConfigured("btest")
	if err != nil {
		return fmt.Errorf("btest_dashboard needs the btest app (a `btest` global option in the Caddyfile): %w", err)
	}
	app, ok := v.(*App)
	if !ok || app.dash == nil {
		return fmt.Errorf("btest_dashboard: the btest app is a %T without a dashboard state", v)
	}
	d.h = dashboard.NewHandler(app.dash, app.dashboardFacts)
	return nil
}

// Cleanup ends the event streams this handler serves: after a reload the
// browsers reconnect to the new config's handler, whose facts describe the
// new config. (Caddy cleans up a config's modules after its apps stopped;
// the HTTP server's shutdown already ended the streams, see
// dashboard.Handler, except those of HTTP/3.)
func (d *Dashboard) Cleanup() error {
	if d.h != nil {
		d.h.Close()
	}
	return nil
}

// ServeHTTP serves the dashboard; it never calls next.
func (d *Dashboard) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	d.h.ServeHTTP(w, r)
	return nil
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens. Syntax:
//
//	btest_dashboard [<matcher>]
func (d *Dashboard) UnmarshalCaddyfile(disp *caddyfile.Dispenser) error {
	disp.Next() // the directive's name
	if disp.NextArg() {
		return disp.ArgErr()
	}
	if disp.NextBlock(0) {
		return disp.Errf("btest_dashboard takes no options, got '%s'", disp.Val())
	}
	return nil
}

func parseDashboardCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	d := new(Dashboard)
	err := d.UnmarshalCaddyfile(h.Dispenser)
	return d, err
}

// Interface guards
var (
	_ caddy.Provisioner           = (*Dashboard)(nil)
	_ caddy.CleanerUpper          = (*Dashboard)(nil)
	_ caddyhttp.MiddlewareHandler = (*Dashboard)(nil)
	_ caddyfile.Unmarshaler       = (*Dashboard)(nil)
)
