package udpio

import (
	"encoding/binary"
	"testing"

	"golang.org/x/sys/unix"
)

// groMsg builds a UDP_GRO control message carrying size as the kernel does
// (an int), or as n bytes of it.
func groMsg(level, typ int32, data []byte) []byte {
	b := make([]byte, unix.CmsgSpace(len(data)))
	putCmsgLen(b, unix.CmsgLen(len(data)))
	binary.NativeEndian.PutUint32(b[cmsgLevelAt:], uint32(level))
	binary.NativeEndian.PutUint32(b[cmsgTypeAt:], uint32(typ))
	copy(b[cmsgHdrSize:], data)
	return b
}

func intBytes(v int32) []byte {
	b := make([]byte, 4)
	binary.NativeEndian.PutUint32(b, uint32(v))
	return b
}

func TestParseGRO(t *testing.T) {
	u16 := make([]byte, 2)
	binary.NativeEndian.PutUint16(u16, 1452)
	other := groMsg(unix.SOL_IP, unix.IP_TOS, []byte{0x10})
	cases := []struct {
		name string
		oob  []byte
		want int
	}{
		{"none", nil, 0},
		{"int", groMsg(unix.SOL_UDP, unix.UDP_GRO, intBytes(1472)), 1472},
		{"u16", groMsg(unix.SOL_UDP, unix.UDP_GRO, u16), 1452},
		{"after another", append(other, groMsg(unix.SOL_UDP, unix.UDP_GRO, intBytes(8972))...), 8972},
		{"other only", other, 0},
		{"negative", groMsg(unix.SOL_UDP, unix.UDP_GRO, intBytes(-5)), 0},
		{"truncated", groMsg(unix.SOL_UDP, unix.UDP_GRO, intBytes(1472))[:cmsgHdrSize+2], 0},
		{"short data", groMsg(unix.SOL_UDP, unix.UDP_GRO, []byte{1}), 0},
		{"length too big", func() []byte {
			b := groMsg(unix.SOL_UDP, unix.UDP_GRO, intBytes(1472))
			putCmsgLen(b, 1<<20)
			return b
		}(), 0},
		{"length too small", func() []byte {
			b := groMsg(unix.SOL_UDP, unix.UDP_GRO, intBytes(1472))
			putCmsgLen(b, 3)
			return b
		}(), 0},
	}
	for _, tc := range cases {
		if got := ParseGRO(tc.oob); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
}

// FuzzParseGRO feeds arbitrary control buffers to the parser: it must
// never panic, and a segment size it returns must come from a UDP_GRO
// message inside the buffer.
func FuzzParseGRO(f *testing.F) {
	f.Add(groMsg(unix.SOL_UDP, unix.UDP_GRO, intBytes(1472)))
	f.Add(append(groMsg(unix.SOL_IP, unix.IP_TOS, []byte{1}), groMsg(unix.SOL_UDP, unix.UDP_GRO, intBytes(9000))...))
	f.Add([]byte{})
	f.Add(make([]byte, 7))
	f.Fuzz(func(t *testing.T, oob []byte) {
		seg := ParseGRO(oob)
		if seg < 0 || seg > 1<<31-1 {
			t.Fatalf("segment size %d", seg)
		}
		if seg > 0 && len(oob) < cmsgHdrSize+2 {
			t.Fatalf("segment size %d from %d bytes", seg, len(oob))
		}
	})
}
