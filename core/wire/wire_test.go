package wire

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Commands captured from RouterOS clients (docs/protocol.md, §4.1 Layout).
var commandCaptures = []struct {
	hex  string
	want Command
}{
	{"01 01 01 00 00 80 00 00 00 00 00 00 00 00 00 00", Command{Proto: TCP, Direction: ServerReceives, ConnCount: 1, TxSize: 32768}},
	{"01 01 00 00 00 80 00 00 00 00 00 00 00 00 00 00", Command{Proto: TCP, Direction: ServerReceives, Random: true, ConnCount: 1, TxSize: 32768}},
	{"01 02 01 00 00 80 00 00 00 00 00 00 00 00 00 00", Command{Proto: TCP, Direction: ServerSends, ConnCount: 1, TxSize: 32768}},
	{"01 03 01 00 00 80 00 00 00 00 00 00 00 00 00 00", Command{Proto: TCP, Direction: Both, ConnCount: 1, TxSize: 32768}},
	{"01 02 01 0A 00 80 00 00 00 00 00 00 00 00 00 00", Command{Proto: TCP, Direction: ServerSends, ConnCount: 10, TxSize: 32768}},
	{"01 03 01 14 00 80 00 00 00 00 00 00 00 00 00 00", Command{Proto: TCP, Direction: Both, ConnCount: 20, TxSize: 32768}},
	{"01 02 01 00 00 80 00 00 01 00 00 00 00 00 00 00", Command{Proto: TCP, Direction: ServerSends, ConnCount: 1, TxSize: 32768, RemoteTxSpeed: 1}},
	{"01 02 01 00 00 80 00 00 FF FF FF FF 00 00 00 00", Command{Proto: TCP, Direction: ServerSends, ConnCount: 1, TxSize: 32768, RemoteTxSpeed: 0xffffffff}},
	{"01 02 01 00 00 80 00 00 00 00 00 00 01 00 00 00", Command{Proto: TCP, Direction: ServerSends, ConnCount: 1, TxSize: 32768, LocalTxSpeed: 1}},
	{"00 01 01 00 DC 05 00 00 00 00 00 00 00 00 00 00", Command{Proto: UDP, Direction: ServerReceives, ConnCount: 1, TxSize: 1500}},
	{"00 02 01 00 D0 07 00 00 00 00 00 00 00 00 00 00", Command{Proto: UDP, Direction: ServerSends, ConnCount: 1, TxSize: 2000}},
	{"00 02 01 00 00 FA 00 00 00 00 00 00 00 00 00 00", Command{Proto: UDP, Direction: ServerSends, ConnCount: 1, TxSize: 64000}},
	{"00 03 01 00 DC 05 00 00 00 00 00 00 00 00 00 00", Command{Proto: UDP, Direction: Both, ConnCount: 1, TxSize: 1500}},
}

func TestCommandCaptures(t *testing.T) {
	t.Parallel()
	for _, c := range commandCaptures {
		b := unhex(t, c.hex)
		var got Command
		if err := got.Unmarshal(b); err != nil {
			t.Fatalf("%s: %v", c.hex, err)
		}
		if got != c.want {
			t.Errorf("%s: got %+v, want %+v", c.hex, got, c.want)
		}
		if m := got.Marshal(); !bytes.Equal(m[:], b) {
			t.Errorf("%s: marshal gives % x", c.hex, m)
		}
	}
}

func TestCommandRejects(t *testing.T) {
	t.Parallel()
	for _, h := range []string{
		"02 01 01 00 00 80 00 00 00 00 00 00 00 00 00 00", // proto
		"01 00 01 00 00 80 00 00 00 00 00 00 00 00 00 00", // direction 0
		"01 04 01 00 00 80 00 00 00 00 00 00 00 00 00 00", // direction 4
		"01 01 02 00 00 80 00 00 00 00 00 00 00 00 00 00", // random flag
		"01 01 01 00 00 80 00 00 00 00 00 00 00 00 00",    // short
	} {
		var c Command
		if err := c.Unmarshal(unhex(t, h)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err %v, want ErrMalformed", h, err)
		}
	}
}

func TestFramingVectors(t *testing.T) {
	t.Parallel()
	// docs/protocol.md, §17.1 Framing examples.
	c := Command{Proto: TCP, Direction: Both, ConnCount: 20, TxSize: 32768}
	if m := c.Marshal(); !bytes.Equal(m[:], unhex(t, "01 03 01 14 00 80 00 00 00 00 00 00 00 00 00 00")) {
		t.Errorf("command % x", m)
	}
	if m := (Result{Kind: ResultOK, Token: 0xBC04}).Marshal(); !bytes.Equal(m[:], unhex(t, "01 BC 04 00")) {
		t.Errorf("result % x", m)
	}
	if m := (Join{Token: 0xBC04}).Marshal(); !bytes.Equal(m[:], unhex(t, "BC 04 02 00 00 00 00 00 00 00 00 00 00 00 00 00")) {
		t.Errorf("join % x", m)
	}
	if m := MarshalPort(2001); !bytes.Equal(m[:], unhex(t, "07 D1")) {
		t.Errorf("port % x", m)
	}
	if m := (Status{Seq: 7, CPU: 5, Bytes: 1000000}).Marshal(); !bytes.Equal(m[:], unhex(t, "07 85 00 00 07 00 00 00 40 42 0F 00")) {
		t.Errorf("status % x", m)
	}
}

