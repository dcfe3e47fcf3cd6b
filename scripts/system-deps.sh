#!/usr/bin/env bash
# System packages the tests need beyond Python: Debian's Chromium for the headless browser tests
# (Playwright drives /usr/bin/chromium; it never downloads a browser of its own).
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  echo "chromium: $(/usr/bin/chromium --version 2>/dev/null || echo present)"
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing Debian chromium (browser tests) ..."
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk >/dev/null
  echo "chromium: $(/usr/bin/chromium --version 2>/dev/null)"
else
  echo "chromium missing and not root: install Debian's 'chromium' package for the browser tests" >&2
  exit 1
fi
