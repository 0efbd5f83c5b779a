#!/bin/sh
# postremove for the btest .deb and .rpm (nfpm). The generated password
# stays on removal, like other configuration, and goes on a deb purge.
set -e
if [ "$1" = purge ]; then
	rm -f /etc/btest/password /etc/btest/verifier
	rmdir /etc/btest 2>/dev/null || true
fi
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || true
fi
exit 0
