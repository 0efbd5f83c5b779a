package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"

	"github.com/spf13/pflag"

	"github.com/btest-go/btest/core/ecsrp5"
)

// runVerifier prints an EC-SRP5 verifier for a user, to put into a server
// configuration instead of the plaintext password.
func runVerifier(args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("btest verifier", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	user := fs.StringP("user", "a", "", "user name")
	pass := fs.StringP("password", "p", "", "password (better: $BTEST_PASSWORD)")
	help := fs.BoolP("help", "h", false, "show this help")
	usage := func() {
		fmt.Fprintf(stdout, "Usage: btest verifier -a USER [-p PASS]\n\nPrints the EC-SRP5 verifier (salt:x_gamma:parity) to give a server\ninstead of the plaintext password.\n\n%s", fs.FlagUsages())
	}
	if err := fs.Parse(normalizeArgs(fs, args)); err != nil || *help {
		if err == nil || errors.Is(err, pflag.ErrHelp) {
			usage()
			return 0
		}
		fmt.Fprintln(stderr, "btest verifier:", err)
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "btest verifier: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if *pass == "" {
		*pass = os.Getenv("BTEST_PASSWORD")
	}
	if *user == "" {
		fmt.Fprintln(stderr, "btest verifier: need -a USER (and -p PASS or $BTEST_PASSWORD)")
		return 2
	}
	if *pass == "" {
		// A verifier of the empty password lets anybody in who knows
		// the user name.
		fmt.Fprintln(stderr, "btest verifier: need a password: -p PASS or $BTEST_PASSWORD")
		return 2
	}
	v, err := ecsrp5.NewVerifier(*user, *pass, nil)
	if err != nil {
		fmt.Fprintln(stderr, "btest verifier:", err)
		return 1
	}
	fmt.Fprintln(stdout, v.String())
	return 0
}

func splitHostPort(s string) (string, string, error) { return net.SplitHostPort(s) }

func joinHostPort(host string, port int) string {
	return net.JoinHostPort(host, strconv.Itoa(port))
}
