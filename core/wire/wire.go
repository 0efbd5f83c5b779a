// Package wire holds the MikroTik Bandwidth Test ("btest") control messages
// as Go values: the HELLO, the 16-byte command, result words, the 12-byte
// status message, the 16-byte JOIN of secondary TCP connections and the UDP
// port announcement.
//
// Every type marshals into a fixed-size array and unmarshals from a byte
// slice without allocating, and every parser has a fuzz target. Byte layouts
// follow docs/protocol.md, §3 to §9: the command and the status message are
// little-endian, the UDP port is big-endian.
package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Sizes of the fixed-length control messages.
const (
	HelloSize   = 4
	CommandSize = 16
	ResultSize  = 4
	StatusSize  = 12
	JoinSize    = 16
	PortSize    = 2
)

// ErrMalformed is wrapped by every parse error in this package.
var ErrMalformed = errors.New("malformed btest message")

// Hello is the 4-byte greeting a server sends on every new TCP connection.
var Hello = [HelloSize]byte{0x01, 0x00, 0x00, 0x00}

// CheckHello reports whether b is exactly the HELLO greeting.
func CheckHello(b []byte) error {
	if len(b) != HelloSize || b[0] != 0x01 || b[1] != 0 || b[2] != 0 || b[3] != 0 {
		return fmt.Errorf("%w: hello % x, want 01 00 00 00", ErrMalformed, b)
	}
	return nil
}

// Proto is the transport of a test (command byte 0).
type Proto uint8

// Transports. The values are the wire values.
const (
	UDP Proto = 0x00
	TCP Proto = 0x01
)

// String returns "tcp" or "udp".
func (p Proto) String() string {
	switch p {
	case UDP:
		return "udp"
	case TCP:
		return "tcp"
	}
	return fmt.Sprintf("proto(%d)", uint8(p))
}

// Direction is the command's direction bit field, always from the SERVER's
// point of view (command byte 1).
type Direction uint8

// Directions as seen by the server. A client's "transmit" is ServerReceives.
const (
	ServerReceives Direction = 0x01
	ServerSends    Direction = 0x02
	Both           Direction = 0x03
)

// ServerTransmits reports whether the server transmits data in this test.
func (d Direction) ServerTransmits() bool { return d&ServerSends != 0 }

// ServerReceivesData reports whether the server receives data in this test.
func (d Direction) ServerReceivesData() bool { return d&ServerReceives != 0 }

// Valid reports whether d is one of the three defined directions.
func (d Direction) Valid() bool { return d >= ServerReceives && d <= Both }

// String names the direction from the server's side, as RouterOS's
// bandwidth-server session list does.
func (d Direction) String() string {
	switch d {
	case ServerReceives:
		return "receive"
	case ServerSends:
		return "send"
	case Both:
		return "both"
	}
	return fmt.Sprintf("direction(%d)", uint8(d))
}

// Command is the 16-byte test request a client sends after HELLO.
type Command struct {
	Proto     Proto
	Direction Direction // server's view
	// Random is true when the payload is random bytes. On the wire the flag
	// is inverted: byte 2 is 0x00 for random data, 0x01 for zeros.
	Random bool
	// ConnCount is the number of TCP connections (or UDP streams). The wire
	// encodes one connection as 0; Unmarshal maps 0 to 1.
	ConnCount uint8
	// TxSize is 32768 for TCP (write size hint) and the whole IP packet size
	// for UDP.
	TxSize uint16
	// Unknown6 is bytes 6-7, always zero on the wire so far.
	Unknown6 uint16
	// RemoteTxSpeed caps what the server sends, in bit/s; 0 = unlimited.
	RemoteTxSpeed uint32
	// LocalTxSpeed caps what the client sends, in bit/s; 0 = unlimited.
	LocalTxSpeed uint32
}

