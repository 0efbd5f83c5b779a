// Command btest-telegraf runs MikroTik bandwidth tests for Telegraf's
// inputs.execd and writes the results as line protocol:
//
//	[[inputs.execd]]
//	  command = ["btest-telegraf", "-config", "/etc/telegraf/btest.conf"]
//	  signal = "STDIN"
//	  data_format = "influx"
//
// btest-telegraf -sample-config prints a configuration with every option.
// It stops cleanly on stdin EOF (Telegraf stopping), SIGTERM and SIGINT; a
// failed test is a data point, never a reason to exit. See package
// telegrafinput.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/btest-go/btest/telegrafinput"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := telegrafinput.Main(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, triggerSignals(ctx))
	stop()
	os.Exit(code)
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
