package ecsrp5

import (
	"crypto/sha256"

	"filippo.io/edwards25519"
	"filippo.io/edwards25519/field"
)

// redp1MinCandidates is how many redp1 candidates are always evaluated. Half
// of all candidates are on the curve, so 32 cover all but 2^-32 of inputs;
// evaluating them without branching hides how many were needed, which would
// otherwise leak bits of the password-derived x_Γ through timing (the
// "Dragonblood" problem of hunting-and-pecking hash-to-curve). Each costs one
// SHA-256 and one square root, about 3 µs.
const redp1MinCandidates = 32

// redp1 is MikroTik's hash-to-curve (docs/protocol.md, §7.3 Hash to curve: redp1):
//
//	s ← SHA-256(x32)
//	loop: t ← SHA-256(s); if lift_x(t mod p, parity) exists return it; s ← s + 1
//
// where s + 1 is a 256-bit big-endian increment of the seed (not of t). The
// loop count does not depend on parity, so redp1(x, 1) = −redp1(x, 0). The
// result need not lie in the prime-order subgroup. It also returns how many
// candidates the reference loop would have tried (1-based), for tests.
func redp1(x32 *[32]byte, parity int) (*edwards25519.Point, int) {
	seed := sha256.Sum256(x32[:])
	var u, v field.Element
	found, attempts := 0, 0
	for n := 1; ; n++ {
		t := sha256.Sum256(seed[:])
		cu := feFromBE(&t)
		cv, ok := montgomeryV(cu, parity)
		take := ok &^ found
		u.Select(cu, &u, take)
		v.Select(&cv, &v, take)
		attempts |= n & -take // n where take = 1, 0 elsewhere; take is 1 once
		found |= ok
		if n >= redp1MinCandidates && found == 1 {
			break
		}
		incrementBE(&seed)
	}
	p, err := fromMontgomery(&u, &v)
	if err != nil {
		panic("ecsrp5: unreachable: redp1 candidate is not on the curve")
	}
	return p, attempts
}

// incrementBE adds 1 to the 256-bit big-endian integer b (mod 2^256) without
// branching on its value.
func incrementBE(b *[32]byte) {
	carry := uint16(1)
	for i := 31; i >= 0; i-- {
		s := uint16(b[i]) + carry
		b[i] = byte(s)
		carry = s >> 8
	}
}
