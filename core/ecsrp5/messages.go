package ecsrp5

import (
	"bytes"
	"encoding"
	"fmt"
	"io"
	"strings"
)

// Wire sizes. Every message is a frame [len:1][payload:len]; the sizes here
// are of the payload.
const (
	// MaxUserLen is the longest username MSG1 can carry: 255 − 1 − 33.
	MaxUserLen = 255 - 1 - PointSize
	// ServerHelloSize is the MSG2 payload size, 0x31.
	ServerHelloSize = PointSize + SaltSize
	// ProofSize is the MSG3/MSG4 payload size, 0x20.
	ProofSize = 32
)

// ClientHello is MSG1, client → server: len || username || 00 || Xa || pa.
type ClientHello struct {
	User string          // raw bytes, at most MaxUserLen, no NUL
	Key  [PointSize]byte // W_a = s_a·G: big-endian Montgomery x, then parity 0 or 1
}

// ServerHello is MSG2, server → client: 31 || Xb || pb || salt.
type ServerHello struct {
	Key  [PointSize]byte // W_b = s_b·G + redp1(x_Γ, 0), encoded like ClientHello.Key
	Salt [SaltSize]byte  // the salt of the user's verifier
}

// Proof is MSG3 (the client's Cc) and MSG4 (the server's Cs): 20 || proof.
type Proof [ProofSize]byte

// checkUser enforces what MSG1 can carry: the NUL terminator ends the name,
// and the length byte bounds it.
func checkUser(user string) error {
	if len(user) > MaxUserLen {
		return fmt.Errorf("ecsrp5: username is %d bytes, at most %d fit in MSG1: %w", len(user), MaxUserLen, ErrMalformed)
	}
	if strings.IndexByte(user, 0) >= 0 {
		return fmt.Errorf("ecsrp5: username contains a NUL byte: %w", ErrMalformed)
	}
	return nil
}

// checkKey rejects a parity byte other than 0 or 1; whether the key is a
// curve point is checked where it is used (decodePoint).
func checkKey(key *[PointSize]byte) error {
	if key[32] > 1 {
		return fmt.Errorf("ecsrp5: key parity byte %#02x is not 0 or 1: %w", key[32], ErrMalformed)
	}
	return nil
}

// checkFrame verifies that frame is exactly one [len][payload] frame whose
// payload has the given size (any size when size < 0) and returns the payload.
func checkFrame(frame []byte, size int, what string) ([]byte, error) {
	if len(frame) == 0 {
		return nil, fmt.Errorf("ecsrp5: %s: empty frame: %w", what, ErrMalformed)
	}
	n := int(frame[0])
	if n != len(frame)-1 {
		return nil, fmt.Errorf("ecsrp5: %s: length byte says %d, frame carries %d: %w", what, n, len(frame)-1, ErrMalformed)
	}
	if size >= 0 && n != size {
		return nil, fmt.Errorf("ecsrp5: %s: payload is %d bytes, want %d: %w", what, n, size, ErrMalformed)
	}
	return frame[1:], nil
}

// AppendBinary appends the MSG1 frame to b.
func (m ClientHello) AppendBinary(b []byte) ([]byte, error) {
	if err := checkUser(m.User); err != nil {
		return b, err
	}
	if err := checkKey(&m.Key); err != nil {
		return b, err
	}
	b = append(b, byte(len(m.User)+1+PointSize))
	b = append(b, m.User...)
	b = append(b, 0)
	return append(b, m.Key[:]...), nil
}

// MarshalBinary returns the MSG1 frame, length byte included.
func (m ClientHello) MarshalBinary() ([]byte, error) {
	return m.AppendBinary(make([]byte, 0, 1+len(m.User)+1+PointSize))
}

// UnmarshalBinary parses a whole MSG1 frame, length byte included. The
// username ends at the only NUL before the last 33 bytes; anything else
// (no terminator, a NUL inside the name, a short or long frame) is malformed.
func (m *ClientHello) UnmarshalBinary(frame []byte) error {
	p, err := checkFrame(frame, -1, "MSG1")
	if err != nil {
		return err
	}
	if len(p) < 1+PointSize {
		return fmt.Errorf("ecsrp5: MSG1: payload is %d bytes, want at least %d: %w", len(p), 1+PointSize, ErrMalformed)
	}
	userLen := len(p) - 1 - PointSize
	if p[userLen] != 0 {
		return fmt.Errorf("ecsrp5: MSG1: no NUL after the username: %w", ErrMalformed)
	}
	if bytes.IndexByte(p[:userLen], 0) >= 0 {
		return fmt.Errorf("ecsrp5: MSG1: username contains a NUL byte: %w", ErrMalformed)
	}
	var key [PointSize]byte
	copy(key[:], p[userLen+1:])
	if err := checkKey(&key); err != nil {
		return err
	}
	m.User = string(p[:userLen])
	m.Key = key
	return nil
}

