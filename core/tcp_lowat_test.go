package core

import "testing"

// TestLowatFor: the mark is what arrives in lowatSpan at the rate, rounded
// down to a power of two, within [lowatMin, lowatMax] and a quarter of the
// receive buffer; anything smaller leaves the kernel's default.
func TestLowatFor(t *testing.T) {
	t.Parallel()
	const big = 64 << 20 // a receive buffer that does not limit
	for _, c := range []struct {
		name   string
		rate   float64 // bytes/s
		rcvbuf int
		want   int
	}{
		{"idle", 0, big, 0},
		{"10 Mbit/s", 10e6 / 8, big, 0},
		{"just under the minimum", lowatMin/lowatSpan.Seconds() - 1, big, 0},
		{"at the minimum", lowatMin / lowatSpan.Seconds(), big, lowatMin},
		{"1 Gbit/s: 1 MB in 8 ms", 1e9 / 8, big, 512 << 10},
		{"10 Gbit/s: capped at the maximum", 10e9 / 8, big, lowatMax},
		{"small buffer caps it", 10e9 / 8, 1 << 20, 256 << 10},
		{"buffer too small for any mark", 10e9 / 8, 128 << 10, 0},
	} {
		if got := lowatFor(c.rate, c.rcvbuf); got != c.want {
			t.Errorf("%s: lowatFor(%.0f, %d) = %d, want %d", c.name, c.rate, c.rcvbuf, got, c.want)
		}
	}
}
