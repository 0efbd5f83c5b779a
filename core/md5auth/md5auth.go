// Package md5auth implements the legacy btest MD5 challenge-response used by
// RouterOS before 6.43 and still answered by every RouterOS client
// (docs/protocol.md, §6 MD5 authentication).
//
//	server → client   02 00 00 00 || challenge[16]
//	client → server   MD5(pw || MD5(pw || challenge)) || username[32]
//	server → client   01 .. (ok) or 00 00 00 00 (failed)
package md5auth

import (
	"bytes"
	"crypto/md5"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
)

// Sizes on the wire.
const (
	ChallengeSize = 16
	HashSize      = md5.Size
	UserFieldSize = 32
	ReplySize     = HashSize + UserFieldSize
)

// ErrMalformed is wrapped by parse errors.
var ErrMalformed = errors.New("malformed md5 auth message")

// Challenge is the server's random nonce.
type Challenge [ChallengeSize]byte

// NewChallenge reads a fresh challenge from rand (crypto/rand when nil).
func NewChallenge(rand io.Reader) (Challenge, error) {
	var c Challenge
	if rand == nil {
		rand = cryptoRand
	}
	if _, err := io.ReadFull(rand, c[:]); err != nil {
		return c, fmt.Errorf("md5auth: reading challenge randomness: %w", err)
	}
	return c, nil
}

// Hash computes MD5(password || MD5(password || challenge)).
func Hash(password []byte, c Challenge) [HashSize]byte {
	h := md5.New()
	h.Write(password)
	h.Write(c[:])
	var inner [HashSize]byte
	h.Sum(inner[:0])
	h.Reset()
	h.Write(password)
	h.Write(inner[:])
	var out [HashSize]byte
	h.Sum(out[:0])
	return out
}

// Reply is the client's 48-byte answer.
type Reply struct {
	Hash [HashSize]byte
	// User is the username field: the name's bytes zero-padded to 32, cut at
	// 32 bytes with no terminator when longer.
	User [UserFieldSize]byte
}

// NewReply builds the client's reply for user and password.
func NewReply(user, password string, c Challenge) Reply {
	r := Reply{Hash: Hash([]byte(password), c)}
	copy(r.User[:], user)
	return r
}

// Marshal encodes r into 48 bytes.
func (r Reply) Marshal() [ReplySize]byte {
	var b [ReplySize]byte
	copy(b[:HashSize], r.Hash[:])
	copy(b[HashSize:], r.User[:])
	return b
}

// Unmarshal decodes a 48-byte reply.
func (r *Reply) Unmarshal(b []byte) error {
	if len(b) != ReplySize {
		return fmt.Errorf("%w: reply is %d bytes, want %d", ErrMalformed, len(b), ReplySize)
	}
	copy(r.Hash[:], b[:HashSize])
	copy(r.User[:], b[HashSize:])
	return nil
}

// UserName returns the username carried in the field: the bytes up to the
// first zero byte, or all 32.
func (r Reply) UserName() string {
	if i := bytes.IndexByte(r.User[:], 0); i >= 0 {
		return string(r.User[:i])
	}
	return string(r.User[:])
}

// Verify reports whether r answers challenge c for password, comparing the
// hash in constant time. The caller looks the user up by r.UserName().
func (r Reply) Verify(password []byte, c Challenge) bool {
	want := Hash(password, c)
	return subtle.ConstantTimeCompare(want[:], r.Hash[:]) == 1
}

// UserFieldFor returns the 32-byte field a client sends for name, so a
// server can compare a configured name exactly as it would arrive (names of
// 32 bytes or more are cut).
func UserFieldFor(name string) [UserFieldSize]byte {
	var f [UserFieldSize]byte
	copy(f[:], name)
	return f
}
