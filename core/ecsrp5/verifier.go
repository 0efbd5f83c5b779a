package ecsrp5

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"strings"

	"filippo.io/edwards25519"
)

// SaltSize is the size of a verifier's salt.
const SaltSize = 16

// Verifier is what a server stores per user instead of a password (what
// RouterOS keeps): the salt and the verifier point Γ = i·G, where
// i = SHA-256(salt || SHA-256(user || ":" || password)).
type Verifier struct {
	Salt   [SaltSize]byte
	XGamma [32]byte // big-endian Montgomery x of Γ = i·G
	Parity byte     // 0 or 1, y parity of Γ
}

// DeriveVerifier computes the verifier of user and password for salt
// (docs/protocol.md, §7.4). Usernames and passwords are hashed as their
// raw (UTF-8) bytes.
func DeriveVerifier(user, password string, salt [SaltSize]byte) Verifier {
	i := verifierScalar(user, password, &salt)
	enc, ok := encodePoint(mulBase(&i))
	if !ok {
		// i is a multiple of r: SHA-256 would have to hit one of 16 values.
		panic("ecsrp5: verifier scalar is a multiple of the group order")
	}
	v := Verifier{Salt: salt, Parity: enc[32]}
	copy(v.XGamma[:], enc[:32])
	return v
}

// NewVerifier derives a verifier with a fresh random salt read from rand
// (crypto/rand when rand is nil), for storing a new password.
func NewVerifier(user, password string, rand io.Reader) (Verifier, error) {
	var salt [SaltSize]byte
	if _, err := io.ReadFull(randOrDefault(rand), salt[:]); err != nil {
		return Verifier{}, fmt.Errorf("ecsrp5: reading salt: %w", err)
	}
	return DeriveVerifier(user, password, salt), nil
}

// randOrDefault returns r, or crypto/rand's Reader when r is nil.
func randOrDefault(r io.Reader) io.Reader {
	if r == nil {
		return rand.Reader
	}
	return r
}

// innerHash is SHA-256(user || ":" || password).
func innerHash(user, password string) [32]byte {
	h := sha256.New()
	io.WriteString(h, user)
	io.WriteString(h, ":")
	io.WriteString(h, password)
	var sum [32]byte
	h.Sum(sum[:0])
	return sum
}

// verifierScalar is i = SHA-256(salt || innerHash), a big-endian integer.
func verifierScalar(user, password string, salt *[SaltSize]byte) [32]byte {
	var buf [SaltSize + 32]byte
	copy(buf[:], salt[:])
	inner := innerHash(user, password)
	copy(buf[SaltSize:], inner[:])
	return sha256.Sum256(buf[:])
}

// point returns Γ lifted with the stored parity. The parity matters: a
// server that lifts with a fixed parity rejects correct clients for about
// half of all salts (docs/protocol.md, §7.5 Key exchange).
func (v Verifier) point() (*edwards25519.Point, error) {
	enc := v.encoded()
	return decodePoint(&enc)
}

// encoded returns x_Γ || parity, the 33-byte form RouterOS keeps in user.dat.
func (v Verifier) encoded() [PointSize]byte {
	var enc [PointSize]byte
	copy(enc[:32], v.XGamma[:])
	enc[32] = v.Parity
	return enc
}

// String returns the text form used in configuration files:
// "<salt hex>:<x_gamma hex>:<parity 0|1>", lowercase hex.
func (v Verifier) String() string {
	return fmt.Sprintf("%x:%x:%d", v.Salt, v.XGamma, v.Parity)
}

// ParseVerifier parses the text form written by String. It is strict: the
// input must be exactly what String would print for the result, and x_gamma
// must be a valid curve point (canonical, on the curve, not of small order).
func ParseVerifier(s string) (Verifier, error) {
	var v Verifier
	parts := strings.Split(s, ":")
	if len(parts) != 3 {
		return v, fmt.Errorf("ecsrp5: verifier: want <salt hex>:<x_gamma hex>:<parity>, got %d fields: %w", len(parts), ErrMalformed)
	}
	if err := decodeLowerHex(v.Salt[:], parts[0]); err != nil {
		return v, fmt.Errorf("ecsrp5: verifier salt: %w", err)
	}
	if err := decodeLowerHex(v.XGamma[:], parts[1]); err != nil {
		return v, fmt.Errorf("ecsrp5: verifier x_gamma: %w", err)
	}
	switch parts[2] {
	case "0":
	case "1":
		v.Parity = 1
	default:
		return v, fmt.Errorf("ecsrp5: verifier parity must be 0 or 1: %w", ErrMalformed)
	}
	if _, err := v.point(); err != nil {
		return v, fmt.Errorf("ecsrp5: verifier x_gamma: %w", err)
	}
	return v, nil
}

// decodeLowerHex fills dst from exactly 2·len(dst) lowercase hex digits, the
// only spelling String produces.
func decodeLowerHex(dst []byte, s string) error {
	if len(s) != 2*len(dst) {
		return fmt.Errorf("want %d hex digits, got %d: %w", 2*len(dst), len(s), ErrMalformed)
	}
	for i := range len(s) {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return fmt.Errorf("character %d is not a lowercase hex digit: %w", i, ErrMalformed)
		}
	}
	if _, err := hex.Decode(dst, []byte(s)); err != nil {
		return fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return nil
}

// MarshalText implements encoding.TextMarshaler with the String form.
func (v Verifier) MarshalText() ([]byte, error) {
	return []byte(v.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler with ParseVerifier.
func (v *Verifier) UnmarshalText(text []byte) error {
	p, err := ParseVerifier(string(text))
	if err != nil {
		return err
	}
	*v = p
	return nil
}
