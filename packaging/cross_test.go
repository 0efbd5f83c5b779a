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

// TestCrossTargets builds and vets the shipped packages for every release
// target, so a Linux-only call outside a _linux.go file (the UDP fast path
// in core/udpio has a portable fallback elsewhere) fails here and not in a
// user's build. It uses the release's flags (CGO_ENABLED=0, -trimpath), so
// after `make release` the compiled packages come from the build cache.
func TestCrossTargets(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: ten cross-compilations")
	}
	root := repoRoot(t)
	for _, tg := range targets {
		t.Run(tg.String(), func(t *testing.T) {
			env := append(os.Environ(), "CGO_ENABLED=0", "GOOS="+tg.goos, "GOARCH="+tg.goarch)
			if tg.goarm != "" {
				env = append(env, "GOARM="+tg.goarm)
			}
			if tg.gomips != "" {
				env = append(env, "GOMIPS="+tg.gomips)
			}
			for _, verb := range []string{"build", "vet"} {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
				cmd := exec.CommandContext(ctx, "go", append([]string{verb, "-trimpath"}, crossPackages...)...)
				cmd.Dir, cmd.Env = root, env
				out, err := cmd.CombinedOutput()
				cancel()
				if err != nil {
					t.Errorf("GOOS=%s GOARCH=%s go %s: %v\n%s", tg.goos, tg.goarch, verb, err, out)
				}
			}
		})
	}
}
