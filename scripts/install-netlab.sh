#!/usr/bin/env bash
# install-netlab.sh installs iproute2 (ip and tc), which the shaped-link
# test (core/udp_shaped_test.go, package internal/netlab) uses to build its
# network namespaces, veth pair and tbf/netem qdiscs. It does nothing when
# both are on PATH and runs apt-get update only when the package index does
# not know the package.
#
# Usage: bash scripts/install-netlab.sh   (as root, or with sudo available)
set -euo pipefail

log() { echo "install-netlab: $*" >&2; }

if command -v ip >/dev/null && command -v tc >/dev/null; then
	log "present: $(command -v ip) $(command -v tc)"
	exit 0
fi

sudo=
if [[ $(id -u) -ne 0 ]]; then
	command -v sudo >/dev/null || { log "need root or sudo to apt-get install iproute2"; exit 1; }
	sudo=sudo
fi
if ! apt-cache show iproute2 >/dev/null 2>&1; then
	$sudo apt-get update -qq
fi
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iproute2
log "installed: $(command -v ip) $(command -v tc)"
