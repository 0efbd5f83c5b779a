package packaging

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// installSection returns the README's "## Install" section.
func installSection(t *testing.T) (section string, start int, readme string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	readme = string(b)
	i := strings.Index(readme, "\n## Install\n")
	if i < 0 {
		t.Fatal(`README.md has no "## Install" section`)
	}
	s := readme[i+1:]
	if j := strings.Index(s[3:], "\n## "); j >= 0 {
		s = s[:j+3]
	}
	return s, i, readme
}

// TestReadmeInstall checks the README's Install section: first, before
// the build-from-source instructions, covering each way to install, and
// it has a Caddyfile example (caddymodule's TestDocsExamples adapts it).
func TestReadmeInstall(t *testing.T) {
	t.Parallel()
	s, start, readme := installSection(t)
	for _, later := range []string{"\n## Two commands", "\n## The `btest` command"} {
		if j := strings.Index(readme, later); j >= 0 && j < start {
			t.Errorf("%q comes before the Install section", strings.TrimSpace(later))
		}
	}
	for _, want := range []string{
		"apt install ./btest_", "dnf install ./btest-", "systemctl enable --now btest",
		"/etc/default/btest", "/etc/btest/password", "LoadCredential=", "--password-file", "--verifier-file",
		"docker run", "--network host", "checksums.txt", "mipsle", "softfloat", "windows", "darwin", "freebsd",
		"xcaddy build --with github.com/btest-go/btest/caddymodule", "caddy.service.d", "btest-telegraf",
		"/tool bandwidth-test address=", "portable path",
		// The packaged service and the image lack CAP_NET_ADMIN, so UDP
		// buffers are what net.core.rmem_max/wmem_max allow.
		"/etc/sysctl.d/60-btest.conf", "net.core.rmem_max = 16777216", "net.core.wmem_max = 16777216", "sysctl --system",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("the Install section does not mention %q", want)
		}
	}
	// caddymodule's TestDocsExamples adapts it with the real Caddyfile
	// adapter; this package stays free of Caddy.
	if !strings.Contains(s, "```caddy\n") {
		t.Error("the Install section has no Caddyfile example")
	}
}
