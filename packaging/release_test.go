// Package packaging holds the release tests: the GoReleaser snapshot
// (`make release`), the .deb and its systemd unit, and the container's
// final stage. They need goreleaser, dpkg-deb and systemd-analyze; each test
// skips with a message when its tool is missing, unless CI=true or
// BTEST_E2E=1, where a missing tool is a failure.
//
// Ports: this package uses 23400-23499 (TCP and UDP) on 127.0.0.1.
package packaging

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// required reports whether missing tools must fail the tests.
func required() bool {
	return os.Getenv("CI") == "true" || os.Getenv("BTEST_E2E") == "1"
}

// needTool returns the path of an executable, skipping the test when it is
// missing (or failing it where the tests are required).
func needTool(t *testing.T, name string, candidates ...string) string {
	t.Helper()
	for _, c := range candidates {
		if c == "" {
			continue
		}
		if fi, err := os.Stat(c); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return c
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	msg := name + " is not installed"
	switch name {
	case "goreleaser":
		msg += " (bash scripts/install-goreleaser.sh)"
	case "dpkg-deb", "systemd-analyze":
		msg += " (apt-get install dpkg systemd)"
	}
	if required() {
		t.Fatal(msg)
	}
	t.Skip(msg + "; skipping (set BTEST_E2E=1 to require it)")
	return ""
}

// repoRoot is the module root, one level up from this package.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("no go.mod in %s: %v", root, err)
	}
	return root
}

// run runs a command with a deadline and returns its combined output,
// failing the test on an error.
func run(t *testing.T, dir string, timeout time.Duration, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// metadata is the part of dist/metadata.json the tests read.
type metadata struct {
	ProjectName string `json:"project_name"`
	Version     string `json:"version"`
	Commit      string `json:"commit"`
	Date        string `json:"date"` // when the release ran
}

// dist is a finished snapshot release.
type dist struct {
	dir  string
	meta metadata
}

var (
	distOnce sync.Once
	distVal  *dist
	distErr  string
)

// release returns dist/ of a snapshot release of the current checkout.
// make test builds it before the tests and says so (BTEST_DIST_CURRENT);
// otherwise it reuses a dist/ of HEAD built from a tree without
// uncommitted changes, or runs `make release` itself.
func release(t *testing.T) *dist {
	t.Helper()
	root := repoRoot(t)
	gr := needTool(t, "goreleaser", os.Getenv("BTEST_GORELEASER"), filepath.Join(gopath(t), "bin", "goreleaser"))
	distOnce.Do(func() {
		if os.Getenv("BTEST_DIST_CURRENT") != "" {
			// make test built dist/ from the tree as it is just before.
			if distVal, distErr = reuseDist(t, root, false); distVal == nil {
				distErr = "BTEST_DIST_CURRENT is set, but " + distErr
			}
			return
		}
		d, reason := reuseDist(t, root, true)
		if d == nil {
			t.Logf("running make release (%s)", reason)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, "make", "release")
			cmd.Dir = root
			cmd.Env = append(os.Environ(), "BTEST_GORELEASER="+gr)
			start := time.Now()
			out, err := cmd.CombinedOutput()
			if err != nil {
				distErr = "make release: " + err.Error() + "\n" + string(out)
				return
			}
			t.Logf("make release took %s", time.Since(start).Round(time.Second))
			if d, reason = reuseDist(t, root, false); d == nil {
				distErr = "dist/ after make release: " + reason
				return
			}
		}
		distVal = d
	})
	if distVal == nil {
		t.Fatal(distErr)
	}
	return distVal
}

// reuseDist returns dist/ when it holds a snapshot of HEAD (built from a
// tree without uncommitted changes to tracked files when clean is set:
// GoReleaser builds the tree as it is), or nil and why not.
func reuseDist(t *testing.T, root string, clean bool) (*dist, string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "dist", "metadata.json"))
	if err != nil {
		return nil, "no dist/metadata.json"
	}
	var m metadata
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, "dist/metadata.json: " + err.Error()
	}
	head := strings.TrimSpace(run(t, root, time.Minute, "git", "rev-parse", "HEAD"))
	if m.Commit != head {
		return nil, "dist/ is from commit " + m.Commit + ", not HEAD " + head
	}
	if st := run(t, root, time.Minute, "git", "status", "--porcelain", "--untracked-files=no"); clean && strings.TrimSpace(st) != "" {
		return nil, "the tree has uncommitted changes"
	}
	// A finished release writes artifacts.json last among the files we read.
	if _, err := os.Stat(filepath.Join(root, "dist", "checksums.txt")); err != nil {
		return nil, "no dist/checksums.txt"
	}
	return &dist{dir: filepath.Join(root, "dist"), meta: m}, ""
}

func gopath(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOPATH").Output()
	if err != nil {
		t.Fatalf("go env GOPATH: %v", err)
	}
	return string(bytes.TrimSpace(out))
}
