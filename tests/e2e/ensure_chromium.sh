#!/usr/bin/env bash
# Makes sure Debian's Chromium (and its driver) is at /usr/bin/chromium for tests/e2e/test_browser.py.
# `make test` runs this first: as root it installs the Debian packages when they are missing;
# otherwise it stops at once with the one command to run, before any test has been spent.
set -euo pipefail
CHROMIUM=/usr/bin/chromium
[ -x "$CHROMIUM" ] && exit 0
PACKAGES="chromium chromium-driver"
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
  echo "installing Debian's $PACKAGES for the browser tests ..." >&2
  export DEBIAN_FRONTEND=noninteractive
  # shellcheck disable=SC2086
  apt-get install -y -q --no-install-recommends $PACKAGES >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends $PACKAGES >/dev/null; } \
    || true
  [ -x "$CHROMIUM" ] && exit 0
  echo "make test: installing $PACKAGES failed; run: apt-get update && apt-get install -y $PACKAGES" >&2
  exit 1
fi
echo "make test: the browser tests need Chromium at $CHROMIUM; run: sudo apt-get install -y $PACKAGES" >&2
exit 1
