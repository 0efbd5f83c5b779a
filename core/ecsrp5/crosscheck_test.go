package ecsrp5

import (
	"bytes"
	"math/big"
	"math/rand/v2"
	"testing"

	"filippo.io/edwards25519"
)

// Cross-checks of the Edwards-based field and point code against the
// math/big affine Weierstrass reference of ref_test.go, on random inputs.
// Random curve points have a small-order component 7 times in 8, which is
// what exercises mulFull's exactness.

func randBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// randPoint returns a random curve point (any order) in both worlds.
func randPoint(t *testing.T, r *rand.Rand) (*edwards25519.Point, refPoint) {
	t.Helper()
	for {
		u := new(big.Int).Mod(new(big.Int).SetBytes(randBytes(r, 32)), refP)
		q, ok := refLift(u, uint(r.IntN(2)))
		if !ok {
			continue
		}
		enc := refEncode(q)
		p, err := decodePoint(&enc)
		if err != nil {
			t.Fatalf("decodePoint(%x) = %v; the reference lifted it", enc, err)
		}
		return p, q
	}
}

func sameEnc(t *testing.T, what string, p *edwards25519.Point, q refPoint) {
	t.Helper()
	enc, ok := encodePoint(p)
	if q.inf {
		if ok {
			t.Fatalf("%s: got %x, want infinity", what, enc)
		}
		return
	}
	if !ok {
		t.Fatalf("%s: got infinity, want %x", what, refEncode(q))
	}
	if want := refEncode(q); enc != want {
		t.Fatalf("%s:\n got %x\nwant %x", what, enc, want)
	}
}

func TestCrossCheckField(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		b := [32]byte(randBytes(r, 32))
		if r.IntN(8) == 0 { // values near p and 2^256 are where reductions break
			copy(b[:], bytes.Repeat([]byte{0xff}, 32))
			b[31] -= byte(r.IntN(40))
			b[0] &= byte(0x7f | r.IntN(2)<<7)
		}
		n := new(big.Int).SetBytes(b[:])
		want := new(big.Int).Mod(n, refP)
		got := feToBE(feFromBE(&b))
		if new(big.Int).SetBytes(got[:]).Cmp(want) != 0 {
			t.Fatalf("feFromBE(%x) = %x, want %x", b, got, want)
		}
		if isCanonicalBE(&b) != (n.Cmp(refP) < 0) {
			t.Fatalf("isCanonicalBE(%x) wrong", b)
		}
		// scalarFromBE is n mod r.
		s := scalarToBE(scalarFromBE(&b))
		if new(big.Int).SetBytes(s[:]).Cmp(new(big.Int).Mod(n, refR)) != 0 {
			t.Fatalf("scalarFromBE(%x) = %x", b, s)
		}
	}
	// c² = −(A + 2), and G (u = 9, v even) maps to the base point.
	var c2, want = feC.Bytes(), new(big.Int).Sub(refP, big.NewInt(486664))
	cc := new(big.Int).SetBytes(reverse(c2))
	if new(big.Int).Exp(cc, big.NewInt(2), refP).Cmp(want) != 0 {
		t.Fatal("feC² != −486664")
	}
}

func TestCrossCheckLift(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(3, 4))
	for range 500 {
		var enc [PointSize]byte
		copy(enc[:], randBytes(r, 32))
		enc[0] &= 0x7f
		enc[32] = byte(r.IntN(2))
		q, ok := refDecode(enc)
		p, err := decodePoint(&enc)
		switch {
		case new(big.Int).SetBytes(enc[:32]).Cmp(refP) >= 0:
			if err == nil {
				t.Fatalf("non-canonical %x accepted", enc)
			}
		case !ok:
			if err == nil {
				t.Fatalf("%x is not on the curve but was accepted", enc)
			}
		default:
			if err != nil {
				t.Fatalf("decodePoint(%x): %v", enc, err)
			}
			sameEnc(t, "round trip", p, q)
		}
	}
}

