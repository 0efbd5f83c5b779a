package ecsrp5

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/big"
	"math/rand/v2"
	"net"
	"strings"
	"testing"
	"time"
)

// pipeResult is what both ends of a handshake over net.Pipe saw.
type pipeResult struct {
	clientErr, serverErr error
	user                 string
	afterAuth            []byte // what the client read after Client returned
}

// runPipe runs Client and Server against each other. Like a real btest
// server, the server closes the connection on failure and otherwise sends
// the result word, which the client must then read intact.
func runPipe(t testing.TB, user, password string, lookup func(string) (Verifier, bool)) pipeResult {
	t.Helper()
	cc, sc := net.Pipe()
	deadline := time.Now().Add(10 * time.Second)
	cc.SetDeadline(deadline)
	sc.SetDeadline(deadline)
	var res pipeResult
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer sc.Close()
		res.user, res.serverErr = Server(sc, lookup, nil)
		if res.serverErr == nil {
			sc.Write([]byte{1, 0, 0, 0})
		}
	}()
	res.clientErr = Client(cc, user, password, nil)
	if res.clientErr == nil {
		word := make([]byte, 4)
		if _, err := io.ReadFull(cc, word); err == nil {
			res.afterAuth = word
		}
	}
	cc.Close()
	<-done
	return res
}

func TestHandshakeProperty(t *testing.T) {
	t.Parallel()
	n := 1000
	if testing.Short() {
		n = 100
	}
	r := rand.New(rand.NewPCG(11, 12))
	parities := [2]int{}
	for k := range n {
		user := randName(r, 1+r.IntN(MaxUserLen))
		password := string(randBytes(r, r.IntN(40)))
		v, err := NewVerifier(user, password, nil) // random salt
		if err != nil {
			t.Fatal(err)
		}
		parities[v.Parity]++
		res := runPipe(t, user, password, func(u string) (Verifier, bool) { return v, u == user })
		if res.clientErr != nil || res.serverErr != nil || res.user != user ||
			!bytes.Equal(res.afterAuth, []byte{1, 0, 0, 0}) {
			t.Fatalf("handshake %d (verifier %s): client %v, server %v, user %q, after %x",
				k, v, res.clientErr, res.serverErr, res.user, res.afterAuth)
		}
	}
	// Both verifier parities occurred, so the stored-parity bug would show.
	if parities[0] == 0 || parities[1] == 0 {
		t.Fatalf("parities %v", parities)
	}
}

// randName returns n random bytes without NUL.
func randName(r *rand.Rand, n int) string {
	b := randBytes(r, n)
	for i := range b {
		if b[i] == 0 {
			b[i] = 'x'
		}
	}
	return string(b)
}

func TestHandshakeWrongPasswordAndUnknownUser(t *testing.T) {
	t.Parallel()
	v := DeriveVerifier("alice", "right", [16]byte{1})
	lookup := func(u string) (Verifier, bool) { return v, u == "alice" }

	wrong := runPipe(t, "alice", "wrong", lookup)
	if !errors.Is(wrong.serverErr, ErrAuthFailed) || !errors.Is(wrong.clientErr, ErrAuthFailed) {
		t.Fatalf("wrong password: client %v, server %v", wrong.clientErr, wrong.serverErr)
	}
	// The client saw the close, and can tell so.
	if !errors.Is(wrong.clientErr, io.EOF) {
		t.Errorf("client error does not wrap the EOF: %v", wrong.clientErr)
	}

	unknown := runPipe(t, "mallory", "x", lookup)
	if !errors.Is(unknown.serverErr, ErrAuthFailed) || !errors.Is(unknown.clientErr, ErrAuthFailed) {
		t.Fatalf("unknown user: client %v, server %v", unknown.clientErr, unknown.serverErr)
	}
	// Same failure as a wrong password, word for word (modulo the name).
	if strings.ReplaceAll(unknown.serverErr.Error(), "mallory", "alice") != wrong.serverErr.Error() {
		t.Errorf("errors differ:\n%v\n%v", unknown.serverErr, wrong.serverErr)
	}
}

