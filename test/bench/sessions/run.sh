#!/usr/bin/env bash
# Sessions across replicas: tools/list in one MCP session, directly through its owner (A),
# through a plain extra proxy in front of A (C, whose backend is A's MCP listener: what
# "one extra proxy hop" costs), through nginx in front of A (the same, of another make) and
# through another replica (B → A's peer listener → A's
# backend), in interleaved rounds, in one run: req/s, p99 and the proxies' CPU per request
# (time on a CPU from /proc/<pid>/task/*/schedstat, nanoseconds: /proc/<pid>/stat's utime and
# stime are sampled at the 100 Hz tick on this kernel and miss most of a short wakeup; chain
# and hop count both proxies). One
# server-everything (A's backend) serves every path. Run by hand, not in ctest; everything
# on 127.0.0.1.
#
#   MCP_PROXY_BIN=build/mcp-proxy-runner ROUNDS=3 DURATION=10 CONNS=20 test/bench/sessions/run.sh
#
# PERF=<dir> also records a perf profile (perf record -g) of each proxy on each path and
# round into <dir> (label-rROUND-PID.data); the CPU figures then include perf's overhead.
# STRACE=<dir> counts each proxy's system calls (strace -c) into <dir>/label-rROUND-PID.txt.
# CALLGRIND=1 runs the proxies under valgrind's callgrind and adds the user-space instructions
# each executes per request: a count that does not depend on the host's load (CPU times and
# req/s are then callgrind's); the dumps are kept as /tmp/sessions-callgrind-LABEL-rROUND-PID.out.
# AUTH=1 runs A and B as in production: auth.mode oidc against the IdP peer (test/peers/idp.mjs,
# a JWT access token, its keys fetched once) and a tool policy (one deny rule, so tools/list
# answers are filtered; POLICY=0 leaves it out); C stays a plain proxy with no auth, as an
# ingress would be.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../../.." && pwd)"
BIN="$(realpath "${MCP_PROXY_BIN:-$REPO/build/mcp-proxy-runner}")"
ROUNDS="${ROUNDS:-3}" DURATION="${DURATION:-10}" CONNS="${CONNS:-20}"
command -v wrk >/dev/null || { echo "sessions bench: needs wrk (apt-get install wrk)" >&2; exit 2; }
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || { echo "sessions bench: needs nginx (apt-get install nginx)" >&2; exit 2; }
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"
TMP="$(mktemp -d)"
WORK="$TMP"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$TMP"; }
trap cleanup EXIT
. "$HERE/../nginx.sh"
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }

# the backend: server-everything on 127.0.0.1
mkfifo "$TMP/be"
(cd "$REPO/test/peers" && PEER_EXIT_ON_STDIN_EOF=0 exec node backend.mjs streamable-http 0 >"$TMP/be" 2>/dev/null) &
PIDS+=($!)
BPORT="$(head -1 "$TMP/be" | python3 -c 'import json,sys;print(json.load(sys.stdin)["listening"])')"
cat "$TMP/be" >/dev/null &

AUTHCFG='"auth":{"mode":"none"}'
TOKEN=""
if [ "${AUTH:-}" = 1 ]; then # the IdP peer on 127.0.0.1, one login, one JWT for the resource
	mkfifo "$TMP/idp"
	RESOURCE="http://127.0.0.1:$(free_port)/mcp" # the "Service": nothing listens there
	REDIRECT="http://127.0.0.1:$(free_port)/cb"
	IDP_OPTS='{"client_id":"bench","client_secret":"bench-secret","redirect_uris":["'$REDIRECT'"]}'
	(cd "$REPO/test/peers" && PEER_EXIT_ON_STDIN_EOF=0 exec node idp.mjs "$IDP_OPTS" >"$TMP/idp" 2>/dev/null) &
	PIDS+=($!)
	ISSUER="$(head -1 "$TMP/idp" | python3 -c 'import json,sys;print(json.load(sys.stdin)["issuer"])')"
	cat "$TMP/idp" >/dev/null &
	TOKEN="$(node "$HERE/token.mjs" "$ISSUER" "$RESOURCE" bench bench-secret "$REDIRECT")"
	AUTHCFG='"auth":{"mode":"oidc","oidc":{"issuer":"'$ISSUER'","audience":"'$RESOURCE'","insecureAllowHTTP":true}}'
	[ "${POLICY:-1}" != 1 ] || # POLICY=0: the token check alone
		AUTHCFG+=',"authorization":{"defaultDecision":"allow","rules":[{"operations":["tools/call:get-env"],"deny":{}}]}'
	AUTHSRV=',"resourceUrl":"'$RESOURCE'"'
