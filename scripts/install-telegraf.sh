#!/usr/bin/env bash
# install-telegraf.sh builds the slim Telegraf that the telegrafinput
# end-to-end test drives: only inputs.execd, outputs.file,
# outputs.influxdb and the influx parser and serializer, so it builds in a
# few minutes instead of half an hour. The binary goes into a cache
# directory that CI keeps between runs; when it is already there, the
# script does nothing.
#
# Usage: bash scripts/install-telegraf.sh
# Prints the path of the telegraf binary on stdout (last line).
#
# Environment:
#   BTEST_CACHE_DIR  cache root (default: $XDG_CACHE_HOME/btest-go or ~/.cache/btest-go)
#   BTEST_TELEGRAF   when set to an executable, it is used as is
set -euo pipefail

version=v1.37.2
tags=custom,inputs.execd,outputs.file,outputs.influxdb,parsers.influx,serializers.influx
cache=${BTEST_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/btest-go}
dir=$cache/telegraf-$version/bin
bin=$dir/telegraf

log() { echo "install-telegraf: $*" >&2; }

if [[ -n ${BTEST_TELEGRAF:-} && -x ${BTEST_TELEGRAF} ]]; then
	log "using BTEST_TELEGRAF=$BTEST_TELEGRAF"
	echo "$BTEST_TELEGRAF"
	exit 0
fi

# usable reports whether $1 is a telegraf with the plugins the test needs.
usable() {
	[[ -x $1 ]] || return 1
	local plugins
	plugins=$("$1" plugins 2>/dev/null) || return 1
	for p in inputs.execd outputs.file outputs.influxdb parsers.influx serializers.influx; do
		grep -qx "$p" <<<"$plugins" || return 1
	done
}

if usable "$bin"; then
	log "cached: $bin"
	echo "$bin"
	exit 0
fi

command -v go >/dev/null || { log "go is not on PATH"; exit 1; }
mkdir -p "$dir"

# One build at a time per cache (parallel CI jobs on one machine).
exec 9>"$dir/.lock"
if command -v flock >/dev/null; then
	flock 9
fi
if usable "$bin"; then
	log "cached (built by another job): $bin"
	echo "$bin"
	exit 0
fi

# Build into a scratch directory and move the binary into place, so an
# interrupted build never leaves a half-written telegraf in the cache.
tmp=$(mktemp -d "$dir/.build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
log "building telegraf $version with -tags $tags (takes a few minutes)"
start=$SECONDS
(
	cd "$tmp" # outside any module, so the project's go.mod plays no part
	GOBIN=$tmp GOFLAGS=-buildvcs=false go install \
		-tags "$tags" \
		-ldflags "-s -w -X github.com/influxdata/telegraf/internal.Version=${version#v}" \
		"github.com/influxdata/telegraf/cmd/telegraf@$version"
)
mv -f "$tmp/telegraf" "$bin"
usable "$bin" || { log "built $bin but it lacks a needed plugin"; exit 1; }
log "built $bin in $((SECONDS - start))s"
echo "$bin"
