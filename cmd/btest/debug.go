package main

import (
	_ "expvar" // registers /debug/vars on the default mux
	"fmt"
	"net"
	"net/http"
	"time"
)

// startDebug serves the default mux on addr: expvar always, pprof in
// builds with -tags pprof (debug_pprof.go). pprof is left out of release
// builds because it is more than half a megabyte of a binary meant for
// small routers (the size target of the release archives).
func startDebug(addr string) (*http.Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--debug-addr: %w", err)
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	return srv, nil
}
