//go:build unix

package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestVersion runs the built program with -version and --version, and
// checks that a run with a configuration logs its version for Telegraf.
func TestVersion(t *testing.T) {
	re := regexp.MustCompile(`^btest-telegraf \S+ \(revision \S+(, \S+)?, go1\.\S+ \w+/\w+\)\n$`)
	for _, arg := range []string{"-version", "--version"} {
		out, err := exec.Command(binary, arg).CombinedOutput()
		if err != nil || !re.Match(out) {
			t.Errorf("btest-telegraf %s: %v, output %q", arg, err, out)
		}
	}
	conf := filepath.Join(t.TempDir(), "empty.conf")
	if err := os.WriteFile(conf, []byte("no valid toml ["), 0o600); err != nil {
		t.Fatal(err)
	}
	out, _ := exec.Command(binary, "-config", conf).CombinedOutput()
	if first, _, _ := strings.Cut(string(out), "\n"); !strings.HasPrefix(first, "I! btest-telegraf ") || !strings.Contains(first, "(revision ") {
		t.Errorf("first stderr line %q, want the version at info level", first)
	}
}
