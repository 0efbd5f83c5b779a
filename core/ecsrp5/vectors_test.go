package ecsrp5

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"math/big"
	"os"
	"testing"

	"filippo.io/edwards25519"
)

// The known-answer vectors of testdata/ecsrp5.json (see docs/protocol.md, §17.3
// Known-answer files): seven cases computed by the Python
// reference and re-checked with btest-rs. Every field is checked here.

type vecPoint struct {
	WX     string `json:"weierstrass_x"`
	WY     string `json:"weierstrass_y"`
	Parity int    `json:"y_parity"`
}

type vecCase struct {
	Name   string `json:"name"`
	Inputs struct {
		Username    string `json:"username"`
		UsernameHex string `json:"username_utf8_hex"`
		Password    string `json:"password"`
		PasswordHex string `json:"password_utf8_hex"`
		Salt        string `json:"salt"`
		ClientKey   string `json:"client_private_key"`
		ServerKey   string `json:"server_private_key"`
	} `json:"inputs"`
	Validator struct {
		InnerHash string   `json:"inner_hash"`
		I         string   `json:"i"`
		XGamma    string   `json:"x_gamma"`
		Parity    int      `json:"x_gamma_parity"`
		UserDatV  string   `json:"user_dat_v"`
		Gamma     vecPoint `json:"gamma_point"`
	} `json:"validator"`
	Client struct {
		KeyX      string   `json:"public_key_x"`
		KeyParity int      `json:"public_key_parity"`
		Point     vecPoint `json:"public_point"`
	} `json:"client"`
	Server struct {
		PlainX      string   `json:"plain_public_key_x"`
		PlainParity int      `json:"plain_public_key_parity"`
		PlainPoint  vecPoint `json:"plain_public_point"`
		Redp1Seed   string   `json:"redp1_seed"`
		Redp1Tries  int      `json:"redp1_attempts"`
		Redp1EvenX  string   `json:"redp1_even_point_x"`
		Redp1Even   vecPoint `json:"redp1_even_point"`
		KeyX        string   `json:"public_key_x"`
		KeyParity   int      `json:"public_key_parity"`
		Point       vecPoint `json:"public_point"`
	} `json:"server"`
	Shared struct {
		J                string   `json:"j"`
		ScalarUnreduced  string   `json:"client_scalar_unreduced"`
		Scalar           string   `json:"client_scalar"`
		UnblindedServerX string   `json:"unblinded_server_key_x"`
		Z                vecPoint `json:"Z_point"`
		SmallZ           string   `json:"z"`
		ClientProof      string   `json:"client_proof"`
		ServerProof      string   `json:"server_proof"`
	} `json:"shared"`
	Frames struct {
		Msg1 string `json:"msg1_client_to_server"`
		Msg2 string `json:"msg2_server_to_client"`
		Msg3 string `json:"msg3_client_to_server"`
		Msg4 string `json:"msg4_server_to_client"`
	} `json:"btest_frames"`
	Winbox struct {
		Msg1 string `json:"msg1_client_to_server"`
		Msg2 string `json:"msg2_server_to_client"`
		Msg3 string `json:"msg3_client_to_server"`
		Msg4 string `json:"msg4_server_to_client"`
	} `json:"winbox_frames"`
	RefCheck struct {
		MarginAccepted bool   `json:"margin_winbox_server_accepted_client_proof"`
		MarginZ        string `json:"margin_winbox_server_z"`
		BtestRsZ       string `json:"btest_rs_formula_server_z"`
	} `json:"reference_server_check"`
}

