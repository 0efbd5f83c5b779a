#!/usr/bin/env bash
# install-chromium.sh installs Debian's chromium package, the browser the
# dashboard's browser test (caddymodule/dashboard_browser_test.go) drives
# headless through chromedp. It does nothing when chromium is already on
# PATH, and runs apt-get update only when the package index does not know
# the package.
#
# Usage: bash scripts/install-chromium.sh   (as root, or with sudo available)
set -euo pipefail

log() { echo "install-chromium: $*" >&2; }

for b in chromium chromium-browser; do
	if command -v "$b" >/dev/null; then
		log "present: $(command -v "$b")"
		exit 0
	fi
done

sudo=
if [[ $(id -u) -ne 0 ]]; then
	command -v sudo >/dev/null || { log "need root or sudo to apt-get install chromium"; exit 1; }
	sudo=sudo
fi
export DEBIAN_FRONTEND=noninteractive

candidate() { apt-cache policy chromium 2>/dev/null | awk '/Candidate:/ {print $2}'; }
if [[ -z $(candidate) || $(candidate) == "(none)" ]]; then
	log "apt-get update"
	$sudo apt-get update -qq
fi
log "apt-get install chromium $(candidate)"
$sudo apt-get install -y -qq --no-install-recommends chromium >&2

command -v chromium >/dev/null || { log "chromium installed but not on PATH"; exit 1; }
log "installed: $(command -v chromium) ($(chromium --version 2>/dev/null || echo 'version unknown'))"
