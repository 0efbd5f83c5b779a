//go:build pprof

package main

// Builds with -tags pprof also serve /debug/pprof on --debug-addr.
import _ "net/http/pprof"