// serverMSG2 runs Server on a MSG1 for user and returns the MSG2 it wrote.
func serverMSG2(t *testing.T, user string, lookup func(string) (Verifier, bool)) ServerHello {
	t.Helper()
	sa := [32]byte{31: 7}
	c, err := newClientSession(user, "pw", &sa)
	if err != nil {
		t.Fatal(err)
	}
	msg1, _ := c.hello.MarshalBinary()
	conn := newReplay(msg1, append([]byte{ProofSize}, make([]byte, ProofSize)...))
	_, err = Server(conn, lookup, nil)
	if !errors.Is(err, ErrAuthFailed) {
		t.Fatalf("Server: %v, want ErrAuthFailed", err)
	}
	if conn.out.Len() != 1+ServerHelloSize {
		t.Fatalf("server wrote %d bytes, want MSG2 only", conn.out.Len())
	}
	var m ServerHello
	if err := m.UnmarshalBinary(conn.out.Bytes()); err != nil {
		t.Fatal(err)
	}
	if _, err := decodePoint(&m.Key); err != nil {
		t.Fatalf("MSG2 key: %v", err)
	}
	return m
}

func TestUnknownUserLooksReal(t *testing.T) {
	t.Parallel()
	none := func(string) (Verifier, bool) { return Verifier{}, false }
	a1 := serverMSG2(t, "ghost", none)
	a2 := serverMSG2(t, "ghost", none)
	b := serverMSG2(t, "phantom", none)
	if a1.Salt != a2.Salt {
		t.Error("repeated probes for one unknown user got different salts")
	}
	if a1.Salt == b.Salt {
		t.Error("two unknown users got the same salt")
	}
	if a1.Key == a2.Key {
		t.Error("server key repeated: private key not random")
	}
}

func TestFlippedProofs(t *testing.T) {
	t.Parallel()
	for _, c := range loadVectors(t).Cases {
		t.Run(c.Name, func(t *testing.T) {
			msg1, msg2 := unhexT(t, c.Frames.Msg1), unhexT(t, c.Frames.Msg2)
			msg3, msg4 := unhexT(t, c.Frames.Msg3), unhexT(t, c.Frames.Msg4)
			v := verifierOf(t, &c)
			lookup := func(string) (Verifier, bool) { return v, true }
			for i := 1; i < len(msg3); i++ {
				bad := bytes.Clone(msg3)
				bad[i] ^= 1 << (i % 8)
				conn := newReplay(msg1, bad)
				_, err := Server(conn, lookup, fixedRand(unhexT(t, c.Inputs.ServerKey)))
				if !errors.Is(err, ErrAuthFailed) {
					t.Fatalf("msg3 byte %d flipped: %v", i, err)
				}
				if !bytes.Equal(conn.out.Bytes(), msg2) {
					t.Fatalf("msg3 byte %d flipped: server wrote more than MSG2", i)
				}
			}
			for i := 1; i < len(msg4); i++ {
				bad := bytes.Clone(msg4)
				bad[i] ^= 0x80
				err := Client(newReplay(msg2, bad), c.Inputs.Username, c.Inputs.Password,
					fixedRand(unhexT(t, c.Inputs.ClientKey)))
				if !errors.Is(err, ErrAuthFailed) {
					t.Fatalf("msg4 byte %d flipped: %v", i, err)
				}
			}
			// A different W_b (or salt) changes everything after it.
			for _, i := range []int{1, 20, 33, 40, 49} {
				bad := bytes.Clone(msg2)
				bad[i] ^= 1
				err := Client(newReplay(bad, msg4), c.Inputs.Username, c.Inputs.Password,
					fixedRand(unhexT(t, c.Inputs.ClientKey)))
				if !errors.Is(err, ErrAuthFailed) && !errors.Is(err, ErrInvalidPoint) {
					t.Fatalf("msg2 byte %d flipped: %v", i, err)
				}
			}
		})
	}
}

// offCurveX returns the smallest u ≥ start that is not the x of a curve point.
func offCurveX(start int64) [32]byte {
	for u := start; ; u++ {
		if _, ok := refLift(big.NewInt(u), 0); !ok {
			var b [32]byte
			big.NewInt(u).FillBytes(b[:])
			return b
		}
	}
}

