#!/usr/bin/env bash
# Install what is missing on Debian 12 (idempotent; apt-get only when a
# package is absent), then the pinned Node.js 22 + npm 10 into tools/node
# (scripts/install-node.sh). Usage: install-deps.sh [--test] [--container]
#
# Node.js: stock Debian 12 ships 18, and the demo and the test peers need
# >= 20. Debian's nodejs and npm are installed only to bootstrap the pinned
# one from the npm registry (when no npm is there yet); the demo and the
# tests then always run on tools/node/bin/node, whatever the system has, so
# every machine runs the same Node.js.
set -euo pipefail
cd "$(dirname "$0")/.."
want=(build-essential cmake pkg-config libevent-dev libcurl4-openssl-dev libssl-dev
      libjson-c-dev libyaml-dev libcunit1-dev libhiredis-dev openssl curl ca-certificates
      clang libclang-rt-dev clang-format git python3)  # python3: the guide's Verify step
for arg in "$@"; do
  case "$arg" in
    --test) want+=(valgrind redis-server) ;;
    --container) want+=(podman runc debootstrap) ;;
  esac
done
# npm bootstraps tools/node; it is needed only while tools/node is not current.
if ! scripts/install-node.sh --check && ! command -v npm >/dev/null 2>&1; then
  want+=(nodejs npm)
fi
missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing: ${missing[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
scripts/install-node.sh