// AppendBinary appends the MSG2 frame to b.
func (m ServerHello) AppendBinary(b []byte) ([]byte, error) {
	if err := checkKey(&m.Key); err != nil {
		return b, err
	}
	b = append(b, ServerHelloSize)
	b = append(b, m.Key[:]...)
	return append(b, m.Salt[:]...), nil
}

// MarshalBinary returns the MSG2 frame, length byte included.
func (m ServerHello) MarshalBinary() ([]byte, error) {
	return m.AppendBinary(make([]byte, 0, 1+ServerHelloSize))
}

// UnmarshalBinary parses a whole MSG2 frame, length byte included.
func (m *ServerHello) UnmarshalBinary(frame []byte) error {
	p, err := checkFrame(frame, ServerHelloSize, "MSG2")
	if err != nil {
		return err
	}
	var key [PointSize]byte
	copy(key[:], p)
	if err := checkKey(&key); err != nil {
		return err
	}
	m.Key = key
	copy(m.Salt[:], p[PointSize:])
	return nil
}

// AppendBinary appends the MSG3/MSG4 frame to b.
func (m Proof) AppendBinary(b []byte) ([]byte, error) {
	b = append(b, ProofSize)
	return append(b, m[:]...), nil
}

// MarshalBinary returns the MSG3/MSG4 frame, length byte included.
func (m Proof) MarshalBinary() ([]byte, error) {
	return m.AppendBinary(make([]byte, 0, 1+ProofSize))
}

// UnmarshalBinary parses a whole MSG3/MSG4 frame, length byte included.
func (m *Proof) UnmarshalBinary(frame []byte) error {
	p, err := checkFrame(frame, ProofSize, "proof")
	if err != nil {
		return err
	}
	copy(m[:], p)
	return nil
}

// readFrame reads one frame into buf and returns it, length byte included. It
// reads the length byte, then exactly that many bytes, so whatever follows
// the frame on the connection stays unread. With size ≥ 0 a different length
// byte fails at once, without waiting for a payload that may never come.
func readFrame(r io.Reader, buf *[256]byte, size int, what string) ([]byte, error) {
	if _, err := io.ReadFull(r, buf[:1]); err != nil {
		return nil, fmt.Errorf("ecsrp5: reading %s: %w", what, err)
	}
	n := int(buf[0])
	if size >= 0 && n != size {
		return nil, fmt.Errorf("ecsrp5: %s: length byte is %d, want %d: %w", what, n, size, ErrMalformed)
	}
	if _, err := io.ReadFull(r, buf[1:1+n]); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("ecsrp5: reading %s: %w", what, err)
	}
	return buf[:1+n], nil
}

// writeFrame marshals m and writes it with one Write, so a message never
// leaves in pieces because of this package.
func writeFrame(w io.Writer, m encoding.BinaryAppender, buf *[256]byte, what string) error {
	frame, err := m.AppendBinary(buf[:0])
	if err != nil {
		return err
	}
	if _, err := w.Write(frame); err != nil {
		return fmt.Errorf("ecsrp5: writing %s: %w", what, err)
	}
	return nil
}

// Interface guards.
var (
	_ encoding.BinaryAppender    = ClientHello{}
	_ encoding.BinaryMarshaler   = ClientHello{}
	_ encoding.BinaryUnmarshaler = (*ClientHello)(nil)
	_ encoding.BinaryAppender    = ServerHello{}
	_ encoding.BinaryMarshaler   = ServerHello{}
	_ encoding.BinaryUnmarshaler = (*ServerHello)(nil)
	_ encoding.BinaryAppender    = Proof{}
	_ encoding.BinaryMarshaler   = Proof{}
	_ encoding.BinaryUnmarshaler = (*Proof)(nil)
)