type vecFile struct {
	Curve struct {
		P         string `json:"p"`
		R         string `json:"order_r"`
		Cofactor  int    `json:"cofactor"`
		A         int64  `json:"montgomery_A"`
		B         int64  `json:"montgomery_B"`
		WA        string `json:"a"`
		WB        string `json:"b"`
		AOver3    string `json:"A_over_3_mod_p"`
		Generator struct {
			U      string `json:"montgomery_x"`
			WX     string `json:"weierstrass_x"`
			WY     string `json:"weierstrass_y"`
			Parity int    `json:"y_parity"`
		} `json:"generator"`
	} `json:"curve"`
	Checks struct {
		UserDat struct {
			Username string `json:"username"`
			Password string `json:"password"`
			Salt     string `json:"salt"`
			StoredV  string `json:"stored_v"`
			I        string `json:"computed_i"`
			Match    bool   `json:"match"`
		} `json:"routeros_user_dat"`
	} `json:"checks"`
	Cases []vecCase `json:"cases"`
}

func loadVectors(tb testing.TB) *vecFile {
	tb.Helper()
	raw, err := os.ReadFile("testdata/ecsrp5.json")
	if err != nil {
		tb.Fatal(err)
	}
	var f vecFile
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&f); err != nil {
		tb.Fatal(err)
	}
	if len(f.Cases) != 7 {
		tb.Fatalf("got %d cases, want 7", len(f.Cases))
	}
	return &f
}

func unhexT(tb testing.TB, s string) []byte {
	tb.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		tb.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

func hex32(tb testing.TB, s string) [32]byte {
	tb.Helper()
	b := unhexT(tb, s)
	if len(b) != 32 {
		tb.Fatalf("%q is %d bytes, want 32", s, len(b))
	}
	return [32]byte(b)
}

func hex16(tb testing.TB, s string) [16]byte {
	tb.Helper()
	b := unhexT(tb, s)
	if len(b) != 16 {
		tb.Fatalf("%q is %d bytes, want 16", s, len(b))
	}
	return [16]byte(b)
}

// checkEq compares a computed byte string with a vector's hex.
func checkEq(t *testing.T, what string, got []byte, want string) {
	t.Helper()
	if g := hex.EncodeToString(got); g != want {
		t.Errorf("%s:\n got %s\nwant %s", what, g, want)
	}
}

// checkPoint compares a point with a vector's Weierstrass coordinates, going
// through the Montgomery map (x_w = u + A/3, y = v) that the wire does not show.
func checkPoint(t *testing.T, what string, p *edwards25519.Point, want vecPoint) {
	t.Helper()
	u, v, identity := toMontgomery(p)
	if identity == 1 {
		t.Fatalf("%s: point at infinity", what)
	}
	ub := feToBE(&u)
	x := refMod(new(big.Int).Add(new(big.Int).SetBytes(ub[:]), refA3))
	var xb [32]byte
	x.FillBytes(xb[:])
	vb := feToBE(&v)
	checkEq(t, what+" weierstrass_x", xb[:], want.WX)
	checkEq(t, what+" weierstrass_y", vb[:], want.WY)
	if v.IsNegative() != want.Parity {
		t.Errorf("%s: parity %d, want %d", what, v.IsNegative(), want.Parity)
	}
}

// checkEncoded checks a 33-byte wire point against x, parity and coordinates.
func checkEncoded(t *testing.T, what string, enc [PointSize]byte, wantX string, wantParity int, want vecPoint) {
	t.Helper()
	checkEq(t, what+" x", enc[:32], wantX)
	if int(enc[32]) != wantParity {
		t.Errorf("%s: parity %d, want %d", what, enc[32], wantParity)
	}
	p, err := decodePoint(&enc)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	checkPoint(t, what, p, want)
}

// fixedRand is a deterministic random source: it hands out the given bytes
// and then fails, so a test notices any extra read.
func fixedRand(b []byte) io.Reader { return io.MultiReader(bytes.NewReader(b), errReader{}) }

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("test random source exhausted") }

// replayConn reads scripted peer bytes and records what is written.
type replayConn struct {
	*bytes.Reader
	out bytes.Buffer
}

func (c *replayConn) Write(b []byte) (int, error) { return c.out.Write(b) }

func newReplay(in ...[]byte) *replayConn {
	return &replayConn{Reader: bytes.NewReader(bytes.Join(in, nil))}
}