// Marshal encodes c into its 16-byte wire form.
func (c Command) Marshal() [CommandSize]byte {
	var b [CommandSize]byte
	b[0] = byte(c.Proto)
	b[1] = byte(c.Direction)
	if !c.Random {
		b[2] = 0x01
	}
	if c.ConnCount > 1 {
		b[3] = c.ConnCount
	}
	binary.LittleEndian.PutUint16(b[4:], c.TxSize)
	binary.LittleEndian.PutUint16(b[6:], c.Unknown6)
	binary.LittleEndian.PutUint32(b[8:], c.RemoteTxSpeed)
	binary.LittleEndian.PutUint32(b[12:], c.LocalTxSpeed)
	return b
}

// Unmarshal decodes a 16-byte command. It rejects unknown transports,
// directions and random flags; it accepts any tx_size (old clients sent
// 1500 for TCP).
func (c *Command) Unmarshal(b []byte) error {
	if len(b) != CommandSize {
		return fmt.Errorf("%w: command is %d bytes, want %d", ErrMalformed, len(b), CommandSize)
	}
	if b[0] > 1 {
		return fmt.Errorf("%w: unknown protocol byte 0x%02x", ErrMalformed, b[0])
	}
	if d := Direction(b[1]); !d.Valid() {
		return fmt.Errorf("%w: unknown direction byte 0x%02x", ErrMalformed, b[1])
	}
	if b[2] > 1 {
		return fmt.Errorf("%w: unknown random-data byte 0x%02x", ErrMalformed, b[2])
	}
	*c = Command{
		Proto:         Proto(b[0]),
		Direction:     Direction(b[1]),
		Random:        b[2] == 0,
		ConnCount:     max(b[3], 1),
		TxSize:        binary.LittleEndian.Uint16(b[4:]),
		Unknown6:      binary.LittleEndian.Uint16(b[6:]),
		RemoteTxSpeed: binary.LittleEndian.Uint32(b[8:]),
		LocalTxSpeed:  binary.LittleEndian.Uint32(b[12:]),
	}
	return nil
}

// ResultKind is byte 0 of the server's answer to a command.
type ResultKind uint8

// Result kinds.
const (
	ResultAuthFailed ResultKind = 0x00
	ResultOK         ResultKind = 0x01
	ResultMD5        ResultKind = 0x02
	ResultECSRP5     ResultKind = 0x03
)

// String names the result kind.
func (k ResultKind) String() string {
	switch k {
	case ResultAuthFailed:
		return "auth-failed"
	case ResultOK:
		return "ok"
	case ResultMD5:
		return "md5"
	case ResultECSRP5:
		return "ec-srp5"
	}
	return fmt.Sprintf("result(0x%02x)", uint8(k))
}

// Result is the 4-byte result word. Token is the multi-connection session
// token carried in bytes 1-2 (high byte first) of an OK word; zero otherwise.
type Result struct {
	Kind  ResultKind
	Token uint16
}

// Marshal encodes r into its 4-byte wire form.
func (r Result) Marshal() [ResultSize]byte {
	var b [ResultSize]byte
	b[0] = byte(r.Kind)
	if r.Kind == ResultOK {
		binary.BigEndian.PutUint16(b[1:], r.Token)
	}
	return b
}

// Unmarshal decodes a result word. Only byte 0 decides the kind; bytes 1-2
// are read as the token for OK words (docs/protocol.md, §5.1 Result words).
func (r *Result) Unmarshal(b []byte) error {
	if len(b) != ResultSize {
		return fmt.Errorf("%w: result word is %d bytes, want %d", ErrMalformed, len(b), ResultSize)
	}
	k := ResultKind(b[0])
	if k > ResultECSRP5 {
		return fmt.Errorf("%w: unknown result word % x", ErrMalformed, b)
	}
	*r = Result{Kind: k}
	if k == ResultOK {
		r.Token = binary.BigEndian.Uint16(b[1:])
	}
	return nil
}

// Join is the 16-byte message a secondary TCP connection sends after HELLO
// to attach itself to the session with the given token.
type Join struct {
	Token uint16
}

// joinMarker is byte 2 of a JOIN, constant in every capture.
const joinMarker = 0x02

// Marshal encodes j into its 16-byte wire form.
func (j Join) Marshal() [JoinSize]byte {
	var b [JoinSize]byte
	binary.BigEndian.PutUint16(b[0:], j.Token)
	b[2] = joinMarker
	return b
}

