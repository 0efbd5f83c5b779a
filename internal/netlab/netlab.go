// Package netlab builds a real, shaped link for tests: two network
// namespaces of their own joined by a veth pair, each end shaped by tc
// (tbf for the bottleneck, netem under it for delay and random loss), and
// commands run inside either namespace with `ip netns exec`. Nothing is
// sent outside the namespaces it creates, and everything goes away when the
// test ends.
package netlab

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/btest-go/btest/internal/testutil"
)

// ErrNoNetem is returned by Shape when the kernel has no sch_netem.
var ErrNoNetem = errors.New("netlab: netem is not available")

// Required reports whether a missing capability must fail a test instead of
// skipping it: in CI (CI=true) and in end-to-end runs (BTEST_E2E set).
func Required() bool {
	if os.Getenv("CI") == "true" {
		return true
	}
	v := os.Getenv("BTEST_E2E")
	return v != "" && v != "0" && v != "false"
}

// Check skips t, or fails it when Required, unless this process may build
// a lab: it runs as root and has ip and tc.
func Check(t testing.TB) {
	t.Helper()
	miss := func(why string) {
		t.Helper()
		if Required() {
			t.Fatalf("netlab: %s (required in CI and with BTEST_E2E)", why)
		}
		t.Skipf("netlab: %s; skipping the shaped-link test", why)
	}
	if os.Geteuid() != 0 {
		miss("not root: cannot create network namespaces")
	}
	for _, tool := range []string{"ip", "tc"} {
		if _, err := exec.LookPath(tool); err != nil {
			miss(tool + " not found (install iproute2: bash scripts/install-netlab.sh)")
		}
	}
}

// Lab is a pair of namespaces joined by a veth pair with a /30 between
// them: A at .1, B at .2.
type Lab struct {
	A, B         string     // namespace names
	AddrA, AddrB netip.Addr // the veth ends' addresses
	devA, devB   string
}

var labs atomic.Int32

// New builds a lab whose names carry this process's id (so that parallel
// test processes never share one) and removes it when t ends.
func New(t testing.TB) *Lab {
	t.Helper()
	n := labs.Add(1)
	id := fmt.Sprintf("%d-%d", os.Getpid(), n)
	l := &Lab{
		A: "btlabA-" + id, B: "btlabB-" + id,
		// veth names are at most 15 bytes.
		devA: fmt.Sprintf("bta%d", os.Getpid()%1_000_000*100+int(n)%100),
		devB: fmt.Sprintf("btb%d", os.Getpid()%1_000_000*100+int(n)%100),
		// A test-only range, living only inside these namespaces.
		AddrA: netip.MustParseAddr("10.77.0.1"),
		AddrB: netip.MustParseAddr("10.77.0.2"),
	}
	t.Cleanup(func() {
		for _, ns := range []string{l.A, l.B} {
			exec.Command("ip", "netns", "del", ns).Run()
		}
	})
	steps := [][]string{
		{"ip", "netns", "add", l.A},
		{"ip", "netns", "add", l.B},
		{"ip", "link", "add", l.devA, "netns", l.A, "type", "veth", "peer", "name", l.devB, "netns", l.B},
		{"ip", "-n", l.A, "addr", "add", l.AddrA.String() + "/30", "dev", l.devA},
		{"ip", "-n", l.B, "addr", "add", l.AddrB.String() + "/30", "dev", l.devB},
		{"ip", "-n", l.A, "link", "set", "lo", "up"},
		{"ip", "-n", l.B, "link", "set", "lo", "up"},
		{"ip", "-n", l.A, "link", "set", l.devA, "up"},
		{"ip", "-n", l.B, "link", "set", l.devB, "up"},
	}
	for _, s := range steps {
		if err := run(s...); err != nil {
			if Required() {
				t.Fatalf("netlab: %v", err)
			}
			t.Skipf("netlab: cannot build the lab here: %v", err)
		}
	}
	return l
}

