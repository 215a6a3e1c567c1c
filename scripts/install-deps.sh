#!/usr/bin/env bash
# Installs what building, testing and running walt needs on a fresh Debian
# machine. Safe to run again: it only installs what is missing.
set -euo pipefail

# Debian packages the tests and the demo use (lintian and systemd: the
# package checks, scripts/package.sh --check; prometheus: the test that
# scrapes walt-server, internal/server/metrics_test.go; openipmi: ipmi_sim, the
# BMC the IPMI power tests drive, internal/power/ipmi/ipmisim; chromium: the
# dashboard's browser tests, internal/dashboard/browser_test.go). Keep this list sorted.
PACKAGES=(
	chromium
	fish
	lintian
	openipmi
	postgresql
	prometheus
	qemu-system-x86
	snmp
	snmpd
	systemd
	zsh
)

missing=()
for p in "${PACKAGES[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "install-deps: missing Debian packages: ${missing[*]}; run this script as root" >&2
		exit 1
	fi
	echo "install-deps: installing ${missing[*]}" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v go >/dev/null 2>&1; then
	if [ -x /usr/local/go/bin/go ]; then
		echo "install-deps: Go is in /usr/local/go/bin; add it to PATH" >&2
	else
		echo "install-deps: Go 1.26 or later is needed (https://go.dev/doc/install)" >&2
	fi
	exit 1
fi
