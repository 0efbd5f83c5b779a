package core

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ParseBitRate parses a rate in bit/s with an optional SI suffix, as
// RouterOS and iperf3 users write it: "100M", "1.5G", "500k", "64000".
// Suffixes are decimal (k = 1000) and case-insensitive; a trailing "bps"
// or "bit" is allowed. "0" and "" mean unlimited.
func ParseBitRate(s string) (uint64, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	t = strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(t, "/s"), "bps"), "bit")
	if t == "" {
		return 0, nil
	}
	mult := 1.0
	switch t[len(t)-1] {
	case 'k':
		mult = 1e3
	case 'm':
		mult = 1e6
	case 'g':
		mult = 1e9
	case 't':
		mult = 1e12
	}
	if mult != 1 {
		t = t[:len(t)-1]
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("invalid bit rate %q (want e.g. 100M, 1.5G, 64000)", s)
	}
	r := v * mult
	if r >= math.MaxUint64 {
		return 0, fmt.Errorf("bit rate %q is too large", s)
	}
	return uint64(math.Round(r)), nil
}

// FormatBitRate formats bit/s with a decimal unit, e.g. "941.52 Mbps".
func FormatBitRate(bps float64) string {
	switch {
	case bps >= 1e9:
		return strconv.FormatFloat(bps/1e9, 'f', 2, 64) + " Gbps"
	case bps >= 1e6:
		return strconv.FormatFloat(bps/1e6, 'f', 2, 64) + " Mbps"
	case bps >= 1e3:
		return strconv.FormatFloat(bps/1e3, 'f', 2, 64) + " kbps"
	}
	return strconv.FormatFloat(bps, 'f', 0, 64) + " bps"
}

// MaxRemoteTxSpeed is the largest rate a client can ask the server to send
// at: the command's speed fields are 32-bit bit/s (docs/protocol.md, the
// command), about 4.29 Gbit/s. A larger value is sent as this one.
const MaxRemoteTxSpeed = math.MaxUint32
