#!/usr/bin/env bash
# System packages beyond Python, installed idempotently (nothing happens when present):
# - Debian's Chromium for the headless browser tests (Playwright drives /usr/bin/chromium; it
#   never downloads a browser of its own); required.
# - wrk, the C load client of benchmarks/bench_api.py and `unigrid bench`'s API step; optional
#   (without it they use their built-in Python client and say so).
set -euo pipefail
need=()
if [ -x /usr/bin/chromium ]; then
  echo "chromium: $(/usr/bin/chromium --version 2>/dev/null || echo present)"
else
  need+=(chromium fonts-noto-cjk)
fi
if command -v wrk >/dev/null 2>&1; then
  echo "wrk: present"
else
  need+=(wrk)
fi
if [ "${#need[@]}" -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing Debian packages: ${need[*]} ..."
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  [ -x /usr/bin/chromium ] && echo "chromium: $(/usr/bin/chromium --version 2>/dev/null)"
  command -v wrk >/dev/null 2>&1 && echo "wrk: installed"
  exit 0
fi
if [ ! -x /usr/bin/chromium ]; then
  echo "chromium missing and not root: install Debian's 'chromium' package for the browser tests" >&2
  exit 1
fi
echo "wrk missing and not root: the API benchmark uses its Python client (apt-get install wrk)" >&2
