package ecsrp5

import (
	"bytes"
	"errors"
	"testing"
)

// One fuzz target per parser, seeded with the vectors' frames. Each parser
// must either reject its input or accept exactly what it would marshal back,
// so no two byte strings parse to the same message.

func FuzzParseClientHello(f *testing.F) {
	for _, c := range loadVectors(f).Cases {
		f.Add(unhexT(f, c.Frames.Msg1))
	}
	f.Add([]byte{34, 0})
	f.Fuzz(func(t *testing.T, frame []byte) {
		var m ClientHello
		if err := m.UnmarshalBinary(frame); err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error does not wrap ErrMalformed: %v", err)
			}
			return
		}
		back, err := m.MarshalBinary()
		if err != nil || !bytes.Equal(back, frame) {
			t.Fatalf("accepted %x but marshals to %x, %v", frame, back, err)
		}
		decodePoint(&m.Key) // must not panic on any 33 bytes
	})
}

func FuzzParseServerHello(f *testing.F) {
	for _, c := range loadVectors(f).Cases {
		f.Add(unhexT(f, c.Frames.Msg2))
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		var m ServerHello
		if err := m.UnmarshalBinary(frame); err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error does not wrap ErrMalformed: %v", err)
			}
			return
		}
		back, err := m.MarshalBinary()
		if err != nil || !bytes.Equal(back, frame) {
			t.Fatalf("accepted %x but marshals to %x, %v", frame, back, err)
		}
		if p, err := decodePoint(&m.Key); err == nil {
			// Every accepted point re-encodes to its wire form.
			if enc, ok := encodePoint(p); !ok || enc != m.Key {
				t.Fatalf("point %x re-encodes as %x", m.Key, enc)
			}
		}
	})
}

func FuzzParseProof(f *testing.F) {
	for _, c := range loadVectors(f).Cases {
		f.Add(unhexT(f, c.Frames.Msg3))
		f.Add(unhexT(f, c.Frames.Msg4))
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		var m Proof
		if err := m.UnmarshalBinary(frame); err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error does not wrap ErrMalformed: %v", err)
			}
			return
		}
		back, _ := m.MarshalBinary()
		if !bytes.Equal(back, frame) {
			t.Fatalf("accepted %x but marshals to %x", frame, back)
		}
	})
}

func FuzzParseVerifier(f *testing.F) {
	for _, c := range loadVectors(f).Cases {
		f.Add(verifierOf(f, &c).String())
	}
	f.Add("00000000000000000000000000000000:0000000000000000000000000000000000000000000000000000000000000009:0")
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseVerifier(s)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrInvalidPoint) {
				t.Fatalf("error wraps no sentinel: %v", err)
			}
			return
		}
		if v.String() != s {
			t.Fatalf("accepted %q but prints %q", s, v.String())
		}
	})
}

// FuzzServer feeds arbitrary client bytes to Server: it must return (never
// panic or block) and never accept without the password.
func FuzzServer(f *testing.F) {
	cases := loadVectors(f).Cases
	for _, c := range cases {
		f.Add(append(unhexT(f, c.Frames.Msg1), unhexT(f, c.Frames.Msg3)...))
	}
	f.Add([]byte{})
	v := verifierOf(f, &cases[0])
	sb := unhexT(f, cases[0].Inputs.ServerKey)
	lookup := func(u string) (Verifier, bool) { return v, u == cases[0].Inputs.Username }
	f.Fuzz(func(t *testing.T, in []byte) {
		conn := newReplay(in)
		user, err := Server(conn, lookup, fixedRand(sb))
		if err == nil && !bytes.HasPrefix(in, unhexT(t, cases[0].Frames.Msg1+cases[0].Frames.Msg3)) {
			t.Fatalf("accepted user %q from %x", user, in)
		}
		if conn.out.Len() > 2+ServerHelloSize+ProofSize {
			t.Fatalf("server wrote %d bytes", conn.out.Len())
		}
	})
}

// FuzzClient feeds arbitrary server bytes to Client: it must return, and only
// succeed on the genuine server's answers.
func FuzzClient(f *testing.F) {
	cases := loadVectors(f).Cases
	c := cases[0]
	f.Add(append(unhexT(f, c.Frames.Msg2), unhexT(f, c.Frames.Msg4)...))
	sa := unhexT(f, c.Inputs.ClientKey)
	f.Fuzz(func(t *testing.T, in []byte) {
		err := Client(newReplay(in), c.Inputs.Username, c.Inputs.Password, fixedRand(sa))
		if err == nil && !bytes.HasPrefix(in, unhexT(t, c.Frames.Msg2+c.Frames.Msg4)) {
			t.Fatalf("client accepted %x", in)
		}
	})
}
