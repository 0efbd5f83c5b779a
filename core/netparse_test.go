package core

import "testing"

func TestParsePortRange(t *testing.T) {
	t.Parallel()
	for in, want := range map[string][2]int{"2001-2999": {2001, 2999}, "40000": {40000, 40000}, " 1 - 2 ": {1, 2}, "65279": {65279, 65279}} {
		f, l, err := ParsePortRange(in)
		if err != nil || f != want[0] || l != want[1] {
			t.Errorf("ParsePortRange(%q) = %d, %d, %v", in, f, l, err)
		}
	}
	for _, in := range []string{"", "-", "a-b", "0", "10-5", "65280", "1-65280", "-5"} {
		if _, _, err := ParsePortRange(in); err == nil {
			t.Errorf("ParsePortRange(%q): no error", in)
		}
	}
}

func TestParsePrefix(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"10.1.2.3/8": "10.0.0.0/8", "192.0.2.1": "192.0.2.1/32", "::1": "::1/128",
		"::ffff:10.0.0.1": "10.0.0.1/32", "2001:db8::/32": "2001:db8::/32",
		"::ffff:10.1.2.3/104": "10.0.0.0/8", " 10.0.0.1 ": "10.0.0.1/32",
	} {
		p, err := ParsePrefix(in)
		if err != nil || p.String() != want {
			t.Errorf("ParsePrefix(%q) = %v, %v; want %s", in, p, err, want)
		}
	}
	for _, in := range []string{"", "10.0.0.0/33", "example.com", "10.0.0/8"} {
		if _, err := ParsePrefix(in); err == nil {
			t.Errorf("ParsePrefix(%q): no error", in)
		}
	}
	if ps, err := ParsePrefixes([]string{"10.0.0.0/8", "::1"}); err != nil || len(ps) != 2 {
		t.Errorf("ParsePrefixes = %v, %v", ps, err)
	}
	if _, err := ParsePrefixes([]string{"10.0.0.0/8", "bad"}); err == nil {
		t.Error("ParsePrefixes with a bad entry: no error")
	}
}
