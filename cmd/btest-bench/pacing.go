package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"regexp"
	"text/tabwriter"

	"github.com/btest-go/btest/core"
)

// Pacing accuracy: a rate limit must land within pacingTolerance of the
// rate asked over a run, for what our client sends (--local-tx-speed, any
// rate) and what the server sends (--remote-tx-speed, up to the wire's
// 32-bit field, 4.29 Gbit/s), TCP and UDP.
var (
	localRates  = []string{"1M", "10M", "100M", "1G", "10G", "20G"}
	remoteRates = []string{"1M", "10M", "100M", "1G", "4.29G"}
)

// pacingTolerance is the largest error, as a fraction of the rate asked,
// that counts as on target.
const pacingTolerance = 0.01

// runPacing prints the pacing table: per protocol, side and rate (the rows
// whose "pacing PROTO FLAG RATE" matches only), the rate measured over the
// run by the sender's own count for our client's sends and by the client's
// received count for the server's, and the error.
func runPacing(ctx context.Context, e *env, only *regexp.Regexp) {
	fmt.Printf("pacing: rate asked vs measured over %v (sender count for --local-tx-speed, client's received count for --remote-tx-speed), on target within %.0f %%\n",
		e.duration, pacingTolerance*100)
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "protocol\tlimit\tasked\tmeasured\terror %\tloss %\ton target\t")
	for _, proto := range []string{"tcp", "udp"} {
		for _, side := range []struct {
			flag, dir string
			rates     []string
		}{{"--local-tx-speed", "-t", localRates}, {"--remote-tx-speed", "-r", remoteRates}} {
			for _, rate := range side.rates {
				if !only.MatchString(fmt.Sprintf("pacing %s %s %s", proto, side.flag, rate)) {
					continue
				}
				fmt.Fprintf(os.Stderr, "pacing %s %s %s ...\n", proto, side.flag, rate)
				asked, err := core.ParseBitRate(rate)
				if err != nil {
					fatal(err)
				}
				_, sum, err := runOurs(ctx, e, "--proto", proto, side.dir, side.flag, rate)
				if err != nil {
					fmt.Fprintf(tw, "%s\t%s\t%s\terror: %v\t\t\t\t\n", proto, side.flag, rate, err)
					continue
				}
				// The summary's rates, not bytes over the test's length:
				// what a UDP sender reports sent is what its receiver
				// reported, up to the last report before the end.
				bps, bytes := sum.TxBps, sum.RxBytes
				if side.dir == "-r" {
					bps = sum.RxBps
				}
				errPct := 100 * (bps - float64(asked)) / float64(asked)
				loss := "-"
				if proto == "udp" && side.dir == "-r" && bytes > 0 {
					loss = fmt.Sprintf("%.2f", 100*float64(sum.LostPackets)/(float64(sum.LostPackets)+float64(bytes)/1500))
				}
				ok := "yes"
				if math.Abs(errPct) > pacingTolerance*100 {
					ok = "NO"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%+.2f\t%s\t%s\t\n", proto, side.flag, rate, core.FormatBitRate(bps), errPct, loss, ok)
			}
		}
	}
	tw.Flush()
}
