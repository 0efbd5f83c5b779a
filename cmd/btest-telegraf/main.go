// Command btest-telegraf runs MikroTik bandwidth tests for Telegraf's
// inputs.execd and writes the results as line protocol:
//
//	[[inputs.execd]]
//	  command = ["btest-telegraf", "-config", "/etc/telegraf/btest.conf"]
//	  signal = "STDIN"
//	  data_format = "influx"
//
// btest-telegraf -sample-config prints a configuration with every option;
// btest-telegraf -version prints the version and VCS revision.
// It stops cleanly on stdin EOF (Telegraf stopping), SIGTERM and SIGINT; a
// failed test is a data point, never a reason to exit. See package
// telegrafinput.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"

	"github.com/btest-go/btest/internal/version"
	"github.com/btest-go/btest/telegrafinput"
)

func main() {
	args := os.Args[1:]
	if len(args) == 1 && (args[0] == "-version" || args[0] == "--version") {
		fmt.Println("btest-telegraf", version.Get())
		return
	}
	if slices.ContainsFunc(args, isConfigFlag) {
		// Telegraf logs the plugin's "I! " lines: the version lands in
		// its log next to Telegraf's own.
		telegrafinput.NewLogger(os.Stderr).Infof("btest-telegraf %s", version.Get())
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := telegrafinput.Main(ctx, args, os.Stdin, os.Stdout, os.Stderr, triggerSignals(ctx))
	stop()
	os.Exit(code)
}

// isConfigFlag reports a -config flag: the program is about to run tests.
func isConfigFlag(a string) bool {
	return strings.HasPrefix(a, "-") && strings.HasPrefix(strings.TrimLeft(a, "-"), "config")
}

// triggerSignals turns SIGHUP, SIGUSR1 and SIGUSR2, the other ways
// inputs.execd can signal each interval, into round triggers (where the
// platform has them).
func triggerSignals(ctx context.Context) <-chan struct{} {
	out := make(chan struct{}, 1)
	sigs := make(chan os.Signal, 1)
	notifyTriggers(sigs)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-sigs:
				select {
				case out <- struct{}{}:
				default: // a round is already asked for
				}
			}
		}
	}()
	return out
}
