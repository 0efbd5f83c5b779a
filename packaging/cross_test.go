package packaging

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"
)

// crossPackages are what the release archives ship, with everything they
// import from this module. The Caddy app is left out: it builds with Caddy
// for wherever Caddy builds, and `make lint` vets it for Linux.
var crossPackages = []string{"./cmd/btest", "./cmd/btest-telegraf", "./core/...", "./telegrafinput/...", "./internal/..."}

// TestCrossTargets vets the shipped packages, tests included, for the
// release's targets, so a Linux-only call outside a _linux.go file (the UDP
// fast path in core/udpio has a portable fallback elsewhere) fails here
// and not in a user's build. Vet type-checks each package as that target
// builds it; linking the programs for every target is the release's own
// job (TestReleaseArchives checks its binaries), so this test does not
// link them a second time. It vets one target per OS, word size and byte
// order (crossClass): this module's build tags name only the OS, and what
// else differs between targets for its code (the size of int, the field
// types of x/sys/unix's structures) differs by word size and byte order;
// the release itself compiles the programs for every target. It uses the
// release's flags (CGO_ENABLED=0, -trimpath), so after `make release` the
// compiled packages come from the build cache.
func TestCrossTargets(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("-short: cross-compilations")
	}
	root := repoRoot(t)
	vetted := map[string]bool{}
	for _, tg := range targets {
		if vetted[tg.crossClass()] {
			continue
		}
		vetted[tg.crossClass()] = true
		t.Run(tg.String(), func(t *testing.T) {
			t.Parallel()
			env := append(os.Environ(), "CGO_ENABLED=0", "GOOS="+tg.goos, "GOARCH="+tg.goarch)
			if tg.goarm != "" {
				env = append(env, "GOARM="+tg.goarm)
			}
			if tg.gomips != "" {
				env = append(env, "GOMIPS="+tg.gomips)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, "go", append([]string{"vet", "-trimpath"}, crossPackages...)...)
			cmd.Dir, cmd.Env = root, env
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("GOOS=%s GOARCH=%s go vet: %v\n%s", tg.goos, tg.goarch, err, out)
			}
		})
	}
}

// crossClass names what a target's type-checking depends on: its OS, word
// size and byte order.
func (tg target) crossClass() string {
	class := tg.goos + "/64"
	switch tg.goarch {
	case "arm", "mipsle":
		class = tg.goos + "/32"
	case "mips":
		class = tg.goos + "/32be"
	}
	return class
}
