package version

import (
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

func TestFromBuildInfoMainModule(t *testing.T) {
	t.Parallel()
	bi := &debug.BuildInfo{
		GoVersion: "go1.26.8",
		Main:      debug.Module{Path: ModulePath, Version: "v0.0.0-20261130044917-be323ad1b2c3+dirty"},
		Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "be323ad1b2c3d4e5f60718293a4b5c6d7e8f9012"},
			{Key: "vcs.time", Value: "2026-11-30T04:49:17Z"},
			{Key: "vcs.modified", Value: "true"},
		},
	}
	in := fromBuildInfo(bi, "", "", "")
	if in.Version != "v0.0.0-20261130044917-be323ad1b2c3+dirty" {
		t.Errorf("Version = %q", in.Version)
	}
	if in.Revision != "be323ad1b2c3d4e5f60718293a4b5c6d7e8f9012" || !in.Modified || in.Date != "2026-11-30T04:49:17Z" {
		t.Errorf("got %+v", in)
	}
	if got := in.ShortRevision(); got != "be323ad1b2c3-dirty" {
		t.Errorf("ShortRevision = %q", got)
	}
	want := "v0.0.0-20261130044917-be323ad1b2c3+dirty (revision be323ad1b2c3-dirty, 2026-11-30T04:49:17Z, go1.26.8 " + runtime.GOOS + "/" + runtime.GOARCH + ")"
	if got := in.String(); got != want {
		t.Errorf("String =\n %q, want\n %q", got, want)
	}
}

func TestFromBuildInfoDependency(t *testing.T) {
	t.Parallel()
	// A Caddy built with xcaddy: btest-go is a dependency, possibly replaced.
	bi := &debug.BuildInfo{
		GoVersion: "go1.26.8",
		Main:      debug.Module{Path: "caddy", Version: "(devel)"},
		Deps: []*debug.Module{
			{Path: "github.com/caddyserver/caddy/v2", Version: "v2.11.9"},
			{Path: ModulePath, Version: "v1.4.0"},
		},
	}
	if got := fromBuildInfo(bi, "", "", "").Version; got != "v1.4.0" {
		t.Errorf("dependency version = %q, want v1.4.0", got)
	}
	bi.Deps[1].Replace = &debug.Module{Path: "../btest", Version: ""}
	if got := fromBuildInfo(bi, "", "", "").Version; got != "v1.4.0" {
		t.Errorf("directory-replaced dependency version = %q, want v1.4.0", got)
	}
	bi.Deps[1].Replace = &debug.Module{Path: "example.com/fork", Version: "v1.4.1"}
	if got := fromBuildInfo(bi, "", "", "").Version; got != "v1.4.1" {
		t.Errorf("replaced dependency version = %q, want v1.4.1", got)
	}
}

func TestOverridesWin(t *testing.T) {
	t.Parallel()
	bi := &debug.BuildInfo{
		Main:     debug.Module{Path: ModulePath, Version: "(devel)"},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "aaaa"}, {Key: "vcs.modified", Value: "true"}},
	}
	in := fromBuildInfo(bi, "v2.0.0", "0123456789abcdef", "2026-01-02T03:04:05Z")
	if in.Version != "v2.0.0" || in.Revision != "0123456789abcdef" || in.Modified || in.Date != "2026-01-02T03:04:05Z" {
		t.Errorf("got %+v", in)
	}
	if got := in.ShortRevision(); got != "0123456789ab" {
		t.Errorf("ShortRevision = %q", got)
	}
}

func TestNoBuildInfo(t *testing.T) {
	t.Parallel()
	in := fromBuildInfo(nil, "", "", "")
	if in.Version != "(devel)" || in.ShortRevision() != "unknown" || in.GoVersion != runtime.Version() {
		t.Errorf("got %+v", in)
	}
	if !strings.Contains(in.String(), "revision unknown") {
		t.Errorf("String = %q", in.String())
	}
}

func TestGetIsStable(t *testing.T) {
	t.Parallel()
	a, b := Get(), Get()
	if a != b {
		t.Fatalf("Get changed between calls: %+v vs %+v", a, b)
	}
	if a.Version == "" || a.GoVersion == "" || a.Platform != runtime.GOOS+"/"+runtime.GOARCH {
		t.Errorf("Get() = %+v", a)
	}
}