// Unmarshal decodes a JOIN. Bytes 3-15 must be zero.
func (j *Join) Unmarshal(b []byte) error {
	if len(b) != JoinSize {
		return fmt.Errorf("%w: join is %d bytes, want %d", ErrMalformed, len(b), JoinSize)
	}
	if b[2] != joinMarker {
		return fmt.Errorf("%w: join marker 0x%02x, want 0x02", ErrMalformed, b[2])
	}
	for _, x := range b[3:] {
		if x != 0 {
			return fmt.Errorf("%w: join has non-zero trailing bytes", ErrMalformed)
		}
	}
	j.Token = binary.BigEndian.Uint16(b[0:])
	return nil
}

// LooksLikeJoin reports whether a 16-byte first message can be a JOIN rather
// than a COMMAND. Tokens are chosen with a high byte >= 2, which a COMMAND
// (byte 0 in {0,1}) never has, so the two can be told apart without state.
func LooksLikeJoin(b []byte) bool {
	return len(b) == JoinSize && b[0] >= 2 && b[2] == joinMarker
}

// StatusType is byte 0 of every status message.
const StatusType = 0x07

// Status is the 12-byte status message each side sends once per second.
type Status struct {
	// CPU is the sender's CPU load in percent, 0..100.
	CPU uint8
	// Seq counts status messages from 1. Old implementations put it
	// big-endian at offset 1; never rely on it.
	Seq uint32
	// Bytes is what the sender of this message received from its peer
	// since its previous status message.
	Bytes uint32
}

// Marshal encodes s in the RouterOS layout: 07, 0x80|cpu, 00 00, seq LE,
// bytes LE.
func (s Status) Marshal() [StatusSize]byte {
	var b [StatusSize]byte
	s.MarshalTo(b[:])
	return b
}

// MarshalTo writes s into b, which must hold StatusSize bytes.
func (s Status) MarshalTo(b []byte) {
	_ = b[StatusSize-1]
	b[0] = StatusType
	b[1] = 0x80 | min(s.CPU, 100)
	b[2], b[3] = 0, 0
	binary.LittleEndian.PutUint32(b[4:], s.Seq)
	binary.LittleEndian.PutUint32(b[8:], s.Bytes)
}

// Unmarshal decodes a status message. The CPU byte is masked with 0x7f and
// clamped to 100; the sequence number is taken from the RouterOS layout.
func (s *Status) Unmarshal(b []byte) error {
	if len(b) != StatusSize {
		return fmt.Errorf("%w: status is %d bytes, want %d", ErrMalformed, len(b), StatusSize)
	}
	if b[0] != StatusType {
		return fmt.Errorf("%w: status type 0x%02x, want 0x07", ErrMalformed, b[0])
	}
	*s = Status{
		CPU:   min(b[1]&0x7f, 100),
		Seq:   binary.LittleEndian.Uint32(b[4:]),
		Bytes: binary.LittleEndian.Uint32(b[8:]),
	}
	return nil
}

// SaturateBytes converts a per-interval byte count to the 32-bit status
// field, saturating at 2^32-1 instead of wrapping: above ~34 Gbit/s a
// wrapped count would report a tiny rate.
func SaturateBytes(n uint64) uint32 {
	if n > 0xffffffff {
		return 0xffffffff
	}
	return uint32(n)
}

// MarshalPort encodes the UDP port announcement (big-endian).
func MarshalPort(port uint16) [PortSize]byte {
	var b [PortSize]byte
	binary.BigEndian.PutUint16(b[:], port)
	return b
}

// UnmarshalPort decodes the UDP port announcement. Port 0 is rejected.
func UnmarshalPort(b []byte) (uint16, error) {
	if len(b) != PortSize {
		return 0, fmt.Errorf("%w: port is %d bytes, want %d", ErrMalformed, len(b), PortSize)
	}
	p := binary.BigEndian.Uint16(b)
	if p == 0 {
		return 0, fmt.Errorf("%w: udp port 0", ErrMalformed)
	}
	return p, nil
}
