package ecsrp5

import (
	"crypto/subtle"
	"encoding/hex"

	"filippo.io/edwards25519/field"
)

// Field constants. field.Element is little-endian inside; the protocol is
// big-endian everywhere, so every conversion goes through feFromBE/feToBE.
var (
	feOne = new(field.Element).One()
	// feA is the Montgomery coefficient A = 486662.
	feA = new(field.Element).Mult32(feOne, 486662)
	// feC is the square root of −(A+2) that maps G (u = 9, even v) to the
	// edwards25519 base point; the other root would map G to its negation.
	feC = mustFE("0f26edf460a006bbd27b08dc03fc4f7ec5a1d3d14b7d1a82cc6e04aaff457e06")
)

// mustFE decodes a canonical big-endian hex constant.
func mustFE(h string) *field.Element {
	b, err := hex.DecodeString(h)
	if err != nil || len(b) != 32 || !isCanonicalBE((*[32]byte)(b)) {
		panic("ecsrp5: bad field constant " + h)
	}
	return feFromBE((*[32]byte)(b))
}

// feFromBE returns the 256-bit big-endian integer b reduced mod p.
//
// field.Element.SetBytes drops bit 255 (as X25519 does), but redp1 hashes to
// full 256-bit values that must be reduced mod p, so the dropped bit is added
// back as 2^255 ≡ 19 (mod p), without branching.
func feFromBE(b *[32]byte) *field.Element {
	var le [32]byte
	for i := range le {
		le[i] = b[31-i]
	}
	top := uint32(le[31] >> 7)
	le[31] &= 0x7f
	e := new(field.Element)
	if _, err := e.SetBytes(le[:]); err != nil {
		panic("ecsrp5: unreachable: 32-byte SetBytes failed")
	}
	var fold field.Element
	return e.Add(e, fold.Mult32(feOne, 19*top))
}

// feToBE returns the canonical 32-byte big-endian encoding of e.
func feToBE(e *field.Element) [32]byte {
	le := e.Bytes()
	var b [32]byte
	for i := range b {
		b[i] = le[31-i]
	}
	return b
}

// isCanonicalBE reports whether the big-endian integer b is below p, that is,
// whether it is the one encoding of its field element.
func isCanonicalBE(b *[32]byte) bool {
	r := feToBE(feFromBE(b))
	return subtle.ConstantTimeCompare(r[:], b[:]) == 1
}
