package core

import "testing"

func TestParseBitRate(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]uint64{
		"": 0, "0": 0, "64000": 64000, "100M": 100e6, "1.5G": 1.5e9, "500k": 500e3,
		"10Mbps": 10e6, "2g": 2e9, " 1T ": 1e12,
	} {
		got, err := ParseBitRate(in)
		if err != nil || got != want {
			t.Errorf("%q: %d %v, want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"fast", "-1M", "1e400", "M", "NaN"} {
		if _, err := ParseBitRate(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if s := FormatBitRate(941.5e6); s != "941.50 Mbps" {
		t.Errorf("format %q", s)
	}
}
