package packaging

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// scriptShells are the shells the maintainer scripts run under: dash is
// Debian's /bin/sh, bash Fedora's and RHEL's.
var scriptShells = []string{"dash", "bash"}

// runPostinstall runs packaging/postinstall.sh with args under shell, with
// /etc/btest and /run/systemd/system moved into root (a temporary tree), so
// the test sees what the script would do to a host without touching this
// one. It returns the script's output.
func runPostinstall(t *testing.T, shell, root string, args ...string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "packaging", "postinstall.sh"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for _, p := range []string{"/etc/btest", "/run/systemd/system"} {
		if !strings.Contains(s, p) {
			t.Fatalf("postinstall.sh no longer mentions %s: update this test", p)
		}
		s = strings.ReplaceAll(s, p, filepath.Join(root, p))
	}
	script := filepath.Join(t.TempDir(), "postinst")
	if err := os.WriteFile(script, []byte(s), 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(shell, append([]string{script}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s postinstall.sh %q: %v\n%s", shell, args, err, out)
	}
	return string(out)
}

// TestPostinstall checks when the postinstall script generates
// /etc/btest/password: on a first install only (deb "configure" without
// an old version, rpm "1"), and never when the operator keeps an EC-SRP5
// verifier instead (the README's "No plaintext password on the server at
// all"), so that an upgrade does not bring back a plaintext password the
// operator removed.
func TestPostinstall(t *testing.T) {
	t.Parallel()
	const verifier = "verifier-from-btest-verifier\n"
	for _, tc := range []struct {
		name     string
		args     []string
		password string // in /etc/btest before the script; "" = none
		verifier bool   // /etc/btest/verifier exists before the script
		generate bool
	}{
		{name: "deb first install", args: []string{"configure", ""}, generate: true},
		{name: "deb first install without second argument", args: []string{"configure"}, generate: true},
		{name: "deb first install, password put there before", args: []string{"configure", ""}, password: "kept"},
		{name: "deb first install, verifier in place", args: []string{"configure", ""}, verifier: true},
		{name: "deb upgrade, password removed for a verifier", args: []string{"configure", "1.0.0"}, verifier: true},
		{name: "deb upgrade, password removed", args: []string{"configure", "1.0.0"}},
		{name: "deb upgrade, password kept", args: []string{"configure", "1.0.0"}, password: "mine"},
		{name: "deb abort-upgrade", args: []string{"abort-upgrade", "1.0.0"}},
		{name: "rpm first install", args: []string{"1"}, generate: true},
		{name: "rpm install beside a verifier", args: []string{"1"}, verifier: true},
		{name: "rpm upgrade, password removed for a verifier", args: []string{"2"}, verifier: true},
		{name: "rpm upgrade, password removed", args: []string{"2"}},
	} {
		for _, sh := range scriptShells {
			t.Run(sh+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				shell := needTool(t, sh)
				root := t.TempDir()
				dir := filepath.Join(root, "etc/btest")
				pwFile := filepath.Join(dir, "password")
				if err := os.MkdirAll(dir, 0o700); err != nil {
					t.Fatal(err)
				}
				if tc.password != "" {
					if err := os.WriteFile(pwFile, []byte(tc.password), 0o600); err != nil {
						t.Fatal(err)
					}
				}
				if tc.verifier {
					if err := os.WriteFile(filepath.Join(dir, "verifier"), []byte(verifier), 0o600); err != nil {
						t.Fatal(err)
					}
				}
				out := runPostinstall(t, shell, root, tc.args...)
				said := strings.Contains(out, "generated a random password")
				b, err := os.ReadFile(pwFile)
				switch {
				case tc.generate:
					if err != nil {
						t.Fatalf("no password generated: %v\n%s", err, out)
					}
					if !regexp.MustCompile(`^[A-Za-z0-9]{24}$`).Match(b) {
						t.Errorf("generated password %q: want 24 letters and digits", b)
					}
					if fi, err := os.Stat(pwFile); err != nil {
						t.Error(err)
					} else if fi.Mode().Perm() != 0o600 {
						t.Errorf("password file mode %v, want 0600", fi.Mode())
					}
					if !said {
						t.Errorf("the script did not say it generated a password:\n%s", out)
					}
				case tc.password != "":
					if string(b) != tc.password {
						t.Errorf("password file holds %q, want the operator's %q untouched", b, tc.password)
					}
					if said {
						t.Errorf("the script says it generated a password:\n%s", out)
					}
				default:
					if err == nil {
						t.Errorf("the script created %s (%q) where the operator had none", pwFile, b)
					}
					if said {
						t.Errorf("the script says it generated a password:\n%s", out)
					}
				}
				if tc.verifier {
					if v, err := os.ReadFile(filepath.Join(dir, "verifier")); err != nil || string(v) != verifier {
						t.Errorf("verifier %q (%v), want it untouched", v, err)
					}
				}
			})
		}
	}
}
