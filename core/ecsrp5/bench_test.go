package ecsrp5

import (
	"net"
	"testing"
)

// The handshake benchmarks replay a vector's frames so each measures one side
// alone: everything that side computes for one login, no peer, no I/O waits.

func BenchmarkClientHandshake(b *testing.B) {
	c := loadVectors(b).Cases[0]
	msg2, msg4 := unhexT(b, c.Frames.Msg2), unhexT(b, c.Frames.Msg4)
	sa := unhexT(b, c.Inputs.ClientKey)
	b.ReportAllocs()
	for b.Loop() {
		if err := Client(newReplay(msg2, msg4), c.Inputs.Username, c.Inputs.Password, fixedRand(sa)); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkServerHandshake(b *testing.B) {
	c := loadVectors(b).Cases[0]
	msg1, msg3 := unhexT(b, c.Frames.Msg1), unhexT(b, c.Frames.Msg3)
	sb := unhexT(b, c.Inputs.ServerKey)
	v := verifierOf(b, &c)
	lookup := func(string) (Verifier, bool) { return v, true }
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Server(newReplay(msg1, msg3), lookup, fixedRand(sb)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPipeHandshake is both sides over net.Pipe with crypto/rand: the
// wall time of one login on an idle 2-core machine.
func BenchmarkPipeHandshake(b *testing.B) {
	v := DeriveVerifier("admin", "secret", [16]byte{1})
	lookup := func(string) (Verifier, bool) { return v, true }
	for b.Loop() {
		cc, sc := net.Pipe()
		done := make(chan error)
		go func() {
			_, err := Server(sc, lookup, nil)
			sc.Close()
			done <- err
		}()
		err := Client(cc, "admin", "secret", nil)
		cc.Close()
		if serr := <-done; err != nil || serr != nil {
			b.Fatal(err, serr)
		}
	}
}

func BenchmarkDeriveVerifier(b *testing.B) {
	for b.Loop() {
		DeriveVerifier("admin", "secret", [16]byte{1})
	}
}

func BenchmarkRedp1(b *testing.B) {
	x := [32]byte{1}
	for b.Loop() {
		redp1(&x, 0)
	}
}

func BenchmarkMulFull(b *testing.B) {
	n := [32]byte{0xff, 1, 2, 3}
	p := mulBase(&n)
	for b.Loop() {
		mulFull(&n, p)
	}
}

func BenchmarkDecodePoint(b *testing.B) {
	enc, _ := encodePoint(mulBase(&[32]byte{5}))
	for b.Loop() {
		decodePoint(&enc)
	}
}
