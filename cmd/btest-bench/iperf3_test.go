package main

import "testing"

// TestIperfVersion: the version printed by `iperf3 --version` decides
// whether the UDP GSO/GRO cases run iperf3 with --gsro (3.20 and later).
func TestIperfVersion(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		out     string
		version string
		gsro    bool
	}{
		{"iperf 3.12 (cJSON 1.7.15)\nLinux vm 6.1.0 #1 SMP x86_64\n", "3.12", false},
		{"iperf 3.19.1 (cJSON 1.7.15)\n", "3.19.1", false},
		{"iperf 3.20 (cJSON 1.7.15)\n", "3.20", true},
		{"iperf 3.21+ (cJSON 1.7.15)\nLinux vm 6.18.44 x86_64\n", "3.21+", true},
		{"iperf 4.0\n", "4.0", true},
	} {
		var i iperf3
		if !i.parseVersion([]byte(c.out)) || i.version != c.version || i.gsro != c.gsro {
			t.Errorf("%q: version %q gsro %v, want %q %v", c.out, i.version, i.gsro, c.version, c.gsro)
		}
	}
	var i iperf3
	if i.parseVersion([]byte("command not found")) {
		t.Error("a version found in output without one")
	}
}
