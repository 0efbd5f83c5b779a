package wire

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// buildStream interleaves status frames with seq 1..n between blocks of
// payload and returns the stream.
func buildStream(n, block int, random bool, rng *rand.Rand) []byte {
	var out []byte
	for i := 1; i <= n; i++ {
		payload := make([]byte, block)
		if random {
			for j := range payload {
				payload[j] = byte(rng.Uint32())
			}
		}
		out = append(out, payload...)
		st := Status{CPU: uint8(i % 101), Seq: uint32(i), Bytes: uint32(i * 1000)}.Marshal()
		out = append(out, st[:]...)
	}
	return out
}

func TestScannerFindsEveryFrame(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	for _, random := range []bool{false, true} {
		for _, chunk := range []int{1, 5, 11, 12, 13, 100, 4096, 1 << 20} {
			stream := buildStream(50, 3000, random, rng)
			var sc StatusScanner
			var got []Status
			for off := 0; off < len(stream); off += chunk {
				end := min(off+chunk, len(stream))
				sc.Scan(stream[off:end], func(s Status) { got = append(got, s) })
			}
			// Chunks smaller than the carry can lose frames; status is
			// advisory. From 12 bytes up every frame must be found.
			if chunk >= StatusSize && len(got) != 50 {
				t.Fatalf("random=%v chunk=%d: found %d frames, want 50", random, chunk, len(got))
			}
			for i, s := range got {
				if chunk >= StatusSize && (s.Seq != uint32(i+1) || s.Bytes != uint32((i+1)*1000)) {
					t.Fatalf("random=%v chunk=%d: frame %d = %+v", random, chunk, i, s)
				}
			}
		}
	}
}

func TestScannerOldLayout(t *testing.T) {
	t.Parallel()
	var sc StatusScanner
	var got []Status
	frame := []byte{0x07, 0, 0, 0x01, 0x00, 0, 0, 0, 0x10, 0, 0, 0} // seq 256 BE @1
	sc.lastSeq = 255
	sc.Scan(append(bytes.Repeat([]byte{0}, 100), frame...), func(s Status) { got = append(got, s) })
	if len(got) != 1 || got[0].Seq != 256 || got[0].Bytes != 16 {
		t.Fatalf("old layout: %+v", got)
	}
}

func TestScannerIgnoresZeros(t *testing.T) {
	t.Parallel()
	var sc StatusScanner
	n := 0
	sc.Scan(make([]byte, 1<<16), func(Status) { n++ })
	if n != 0 {
		t.Fatal("found frames in zeros")
	}
}

func FuzzScanner(f *testing.F) {
	f.Add(buildStream(3, 20, false, nil))
	f.Add([]byte{7, 0x80, 0, 0, 1, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		var sc StatusScanner
		half := len(b) / 2
		sc.Scan(b[:half], func(s Status) {
			if s.CPU > 100 {
				t.Fatal("cpu over 100")
			}
		})
		sc.Scan(b[half:], func(Status) {})
	})
}

func BenchmarkScanZeros(b *testing.B) {
	buf := make([]byte, 1<<20)
	var sc StatusScanner
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		sc.Scan(buf, func(Status) {})
	}
}

func TestScannerFramedIgnoresSeq(t *testing.T) {
	t.Parallel()
	// A server that never counts its sequence number, status alone on the
	// stream: every frame is still taken.
	var stream []byte
	for range 5 {
		f := Status{CPU: 40, Seq: 0, Bytes: 1000}.Marshal()
		stream = append(stream, f[:]...)
	}
	sc := StatusScanner{Framed: true}
	n := 0
	sc.Scan(stream, func(s Status) {
		n++
		if s.CPU != 40 || s.Bytes != 1000 {
			t.Fatalf("frame %+v", s)
		}
	})
	if n != 5 {
		t.Fatalf("found %d of 5 frames", n)
	}
}
