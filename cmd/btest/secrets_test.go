package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/btest-go/btest/core/ecsrp5"
	"github.com/btest-go/btest/internal/version"
)

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestLoadSecrets checks where the password and verifier come from and in
// which order: flag, file, $BTEST_PASSWORD, systemd credential.
func TestLoadSecrets(t *testing.T) {
	dir := t.TempDir()
	pwFile := writeFile(t, dir, "pw", "from-file\n")
	crlf := writeFile(t, dir, "crlf", "dos\r\n")
	empty := writeFile(t, dir, "empty", "\n")
	blankAfter := writeFile(t, dir, "blank-after", "first\n\n")
	twoLines := writeFile(t, dir, "two-lines", "first\r\nsecond\n")
	noNewline := writeFile(t, dir, "no-newline", "first")
	blankFirst := writeFile(t, dir, "blank-first", "\nsecond\n")
	big := writeFile(t, dir, "big", strings.Repeat("x", maxSecretSize+1))
	creds := t.TempDir()
	writeFile(t, creds, "password", "from-cred\n")
	writeFile(t, creds, "verifier", "cred-verifier")
	env := func(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }
	withCreds := env(map[string]string{"CREDENTIALS_DIRECTORY": creds})

	cases := []struct {
		name         string
		o            options
		getenv       func(string) string
		pw, verifier string
		err          string
	}{
		{"flag wins over credential", options{user: "a", password: "flag"}, withCreds, "flag", "cred-verifier", ""},
		{"file", options{user: "a", passwordFile: pwFile}, env(nil), "from-file", "", ""},
		{"file wins over env", options{user: "a", passwordFile: pwFile}, env(map[string]string{"BTEST_PASSWORD": "env"}), "from-file", "", ""},
		{"CRLF trimmed", options{passwordFile: crlf}, env(nil), "dos", "", ""},
		{"env wins over credential", options{user: "a"}, env(map[string]string{"BTEST_PASSWORD": "env", "CREDENTIALS_DIRECTORY": creds}), "env", "cred-verifier", ""},
		{"credentials", options{user: "a"}, withCreds, "from-cred", "cred-verifier", ""},
		{"credentials only with -a", options{}, withCreds, "", "", ""},
		{"verifier file", options{user: "a", verifierFile: pwFile}, env(nil), "", "from-file", ""},
		{"no credential files", options{user: "a"}, env(map[string]string{"CREDENTIALS_DIRECTORY": t.TempDir()}), "", "", ""},
		{"both password sources", options{password: "x", passwordFile: pwFile}, env(nil), "", "", "exclude each other"},
		{"both verifier sources", options{verifier: "x", verifierFile: pwFile}, env(nil), "", "", "exclude each other"},
		{"missing file", options{passwordFile: filepath.Join(dir, "nope")}, env(nil), "", "", "--password-file"},
		{"empty file", options{passwordFile: empty}, env(nil), "", "", "is empty"},
		{"first line of several", options{passwordFile: blankAfter}, env(nil), "first", "", ""},
		{"first line, CRLF", options{passwordFile: twoLines}, env(nil), "first", "", ""},
		{"no final newline", options{passwordFile: noNewline}, env(nil), "first", "", ""},
		{"empty first line", options{passwordFile: blankFirst}, env(nil), "", "", "is empty"},
		{"verifier file's first line", options{verifierFile: twoLines}, env(nil), "", "first", ""},
		{"oversized file", options{verifierFile: big}, env(nil), "", "", "longer than"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := c.o
			err := o.loadSecrets(c.getenv)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err %v, want %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if o.password != c.pw || o.verifier != c.verifier {
				t.Errorf("password %q verifier %q, want %q %q", o.password, o.verifier, c.pw, c.verifier)
			}
		})
	}
}

func TestVersionFlag(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"--version"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	want := "btest " + version.Get().String() + "\n"
	if out.String() != want {
		t.Errorf("--version printed %q, want %q", out.String(), want)
	}
}

// TestServerCredentialsDirectory runs the server the way btest.service
// does: -a on the command line, the password or the verifier as a systemd
// credential, nothing secret in the arguments.
func TestServerCredentialsDirectory(t *testing.T) {
	for _, kind := range []string{"password", "verifier"} {
		t.Run(kind, func(t *testing.T) {
			creds := t.TempDir()
			secret := "cred-" + kind
			if kind == "verifier" {
				v, err := ecsrp5.NewVerifier("svc", secret, nil)
				if err != nil {
					t.Fatal(err)
				}
				writeFile(t, creds, "verifier", v.String()+"\n")
			} else {
				writeFile(t, creds, "password", secret+"\n")
			}
			t.Setenv("CREDENTIALS_DIRECTORY", creds)
			addr, logs := startCLIServer(t, "-a", "svc")
			var out, errOut bytes.Buffer
			if code := run(context.Background(), []string{"-c", addr, "-d", "1", "-a", "svc", "-p", secret}, &out, &errOut); code != 0 {
				t.Fatalf("right password: exit %d: %s", code, errOut.String())
			}
			errOut.Reset()
			if code := run(context.Background(), []string{"-c", addr, "-d", "1", "-a", "svc", "-p", "wrong"}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "authentication failed") {
				t.Fatalf("wrong password: exit %d, stderr %q", code, errOut.String())
			}
			if !strings.Contains(logs.String(), "version=") {
				t.Errorf("the server did not log its version at start:\n%s", logs)
			}
		})
	}
}
