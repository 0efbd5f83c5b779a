// Command xcaddy-build is Caddy with its standard modules and the btest app,
// the same binary `xcaddy build --with github.com/btest-go/btest/caddymodule`
// produces. Build it with `make caddy` (go build -o bin/caddy ./cmd/xcaddy-build).
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	// Caddy's standard modules: HTTP server, file server, TLS, admin, metrics.
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	// The btest app and its Caddyfile global option.
	_ "github.com/btest-go/btest/caddymodule"
)

func main() {
	caddycmd.Main()
}