func TestCrossCheckArithmetic(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(5, 6))
	n := 60
	if testing.Short() {
		n = 10
	}
	for range n {
		p1, q1 := randPoint(t, r)
		p2, q2 := randPoint(t, r)
		sameEnc(t, "add", new(edwards25519.Point).Add(p1, p2), refAdd(q1, q2))
		sameEnc(t, "sub", new(edwards25519.Point).Subtract(p1, p2), refAdd(q1, refNeg(q2)))
		sameEnc(t, "double", new(edwards25519.Point).Add(p1, p1), refAdd(q1, q1))

		k := [32]byte(randBytes(r, 32))
		kn := new(big.Int).SetBytes(k[:])
		sameEnc(t, "mulFull", mulFull(&k, p1), refMul(kn, q1))
		sameEnc(t, "mulBase", mulBase(&k), refMul(kn, refGen))
		// The client's multiplication: a reduced scalar on any point.
		ks := scalarFromBE(&k)
		sameEnc(t, "ScalarMult reduced", new(edwards25519.Point).ScalarMult(ks, p1),
			refMul(new(big.Int).Mod(kn, refR), q1))
	}
	// Scalars at the edges of mulFull's split.
	p, q := randPoint(t, r)
	for _, k := range []*big.Int{big.NewInt(0), big.NewInt(1), big.NewInt(15), big.NewInt(16),
		new(big.Int).Set(refR), new(big.Int).Add(refR, big.NewInt(1)),
		new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 256), big.NewInt(1))} {
		var kb [32]byte
		k.FillBytes(kb[:])
		sameEnc(t, "mulFull edge", mulFull(&kb, p), refMul(k, q))
	}
}

// TestCrossCheckSmallOrder covers the torsion points, where the birational
// map has its exceptional cases: (0, 0) ↔ (0, −1), and ∞ ↔ identity.
func TestCrossCheckSmallOrder(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(7, 8))
	_, q := randPoint(t, r)
	// A point of order 8 generates the torsion subgroup: r·Q for a random Q
	// usually has order 8; retry until it does.
	var t8 refPoint
	for {
		t8 = refMul(refR, q)
		if !refMul(big.NewInt(4), t8).inf {
			break
		}
		_, q = randPoint(t, r)
	}
	tp := refPoint{inf: true}
	for k := 1; k < 8; k++ {
		tp = refAdd(tp, t8)
		enc := refEncode(tp)
		if _, err := decodePoint(&enc); err == nil {
			t.Errorf("small-order point %d·T (%x) accepted", k, enc)
		}
		// The map itself is right at these points.
		u := feFromBE((*[32]byte)(enc[:32]))
		v, ok := montgomeryV(u, int(enc[32]))
		if ok != 1 {
			t.Fatalf("torsion point %x not on curve", enc)
		}
		p, err := fromMontgomery(u, &v)
		if err != nil {
			t.Fatalf("fromMontgomery(%d·T): %v", k, err)
		}
		sameEnc(t, "torsion round trip", p, tp)
		p2, q2 := randPoint(t, r)
		sameEnc(t, "torsion add", new(edwards25519.Point).Add(p, p2), refAdd(tp, q2))
		if !isSmallOrder(p) {
			t.Errorf("isSmallOrder(%d·T) = false", k)
		}
	}
	if !refAdd(tp, t8).inf {
		t.Fatal("8·T != ∞")
	}
	if _, ok := encodePoint(edwards25519.NewIdentityPoint()); ok {
		t.Fatal("identity encoded")
	}
}

func TestCrossCheckRedp1(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(9, 10))
	n := 100
	if testing.Short() {
		n = 20
	}
	for range n {
		x := [32]byte(randBytes(r, 32))
		parity := r.IntN(2)
		p, tries := redp1(&x, parity)
		q, wantTries := refRedp1(x[:], uint(parity))
		sameEnc(t, "redp1", p, q)
		if tries != wantTries {
			t.Fatalf("redp1 tries %d, want %d", tries, wantTries)
		}
	}
}

func TestIncrementBE(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ in, want string }{
		{"00", "01"}, {"ff", "00"}, {"00ff", "0100"}, {"12ffff", "130000"},
	} {
		var b [32]byte
		in := unhexT(t, c.in)
		copy(b[32-len(in):], in)
		if c.in == "ff" {
			b = [32]byte(bytes.Repeat([]byte{0xff}, 32))
		}
		incrementBE(&b)
		want := unhexT(t, c.want)
		if !bytes.Equal(b[32-len(want):], want) {
			t.Errorf("increment %s = %x", c.in, b)
		}
	}
}
