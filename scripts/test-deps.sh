#!/bin/sh
# What the test suite needs besides Python packages: Debian's chromium, which
# the dashboard's browser tests drive through Playwright (Playwright's own
# browser downloads are never used). Idempotent: nothing to do when
# /usr/bin/chromium is there. Installs with apt-get, as root or through sudo.
set -eu

if [ -x /usr/bin/chromium ]; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "scripts/test-deps.sh: no apt-get here; install Chromium as /usr/bin/chromium" >&2
    exit 1
fi
if [ "$(id -u)" -eq 0 ]; then
    as_root=""
else
    as_root="sudo"
fi
echo "scripts/test-deps.sh: installing chromium with apt-get" >&2
# Recommends are kept: they bring the fonts pages are drawn with.
$as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
$as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
test -x /usr/bin/chromium
