package main

import (
	_ "expvar" // registers /debug/vars on the default mux
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/pflag"
)

// startDebug serves the default mux on addr: expvar always, pprof in
// builds with -tags pprof (debug_pprof.go). pprof is left out of release
// builds because it is more than half a megabyte of a binary meant for
// small routers (the size target of the release archives).
func startDebug(addr string, log *slog.Logger) (*http.Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--debug-addr: %w", err)
	}
	if !isLoopback(ln.Addr()) {
		log.Warn("the debug endpoint is open to the network: anyone who reaches it reads the server's variables (and, in -tags pprof builds, its profiles); bind it to 127.0.0.1",
			"addr", ln.Addr().String())
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	log.Info("debug endpoint", "addr", ln.Addr().String())
	return srv, nil
}

// secretFlags are the flags whose values must not leave the process:
// expvar's "cmdline" on --debug-addr shows os.Args to whoever asks.
var secretFlags = []string{"password", "verifier"}

// redactProcessArgs replaces the values of secret flags in os.Args with
// "***" and returns the arguments as given, for run.
func redactProcessArgs() []string {
	args := os.Args[1:]
	os.Args = append([]string{os.Args[0]}, redactArgs(args)...)
	return args
}

// redactArgs returns a copy of args with "***" for each value of a secret
// flag, in every spelling the flag set takes: "-p X", "-pX", "-p=X",
// "-trp X", "--password X", "--password=X" and the single-dash long forms.
// It follows which arguments are values, as normalizeArgs does.
func redactArgs(args []string) []string {
	fs := newCLI(&options{}).all
	secret := func(f *pflag.Flag) bool { return slices.Contains(secretFlags, f.Name) }
	out := slices.Clone(args)
	for i := 0; i < len(out); i++ {
		a := out[i]
		if a == "--" {
			break
		}
		if a == "-" || !strings.HasPrefix(a, "-") {
			continue
		}
		dashes := "-"
		if strings.HasPrefix(a, "--") {
			dashes = "--"
		}
		name, _, inline := strings.Cut(a[len(dashes):], "=")
		if f := fs.Lookup(name); f != nil && (dashes == "--" || len(name) > 1) {
			switch {
			case inline && secret(f):
				out[i] = dashes + name + "=***"
			case !inline && f.NoOptDefVal == "" && i+1 < len(out):
				if i++; secret(f) {
					out[i] = "***"
				}
			}
			continue
		}
		if dashes == "--" {
			continue // unknown: pflag reports it
		}
		cluster := a[1:]
		for j := range len(cluster) {
			f := fs.ShorthandLookup(cluster[j : j+1])
			if f == nil || f.NoOptDefVal != "" {
				if f == nil {
					break
				}
				continue // a boolean: the cluster goes on
			}
			if rest := cluster[j+1:]; rest != "" {
				if secret(f) {
					sep := ""
					if strings.HasPrefix(rest, "=") {
						sep = "="
					}
					out[i] = "-" + cluster[:j+1] + sep + "***"
				}
			} else if i+1 < len(out) {
				if i++; secret(f) {
					out[i] = "***"
				}
			}
			break
		}
	}
	return out
}
