// Package ecsrp5 implements MikroTik EC-SRP5, the password authentication a
// btest server running RouterOS 6.43 or later asks for by answering the
// command with 03 00 00 00 (docs/protocol.md, §7). Both roles are
// provided: Client and Server run the whole four-message exchange on an
// io.ReadWriter; Verifier is what a server stores instead of a password.
//
//	client → server   MSG1  len || username || 00 || Xa[32] || pa
//	server → client   MSG2  31  || Xb[32] || pb || salt[16]
//	client → server   MSG3  20  || Cc[32]
//	server → client   MSG4  20  || Cs[32]
//
// # The curve as the protocol sees it
//
// MikroTik does all arithmetic on Curve25519 written as the short Weierstrass
// curve y² = x³ + a·x + b over p = 2^255 − 19, and puts points on the wire as
// the 32-byte big-endian Montgomery coordinate u = x − A/3 (A = 486662) plus
// one byte for the parity of y. Every value that reaches the wire or a hash
// depends only on the group element, never on the curve model used to compute
// it, so this package does its arithmetic where it is fastest and
// constant-time: on the birationally equivalent twisted Edwards curve
// edwards25519, with filippo.io/edwards25519 points and field elements.
//
// The maps between the Montgomery curve v² = u³ + A·u² + u (on which the
// Weierstrass y is the same v) and edwards25519 −x² + y² = 1 + d·x²·y² are
//
//	(x, y) = (c·u/v, (u − 1)/(u + 1))        c² = −(A + 2) = −486664
//	(u, v) = ((1 + y)/(1 − y), c·u/x)
//
// with the square root c chosen so that MikroTik's generator G (u = 9, even v)
// maps to the edwards25519 base point. The exceptional points are handled
// explicitly: the order-2 point (0, 0) ↔ (0, −1) and the point at infinity ↔
// the identity (0, 1), which has no wire encoding. u = −1 is not on the curve
// because A − 2 is not a square mod p.
//
// # Scalars and subgroups
//
// edwards25519 reduces scalars mod l, the prime order of G (l = r). That is
// exact only for points of order l, and redp1 points, W_b and points sent by a
// peer can carry a component of order 2, 4 or 8. The package therefore only
// reduces a scalar where the protocol reduces it or the point is known to be
// in the subgroup:
//
//   - s·G for a private key or verifier scalar: G has order l, so s mod l
//     gives the same point (fixed-base table, ScalarBaseMult).
//   - the client's k·B' with k = (i·j + s_a) mod r: k is already reduced and
//     canonical, and ScalarMult multiplies by the canonical integer, which is
//     exact for any point.
//   - the server's j·Γ and s_b·(W_a + j·Γ) take full 256-bit integers and any
//     point: they are computed as n·P = ⌊n/16⌋·(16·P) + (n mod 16)·P, where
//     ⌊n/16⌋ < 2^252 < l is canonical, in one constant-time MultiScalarMult.
//
// Peer keys and stored verifiers are rejected when they are not canonical
// (u ≥ p), not on the curve, or of small order (8·P = ∞); a shared point at
// infinity is rejected too. None of these can come from an honest peer.
//
// # Side channels
//
// Field and group operations and scalar multiplications are constant time.
// The iteration count of redp1 depends on the verifier, as in every
// implementation of this protocol; this package always evaluates the first
// redp1MinCandidates candidates and selects the first valid one without
// branching, so the count only shows in time in the rare case (2^-32 of
// verifiers) that all of them fail. Proofs are compared with crypto/subtle.
// The package does no logging.
package ecsrp5
