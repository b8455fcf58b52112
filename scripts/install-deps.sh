#!/usr/bin/env bash
# Install what is missing on Debian 12 (idempotent; apt-get only when a
# package is absent). Usage: install-deps.sh [--test] [--container]
set -euo pipefail
want=(build-essential cmake pkg-config libevent-dev libcurl4-openssl-dev libssl-dev
      libjson-c-dev libyaml-dev libcunit1-dev openssl curl ca-certificates
      clang libclang-rt-dev clang-format git)
for arg in "$@"; do
  case "$arg" in
    --test) want+=(valgrind python3) ;;  # python3: the seed guide's Verify step (integration.seed)
    --container) want+=(podman runc debootstrap) ;;
  esac
done
command -v node >/dev/null 2>&1 || want+=(nodejs)
command -v npm >/dev/null 2>&1 || want+=(npm)
missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# node/npm may come from outside Debian (e.g. /usr/local): the command is enough.
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing: ${missing[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# The test peers (oidc-provider 9, the MCP SDK) need Node.js >= 20; Debian 12's
# own nodejs package is 18, so say so plainly instead of failing later.
node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$node_major" -lt 20 ]; then
  echo "install-deps: Node.js >= 20 is needed for the demo and the integration tests" \
       "(found: $(node --version 2>/dev/null || echo none)); install Node.js 20 or newer" \
       "(e.g. from NodeSource) and run again" >&2
  exit 1
fi
