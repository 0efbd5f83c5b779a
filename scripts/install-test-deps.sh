#!/usr/bin/env bash
# install-test-deps.sh installs every outside part the test suite drives,
# idempotently and cached, so `make test` runs on a fresh machine exactly
# what CI runs. Each installer does nothing when its part is already there.
#
# Usage: bash scripts/install-test-deps.sh   (as root, or with sudo available)
set -euo pipefail
cd "$(dirname "$0")"

bash ./install-influxdb.sh
bash ./install-telegraf.sh >/dev/null
bash ./install-chromium.sh
bash ./install-netlab.sh
