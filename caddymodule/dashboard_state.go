package caddymodule

import (
	"github.com/caddyserver/caddy/v2"

	"github.com/btest-go/btest/dashboard"
)

// dashboards holds the dashboard state across config reloads: the new
// config's app takes a reference before the old one lets go of its own,
// so the history goes on; it ends when Caddy exits or a config without the
// btest app is loaded.
var dashboards = caddy.NewUsagePool()

// dashboardKey names the one state: a config has at most one btest app.
const dashboardKey = "btest"

// sharedDashboard returns the dashboard state and the function that gives
// the reference back.
func sharedDashboard() (*dashboard.State, func(), error) {
	v, _, err := dashboards.LoadOrNew(dashboardKey, func() (caddy.Destructor, error) {
		return pooledState{dashboard.New()}, nil
	})
	if err != nil {
		return nil, nil, err
	}
	return v.(pooledState).State, func() { dashboards.Delete(dashboardKey) }, nil
}

// pooledState stops the state's clock when the last config lets go of it.
type pooledState struct{ *dashboard.State }

// Destruct implements caddy.Destructor.
func (p pooledState) Destruct() error { return p.Close() }

// dashboardFacts describes the running server for the dashboard.
func (a *App) dashboardFacts() dashboard.Facts {
	return dashboard.FactsOf(a.srv.Facts())
}
