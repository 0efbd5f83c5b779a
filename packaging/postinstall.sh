#!/bin/sh
# postinstall for the btest .deb and .rpm (nfpm). deb calls it with
# "configure [OLD_VERSION]", rpm with the number of installed versions
# (1 = first install, 2 = upgrade).
set -e

# First install: a random password in /etc/btest/password, root only, so the
# service does not start with a known password. The service gets it as the
# systemd credential "password" (LoadCredential= in btest.service).
if [ ! -e /etc/btest/password ]; then
	umask 077
	mkdir -p /etc/btest
	LC_ALL=C tr -dc 'A-Za-z0-9' </dev/urandom | head -c 24 >/etc/btest/password.new
	mv /etc/btest/password.new /etc/btest/password
	echo "btest: generated a random password in /etc/btest/password (user: see BTEST_ARGS in /etc/default/btest)"
fi

upgrade=no
case "$1" in
configure) [ -n "$2" ] && upgrade=yes ;;
[0-9]*) [ "$1" -ge 2 ] && upgrade=yes ;;
esac

if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || true
	if [ "$upgrade" = yes ]; then
		# Pick up the new binary where the service was running.
		systemctl try-restart btest.service >/dev/null 2>&1 || true
	else
		echo "btest: start the server with: systemctl enable --now btest"
	fi
fi
exit 0
