package ecsrp5

import (
	"filippo.io/edwards25519"
	"filippo.io/edwards25519/field"
)

// PointSize is the wire size of a point: 32-byte big-endian Montgomery u and
// one y-parity byte.
const PointSize = 33

// montgomeryV returns the v (= Weierstrass y) with v² = u³ + A·u² + u whose
// low bit is parity, and 1; or 0 when u is not the coordinate of a curve point
// (the right-hand side is not a square: u is on the twist). Constant time.
func montgomeryV(u *field.Element, parity int) (v field.Element, ok int) {
	// rhs = u·(u·(u + A) + 1), Horner form of u³ + A·u² + u.
	var rhs field.Element
	rhs.Add(u, feA).Multiply(&rhs, u).Add(&rhs, feOne).Multiply(&rhs, u)
	// SqrtRatio returns the even ("non-negative") root; p − root is odd
	// except for root 0, where u = 0 and both parities mean the same point.
	_, ok = v.SqrtRatio(&rhs, feOne)
	var neg field.Element
	neg.Negate(&v)
	v.Select(&neg, &v, parity&1)
	return v, ok
}

// fromMontgomery maps the Montgomery point (u, v) to edwards25519.
//
// Extended coordinates of (x, y) = (c·u/v, (u − 1)/(u + 1)) without an
// inversion, using the common denominator v·(u + 1):
//
//	X = c·u·(u + 1)   Y = (u − 1)·v   Z = v·(u + 1)   T = c·u·(u − 1)
//
// so that X/Z = x, Y/Z = y and X·Y = T·Z. The denominator vanishes only for
// v = 0, i.e. the order-2 point (0, 0), which maps to (0, −1); u = −1 is not on
// the curve. SetExtendedCoordinates rechecks the curve equation, so a caller
// passing an unchecked (u, v) gets an error, never a bogus point.
func fromMontgomery(u, v *field.Element) (*edwards25519.Point, error) {
	var up1, um1, cu, X, Y, Z, T field.Element
	up1.Add(u, feOne)
	um1.Subtract(u, feOne)
	cu.Multiply(feC, u)
	X.Multiply(&cu, &up1)
	Y.Multiply(&um1, v)
	Z.Multiply(v, &up1)
	T.Multiply(&cu, &um1)

	var zero, minusOne field.Element
	minusOne.Negate(feOne)
	isOrder2 := u.Equal(&zero)
	X.Select(&zero, &X, isOrder2)
	Y.Select(&minusOne, &Y, isOrder2)
	Z.Select(feOne, &Z, isOrder2)
	T.Select(&zero, &T, isOrder2)
	return new(edwards25519.Point).SetExtendedCoordinates(&X, &Y, &Z, &T)
}

// toMontgomery maps an edwards25519 point to the Montgomery (u, v) and
// reports whether it is the identity (the point at infinity, which has no
// affine coordinates).
//
// With x = X/Z, y = Y/Z: u = (Z + Y)/(Z − Y) and v = c·u/x = c·(Z + Y)·Z /
// ((Z − Y)·X), so one inversion of (Z − Y)·X serves both. For (0, −1) that
// denominator is 0, field inversion returns 0, and the result (0, 0) is right.
func toMontgomery(p *edwards25519.Point) (u, v field.Element, identity int) {
	X, Y, Z, _ := p.ExtendedCoordinates()
	var num, zmy, inv field.Element
	num.Add(Z, Y)
	zmy.Subtract(Z, Y)
	inv.Multiply(&zmy, X).Invert(&inv)
	u.Multiply(&num, X).Multiply(&u, &inv)
	v.Multiply(&num, Z).Multiply(&v, &inv).Multiply(&v, feC)
	var zero field.Element
	// y = 1 (Z = Y) only at the identity on this complete curve.
	identity = zmy.Equal(&zero)
	return u, v, identity
}

// encodePoint returns the 33-byte wire form of p, or false for the identity.
func encodePoint(p *edwards25519.Point) (enc [PointSize]byte, ok bool) {
	u, v, identity := toMontgomery(p)
	x := feToBE(&u)
	copy(enc[:32], x[:])
	enc[32] = byte(v.IsNegative())
	return enc, identity == 0
}

// decodePoint parses a 33-byte wire point (docs/protocol.md, §7.2 Curve and
// point encoding), made strict. u must be canonical (below p), the parity byte 0
// or 1, the point on the curve and not of small order. Honest peers only send
// such points; accepting others would let a peer choose among encodings of
// one point (changing j) or force the shared point into a tiny subgroup.
func decodePoint(enc *[PointSize]byte) (*edwards25519.Point, error) {
	x := (*[32]byte)(enc[:32])
	if !isCanonicalBE(x) {
		return nil, ErrInvalidPoint
	}
	if enc[32] > 1 {
		return nil, ErrInvalidPoint
	}
	u := feFromBE(x)
	v, ok := montgomeryV(u, int(enc[32]))
	if ok == 0 {
		return nil, ErrInvalidPoint
	}
	p, err := fromMontgomery(u, &v)
	if err != nil {
		return nil, ErrInvalidPoint
	}
	if isSmallOrder(p) {
		return nil, ErrInvalidPoint
	}
	return p, nil
}

// isSmallOrder reports whether 8·p is the identity, i.e. p lies in the
// torsion subgroup of order 8 (the order-2 point, the order-4 points, ...).
func isSmallOrder(p *edwards25519.Point) bool {
	var q edwards25519.Point
	q.MultByCofactor(p)
	return q.Equal(edwards25519.NewIdentityPoint()) == 1
}