func verifierOf(t testing.TB, c *vecCase) Verifier {
	return Verifier{
		Salt:   hex16(t, c.Inputs.Salt),
		XGamma: hex32(t, c.Validator.XGamma),
		Parity: byte(c.Validator.Parity),
	}
}

func TestVectorCurve(t *testing.T) {
	t.Parallel()
	f := loadVectors(t)
	cv := f.Curve
	if bigHex(cv.P).Cmp(refP) != 0 || bigHex(cv.R).Cmp(refR) != 0 || bigHex(cv.WA).Cmp(refA) != 0 ||
		bigHex(cv.WB).Cmp(refB) != 0 || bigHex(cv.AOver3).Cmp(refA3) != 0 {
		t.Fatal("curve constants differ from docs/protocol.md, §7.2")
	}
	if cv.A != 486662 || cv.B != 1 || cv.Cofactor != 8 {
		t.Fatal("Montgomery constants differ")
	}
	// l of edwards25519 is r: the scalar arithmetic depends on it.
	var rb [32]byte
	refR.FillBytes(rb[:])
	if s := scalarFromBE(&rb); s.Equal(edwards25519.NewScalar()) != 1 {
		t.Fatal("r is not 0 mod edwards25519's l")
	}
	g := mulBase(&[32]byte{31: 1})
	enc, ok := encodePoint(g)
	if !ok {
		t.Fatal("G encodes as infinity")
	}
	checkEq(t, "encode(G)", enc[:], cv.Generator.U+"00")
	if cv.Generator.Parity != 0 {
		t.Fatal("generator parity")
	}
	checkPoint(t, "G", g, vecPoint{WX: cv.Generator.WX, WY: cv.Generator.WY})
	// G decoded from its wire form is the edwards25519 base point.
	dg, err := decodePoint(&enc)
	if err != nil || dg.Equal(edwards25519.NewGeneratorPoint()) != 1 {
		t.Fatal("lift_x(9, 0) is not the edwards25519 base point")
	}
}

func TestVectorRouterOSUserDat(t *testing.T) {
	t.Parallel()
	ud := loadVectors(t).Checks.UserDat
	if !ud.Match {
		t.Fatal("vector says no match")
	}
	salt := hex16(t, ud.Salt)
	i := verifierScalar(ud.Username, ud.Password, &salt)
	checkEq(t, "i", i[:], ud.I)
	v := DeriveVerifier(ud.Username, ud.Password, salt)
	enc := v.encoded()
	checkEq(t, "stored v", enc[:], ud.StoredV)
}

