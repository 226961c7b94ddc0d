#!/usr/bin/env bash
# promtool, from Debian's prometheus package, for the alert rule checks of `make test`
# (tests/unit/deploy/test_prometheus_rules.py). `make system-deps` runs it as root.
#
# The package also installs the Prometheus server as a service. It is installed without starting it: a
# policy-rc.d that refuses every start stands for the install only (the machine's own, if any, is put
# back after), and under systemd the unit is disabled too, so nothing listens on :9090 now or after a
# reboot. The package's recommends (node-exporter, another daemon) are left out.
set -euo pipefail

if command -v promtool >/dev/null 2>&1; then
    exit 0
fi
SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
POLICY=/usr/sbin/policy-rc.d
SAVED=$(mktemp)
had_policy=false
if [ -e "$POLICY" ]; then
    $SUDO cp -p "$POLICY" "$SAVED"
    had_policy=true
fi
restore_policy() {
    if $had_policy; then $SUDO cp -p "$SAVED" "$POLICY"; else $SUDO rm -f "$POLICY"; fi
    $SUDO rm -f "$SAVED"
}
trap restore_policy EXIT
printf '#!/bin/sh\n# btcmlops: installing promtool; start no service\nexit 101\n' | $SUDO tee "$POLICY" >/dev/null
$SUDO chmod 755 "$POLICY"

$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends prometheus

if [ -d /run/systemd/system ]; then
    $SUDO systemctl disable --now prometheus.service >/dev/null 2>&1 || true
    if systemctl is-active --quiet prometheus.service; then
        echo "the prometheus service is running after the install: systemctl disable --now prometheus" >&2
        exit 1
    fi
fi
if ! command -v promtool >/dev/null 2>&1; then
    echo "the prometheus package is installed but promtool is not on PATH" >&2
    exit 1
fi
echo "promtool: $(promtool --version 2>&1 | head -n 1)"