func TestInvalidPoints(t *testing.T) {
	t.Parallel()
	c := loadVectors(t).Cases[0]
	good := [PointSize]byte(unhexT(t, c.Client.KeyX+"01"))
	off := offCurveX(2)
	var nonCanonical [32]byte // p + 9: G's x plus p, on the curve mod p
	new(big.Int).Add(refP, big.NewInt(9)).FillBytes(nonCanonical[:])
	var one [32]byte
	one[31] = 1 // u = 1: a point of order 4
	keys := map[string][PointSize]byte{
		"off curve":     [PointSize]byte(append(off[:], 0)),
		"non-canonical": [PointSize]byte(append(nonCanonical[:], 0)),
		"order 2":       {},
		"order 4":       [PointSize]byte(append(one[:], 0)),
		"order 4 odd":   [PointSize]byte(append(one[:], 1)),
		"all ones":      [PointSize]byte(append(bytes.Repeat([]byte{0xff}, 32), 1)),
	}
	v := verifierOf(t, &c)
	lookup := func(string) (Verifier, bool) { return v, true }
	for name, key := range keys {
		t.Run(name, func(t *testing.T) {
			if _, err := decodePoint(&key); !errors.Is(err, ErrInvalidPoint) {
				t.Fatalf("decodePoint: %v", err)
			}
			msg1, err := ClientHello{User: "u", Key: key}.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			conn := newReplay(msg1)
			if _, err := Server(conn, lookup, nil); !errors.Is(err, ErrInvalidPoint) {
				t.Fatalf("Server: %v", err)
			}
			if conn.out.Len() != 0 {
				t.Fatal("server answered an invalid key")
			}
			msg2, _ := ServerHello{Key: key}.MarshalBinary()
			conn = newReplay(msg2)
			if err := Client(conn, "u", "p", nil); !errors.Is(err, ErrInvalidPoint) {
				t.Fatalf("Client: %v", err)
			}
		})
	}
	if _, err := decodePoint(&good); err != nil {
		t.Fatal(err)
	}
	// A stored verifier that is not a point is a configuration error.
	bad := Verifier{XGamma: off}
	conn := newReplay(unhexT(t, c.Frames.Msg1))
	if _, err := Server(conn, func(string) (Verifier, bool) { return bad, true }, nil); !errors.Is(err, ErrInvalidPoint) || conn.out.Len() != 0 {
		t.Fatalf("invalid stored verifier: %v, wrote %d bytes", err, conn.out.Len())
	}
}

func TestBadFramesOnTheWire(t *testing.T) {
	t.Parallel()
	c := loadVectors(t).Cases[0]
	msg1, msg2 := unhexT(t, c.Frames.Msg1), unhexT(t, c.Frames.Msg2)
	msg3 := unhexT(t, c.Frames.Msg3)
	v := verifierOf(t, &c)
	lookup := func(string) (Verifier, bool) { return v, true }
	sb := unhexT(t, c.Inputs.ServerKey)
	sa := unhexT(t, c.Inputs.ClientKey)
	user, pass := c.Inputs.Username, c.Inputs.Password

	server := []struct {
		name string
		in   []byte
		want []error
	}{
		{"empty", nil, []error{io.EOF}},
		{"msg1 truncated", msg1[:10], []error{io.ErrUnexpectedEOF}},
		{"msg1 too short", []byte{3, 'a', 0, 1}, []error{ErrMalformed}},
		{"msg1 no terminator", append([]byte{msg1[0]}, bytes.ReplaceAll(msg1[1:], []byte{0}, []byte{1})...), []error{ErrMalformed}},
		{"msg3 long", append(bytes.Clone(msg1), append([]byte{33}, bytes.Repeat([]byte{1}, 33)...)...), []error{ErrMalformed}},
		{"msg3 short", append(bytes.Clone(msg1), 31), []error{ErrMalformed}},
		{"msg3 truncated", append(bytes.Clone(msg1), msg3[:20]...), []error{io.ErrUnexpectedEOF}},
		{"msg3 missing", msg1, []error{io.EOF}},
	}
	for _, tc := range server {
		t.Run("server "+tc.name, func(t *testing.T) {
			conn := newReplay(tc.in)
			_, err := Server(conn, lookup, fixedRand(sb))
			for _, w := range tc.want {
				if !errors.Is(err, w) {
					t.Errorf("err %v, want %v", err, w)
				}
			}
			if errors.Is(err, ErrAuthFailed) {
				t.Errorf("framing error reported as an auth failure: %v", err)
			}
		})
	}
	// A bad length byte is rejected before reading a payload that may never
	// come: everything after it stays unread.
	conn := newReplay(msg1, []byte{0x21, 0xaa, 0xbb})
	if _, err := Server(conn, lookup, fixedRand(sb)); !errors.Is(err, ErrMalformed) || conn.Len() != 2 {
		t.Errorf("msg3 length 0x21: %v, %d bytes left", err, conn.Len())
	}

	client := []struct {
		name string
		in   []byte
		want []error
	}{
		{"closed before msg2", nil, []error{ErrAuthFailed, io.EOF}},
		{"msg2 truncated", msg2[:30], []error{ErrAuthFailed, io.ErrUnexpectedEOF}},
		{"msg2 short", []byte{0x30}, []error{ErrMalformed}},
		{"msg2 parity 2", append(append(bytes.Clone(msg2[:33]), 2), msg2[34:]...), []error{ErrMalformed}},
		{"closed before msg4", msg2, []error{ErrAuthFailed, io.EOF}},
		{"msg4 truncated", append(bytes.Clone(msg2), msg3[:5]...), []error{ErrAuthFailed, io.ErrUnexpectedEOF}},
		{"msg4 long", append(bytes.Clone(msg2), 0x21), []error{ErrAuthFailed, ErrMalformed}},
		{"failure word instead of msg4", append(bytes.Clone(msg2), 0, 0, 0, 0), []error{ErrAuthFailed, ErrMalformed}},
	}
	for _, tc := range client {
		t.Run("client "+tc.name, func(t *testing.T) {
			err := Client(newReplay(tc.in), user, pass, fixedRand(sa))
			for _, w := range tc.want {
				if !errors.Is(err, w) {
					t.Errorf("err %v, want %v", err, w)
				}
			}
		})
	}
}

