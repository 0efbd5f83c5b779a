package ecsrp5

import "filippo.io/edwards25519"

// scalarFromBE returns the 256-bit big-endian integer b reduced mod r (the
// order of G, which is edwards25519's l). Constant time.
func scalarFromBE(b *[32]byte) *edwards25519.Scalar {
	var wide [64]byte // little-endian, zero-extended: SetUniformBytes reduces any 512-bit value
	for i := range 32 {
		wide[i] = b[31-i]
	}
	s, err := new(edwards25519.Scalar).SetUniformBytes(wide[:])
	if err != nil {
		panic("ecsrp5: unreachable: 64-byte SetUniformBytes failed")
	}
	return s
}

// scalarToBE returns the canonical 32-byte big-endian encoding of s.
func scalarToBE(s *edwards25519.Scalar) [32]byte {
	le := s.Bytes()
	var b [32]byte
	for i := range b {
		b[i] = le[31-i]
	}
	return b
}

// mulBase returns n·G for a 256-bit big-endian n. G has prime order r, so
// reducing n mod r first gives the same point, and the fixed-base tables of
// edwards25519 apply (G maps to its base point).
func mulBase(n *[32]byte) *edwards25519.Point {
	return new(edwards25519.Point).ScalarBaseMult(scalarFromBE(n))
}

// mulFull returns n·p for a full 256-bit big-endian n and any curve point p,
// including points with a component of order 2, 4 or 8, where reducing n mod r
// would change the result. It splits n = 16·h + d:
//
//	n·p = h·(16·p) + d·p      h = ⌊n/16⌋ < 2^252 < r,  d = n mod 16
//
// Both h and d are canonical scalars, which edwards25519 multiplies as exact
// integers, and one constant-time MultiScalarMult shares the doublings.
func mulFull(n *[32]byte, p *edwards25519.Point) *edwards25519.Point {
	var hi, lo [32]byte // little-endian
	for i := range 32 {
		b := n[31-i]
		hi[i] = b >> 4
		if i > 0 {
			hi[i-1] |= b << 4
		}
	}
	lo[0] = n[31] & 0x0f
	h, err := new(edwards25519.Scalar).SetCanonicalBytes(hi[:])
	if err != nil {
		panic("ecsrp5: unreachable: n/16 is not below the group order")
	}
	d, err := new(edwards25519.Scalar).SetCanonicalBytes(lo[:])
	if err != nil {
		panic("ecsrp5: unreachable: n mod 16 is not below the group order")
	}
	p16 := new(edwards25519.Point).Double(p)
	p16.Double(p16).Double(p16).Double(p16)
	return new(edwards25519.Point).MultiScalarMult(
		[]*edwards25519.Scalar{h, d}, []*edwards25519.Point{p16, p})
}
