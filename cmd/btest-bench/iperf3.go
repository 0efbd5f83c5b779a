package main

import (
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
)

// iperf3 is the iperf3 binary the bench compares with.
type iperf3 struct {
	path    string
	version string // as it prints it, e.g. "3.12" or "3.21+"
	gsro    bool   // has --gsro (UDP GSO/GRO, iperf3 3.20 and later)
}

// gsroFrom is the first iperf3 release with UDP GSO/GRO (--gsro).
var gsroFrom = [2]int{3, 20}

var iperfVersion = regexp.MustCompile(`iperf (\d+)\.(\d+)\S*`)

// probe runs `iperf3 --version` and learns what the binary can do.
func (i *iperf3) probe(ctx context.Context) error {
	out, err := exec.CommandContext(ctx, i.path, "--version").CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s --version: %w", i.path, err)
	}
	if !i.parseVersion(out) {
		return fmt.Errorf("%s --version: no version in %q", i.path, out)
	}
	return nil
}

// parseVersion reads the version from `iperf3 --version` output and
// whether that version has --gsro; false when there is no version.
func (i *iperf3) parseVersion(out []byte) bool {
	m := iperfVersion.FindSubmatch(out)
	if m == nil {
		return false
	}
	major, _ := strconv.Atoi(string(m[1]))
	minor, _ := strconv.Atoi(string(m[2]))
	i.version = string(m[0][len("iperf "):])
	i.gsro = major > gsroFrom[0] || major == gsroFrom[0] && minor >= gsroFrom[1]
	return true
}

// gsroNote says whether the GSO/GRO cases run iperf3 with --gsro.
func (i *iperf3) gsroNote() string {
	if i.gsro {
		return "; UDP GSO+GRO cases with --gsro"
	}
	return "; no --gsro before 3.20, UDP cases without GSO/GRO on iperf3's side"
}