func TestVectorDerivation(t *testing.T) {
	t.Parallel()
	for _, c := range loadVectors(t).Cases {
		t.Run(c.Name, func(t *testing.T) {
			in := c.Inputs
			checkEq(t, "username utf8", []byte(in.Username), in.UsernameHex)
			checkEq(t, "password utf8", []byte(in.Password), in.PasswordHex)
			salt := hex16(t, in.Salt)
			sa := hex32(t, in.ClientKey)
			sb := hex32(t, in.ServerKey)

			// Verifier.
			inner := innerHash(in.Username, in.Password)
			checkEq(t, "inner_hash", inner[:], c.Validator.InnerHash)
			i := verifierScalar(in.Username, in.Password, &salt)
			checkEq(t, "i", i[:], c.Validator.I)
			v := DeriveVerifier(in.Username, in.Password, salt)
			checkEq(t, "x_gamma", v.XGamma[:], c.Validator.XGamma)
			if int(v.Parity) != c.Validator.Parity {
				t.Errorf("x_gamma parity %d, want %d", v.Parity, c.Validator.Parity)
			}
			enc := v.encoded()
			checkEq(t, "user_dat_v", enc[:], c.Validator.UserDatV)
			checkPoint(t, "gamma", mulBase(&i), c.Validator.Gamma)

			// Server side of the arithmetic.
			plain, ok := encodePoint(mulBase(&sb))
			if !ok {
				t.Fatal("s_b·G at infinity")
			}
			checkEncoded(t, "plain server key", plain, c.Server.PlainX, c.Server.PlainParity, c.Server.PlainPoint)
			seed := sha256.Sum256(v.XGamma[:])
			checkEq(t, "redp1_seed", seed[:], c.Server.Redp1Seed)
			e, tries := redp1(&v.XGamma, 0)
			if tries != c.Server.Redp1Tries {
				t.Errorf("redp1 tried %d candidates, want %d", tries, c.Server.Redp1Tries)
			}
			eEnc, _ := encodePoint(e)
			checkEncoded(t, "redp1 even point", eEnc, c.Server.Redp1EvenX, 0, c.Server.Redp1Even)
			eOdd, triesOdd := redp1(&v.XGamma, 1)
			if triesOdd != tries || eOdd.Equal(new(edwards25519.Point).Negate(e)) != 1 {
				t.Error("redp1(x, 1) != −redp1(x, 0)")
			}

			var hello ClientHello
			if err := hello.UnmarshalBinary(unhexT(t, c.Frames.Msg1)); err != nil {
				t.Fatal(err)
			}
			s, err := newServerSession(&hello, &v, &sb)
			if err != nil {
				t.Fatal(err)
			}
			checkEncoded(t, "server key", s.hello.Key, c.Server.KeyX, c.Server.KeyParity, c.Server.Point)
			s.derive(&hello.Key)
			checkEq(t, "server j", s.j[:], c.Shared.J)
			checkEq(t, "server z", s.z[:], c.Shared.SmallZ)
			checkEq(t, "btest-rs server z", s.z[:], c.RefCheck.BtestRsZ)
			checkEq(t, "server's expected client proof", s.cc[:], c.Shared.ClientProof)
			checkEq(t, "server proof", s.cs[:], c.Shared.ServerProof)

			// Client side.
			cs, err := newClientSession(in.Username, in.Password, &sa)
			if err != nil {
				t.Fatal(err)
			}
			checkEncoded(t, "client key", cs.hello.Key, c.Client.KeyX, c.Client.KeyParity, c.Client.Point)
			var sh ServerHello
			if err := sh.UnmarshalBinary(unhexT(t, c.Frames.Msg2)); err != nil {
				t.Fatal(err)
			}
			cc, err := cs.answer(&sh)
			if err != nil {
				t.Fatal(err)
			}
			checkEq(t, "client i", cs.i[:], c.Validator.I)
			checkEq(t, "client j", cs.j[:], c.Shared.J)
			unreduced := new(big.Int).Mul(new(big.Int).SetBytes(cs.i[:]), new(big.Int).SetBytes(cs.j[:]))
			unreduced.Add(unreduced, new(big.Int).SetBytes(sa[:]))
			if unreduced.Cmp(bigHex(c.Shared.ScalarUnreduced)) != 0 {
				t.Errorf("i·j + s_a = %x, want %s", unreduced, c.Shared.ScalarUnreduced)
			}
			checkEq(t, "client scalar", cs.k[:], c.Shared.Scalar)
			checkEq(t, "unblinded server key x", cs.unblinded[:32], c.Shared.UnblindedServerX)
			checkEq(t, "unblinded = plain server key", cs.unblinded[:], hex.EncodeToString(plain[:]))
			checkEq(t, "client z", cs.z[:], c.Shared.SmallZ)
			checkEq(t, "client proof", cc[:], c.Shared.ClientProof)
			checkEq(t, "client's expected server proof", cs.cs[:], c.Shared.ServerProof)

			// Z itself, both ways round.
			var kb [32]byte = cs.k
			var k edwards25519.Scalar
			if _, err := k.SetCanonicalBytes(reverse(kb[:])); err != nil {
				t.Fatal(err)
			}
			wb, _ := decodePoint(&sh.Key)
			bPrime := new(edwards25519.Point).Add(wb, eOdd)
			zc := new(edwards25519.Point).ScalarMult(&k, bPrime)
			checkPoint(t, "client Z", zc, c.Shared.Z)
			zs := mulFull(&sb, new(edwards25519.Point).Add(s.wa, mulFull(&s.j, s.gamma)))
			checkPoint(t, "server Z", zs, c.Shared.Z)
		})
	}
}

