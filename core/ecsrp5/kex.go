package ecsrp5

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"

	"filippo.io/edwards25519"
)

// This file holds the arithmetic of both roles (docs/protocol.md, §7.5),
// one step per message, without I/O, so that tests can check every
// intermediate value. Client and Server add the framing and the errors a
// caller sees.

// clientSession is the client's state between messages.
type clientSession struct {
	user, password string
	sa             [32]byte    // s_a, private, used as a full 256-bit integer
	hello          ClientHello // MSG1, carries W_a = s_a·G

	// Set by answer.
	i, j, k   [32]byte // verifier scalar, SHA-256(Xa || Xb), (i·j + s_a) mod r
	unblinded [PointSize]byte
	z         [32]byte // Montgomery x of Z = k·(W_b − redp1(x_Γ, 0))
	cc, cs    Proof    // our proof and the one we expect from the server
}

// newClientSession computes W_a and MSG1.
func newClientSession(user, password string, sa *[32]byte) (*clientSession, error) {
	if err := checkUser(user); err != nil {
		return nil, err
	}
	key, ok := encodePoint(mulBase(sa))
	if !ok {
		return nil, fmt.Errorf("ecsrp5: client private key is a multiple of the group order (broken random source?): %w", ErrInvalidPoint)
	}
	return &clientSession{
		user: user, password: password, sa: *sa,
		hello: ClientHello{User: user, Key: key},
	}, nil
}

// answer processes MSG2 and returns MSG3:
//
//	i = SHA-256(salt || SHA-256(user ":" password)), Γ = i·G
//	B' = W_b + redp1(x_Γ, 1)          (= s_b·G: the server's blinding cancels)
//	j = SHA-256(Xa || Xb), k = (i·j + s_a) mod r
//	Z = k·B', Cc = SHA-256(j || z)
func (c *clientSession) answer(m *ServerHello) (Proof, error) {
	wb, err := decodePoint(&m.Key)
	if err != nil {
		return Proof{}, fmt.Errorf("ecsrp5: server public key: %w", err)
	}
	c.i = verifierScalar(c.user, c.password, &m.Salt)
	gamma, ok := encodePoint(mulBase(&c.i))
	if !ok {
		return Proof{}, fmt.Errorf("ecsrp5: verifier scalar is a multiple of the group order: %w", ErrInvalidPoint)
	}
	blind, _ := redp1((*[32]byte)(gamma[:32]), 1)
	bPrime := new(edwards25519.Point).Add(wb, blind)
	c.unblinded, _ = encodePoint(bPrime)

	c.j = hashJ(&c.hello.Key, &m.Key)
	k := new(edwards25519.Scalar).MultiplyAdd(scalarFromBE(&c.i), scalarFromBE(&c.j), scalarFromBE(&c.sa))
	c.k = scalarToBE(k)
	// k is canonical, so ScalarMult is exact even if a hostile server made B'
	// carry a small-order component.
	zp, ok := encodePoint(new(edwards25519.Point).ScalarMult(k, bPrime))
	if !ok {
		return Proof{}, fmt.Errorf("ecsrp5: shared point is at infinity (hostile server key): %w", ErrInvalidPoint)
	}
	copy(c.z[:], zp[:32])
	c.cc = clientProof(&c.j, &c.z)
	c.cs = serverProof(&c.j, &c.cc, &c.z)
	return c.cc, nil
}

// verify checks the server's MSG4 in constant time.
func (c *clientSession) verify(cs *Proof) bool {
	return subtle.ConstantTimeCompare(cs[:], c.cs[:]) == 1
}

// serverSession is the server's state between messages.
type serverSession struct {
	sb    [32]byte // s_b, private, used as a full 256-bit integer
	wa    *edwards25519.Point
	gamma *edwards25519.Point // Γ lifted with the stored parity
	hello ServerHello         // MSG2, carries W_b = s_b·G + redp1(x_Γ, 0)

	// Set by derive.
	j, z   [32]byte
	zValid int // 0 when Z is at infinity: no proof can then be accepted
	cc, cs Proof
}

// newServerSession checks MSG1's key and the verifier, and computes MSG2.
func newServerSession(m *ClientHello, v *Verifier, sb *[32]byte) (*serverSession, error) {
	wa, err := decodePoint(&m.Key)
	if err != nil {
		return nil, fmt.Errorf("ecsrp5: client public key: %w", err)
	}
	gamma, err := v.point()
	if err != nil {
		return nil, fmt.Errorf("ecsrp5: stored verifier of user %q: %w", m.User, err)
	}
	blind, _ := redp1(&v.XGamma, 0)
	wb := new(edwards25519.Point).Add(mulBase(sb), blind)
	key, ok := encodePoint(wb)
	if !ok {
		return nil, fmt.Errorf("ecsrp5: server public key is at infinity (broken random source?): %w", ErrInvalidPoint)
	}
	return &serverSession{
		sb: *sb, wa: wa, gamma: gamma,
		hello: ServerHello{Key: key, Salt: v.Salt},
	}, nil
}

// derive computes the shared secret and both proofs; it needs no client
// input beyond MSG1, so Server runs it while MSG2 travels:
//
//	j = SHA-256(Xa || Xb), Z = s_b·(W_a + j·Γ)
//
// with j and s_b as full 256-bit integers, as the protocol specifies.
func (s *serverSession) derive(xa *[PointSize]byte) {
	s.j = hashJ(xa, &s.hello.Key)
	x := new(edwards25519.Point).Add(s.wa, mulFull(&s.j, s.gamma))
	zp, ok := encodePoint(mulFull(&s.sb, x))
	copy(s.z[:], zp[:32])
	if ok {
		s.zValid = 1
	}
	s.cc = clientProof(&s.j, &s.z)
	s.cs = serverProof(&s.j, &s.cc, &s.z)
}

// check compares the client's MSG3 in constant time.
func (s *serverSession) check(cc *Proof) int {
	return subtle.ConstantTimeCompare(cc[:], s.cc[:]) & s.zValid
}

// hashJ is j = SHA-256(Xa || Xb): the two x fields exactly as sent, client
// first, without the parity bytes.
func hashJ(xa, xb *[PointSize]byte) [32]byte {
	var buf [64]byte
	copy(buf[:32], xa[:32])
	copy(buf[32:], xb[:32])
	return sha256.Sum256(buf[:])
}

// clientProof is Cc = SHA-256(j || z).
func clientProof(j, z *[32]byte) Proof {
	var buf [64]byte
	copy(buf[:32], j[:])
	copy(buf[32:], z[:])
	return sha256.Sum256(buf[:])
}

// serverProof is Cs = SHA-256(j || Cc || z).
func serverProof(j *[32]byte, cc *Proof, z *[32]byte) Proof {
	var buf [96]byte
	copy(buf[:32], j[:])
	copy(buf[32:64], cc[:])
	copy(buf[64:], z[:])
	return sha256.Sum256(buf[:])
}
