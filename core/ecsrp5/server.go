package ecsrp5

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha512"
	"fmt"
	"io"
	"sync"
)

// Server runs the server side on rw after the server has written
// 03 00 00 00, and returns the authenticated username. It reads exactly the
// two client frames and writes MSG2 and MSG4; the caller then sends the
// result word. rand supplies the 32-byte private key (crypto/rand when nil).
//
// lookup returns the user's verifier. For an unknown user Server still
// answers a valid MSG2, built from a dummy verifier derived from the username
// and a per-process secret (so repeated probes get the same salt), and fails
// when the proof arrives exactly as for a wrong password: the same error,
// the same work, no user enumeration. On a bad proof Server returns an error
// wrapping ErrAuthFailed without writing MSG4; the caller should close the
// connection, which RouterOS-compatible clients read as a rejection. A stored
// verifier that is not a valid point is a configuration error: Server
// returns an error wrapping ErrInvalidPoint before writing MSG2.
func Server(rw io.ReadWriter, lookup func(user string) (Verifier, bool), rand io.Reader) (user string, err error) {
	var buf [256]byte
	frame, err := readFrame(rw, &buf, -1, "MSG1")
	if err != nil {
		return "", err
	}
	var hello ClientHello
	if err := hello.UnmarshalBinary(frame); err != nil {
		return "", err
	}
	// The dummy is derived for known users too, so that a lookup hit and miss
	// cost the same scalar multiplication.
	v := dummyVerifier(hello.User)
	known := 0
	if stored, ok := lookup(hello.User); ok {
		v, known = stored, 1
	}

	var sb [32]byte
	if _, err := io.ReadFull(randOrDefault(rand), sb[:]); err != nil {
		return "", fmt.Errorf("ecsrp5: reading server private key: %w", err)
	}
	s, err := newServerSession(&hello, &v, &sb)
	if err != nil {
		return "", err
	}
	if err := writeFrame(rw, s.hello, &buf, "MSG2"); err != nil {
		return "", err
	}
	s.derive(&hello.Key)

	frame, err = readFrame(rw, &buf, ProofSize, "MSG3")
	if err != nil {
		return "", err
	}
	var cc Proof
	if err := cc.UnmarshalBinary(frame); err != nil {
		return "", err
	}
	if s.check(&cc)&known != 1 {
		return "", fmt.Errorf("ecsrp5: user %q: client proof does not match (wrong password or unknown user): %w", hello.User, ErrAuthFailed)
	}
	if err := writeFrame(rw, s.cs, &buf, "MSG4"); err != nil {
		return "", err
	}
	return hello.User, nil
}

// dummySecret keys the dummy verifiers of this process. It is random per
// process: stable answers within a run, nothing to learn across restarts.
var dummySecret = sync.OnceValue(func() []byte {
	key := make([]byte, 32)
	rand.Read(key) // never fails since Go 1.24 (it crashes the program instead)
	return key
})

// dummyVerifier returns a verifier for user that looks like a real one (a
// salt and a point i·G with i a hash output) but whose password nobody knows.
func dummyVerifier(user string) Verifier {
	mac := hmac.New(sha512.New, dummySecret())
	mac.Write([]byte("btest ecsrp5 dummy verifier\x00"))
	mac.Write([]byte(user))
	sum := mac.Sum(nil)
	var salt [SaltSize]byte
	copy(salt[:], sum)
	return DeriveVerifier(user, string(sum[SaltSize:]), salt)
}
