// Command btest is a MikroTik Bandwidth Test server and client.
//
//	btest -s [--listen :2000] [-a USER -p PASS [--ecsrp5]]      run a server
//	btest -c HOST [-t] [-r] [--proto udp] [-n 20] [-b 100M]     run a test
//	btest verifier -a USER -p PASS                              print an EC-SRP5 verifier
//
// Flags follow RouterOS's /tool bandwidth-test and btest-rs where they
// exist. Passwords can come from the BTEST_PASSWORD environment variable so
// they stay out of the process list.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/pflag"

	"github.com/btest-go/btest/internal/version"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, redactProcessArgs(), os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is main without the process exit and signals, for tests. ctx ending
// stops a server, or ends a client test early (a normal end).
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "verifier" {
		return runVerifier(args[1:], stdout, stderr)
	}
	o, err := parseFlags(args, stdout)
	if errors.Is(err, pflag.ErrHelp) {
		return 0
	}
	if err != nil {
		return usageError(stderr, err)
	}
	switch {
	case o.version:
		fmt.Fprintln(stdout, "btest", version.Get())
	case o.server:
		log := newLogger(o, stderr)
		for _, msg := range o.ignored {
			log.Warn(msg)
		}
		cfg, cerr := serverConfig(o, log)
		if cerr != nil {
			return usageError(stderr, cerr)
		}
		err = runServer(ctx, o, cfg, log)
	case o.client != "":
		cfg, cerr := clientConfig(o)
		if cerr != nil {
			return usageError(stderr, cerr)
		}
		if err = runClient(ctx, o, cfg, stdout, stderr); err != nil {
			msg, detail := clientError(o, err)
			fmt.Fprintln(stderr, "btest:", msg)
			if o.verbose && detail != "" {
				fmt.Fprintln(stderr, "btest: detail:", detail)
			}
			return 1
		}
	default:
		return usageError(stderr, errors.New("need -s (server) or -c HOST (client)"))
	}
	var bc badConfig
	if errors.As(err, &bc) {
		return usageError(stderr, bc.err)
	}
	if err != nil {
		fmt.Fprintln(stderr, "btest:", err)
		return 1
	}
	return 0
}

// badConfig is a configuration error found once a mode has started (core
// rejected it): the command line's fault, so exit code 2.
type badConfig struct{ err error }

func (e badConfig) Error() string { return e.err.Error() }
func (e badConfig) Unwrap() error { return e.err }

// usageError reports bad usage, found while parsing or while turning the
// flags into a configuration, and returns exit code 2.
func usageError(stderr io.Writer, err error) int {
	fmt.Fprintln(stderr, "btest:", err)
	fmt.Fprintln(stderr, "see 'btest --help'")
	return 2
}
