# Sourced by scripts/demo.sh and scripts/test.sh after scripts/install-deps.sh:
# puts the pinned Node.js (tools/node/bin: node, npm, npx) first in PATH and
# sets NODE to it (test.sh passes it to cmake as the node of the node tests).
# shellcheck shell=bash
NODE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/tools/node/bin/node"
[ -x "$NODE" ] || { echo "node-env: $NODE is missing (run scripts/install-node.sh)" >&2; return 1; }
PATH="$(dirname "$NODE"):$PATH"
export NODE PATH