// Shape puts a tbf bottleneck of rate bit/s on both ends (each direction
// has its own), with a queue of 50 ms as a router would have. With delay
// or loss (percent) a netem under the tbf adds them; ErrNoNetem (wrapped)
// tells that the kernel cannot, and the tbf is then in place alone.
func (l *Lab) Shape(rate uint64, delay time.Duration, lossPct float64) error {
	// tbf needs a bucket of at least one timer tick's worth (HZ may be
	// 100): 10 ms of the rate, and no less than a few full-size frames.
	burst := max(rate/8/100, 16<<10)
	ends := [][2]string{{l.A, l.devA}, {l.B, l.devB}}
	for _, end := range ends {
		ns, dev := end[0], end[1]
		// Start clean: a netem left from an earlier shape must go.
		exec.Command("tc", "-n", ns, "qdisc", "del", "dev", dev, "root").Run()
		if err := run("tc", "-n", ns, "qdisc", "add", "dev", dev, "root", "handle", "1:", "tbf",
			"rate", strconv.FormatUint(rate, 10)+"bit", "burst", strconv.FormatUint(burst, 10), "latency", "50ms"); err != nil {
			return err
		}
	}
	if delay == 0 && lossPct == 0 {
		return nil
	}
	for _, end := range ends {
		ns, dev := end[0], end[1]
		args := []string{"-n", ns, "qdisc", "add", "dev", dev, "parent", "1:1", "handle", "10:", "netem", "limit", "100000"}
		if delay > 0 {
			args = append(args, "delay", fmt.Sprintf("%dus", delay.Microseconds()))
		}
		if lossPct > 0 {
			args = append(args, "loss", strconv.FormatFloat(lossPct, 'f', -1, 64)+"%")
		}
		if err := run(append([]string{"tc"}, args...)...); err != nil {
			for _, e := range ends {
				exec.Command("tc", "-n", e[0], "qdisc", "del", "dev", e[1], "parent", "1:1", "handle", "10:").Run()
			}
			return fmt.Errorf("%w: %v", ErrNoNetem, err)
		}
	}
	return nil
}

// Stats returns what the qdiscs of one end (ns A or B) report, with the
// namespace's UDP counters (a receiver's socket that overflowed shows in
// RcvbufErrors, not in the qdisc) and the veth's own counters (a packet
// the kernel dropped between the qdisc and the socket, when the receiving
// CPU's backlog overflowed, shows there as dropped), for logs.
func (l *Lab) Stats(ns string) string {
	dev := l.devA
	if ns == l.B {
		dev = l.devB
	}
	out, _ := exec.Command("tc", "-n", ns, "-s", "qdisc", "show", "dev", dev).CombinedOutput()
	link, _ := exec.Command("ip", "-n", ns, "-s", "link", "show", "dev", dev).CombinedOutput()
	out = append(out, link...)
	snmp, _ := exec.Command("ip", "netns", "exec", ns, "cat", "/proc/net/snmp").Output()
	for line := range strings.Lines(string(snmp)) {
		if strings.HasPrefix(line, "Udp:") {
			out = append(out, line...)
		}
	}
	return string(out)
}

// Command returns cmd set up to run name with args inside namespace ns,
// scheduled ahead of the machine's other work: the programs under test
// move little data, and what they measure is when it goes and arrives, so
// the machine's other work must not decide when they run. nice -10 is not
// enough for that on 2 cores: the fair scheduler still lets a woken
// receiver or report loop wait its turn for milliseconds behind busy
// processes, and four shaped tests side by side (eight peers) starved
// each other's receivers until their reports, held up and then bunched,
// made a start-up sample look a third faster than the path. The real-time
// round-robin policy runs a woken peer at once; it falls back to nice -10
// where the host does not allow it.
func (l *Lab) Command(ns, name string, args ...string) *exec.Cmd {
	prio := []string{"nice", "-n", "-10"}
	if realtime() {
		prio = []string{"chrt", "--rr", "10"}
	}
	argv := append(append(prio, "ip", "netns", "exec", ns, name), args...)
	c := exec.Command(argv[0], argv[1:]...)
	testutil.DieWithTest(c)
	return c
}

// realtime reports whether this process may start programs under the
// real-time round-robin policy (chrt present, and the right to use it).
var realtime = sync.OnceValue(func() bool {
	return exec.Command("chrt", "--rr", "10", "true").Run() == nil
})

func run(args ...string) error {
	var out bytes.Buffer
	c := exec.Command(args[0], args[1:]...)
	c.Stdout, c.Stderr = &out, &out
	if err := c.Run(); err != nil {
		return fmt.Errorf("%v: %w: %s", args, err, bytes.TrimSpace(out.Bytes()))
	}
	return nil
}
