package packaging

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
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
	// The image's bare CMD is a server without authentication: the
	// Container section shows the authenticated form first and says so.
	c := readmeSection(t, "### Container")
	if runs := dockerRuns(c); len(runs) == 0 || !slices.Contains(runs[0], "--user") || !slices.Contains(runs[0], "--password-file") {
		t.Errorf("the Container section's first docker run is not the authenticated form: %q", runs)
	}
	if !strings.Contains(c, "without authentication") {
		t.Error("the Container section does not say that the bare image is a server without authentication")
	}
	// caddymodule's TestDocsExamples adapts it with the real Caddyfile
	// adapter; this package stays free of Caddy.
	if !strings.Contains(s, "```caddy\n") {
		t.Error("the Install section has no Caddyfile example")
	}
}

// readmeSection returns the README's section that starts with the heading
// line h, up to the next heading of its level.
func readmeSection(t *testing.T, h string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i := strings.Index(s, "\n"+h+"\n")
	if i < 0 {
		t.Fatalf("README.md has no %q", h)
	}
	s = s[i+1+len(h):]
	level := h[:strings.IndexByte(h, ' ')+1]
	if j := strings.Index(s, "\n"+level); j >= 0 {
		s = s[:j]
	}
	return s
}

// TestReadmeLimits checks that "Running a public server" covers every
// flag of the server's "Limits" group, as the README's --help block lists
// them (cmd/btest's tests keep that block equal to the real help), and
// that it tells an operator billed for egress to cap what the server
// sends.
func TestReadmeLimits(t *testing.T) {
	t.Parallel()
	help := readmeSection(t, "## The `btest` command")
	i := strings.Index(help, "\nLimits (server):\n")
	if i < 0 {
		t.Fatal("the README's --help block has no Limits (server) group")
	}
	group := help[i:]
	group = group[:strings.Index(group[1:], "\n\n")+1]
	flags := regexp.MustCompile(`(?m)^\s+--([a-z0-9-]+) `).FindAllStringSubmatch(group, -1)
	if len(flags) < 10 {
		t.Fatalf("found %d flags in the Limits group:\n%s", len(flags), group)
	}
	public := readmeSection(t, "## Running a public server")
	var table []string
	for _, l := range strings.Split(public, "\n") {
		if strings.HasPrefix(l, "| `") {
			table = append(table, l)
		}
	}
	rows := strings.Join(table, "\n")
	for _, f := range flags {
		if !strings.Contains(rows, "`"+f[1]+"`") {
			t.Errorf("the limits table of \"Running a public server\" has no `%s`", f[1])
		}
	}
	var txRow string
	for _, l := range table {
		if strings.HasPrefix(l, "| `max-tx-rate`") {
			txRow = l
		}
	}
	if !strings.Contains(txRow, "egress") {
		t.Errorf("the max-tx-rate row %q does not tell a server billed for egress to set it", txRow)
	}
}