fi
export TOKEN

mkdir -p "$TMP/secrets/peer"
head -c 32 /dev/urandom | base64 >"$TMP/secrets/peer/secret"
start_replica() { # name port [peerport] [backend port: a plain proxy, no auth]
	local peer="" auth="$AUTHCFG" srv="${AUTHSRV:-}"
	[ -z "$3" ] || peer=',"peerListen":"127.0.0.1:'$3'","peerAddress":"127.0.0.1:'$3'","peerSecretRef":{"name":"peer","key":"secret"}'
	[ -z "${4:-}" ] || { auth='"auth":{"mode":"none"}'; srv=""; }
	cat >"$TMP/$1.json" <<JSON
{$auth,"backend":{"url":"http://127.0.0.1:${4:-$BPORT}"},
 "server":{"listen":"127.0.0.1:$2","diagnosticsListen":"127.0.0.1:0","logLevel":"warn"$peer$srv}}
JSON
	local wrap=()
	[ "${CALLGRIND:-}" != 1 ] || wrap=(valgrind --tool=callgrind --dump-instr=no "--callgrind-out-file=$TMP/cg.%p")
	MCP_PROXY_SECRETS_DIR="$TMP/secrets" "${wrap[@]}" "$BIN" --config "$TMP/$1.json" 2>"$TMP/$1.log" &
	PIDS+=($!)
	eval "PID_$1=$!"
	for _ in $(seq 300); do # ready when it answers (valgrind starts slowly)
		curl -s -o /dev/null "http://127.0.0.1:$2/mcp" && return
		sleep 0.1
	done
	echo "sessions bench: replica $1 did not start" >&2
	cat "$TMP/$1.log" >&2
	exit 1
}
PA="$(free_port)" PB="$(free_port)" PPA="$(free_port)" PPB="$(free_port)"
PC="$(free_port)" PN="$(free_port)"
start_replica A "$PA" "$PPA"
start_replica B "$PB" "$PPB"
# A plain proxy of ours in front of A (no sessions of its own); not with AUTH=1: it would not
# pass the client's token on (the backend never gets it).
[ "${AUTH:-}" = 1 ] || start_replica C "$PC" "" "$PA"
# nginx in front of A, streaming (no buffering), keep-alive to A: one extra hop of another make
nginx_start N "	upstream a { server 127.0.0.1:$PA; keepalive 16; }
	server {
		listen 127.0.0.1:$PN;
		location / {
			proxy_pass http://a;
			proxy_http_version 1.1;
			proxy_set_header Connection \"\";
			proxy_set_header Host \$host;
			proxy_buffering off;
		}
	}"
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$PN/mcp" && break; sleep 0.1; done
PID_N="$(nginx_worker "$LAST_PID")"

H=(-H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' -H 'Mcp-Protocol-Version: 2025-06-18')
[ -z "$TOKEN" ] || H+=(-H "Authorization: Bearer $TOKEN")
SID="$(curl -s -D - -o /dev/null "${H[@]}" "http://127.0.0.1:$PA/mcp" \
	-d '{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"bench","version":"0"}}}' |
	tr -d '\r' | awk -F': ' 'tolower($1)=="mcp-session-id"{print $2}')"
[ -n "$SID" ] || { echo "sessions bench: no session id from A" >&2; exit 1; }
curl -s -o /dev/null "${H[@]}" -H "Mcp-Session-Id: $SID" "http://127.0.0.1:$PA/mcp" -d '{"jsonrpc":"2.0","method":"notifications/initialized"}'
export SID