func TestStatusCaptures(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		hex  string
		want Status
	}{
		{"07 00 00 00 01 00 00 00 36 6E 03 00", Status{Seq: 1, Bytes: 224822}},
		{"07 D9 00 00 01 00 00 00 00 00 00 00", Status{CPU: 89, Seq: 1}},
		{"07 FF 00 00 02 00 00 00 00 00 00 00", Status{CPU: 100, Seq: 2}},
	} {
		var s Status
		if err := s.Unmarshal(unhex(t, c.hex)); err != nil {
			t.Fatal(err)
		}
		if s != c.want {
			t.Errorf("%s: %+v, want %+v", c.hex, s, c.want)
		}
	}
}

func TestResult(t *testing.T) {
	t.Parallel()
	for h, want := range map[string]Result{
		"01 00 00 00": {Kind: ResultOK},
		"01 BC 04 00": {Kind: ResultOK, Token: 0xBC04},
		"02 00 00 00": {Kind: ResultMD5},
		"03 00 00 00": {Kind: ResultECSRP5},
		"00 00 00 00": {Kind: ResultAuthFailed},
	} {
		var r Result
		if err := r.Unmarshal(unhex(t, h)); err != nil || r != want {
			t.Errorf("%s: %+v %v", h, r, err)
		}
	}
	var r Result
	if err := r.Unmarshal(unhex(t, "04 00 00 00")); err == nil {
		t.Error("unknown result accepted")
	}
}

func TestJoinAndCommandDistinct(t *testing.T) {
	t.Parallel()
	for _, c := range commandCaptures {
		if LooksLikeJoin(unhex(t, c.hex)) {
			t.Errorf("command %s looks like a join", c.hex)
		}
	}
	j := Join{Token: 0x0201}.Marshal()
	if !LooksLikeJoin(j[:]) {
		t.Error("join with token high byte 2 not recognised")
	}
	var back Join
	bad := j
	bad[15] = 1
	if err := back.Unmarshal(bad[:]); err == nil {
		t.Error("join with trailing garbage accepted")
	}
}

func TestSaturateBytes(t *testing.T) {
	t.Parallel()
	if SaturateBytes(1<<33) != 0xffffffff || SaturateBytes(5) != 5 {
		t.Fatal("saturation wrong")
	}
}

func TestPort(t *testing.T) {
	t.Parallel()
	if _, err := UnmarshalPort([]byte{0, 0}); err == nil {
		t.Error("port 0 accepted")
	}
	if p, err := UnmarshalPort([]byte{0x07, 0xfa}); err != nil || p != 2042 {
		t.Errorf("port %d %v", p, err)
	}
}

func TestHello(t *testing.T) {
	t.Parallel()
	if CheckHello(Hello[:]) != nil || CheckHello([]byte{1, 0, 0, 1}) == nil {
		t.Fatal("hello check wrong")
	}
}

func FuzzCommand(f *testing.F) {
	for _, c := range commandCaptures {
		f.Add(unhex(f, c.hex))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var c Command
		if err := c.Unmarshal(b); err != nil {
			return
		}
		m := c.Marshal()
		var back Command
		if err := back.Unmarshal(m[:]); err != nil || back != c {
			t.Fatalf("round trip %+v -> % x -> %+v %v", c, m, back, err)
		}
	})
}

func FuzzStatus(f *testing.F) {
	f.Add(unhex(f, "07 D9 00 00 01 00 00 00 00 00 00 00"))
	f.Add(unhex(f, "07 00 00 00 01 00 00 00 36 6E 03 00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		var s Status
		if err := s.Unmarshal(b); err != nil {
			return
		}
		if s.CPU > 100 {
			t.Fatalf("cpu %d", s.CPU)
		}
		m := s.Marshal()
		var back Status
		if err := back.Unmarshal(m[:]); err != nil || back != s {
			t.Fatalf("round trip %+v %+v", s, back)
		}
	})
}

func FuzzResult(f *testing.F) {
	f.Add(unhex(f, "01 BC 04 00"))
	f.Add(unhex(f, "03 00 00 00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		var r Result
		if err := r.Unmarshal(b); err != nil {
			return
		}
		m := r.Marshal()
		var back Result
		if err := back.Unmarshal(m[:]); err != nil || back != r {
			t.Fatalf("round trip %+v %+v", r, back)
		}
	})
}

func FuzzJoin(f *testing.F) {
	f.Add(unhex(f, "BC 04 02 00 00 00 00 00 00 00 00 00 00 00 00 00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		var j Join
		if err := j.Unmarshal(b); err != nil {
			return
		}
		if m := j.Marshal(); !bytes.Equal(m[:], b) {
			t.Fatalf("round trip % x", m)
		}
	})
}

func FuzzPort(f *testing.F) {
	f.Add([]byte{0x07, 0xd1})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := UnmarshalPort(b)
		if err != nil {
			return
		}
		if m := MarshalPort(p); !bytes.Equal(m[:], b) {
			t.Fatalf("round trip % x", m)
		}
	})
}
