package ecsrp5

import (
	"encoding"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

func TestVerifierText(t *testing.T) {
	t.Parallel()
	for _, c := range loadVectors(t).Cases {
		v := verifierOf(t, &c)
		s := v.String()
		want := c.Inputs.Salt + ":" + c.Validator.XGamma + ":" + string(rune('0'+c.Validator.Parity))
		if s != want {
			t.Fatalf("String() = %q, want %q", s, want)
		}
		p, err := ParseVerifier(s)
		if err != nil || p != v {
			t.Fatalf("ParseVerifier(%q) = %+v, %v", s, p, err)
		}
		text, err := v.MarshalText()
		if err != nil || string(text) != s {
			t.Fatalf("MarshalText = %q, %v", text, err)
		}
		var u Verifier
		if err := u.UnmarshalText(text); err != nil || u != v {
			t.Fatalf("UnmarshalText: %+v, %v", u, err)
		}
	}
}

func TestParseVerifierRejects(t *testing.T) {
	t.Parallel()
	good := loadVectors(t).Cases[0]
	salt, x := good.Inputs.Salt, good.Validator.XGamma
	off := offCurveX(2)
	bad := map[string]struct {
		s    string
		want error
	}{
		"empty":          {"", ErrMalformed},
		"two fields":     {salt + ":" + x, ErrMalformed},
		"four fields":    {salt + ":" + x + ":1:1", ErrMalformed},
		"short salt":     {salt[2:] + ":" + x + ":1", ErrMalformed},
		"long salt":      {salt + "00:" + x + ":1", ErrMalformed},
		"short x":        {salt + ":" + x[2:] + ":1", ErrMalformed},
		"uppercase hex":  {strings.ToUpper(salt) + ":" + x + ":1", ErrMalformed},
		"not hex":        {"zz" + salt[2:] + ":" + x + ":1", ErrMalformed},
		"parity 2":       {salt + ":" + x + ":2", ErrMalformed},
		"parity 01":      {salt + ":" + x + ":01", ErrMalformed},
		"parity empty":   {salt + ":" + x + ":", ErrMalformed},
		"spaces":         {" " + salt + ":" + x + ":1", ErrMalformed},
		"newline":        {salt + ":" + x + ":1\n", ErrMalformed},
		"x off curve":    {salt + ":" + hex.EncodeToString(off[:]) + ":0", ErrInvalidPoint},
		"x zero (ord 2)": {salt + ":" + strings.Repeat("0", 64) + ":0", ErrInvalidPoint},
		"x ≥ p":          {salt + ":" + strings.Repeat("f", 64) + ":0", ErrInvalidPoint},
	}
	for name, c := range bad {
		if _, err := ParseVerifier(c.s); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
		var v Verifier
		if err := v.UnmarshalText([]byte(c.s)); err == nil || v != (Verifier{}) {
			t.Errorf("%s: UnmarshalText accepted or changed the receiver", name)
		}
	}
}

func TestNewVerifier(t *testing.T) {
	t.Parallel()
	salt := []byte("0123456789abcdef")
	v, err := NewVerifier("u", "p", fixedRand(salt))
	if err != nil {
		t.Fatal(err)
	}
	if v != DeriveVerifier("u", "p", [16]byte(salt)) {
		t.Fatal("NewVerifier differs from DeriveVerifier with the same salt")
	}
	a, _ := NewVerifier("u", "p", nil)
	b, _ := NewVerifier("u", "p", nil)
	if a.Salt == b.Salt {
		t.Fatal("crypto/rand salts repeat")
	}
	if _, err := ParseVerifier(a.String()); err != nil {
		t.Fatal(err)
	}
}

var (
	_ encoding.TextMarshaler   = Verifier{}
	_ encoding.TextUnmarshaler = (*Verifier)(nil)
)
