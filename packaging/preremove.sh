#!/bin/sh
# preremove for the btest .deb and .rpm (nfpm). deb calls it with "remove"
# or "upgrade", rpm with the number of versions left (0 = removal).
set -e
case "$1" in
remove | 0)
	if [ -d /run/systemd/system ]; then
		systemctl disable --now btest.service >/dev/null 2>&1 || true
	fi
	;;
esac
exit 0
