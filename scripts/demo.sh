#!/usr/bin/env bash
# README command 1: install what is missing, build, then run on 127.0.0.1 the
# proxy (CIMD on) + a demo MCP server + a demo IdP + an HTTPS host with a demo
# client metadata document (scripts/demo.mjs). Ctrl-C stops everything.
#
# Environment: MCP_DEMO_PORT (default 8080), MCP_DEMO_DIAG_PORT (default 9464),
# MCP_DEMO_DIR (state: CA, configs, logs; default .demo), MCP_PROXY_BIN (use
# this binary instead of building build/mcp-proxy-runner).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
# The pinned Node.js 22 in tools/node (install-deps put it there) runs the
# demo and npm, whatever node the system has.
. scripts/node-env.sh

if [ -z "${MCP_PROXY_BIN:-}" ]; then
  echo "demo: building build/ ..." >&2
  cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build build -j"$(nproc 2>/dev/null || echo 2)" --target mcp-proxy-runner >/dev/null
  export MCP_PROXY_BIN="$PWD/build/mcp-proxy-runner"
fi

# npm ci the pinned peers when node_modules is missing or differs from the lockfile
# (node_modules/.package-lock.json is the tree npm actually installed).
peers_current() {
  (cd test/peers && node -e '
    const fs = require("fs");
    const want = JSON.parse(fs.readFileSync("package-lock.json", "utf8")).packages || {};
    const have = JSON.parse(fs.readFileSync("node_modules/.package-lock.json", "utf8")).packages || {};
    for (const [k, v] of Object.entries(want)) {
      if (!k || v.optional || v.dev) continue;
      if (!have[k] || have[k].version !== v.version) process.exit(1);
    }' 2>/dev/null)
}
if ! peers_current; then
  echo "demo: installing the pinned peers (npm ci in test/peers) ..." >&2
  (cd test/peers && npm ci --no-audit --no-fund --loglevel=error)
fi

exec node scripts/demo.mjs "$@"
