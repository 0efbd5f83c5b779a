#!/usr/bin/env bash
# install-goreleaser.sh installs the GoReleaser that `make release` runs,
# with `go install` into $(go env GOPATH)/bin. GoReleaser is a large build
# (several minutes on two cores); when the right version is already there,
# the script does nothing, so CI pays for it once per machine.
#
# Usage: bash scripts/install-goreleaser.sh
# Prints the path of the goreleaser binary on stdout (last line).
#
# Environment:
#   BTEST_GORELEASER  when set to an executable, it is used as is
set -euo pipefail

# v2.15.1 is the newest release that builds with our Go (see go.mod); later
# ones need a newer toolchain.
version=v2.15.1
gobin=$(go env GOPATH)/bin
bin=$gobin/goreleaser

log() { echo "install-goreleaser: $*" >&2; }

if [[ -n ${BTEST_GORELEASER:-} && -x ${BTEST_GORELEASER} ]]; then
	log "using BTEST_GORELEASER=$BTEST_GORELEASER"
	echo "$BTEST_GORELEASER"
	exit 0
fi

# usable reports whether $1 is goreleaser $version.
usable() {
	[[ -x $1 ]] || return 1
	local out
	out=$("$1" --version 2>&1) || return 1 # it prints the version on stderr
	grep -Eq "GitVersion:[[:space:]]*v?${version#v}\$" <<<"$out"
}

if usable "$bin"; then
	log "cached: $bin"
	echo "$bin"
	exit 0
fi

command -v go >/dev/null || { log "go is not on PATH"; exit 1; }
mkdir -p "$gobin"

# One build at a time per machine (parallel jobs share GOPATH).
exec 9>"$gobin/.goreleaser.lock"
if command -v flock >/dev/null; then
	flock 9
fi
if usable "$bin"; then
	log "cached (built by another job): $bin"
	echo "$bin"
	exit 0
fi

# Build into a scratch directory and move the binary into place, so an
# interrupted build never leaves a half-written goreleaser behind.
tmp=$(mktemp -d "${TMPDIR:-/tmp}/goreleaser.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
log "building goreleaser $version (takes several minutes)"
start=$SECONDS
(
	cd "$tmp" # outside any module, so the project's go.mod plays no part
	GOBIN=$tmp GOFLAGS=-buildvcs=false CGO_ENABLED=0 go install \
		"github.com/goreleaser/goreleaser/v2@$version"
)
mv -f "$tmp/goreleaser" "$bin"
usable "$bin" || { log "built $bin but it does not report $version"; exit 1; }
log "built $bin in $((SECONDS - start))s"
echo "$bin"