cpu() { cat /proc/"$1"/task/*/schedstat | awk '{n += $1} END {printf "%.0f", n / 1000}'; } # us on a CPU, all threads
csw() { cat /proc/"$1"/task/*/status | awk '/ctxt_switches/{n += $2} END {print n}'; } # context switches
run() { # label port pids...
	local label="$1" port="$2"; shift 2
	local after=0 out reqs rps p99 us
	local perfs=()
	if [ -n "${PERF:-}" ]; then # PERF=<dir>: a perf profile of each proxy of the path, per round
		for p in "$@"; do
			perf record -q -g -p "$p" -o "$PERF/$label-r$r-$p.data" 2>/dev/null &
			perfs+=($!)
		done
		sleep 0.5
	elif [ -n "${STRACE:-}" ]; then # STRACE=<dir>: system call counts (strace -c) instead
		for p in "$@"; do
			strace -c -f -p "$p" -o "$STRACE/$label-r$r-$p.txt" 2>/dev/null &
			perfs+=($!)
		done
		sleep 0.5
	fi
	local -A t0
	local -A s0
	for p in "$@"; do t0[$p]=$(cpu "$p") s0[$p]=$(csw "$p"); done
	[ "${CALLGRIND:-}" != 1 ] || for p in "$@"; do callgrind_control -z "$p" >/dev/null 2>&1; done
	out="$(wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency -s "$HERE/tools_list.lua" "http://127.0.0.1:$port/mcp")"
	local each="" sw=""
	for p in "$@"; do
		local d=$(($(cpu "$p") - t0[$p]))
		after=$((after + d))
		each+="$(awk -v t="$d" -v r="$(awk '/requests in/{print $1}' <<<"$out")" 'BEGIN{printf " %.1f", t / r}')"
		sw+="$(awk -v t="$(($(csw "$p") - s0[$p]))" -v r="$(awk '/requests in/{print $1}' <<<"$out")" 'BEGIN{printf " %.2f", t / r}')"
	done
	for p in "${perfs[@]}"; do kill -INT "$p"; wait "$p" || true; done
	local instr=""
	if [ "${CALLGRIND:-}" = 1 ]; then # user-space instructions per request, each proxy
		local total=0
		for p in "$@"; do
			rm -f "$TMP"/cg."$p".*
			callgrind_control -d "$p" >/dev/null 2>&1
			local n
			n="$(awk '/^totals:/{print $2}' "$TMP"/cg."$p".* | tail -1)"
			cp "$(ls "$TMP"/cg."$p".* | tail -1)" "/tmp/sessions-callgrind-$label-r$r-$p.out" # for callgrind_annotate
			total=$((total + n))
			instr+=" $(awk -v n="$n" -v r="$(awk '/requests in/{print $1}' <<<"$out")" 'BEGIN{printf "%.0f", n / r}')"
		done
		instr="  instructions/request $(awk -v n="$total" -v r="$(awk '/requests in/{print $1}' <<<"$out")" 'BEGIN{printf "%.0f", n / r}') (A first:$instr)"
	fi
	reqs="$(awk '/requests in/{print $1}' <<<"$out")"
	rps="$(awk '/Requests\/sec/{print $2}' <<<"$out")"
	p99="$(awk '$1=="99%"{print $2}' <<<"$out")"
	grep -q 'Non-2xx' <<<"$out" && { echo "sessions bench: $label: non-2xx answers" >&2; grep Non-2xx <<<"$out" >&2; }
	us="$(awk -v t="$after" -v r="$reqs" 'BEGIN{printf "%.1f", t / r}')"
	printf '%-8s %10s req/s  p99 %8s  proxy CPU/request %7s us  (A first:%s)  switches/request%s%s\n' "$label" "$rps" "$p99" "$us" "$each" "$sw" "$instr"
}
[ -z "${PERF:-}${STRACE:-}" ] || echo "profiles in ${PERF:-$STRACE}; pids: A (owner) $PID_A, B (front of the hop) $PID_B, C (plain proxy) ${PID_C:-none}, nginx $PID_N"
for r in $(seq "$ROUNDS"); do
	echo "round $r"
	run direct "$PA" "$PID_A"
	[ "${AUTH:-}" = 1 ] || run chain "$PC" "$PID_A" "$PID_C"
	[ "${CALLGRIND:-}" = 1 ] || run nginx "$PN" "$PID_A" "$PID_N" # (not under valgrind)
	run hop "$PB" "$PID_A" "$PID_B"
done
