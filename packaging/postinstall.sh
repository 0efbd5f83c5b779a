#!/bin/sh
# postinstall for the btest .deb and .rpm (nfpm). deb calls it with
# "configure" and the version configured before (none on a first install or
# after a purge), or with "abort-upgrade", "abort-remove", ... when it
# rolls back; rpm with the number of versions installed once this one is
# (1 = first install, 2 or more = upgrade).
set -e

case "$1" in
configure) if [ -n "$2" ]; then action=upgrade; else action=install; fi ;;
1) action=install ;;
[0-9]*) action=upgrade ;;
*) action=other ;;
esac

# First install: a random password in /etc/btest/password, root only, so the
# service does not start with a known password. The service gets it as the
# systemd credential "password" (LoadCredential= in btest.service). Never on
# an upgrade, and never beside a verifier: an operator who deleted the
# password to keep only an EC-SRP5 verifier (README, "No plaintext password
# on the server at all") must not find a new plaintext one after the next
# upgrade, nor after reinstalling a removed (not purged) package.
if [ "$action" = install ] && [ ! -e /etc/btest/password ] && [ ! -e /etc/btest/verifier ]; then
	umask 077
	mkdir -p /etc/btest
	LC_ALL=C tr -dc 'A-Za-z0-9' </dev/urandom | head -c 24 >/etc/btest/password.new
	mv /etc/btest/password.new /etc/btest/password
	echo "btest: generated a random password in /etc/btest/password (user: see BTEST_ARGS in /etc/default/btest)"
fi

if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || true
	case "$action" in
	upgrade)
		# Pick up the new binary where the service was running.
		systemctl try-restart btest.service >/dev/null 2>&1 || true
		;;
	install)
		echo "btest: start the server with: systemctl enable --now btest"
		;;
	esac
fi
exit 0
