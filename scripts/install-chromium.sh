#!/bin/sh
# Install headless Chromium from Debian's `chromium` package, for the entity page's browser test
# (tests/test_explain_browser.py drives it by its command line: --headless --screenshot --dump-dom).
# Idempotent: does nothing when `chromium` is already on PATH.
set -eu

if command -v chromium >/dev/null 2>&1; then
    echo "install-chromium: chromium already present ($(chromium --version 2>/dev/null | head -n 1))"
    exit 0
fi

echo "install-chromium: chromium missing; installing Debian's chromium package"
if [ "$(id -u)" -ne 0 ]; then
    echo "install-chromium: must run as root (apt-get)" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core

if ! command -v chromium >/dev/null 2>&1; then
    echo "install-chromium: chromium still missing after install" >&2
    exit 1
fi
echo "install-chromium: done ($(chromium --version 2>/dev/null | head -n 1))"
