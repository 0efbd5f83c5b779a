package core

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/btest-go/btest/core/portpool"
)

// ParsePrefix parses a CIDR prefix ("10.0.0.0/8", "fd00::/8") or a single
// address ("192.0.2.1", "::1"), which becomes a one-host prefix. IPv4-mapped
// IPv6 addresses are unmapped, as the server unmaps the addresses of its
// clients before it matches them.
func ParsePrefix(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("invalid network %q: %w", s, err)
		}
		if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
		}
		return p.Masked(), nil
	}
	ip, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("invalid network %q: want a CIDR prefix or an IP address", s)
	}
	ip = ip.Unmap()
	return netip.PrefixFrom(ip, ip.BitLen()), nil
}

// ParsePrefixes parses a list with ParsePrefix, stopping at the first error.
func ParsePrefixes(ss []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(ss))
	for _, s := range ss {
		p, err := ParsePrefix(s)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// ParsePortRange parses a UDP port range "first-last" or a single port
// "first". The client side of every port (port + 256, see docs/protocol.md, §11.1
// Ports) must be a valid port too.
func ParsePortRange(s string) (first, last int, err error) {
	lo, hi, found := strings.Cut(s, "-")
	if !found {
		hi = lo
	}
	first, err1 := strconv.Atoi(strings.TrimSpace(lo))
	last, err2 := strconv.Atoi(strings.TrimSpace(hi))
	if err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("invalid port range %q: want first-last or one port, e.g. %d-%d", s, DefaultUDPPortFirst, DefaultUDPPortLast)
	}
	if first < 1 || last < first || last+portpool.ClientOffset > 65535 {
		return 0, 0, fmt.Errorf("invalid port range %q: need 1 <= first <= last <= %d", s, 65535-portpool.ClientOffset)
	}
	return first, last, nil
}
