#!/usr/bin/env bash
# Headless Chromium from Debian's packages for the dashboard browser test; installs it once, prints its path.
set -euo pipefail

find_chromium() { command -v chromium || command -v chromium-browser || true; }

binary=$(find_chromium)
if [ -z "$binary" ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "chromium is not installed and this user cannot install it: run 'apt-get install -y chromium' as root" >&2
    exit 1
  fi
  echo "installing Debian's chromium (once)..." >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >&2
  binary=$(find_chromium)
fi
[ -n "$binary" ] || { echo "chromium install finished but no chromium binary is on PATH" >&2; exit 1; }
echo "$binary"
