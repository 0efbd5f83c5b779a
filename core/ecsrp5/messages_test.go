package ecsrp5

import (
	"bytes"
	"encoding"
	"errors"
	"strings"
	"testing"
)

func TestMessagesRejectTrailingAndShortFrames(t *testing.T) {
	t.Parallel()
	c := loadVectors(t).Cases[0]
	frames := []struct {
		name  string
		frame []byte
		msg   encoding.BinaryUnmarshaler
	}{
		{"MSG1", unhexT(t, c.Frames.Msg1), new(ClientHello)},
		{"MSG2", unhexT(t, c.Frames.Msg2), new(ServerHello)},
		{"MSG3", unhexT(t, c.Frames.Msg3), new(Proof)},
		{"MSG4", unhexT(t, c.Frames.Msg4), new(Proof)},
	}
	for _, f := range frames {
		if err := f.msg.UnmarshalBinary(f.frame); err != nil {
			t.Fatalf("%s: %v", f.name, err)
		}
		bad := map[string][]byte{
			"trailing byte":        append(bytes.Clone(f.frame), 0),
			"missing byte":         f.frame[:len(f.frame)-1],
			"empty":                nil,
			"length byte only":     f.frame[:1],
			"length says one more": append([]byte{f.frame[0] + 1}, f.frame[1:]...),
		}
		for name, b := range bad {
			if err := f.msg.UnmarshalBinary(b); !errors.Is(err, ErrMalformed) {
				t.Errorf("%s %s: %v", f.name, name, err)
			}
		}
	}
	// Fixed-size messages with a consistent but wrong length byte.
	if err := new(ServerHello).UnmarshalBinary(append([]byte{48}, make([]byte, 48)...)); !errors.Is(err, ErrMalformed) {
		t.Errorf("MSG2 of 48 bytes: %v", err)
	}
	if err := new(Proof).UnmarshalBinary(append([]byte{33}, make([]byte, 33)...)); !errors.Is(err, ErrMalformed) {
		t.Errorf("proof of 33 bytes: %v", err)
	}
}

func TestMessagesParity(t *testing.T) {
	t.Parallel()
	var key [PointSize]byte
	key[32] = 2
	if _, err := (ClientHello{User: "u", Key: key}).MarshalBinary(); !errors.Is(err, ErrMalformed) {
		t.Errorf("ClientHello parity 2: %v", err)
	}
	if _, err := (ServerHello{Key: key}).MarshalBinary(); !errors.Is(err, ErrMalformed) {
		t.Errorf("ServerHello parity 2: %v", err)
	}
	frame := append([]byte{1 + 1 + PointSize, 'u', 0}, key[:]...)
	if err := new(ClientHello).UnmarshalBinary(frame); !errors.Is(err, ErrMalformed) {
		t.Errorf("MSG1 parity 2: %v", err)
	}
	frame = append(append([]byte{ServerHelloSize}, key[:]...), make([]byte, SaltSize)...)
	if err := new(ServerHello).UnmarshalBinary(frame); !errors.Is(err, ErrMalformed) {
		t.Errorf("MSG2 parity 2: %v", err)
	}
}

func TestClientHelloKeyMayContainNUL(t *testing.T) {
	t.Parallel()
	// Only the first NUL ends the name; key bytes are binary.
	var key [PointSize]byte
	key[5], key[32] = 0, 1
	m := ClientHello{User: "router", Key: key}
	frame, err := m.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var got ClientHello
	if err := got.UnmarshalBinary(frame); err != nil || got != m {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	if got, _ := m.AppendBinary([]byte("x")); !bytes.Equal(got, append([]byte("x"), frame...)) {
		t.Error("AppendBinary does not append")
	}
}

func TestErrorsCarryContext(t *testing.T) {
	t.Parallel()
	err := new(ClientHello).UnmarshalBinary([]byte{2, 'a', 'b'})
	if err == nil || !strings.HasPrefix(err.Error(), "ecsrp5: MSG1:") {
		t.Errorf("error %q lacks context", err)
	}
}
