#!/usr/bin/env bash
# Installs Debian's Chromium for the browser tests (playwright-core drives it; no browser download).
# Idempotent. Usage: setup-browser.sh   (as root)
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
if command -v chromium >/dev/null 2>&1; then
  echo "[setup-browser] $(chromium --version 2>/dev/null | head -1) already installed"
  exit 0
fi
[ "$(id -u)" = 0 ] || { echo "[setup-browser] must run as root" >&2; exit 1; }
apt-get -o DPkg::Lock::Timeout=600 update -q >/dev/null
apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends chromium >/var/tmp/setup-browser-apt.log 2>&1 \
  || { tail -20 /var/tmp/setup-browser-apt.log >&2; exit 1; }
echo "[setup-browser] installed $(chromium --version 2>/dev/null | head -1)"