func reverse(b []byte) []byte {
	r := make([]byte, len(b))
	for i := range b {
		r[len(b)-1-i] = b[i]
	}
	return r
}

func TestVectorFrames(t *testing.T) {
	t.Parallel()
	for _, c := range loadVectors(t).Cases {
		t.Run(c.Name, func(t *testing.T) {
			in := c.Inputs
			msg1, msg2 := unhexT(t, c.Frames.Msg1), unhexT(t, c.Frames.Msg2)
			msg3, msg4 := unhexT(t, c.Frames.Msg3), unhexT(t, c.Frames.Msg4)

			// The btest frames are the Winbox frames without their 0x06.
			for i, p := range [][2]string{{c.Frames.Msg1, c.Winbox.Msg1}, {c.Frames.Msg2, c.Winbox.Msg2},
				{c.Frames.Msg3, c.Winbox.Msg3}, {c.Frames.Msg4, c.Winbox.Msg4}} {
				if p[0][:2]+"06"+p[0][2:] != p[1] {
					t.Errorf("msg%d: btest frame is not the Winbox frame minus 0x06", i+1)
				}
			}

			// Message values round-trip to the same bytes.
			var m1 ClientHello
			if err := m1.UnmarshalBinary(msg1); err != nil {
				t.Fatal(err)
			}
			if m1.User != in.Username {
				t.Errorf("MSG1 user %q", m1.User)
			}
			var m2 ServerHello
			if err := m2.UnmarshalBinary(msg2); err != nil {
				t.Fatal(err)
			}
			var m3, m4 Proof
			if err := m3.UnmarshalBinary(msg3); err != nil {
				t.Fatal(err)
			}
			if err := m4.UnmarshalBinary(msg4); err != nil {
				t.Fatal(err)
			}
			for i, m := range []interface{ MarshalBinary() ([]byte, error) }{m1, m2, m3, m4} {
				b, err := m.MarshalBinary()
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(b, [][]byte{msg1, msg2, msg3, msg4}[i]) {
					t.Errorf("msg%d does not round-trip", i+1)
				}
			}

			// Client with injected randomness writes exactly msg1 then msg3
			// and leaves the result word that follows MSG4 unread.
			word := []byte{1, 0, 0, 0}
			conn := newReplay(msg2, msg4, word)
			if err := Client(conn, in.Username, in.Password, fixedRand(unhexT(t, in.ClientKey))); err != nil {
				t.Fatalf("Client: %v", err)
			}
			if !bytes.Equal(conn.out.Bytes(), append(append([]byte{}, msg1...), msg3...)) {
				t.Errorf("client wrote %x", conn.out.Bytes())
			}
			if rest, _ := io.ReadAll(conn); !bytes.Equal(rest, word) {
				t.Errorf("client consumed bytes after MSG4; left %x", rest)
			}

			// Server with injected randomness writes exactly msg2 and msg4.
			v := verifierOf(t, &c)
			lookup := func(u string) (Verifier, bool) { return v, u == in.Username }
			conn = newReplay(msg1, msg3, word)
			user, err := Server(conn, lookup, fixedRand(unhexT(t, in.ServerKey)))
			if err != nil {
				t.Fatalf("Server: %v", err)
			}
			if user != in.Username {
				t.Errorf("Server returned user %q", user)
			}
			if !bytes.Equal(conn.out.Bytes(), append(append([]byte{}, msg2...), msg4...)) {
				t.Errorf("server wrote %x", conn.out.Bytes())
			}
			if rest, _ := io.ReadAll(conn); !bytes.Equal(rest, word) {
				t.Errorf("server consumed bytes after MSG3; left %x", rest)
			}
		})
	}
}

