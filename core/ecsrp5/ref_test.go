package ecsrp5

import (
	"crypto/sha256"
	"math/big"
	"testing"
)

// An independent reference implementation with math/big: affine short
// Weierstrass arithmetic y² = x³ + a·x + b, written straight from the formulas
// of docs/protocol.md, §7 EC-SRP5 authentication, to cross-check the
// Edwards-based code on arbitrary inputs.

func bigHex(s string) *big.Int {
	n, ok := new(big.Int).SetString(s, 16)
	if !ok {
		panic("bad hex " + s)
	}
	return n
}

var (
	refP   = bigHex("7fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffed")
	refR   = bigHex("1000000000000000000000000000000014def9dea2f79cd65812631a5cf5d3ed")
	refMA  = big.NewInt(486662)
	refA3  = new(big.Int).Mod(new(big.Int).Mul(refMA, new(big.Int).ModInverse(big.NewInt(3), refP)), refP)
	refA   = bigHex("2aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa984914a144")
	refB   = bigHex("7b425ed097b425ed097b425ed097b425ed097b425ed097b4260b5e9c7710c864")
	refGen = refPoint{
		x: bigHex("2aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaad245a"),
		y: bigHex("5f51e65e475f794b1fe122d388b72eb36dc2b28192839e4dd6163a5d81312c14"),
	}
)

// refPoint is an affine Weierstrass point; inf marks the point at infinity.
type refPoint struct {
	x, y *big.Int
	inf  bool
}

func refMod(n *big.Int) *big.Int { return n.Mod(n, refP) }

func refOnCurve(q refPoint) bool {
	if q.inf {
		return true
	}
	lhs := refMod(new(big.Int).Mul(q.y, q.y))
	rhs := new(big.Int).Exp(q.x, big.NewInt(3), refP)
	rhs.Add(rhs, new(big.Int).Mul(refA, q.x)).Add(rhs, refB)
	return lhs.Cmp(refMod(rhs)) == 0
}

func refAdd(p1, p2 refPoint) refPoint {
	if p1.inf {
		return p2
	}
	if p2.inf {
		return p1
	}
	var lambda *big.Int
	if p1.x.Cmp(p2.x) == 0 {
		if new(big.Int).Add(p1.y, p2.y).Mod(new(big.Int).Add(p1.y, p2.y), refP).Sign() == 0 {
			return refPoint{inf: true} // P + (−P), including doubling y = 0
		}
		// Tangent: λ = (3x² + a) / 2y.
		num := new(big.Int).Mul(p1.x, p1.x)
		num.Mul(num, big.NewInt(3)).Add(num, refA)
		den := new(big.Int).Lsh(p1.y, 1)
		lambda = refMod(num.Mul(num, den.ModInverse(refMod(den), refP)))
	} else {
		num := new(big.Int).Sub(p2.y, p1.y)
		den := refMod(new(big.Int).Sub(p2.x, p1.x))
		lambda = refMod(num.Mul(num, den.ModInverse(den, refP)))
	}
	x3 := new(big.Int).Mul(lambda, lambda)
	x3.Sub(x3, p1.x).Sub(x3, p2.x)
	refMod(x3)
	y3 := new(big.Int).Sub(p1.x, x3)
	y3.Mul(y3, lambda).Sub(y3, p1.y)
	return refPoint{x: x3, y: refMod(y3)}
}

func refNeg(q refPoint) refPoint {
	if q.inf {
		return q
	}
	return refPoint{x: q.x, y: refMod(new(big.Int).Neg(q.y))}
}

// refMul is left-to-right double-and-add over the exact integer n.
func refMul(n *big.Int, q refPoint) refPoint {
	acc := refPoint{inf: true}
	for i := n.BitLen() - 1; i >= 0; i-- {
		acc = refAdd(acc, acc)
		if n.Bit(i) == 1 {
			acc = refAdd(acc, q)
		}
	}
	return acc
}

// refLift is lift_x: u mod p, x = u + A/3, y = the root with the given parity.
func refLift(u *big.Int, parity uint) (refPoint, bool) {
	x := refMod(new(big.Int).Add(new(big.Int).Mod(u, refP), refA3))
	rhs := new(big.Int).Exp(x, big.NewInt(3), refP)
	rhs.Add(rhs, new(big.Int).Mul(refA, x)).Add(rhs, refB)
	y := new(big.Int).ModSqrt(refMod(rhs), refP)
	if y == nil {
		return refPoint{}, false
	}
	if y.Bit(0) != parity {
		y = refMod(y.Sub(refP, y))
	}
	return refPoint{x: x, y: y}, true
}

// refEncode is the 33-byte wire form: big-endian u = x − A/3, parity of y.
func refEncode(q refPoint) [PointSize]byte {
	var enc [PointSize]byte
	if q.inf {
		panic("refEncode of infinity")
	}
	refMod(new(big.Int).Sub(q.x, refA3)).FillBytes(enc[:32])
	enc[32] = byte(q.y.Bit(0))
	return enc
}

func refDecode(enc [PointSize]byte) (refPoint, bool) {
	return refLift(new(big.Int).SetBytes(enc[:32]), uint(enc[32]&1))
}

func refRedp1(x32 []byte, parity uint) (refPoint, int) {
	s := sha256.Sum256(x32)
	seed := new(big.Int).SetBytes(s[:])
	for n := 1; ; n++ {
		var sb [32]byte
		seed.FillBytes(sb[:])
		t := sha256.Sum256(sb[:])
		if q, ok := refLift(new(big.Int).SetBytes(t[:]), parity); ok {
			return q, n
		}
		seed.Add(seed, big.NewInt(1))
	}
}

func TestReferenceSelfCheck(t *testing.T) {
	t.Parallel()
	// The reference must agree with the spec's constants before it can judge
	// anything: a = (3 − A²)/3, b = (2A³ − 9A)/27, G on the curve, r·G = ∞.
	inv3 := new(big.Int).ModInverse(big.NewInt(3), refP)
	a := new(big.Int).Sub(big.NewInt(3), new(big.Int).Mul(refMA, refMA))
	a = refMod(a.Mul(a, inv3))
	if a.Cmp(refA) != 0 {
		t.Fatalf("a = %x", a)
	}
	b := new(big.Int).Exp(refMA, big.NewInt(3), nil)
	b.Lsh(b, 1).Sub(b, new(big.Int).Mul(big.NewInt(9), refMA))
	b = refMod(b.Mul(b, new(big.Int).ModInverse(big.NewInt(27), refP)))
	if b.Cmp(refB) != 0 {
		t.Fatalf("b = %x", b)
	}
	if !refOnCurve(refGen) {
		t.Fatal("G not on curve")
	}
	if !refMul(refR, refGen).inf {
		t.Fatal("r·G != ∞")
	}
	if g, ok := refLift(big.NewInt(9), 0); !ok || g.x.Cmp(refGen.x) != 0 || g.y.Cmp(refGen.y) != 0 {
		t.Fatal("lift_x(9, 0) != G")
	}
}