func TestUsernames(t *testing.T) {
	t.Parallel()
	var key [PointSize]byte
	long := strings.Repeat("u", MaxUserLen)
	if MaxUserLen != 221 {
		t.Fatalf("MaxUserLen = %d", MaxUserLen)
	}
	frame, err := ClientHello{User: long, Key: key}.MarshalBinary()
	if err != nil || len(frame) != 256 || frame[0] != 255 {
		t.Fatalf("221-byte user: %v, %d bytes", err, len(frame))
	}
	for _, user := range []string{long + "u", "a\x00b", "\x00", "admin\x00"} {
		if _, err := (ClientHello{User: user}).MarshalBinary(); !errors.Is(err, ErrMalformed) {
			t.Errorf("Marshal %q: %v", user, err)
		}
		conn := newReplay()
		if err := Client(conn, user, "pw", nil); !errors.Is(err, ErrMalformed) || conn.out.Len() != 0 {
			t.Errorf("Client %q: %v, wrote %d bytes", user, err, conn.out.Len())
		}
	}
	// A NUL inside the name on the wire.
	bad := append([]byte{1 + 3 + 1 + PointSize}, "a\x00b\x00"...)
	bad = append(bad, key[:]...)
	var m ClientHello
	if err := m.UnmarshalBinary(bad); !errors.Is(err, ErrMalformed) {
		t.Errorf("NUL in name: %v", err)
	}

	// The longest name authenticates end to end; so does the empty one.
	for _, user := range []string{long, ""} {
		v := DeriveVerifier(user, "pw", [16]byte{9})
		res := runPipe(t, user, "pw", func(u string) (Verifier, bool) { return v, u == user })
		if res.clientErr != nil || res.serverErr != nil || res.user != user {
			t.Errorf("user of %d bytes: client %v, server %v", len(user), res.clientErr, res.serverErr)
		}
	}
}

func TestRandomSourceErrors(t *testing.T) {
	t.Parallel()
	if err := Client(newReplay(), "u", "p", fixedRand(nil)); err == nil || errors.Is(err, ErrAuthFailed) {
		t.Errorf("Client with a failing random source: %v", err)
	}
	c := loadVectors(t).Cases[0]
	v := verifierOf(t, &c)
	conn := newReplay(unhexT(t, c.Frames.Msg1))
	if _, err := Server(conn, func(string) (Verifier, bool) { return v, true }, fixedRand(nil)); err == nil || conn.out.Len() != 0 {
		t.Errorf("Server with a failing random source: %v", err)
	}
	if _, err := NewVerifier("u", "p", fixedRand(make([]byte, 15))); err == nil {
		t.Error("NewVerifier with a short random source")
	}
}

func ExampleServer() {
	// A server keeps verifiers, never passwords.
	stored := map[string]Verifier{"admin": DeriveVerifier("admin", "secret", [16]byte{1, 2, 3})}
	lookup := func(user string) (Verifier, bool) { v, ok := stored[user]; return v, ok }

	clientConn, serverConn := net.Pipe()
	clientDone := make(chan error)
	go func() {
		defer clientConn.Close()
		// The client has read 03 00 00 00 after sending its command.
		clientDone <- Client(clientConn, "admin", "secret", nil)
	}()
	user, err := Server(serverConn, lookup, nil)
	serverConn.Close()
	fmt.Println("server:", user, err)
	fmt.Println("client:", <-clientDone)
	// Output:
	// server: admin <nil>
	// client: <nil>
}