// TestVectorStoredParity replays the reference server's bug: lifting x_Γ
// with parity forced to 1 gives its (wrong) z, and a server that ignores the
// stored parity rejects the correct client exactly when the parity is 0.
func TestVectorStoredParity(t *testing.T) {
	t.Parallel()
	for _, c := range loadVectors(t).Cases {
		t.Run(c.Name, func(t *testing.T) {
			v := verifierOf(t, &c)
			v.Parity = 1
			var hello ClientHello
			if err := hello.UnmarshalBinary(unhexT(t, c.Frames.Msg1)); err != nil {
				t.Fatal(err)
			}
			sb := hex32(t, c.Inputs.ServerKey)
			s, err := newServerSession(&hello, &v, &sb)
			if err != nil {
				t.Fatal(err)
			}
			s.derive(&hello.Key)
			checkEq(t, "margin server z", s.z[:], c.RefCheck.MarginZ)

			flipped := verifierOf(t, &c)
			flipped.Parity ^= 1
			lookup := func(string) (Verifier, bool) { return flipped, true }
			conn := newReplay(unhexT(t, c.Frames.Msg1), unhexT(t, c.Frames.Msg3))
			_, err = Server(conn, lookup, fixedRand(sb[:]))
			if !errors.Is(err, ErrAuthFailed) {
				t.Fatalf("server with the wrong parity: %v, want ErrAuthFailed", err)
			}
			if c.RefCheck.MarginAccepted != (c.Validator.Parity == 1) {
				t.Error("vector: reference accepted iff parity is 1")
			}
		})
	}
}

// TestProtocolVector is the worked example of docs/protocol.md, §17.2.
func TestProtocolVector(t *testing.T) {
	t.Parallel()
	sa := [32]byte(bytes.Repeat([]byte{0x11}, 32))
	sb := [32]byte(bytes.Repeat([]byte{0x22}, 32))
	salt := [16]byte(unhexT(t, "0102030405060708090a0b0c0d0e0f10"))
	msg1 := unhexT(t, "2761646d696e00449a67c32946bedc19e79926c333ba1ea20051cdb970eef49f0a8a058006155301")
	msg2 := unhexT(t, "31575178e00f47706c37398610437f87baa8457714a71b7beca2109e9e8a390898000102030405060708090a0b0c0d0e0f10")
	msg3 := unhexT(t, "20d276a863d85b940af96324432375f34cfe3b63b3d00d08012587d1b5ac238fb8")
	msg4 := unhexT(t, "2099703ee84baa8482d1f97d943ea8b2ac217667daef9fc6ce84809f0c7c13a03d")

	v := DeriveVerifier("admin", "test", salt)
	checkEq(t, "x_gamma", v.XGamma[:], "6f914f26c66d269b7889bc2fe977dd0a5253d10aa9ff3ad8be7d48efdc1dde05")
	if v.Parity != 0 {
		t.Error("parity")
	}
	e, _ := redp1(&v.XGamma, 0)
	eEnc, _ := encodePoint(e)
	checkEq(t, "redp1", eEnc[:], "4b5bf09676d533f46a55aa0155588945f2924ed3bd90b4b0bafb4f5b774b4a2800")

	conn := newReplay(msg2, msg4)
	if err := Client(conn, "admin", "test", fixedRand(sa[:])); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(conn.out.Bytes(), append(append([]byte{}, msg1...), msg3...)) {
		t.Errorf("client wrote %x", conn.out.Bytes())
	}
	conn = newReplay(msg1, msg3)
	if _, err := Server(conn, func(string) (Verifier, bool) { return v, true }, fixedRand(sb[:])); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(conn.out.Bytes(), append(append([]byte{}, msg2...), msg4...)) {
		t.Errorf("server wrote %x", conn.out.Bytes())
	}
}
