#!/usr/bin/env bash
# Auth-side benchmarks (AS token issuance, CIMD, bearer-guard and policy overhead); see auth-bench.mjs
# for what each measures and the knobs. Run by hand, not in ctest; everything on 127.0.0.1.
#
#   test/bench/auth/run.sh                              # all three, build/mcp-proxy-runner
#   MCP_PROXY_BIN=build-bench/mcp-proxy-runner test/bench/auth/run.sh tokens cimd guard policy
#
# With ≥ 2 CPUs the proxies (and the front nginx) are pinned to CPU 0; the driver, wrk, the
# IdP, the doc host and the backend run on the other CPUs.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../../.." && pwd)"
export MCP_PROXY_BIN="$(realpath "${MCP_PROXY_BIN:-$REPO/build/mcp-proxy-runner}")"
[ -x "$MCP_PROXY_BIN" ] || { echo "auth bench: no proxy binary at $MCP_PROXY_BIN (set MCP_PROXY_BIN)" >&2; exit 2; }
[ -d "$REPO/test/peers/node_modules" ] || { echo "auth bench: run npm ci in test/peers first" >&2; exit 2; }
missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx)
if [ ${#missing[@]} -gt 0 ]; then
	echo "auth bench: installing ${missing[*]}" >&2
	apt-get install -y "${missing[@]}" >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y "${missing[@]}" >/dev/null; }
fi
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
LOAD=()
if [ "$(nproc)" -ge 2 ]; then
	export PROXY_CPU="${PROXY_CPU-0}"
	LOAD=(taskset -c "1-$(($(nproc) - 1))")
else
	export PROXY_CPU="${PROXY_CPU-}"
fi
exec "${LOAD[@]}" node "$HERE/auth-bench.mjs" "$@"
