#!/bin/sh
# Install Prometheus (with promtool) and Alertmanager (with amtool) from Debian's packages.
# Idempotent: does nothing when all four binaries are already on PATH.
# The packages try to start their services; on a machine without systemd that is refused,
# which is harmless: accesswatch's tests start both on loopback ports with their own configs.
set -eu

missing=""
for bin in prometheus promtool prometheus-alertmanager amtool; do
    command -v "$bin" >/dev/null 2>&1 || missing="$missing $bin"
done

if [ -z "$missing" ]; then
    echo "install-prometheus: prometheus, promtool, prometheus-alertmanager, amtool already present"
    exit 0
fi

echo "install-prometheus: missing:$missing; installing prometheus prometheus-alertmanager"
if [ "$(id -u)" -ne 0 ]; then
    echo "install-prometheus: must run as root (apt-get)" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# policy-rc.d-refused service starts make dpkg report "invoke-rc.d: policy-rc.d denied execution";
# that is expected here.
apt-get install -y -qq prometheus prometheus-alertmanager || true

for bin in prometheus promtool prometheus-alertmanager amtool; do
    if ! command -v "$bin" >/dev/null 2>&1; then
        echo "install-prometheus: $bin still missing after install" >&2
        exit 1
    fi
done
echo "install-prometheus: done ($(prometheus --version 2>&1 | head -n 1))"
