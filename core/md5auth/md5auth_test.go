package md5auth

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"os"
	"testing"
)

type vectorCase struct {
	Name           string `json:"name"`
	Username       string `json:"username"`
	UsernameHex    string `json:"username_utf8_hex"`
	PasswordHex    string `json:"password_utf8_hex"`
	Challenge      string `json:"challenge"`
	ServerBytes    string `json:"server_challenge_bytes"`
	Inner          string `json:"inner_md5_password_challenge"`
	ResponseHash   string `json:"response_hash"`
	UsernameField  string `json:"username_field_32"`
	ClientResponse string `json:"client_response_48"`
}

func loadVectors(t *testing.T) []vectorCase {
	t.Helper()
	raw, err := os.ReadFile("testdata/md5auth.json")
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Cases []vectorCase `json:"cases"`
	}
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	if len(f.Cases) == 0 {
		t.Fatal("no md5 vectors")
	}
	return f.Cases
}

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

func TestVectors(t *testing.T) {
	t.Parallel()
	for _, c := range loadVectors(t) {
		t.Run(c.Name, func(t *testing.T) {
			user := string(unhex(t, c.UsernameHex))
			pass := unhex(t, c.PasswordHex)
			var ch Challenge
			copy(ch[:], unhex(t, c.Challenge))
			if got := append([]byte{2, 0, 0, 0}, ch[:]...); !bytes.Equal(got, unhex(t, c.ServerBytes)) {
				t.Errorf("server bytes % x", got)
			}
			h := Hash(pass, ch)
			if !bytes.Equal(h[:], unhex(t, c.ResponseHash)) {
				t.Errorf("hash %x, want %s", h, c.ResponseHash)
			}
			r := NewReply(user, string(pass), ch)
			if !bytes.Equal(r.User[:], unhex(t, c.UsernameField)) {
				t.Errorf("user field %x, want %s", r.User, c.UsernameField)
			}
			wire := r.Marshal()
			if !bytes.Equal(wire[:], unhex(t, c.ClientResponse)) {
				t.Errorf("reply %x, want %s", wire, c.ClientResponse)
			}
			var back Reply
			if err := back.Unmarshal(unhex(t, c.ClientResponse)); err != nil {
				t.Fatal(err)
			}
			if !back.Verify(pass, ch) {
				t.Error("server side rejects a correct reply")
			}
			field := UserFieldFor(user)
			if want := string(bytes.TrimRight(field[:], "\x00")); back.UserName() != want {
				t.Errorf("username %q, want %q", back.UserName(), want)
			}
			if back.Verify(append(pass, 'x'), ch) {
				t.Error("server side accepts a wrong password")
			}
			ch[0] ^= 1
			if back.Verify(pass, ch) {
				t.Error("server side accepts a reply to another challenge")
			}
		})
	}
}

func TestUnmarshalLength(t *testing.T) {
	t.Parallel()
	var r Reply
	for _, n := range []int{0, 16, 32, 47, 49} {
		if err := r.Unmarshal(make([]byte, n)); err == nil {
			t.Errorf("%d-byte reply accepted", n)
		}
	}
}

func TestNewChallengeRandom(t *testing.T) {
	t.Parallel()
	a, err := NewChallenge(nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewChallenge(nil)
	if a == b {
		t.Fatal("two challenges are equal")
	}
}

func FuzzReply(f *testing.F) {
	f.Add(bytes.Repeat([]byte{0x41}, ReplySize))
	f.Add(make([]byte, 10))
	f.Fuzz(func(t *testing.T, b []byte) {
		var r Reply
		if err := r.Unmarshal(b); err != nil {
			return
		}
		w := r.Marshal()
		if !bytes.Equal(w[:], b) {
			t.Fatalf("round trip %x != %x", w, b)
		}
		_ = r.UserName()
	})
}
