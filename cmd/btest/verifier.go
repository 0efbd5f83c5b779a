package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"

	"github.com/btest-go/btest/core/ecsrp5"
)

// runVerifier prints an EC-SRP5 verifier for a user, to put into a server
// configuration instead of the plaintext password.
func runVerifier(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("btest verifier", flag.ContinueOnError)
	fs.SetOutput(stderr)
	user := fs.String("user", "", "user name")
	fs.Var(fs.Lookup("user").Value, "a", "alias for --user")
	pass := fs.String("password", "", "password (or $BTEST_PASSWORD)")
	fs.Var(fs.Lookup("password").Value, "p", "alias for --password")
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	if *pass == "" {
		*pass = os.Getenv("BTEST_PASSWORD")
	}
	if *user == "" {
		fmt.Fprintln(stderr, "btest verifier: need -a USER (and -p PASS or $BTEST_PASSWORD)")
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
