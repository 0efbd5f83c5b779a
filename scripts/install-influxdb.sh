#!/usr/bin/env bash
# install-influxdb.sh installs Debian's influxdb package (InfluxDB 1.x),
# which the telegrafinput end-to-end test starts on loopback with its own
# temporary config and data directory. It does nothing when influxd is
# already on PATH, runs apt-get update only when the package index does
# not know the package, and never starts the system service.
#
# Usage: bash scripts/install-influxdb.sh   (as root, or with sudo available)
set -euo pipefail

log() { echo "install-influxdb: $*" >&2; }

if command -v influxd >/dev/null; then
	log "present: $(command -v influxd)"
	exit 0
fi

sudo=
if [[ $(id -u) -ne 0 ]]; then
	command -v sudo >/dev/null || { log "need root or sudo to apt-get install influxdb"; exit 1; }
	sudo=sudo
fi
export DEBIAN_FRONTEND=noninteractive

# A policy-rc.d that answers 101 tells invoke-rc.d and deb-systemd-invoke
# not to start services, so the package's postinst leaves influxd stopped.
# Put one in place only for the install, and only when none exists.
policy=/usr/sbin/policy-rc.d
if [[ ! -e $policy ]]; then
	printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
	$sudo chmod 755 "$policy"
	trap '$sudo rm -f "$policy"' EXIT
fi

candidate() { apt-cache policy influxdb 2>/dev/null | awk '/Candidate:/ {print $2}'; }
if [[ -z $(candidate) || $(candidate) == "(none)" ]]; then
	log "apt-get update"
	$sudo apt-get update -qq
fi
log "apt-get install influxdb $(candidate)"
$sudo apt-get install -y -qq --no-install-recommends influxdb >&2

command -v influxd >/dev/null || { log "influxdb installed but influxd is not on PATH"; exit 1; }
# Belt and braces for hosts where the package started it anyway.
if command -v systemctl >/dev/null && systemctl is-active --quiet influxdb 2>/dev/null; then
	log "stopping the influxdb service the package started"
	$sudo systemctl stop influxdb || true
fi
log "installed: $(command -v influxd)"
