// Package version tells which build of btest-go is running: the module
// version and the VCS revision it was built from.
//
// A plain `go build` inside a git checkout gets them from the build
// information the go command embeds (runtime/debug.ReadBuildInfo): the
// version is "(devel)" or, since Go 1.24, a pseudo-version derived from the
// checkout, and the revision is vcs.revision. `go install
// github.com/btest-go/btest/cmd/btest@v1.2.3` and a Caddy built with
// xcaddy get the module version from the module graph. Release builds
// (GoReleaser, see .goreleaser.yaml) set the values outright:
//
//	go build -ldflags "-X github.com/btest-go/btest/internal/version.version=v1.2.3 \
//	  -X github.com/btest-go/btest/internal/version.revision=<commit> \
//	  -X github.com/btest-go/btest/internal/version.date=2026-11-30T00:00:00Z"
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
)

// ModulePath is the module whose version is reported, whether it is the
// main module (our own commands) or a dependency (a Caddy built with
// xcaddy).
const ModulePath = "github.com/btest-go/btest"

// Set with -ldflags -X by release builds; empty means "ask the build info".
var (
	version  string
	revision string
	date     string
)

// Info describes the running build.
type Info struct {
	// Version is the module version, e.g. "v1.2.3", a pseudo-version, or
	// "(devel)" when the build carries none.
	Version string `json:"version"`
	// Revision is the VCS commit the build came from, "" when unknown.
	Revision string `json:"revision,omitempty"`
	// Date is the commit time (RFC 3339), "" when unknown.
	Date string `json:"date,omitempty"`
	// Modified reports a build from a checkout with uncommitted changes.
	Modified bool `json:"modified,omitempty"`
	// GoVersion is the toolchain that built the binary.
	GoVersion string `json:"go"`
	// Platform is GOOS/GOARCH of the binary.
	Platform string `json:"platform"`
}

var (
	once sync.Once
	info Info
)

// Get returns the running build's version information.
func Get() Info {
	once.Do(func() {
		bi, _ := debug.ReadBuildInfo()
		info = fromBuildInfo(bi, version, revision, date)
	})
	return info
}

// fromBuildInfo combines the build information with the -X overrides,
// which win where set.
func fromBuildInfo(bi *debug.BuildInfo, ver, rev, dt string) Info {
	in := Info{
		GoVersion: runtime.Version(),
		Platform:  runtime.GOOS + "/" + runtime.GOARCH,
	}
	if bi != nil {
		in.GoVersion = bi.GoVersion
		in.Version = moduleVersion(bi)
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				in.Revision = s.Value
			case "vcs.time":
				in.Date = s.Value
			case "vcs.modified":
				in.Modified = s.Value == "true"
			}
		}
	}
	if ver != "" {
		in.Version = ver
	}
	if rev != "" {
		in.Revision = rev
		in.Modified = false
	}
	if dt != "" {
		in.Date = dt
	}
	if in.Version == "" {
		in.Version = "(devel)"
	}
	return in
}

// moduleVersion finds our module among the main module and the
// dependencies (a replaced dependency reports the replacement's version).
func moduleVersion(bi *debug.BuildInfo) string {
	if bi.Main.Path == ModulePath {
		return bi.Main.Version
	}
	for _, m := range bi.Deps {
		if m.Path != ModulePath {
			continue
		}
		if m.Replace != nil && m.Replace.Version != "" {
			return m.Replace.Version
		}
		return m.Version
	}
	return ""
}

// ShortRevision is the first 12 characters of the revision, with
// "-dirty" for a modified checkout; "unknown" when there is none.
func (i Info) ShortRevision() string {
	r := i.Revision
	if r == "" {
		return "unknown"
	}
	if len(r) > 12 {
		r = r[:12]
	}
	if i.Modified {
		r += "-dirty"
	}
	return r
}

// String is the one-line form that --version prints after the program
// name: "v1.2.3 (revision 0123456789ab, 2026-11-30T00:00:00Z, go1.26.8 linux/amd64)".
func (i Info) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s (revision %s", i.Version, i.ShortRevision())
	if i.Date != "" {
		fmt.Fprintf(&b, ", %s", i.Date)
	}
	fmt.Fprintf(&b, ", %s %s)", i.GoVersion, i.Platform)
	return b.String()
}
