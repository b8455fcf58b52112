#!/usr/bin/env bash
# Do the README's two commands work on a stock Debian 12? Runs them, as root,
# in a container made from a bare debian:12 image (no build tools, no Node.js,
# no npm, no python3) on a fresh clone of the committed HEAD:
#
#   1. ./scripts/demo.sh: install + build + npm ci, then the demo must come up;
#      the seed guide's Verify step must print
#      "client_id_metadata_document_supported": true, and the scripted CIMD
#      login it prints (tools/node/bin/node scripts/demo-client.mjs) must
#      pass; then SIGTERM, exit 0.
#   2. ./scripts/test.sh --unit: install (--test --container) + npm ci + both
#      builds (release, ASan+UBSan) + the unit suites and source checks.
#      With --full: ./scripts/test.sh, the whole suite (the container needs
#      --privileged then, for the image test's podman inside it, whose
#      storage is a directory of the host's bind-mounted at
#      /var/lib/containers). The default mode takes about 4-5 minutes with
#      the base image cached, --full about 12.
#
# Not in ctest (it takes many minutes and downloads every Debian package and
# npm package the commands need). Host: root with podman, runc and
# debootstrap (scripts/install-deps.sh --container); the debian:12 image is
# made once from this machine's apt mirror by docker/base-image.sh, as the
# image test does, and kept. Network: --network host; the demo listens on
# 127.0.0.1 only. The container is a fresh machine of this network: it gets
# the host's local CA certificates (/usr/local/share/ca-certificates, which
# Debian's ca-certificates adds to the system bundle when it installs) and
# npm's cafile setting, nothing else from the host.
#
# Usage: test/fresh-debian.sh [--full] [--keep]
#   --keep: keep the work directory (the clone, logs) for inspection.
set -euo pipefail

src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
full=0 keep=0
for arg in "$@"; do
	case "$arg" in
	--full) full=1 ;;
	--keep) keep=1 ;;
	*)
		echo "usage: test/fresh-debian.sh [--full] [--keep]" >&2
		exit 2
		;;
	esac
done
image=docker.io/library/debian:12
name=mcp-fresh-debian-$$
t0=$SECONDS

step() { printf '[fresh-debian %4ds] %s\n' $((SECONDS - t0)) "$*"; }
fail() {
	printf '[fresh-debian %4ds] FAIL: %s\n' $((SECONDS - t0)) "$*" >&2
	exit 1
}

missing=()
for tool in podman runc debootstrap git; do
	command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/sbin/$tool" ] || missing+=("$tool")
done
[ ${#missing[@]} -eq 0 ] || fail "not installed: ${missing[*]} — run scripts/install-deps.sh --container"
[ "$(id -u)" -eq 0 ] || fail "needs root (podman's default storage and debootstrap)"

work=$(mktemp -d "${TMPDIR:-/var/tmp}/mcp-fresh-debian.XXXXXX")
cleanup() {
	local rc=$?
	podman rm --force --time 0 "$name" >/dev/null 2>&1 || true
	if [ $keep = 1 ]; then
		echo "[fresh-debian] kept $work" >&2
	else
		rm -rf "$work"
	fi
	return $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The same podman settings as test/integration/container.test.sh (runc,
# cgroupfs, file events, ulimits within the host's hard limits), through
# CONTAINERS_CONF; /etc is never edited.
hard_nofile=$(ulimit -Hn)
[ "$hard_nofile" = unlimited ] && hard_nofile=1048576
hard_nproc=$(ulimit -Hu)
if [ "$hard_nproc" = unlimited ] || [ "$hard_nproc" -gt 32768 ]; then hard_nproc=32768; fi
cat >"$work/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=$hard_nofile:$hard_nofile", "nproc=$hard_nproc:$hard_nproc"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
export CONTAINERS_CONF=$work/containers.conf

if podman image exists "$image"; then
	step "base image $image present (cached)"
else
	step "base image $image missing: making it with debootstrap (once; a few minutes)"
	timeout 900 "$src/docker/base-image.sh" || fail "could not make the Debian base image"
fi

# A fresh clone of the committed HEAD: no build trees, no tools/node, no node_modules.
head=$(git -C "$src" rev-parse HEAD)
git clone -q --no-checkout "$src" "$work/src"
git -C "$work/src" checkout -q --detach "$head"
step "fresh clone of $(git -C "$src" log -1 --format='%h %s' | cut -c1-90)"

# What runs inside: the README commands as a newcomer types them.
cat >"$work/inside.sh" <<'INSIDE'
set -euo pipefail
cd /src
t0=$SECONDS
say() { printf '[inside %4ds] %s\n' $((SECONDS - t0)) "$*"; }
say "node: $(command -v node || echo none), npm: $(command -v npm || echo none), python3: $(command -v python3 || echo none)"

# ---- README command 1: ./scripts/demo.sh (demo on free loopback ports)
free_port() {
	local p
	for _ in $(seq 1 200); do
		p=$((20000 + RANDOM % 40000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return 0; fi
	done
	return 1
}
export MCP_DEMO_PORT=$(free_port) MCP_DEMO_DIAG_PORT=$(free_port)
say "command 1: ./scripts/demo.sh (MCP_DEMO_PORT=$MCP_DEMO_PORT MCP_DEMO_DIAG_PORT=$MCP_DEMO_DIAG_PORT)"
c1=$SECONDS
./scripts/demo.sh >/tmp/demo.log 2>&1 &
demo=$!
ready=0
for _ in $(seq 1 2400); do
	if grep -q 'Ctrl-C to stop' /tmp/demo.log; then ready=1; break; fi
	kill -0 $demo 2>/dev/null || break
	sleep 0.5
done
if [ $ready = 0 ]; then
	tail -n 60 /tmp/demo.log >&2
	say "FAIL: the demo did not come up"
	exit 1
fi
say "demo up after $((SECONDS - c1))s: $(grep -c '✔' /tmp/demo.log) checks passed"
grep '✘' /tmp/demo.log >&2 && { say "FAIL: the demo reports a failed check"; exit 1; }
# The seed guide's Verify step (the demo prints it with the port).
verify=$(curl -s "http://localhost:$MCP_DEMO_PORT/.well-known/oauth-authorization-server" |
	python3 -m json.tool | grep client_id_metadata_document)
say "Verify: $verify"
[ "$(echo "$verify" | sed 's/^ *//')" = '"client_id_metadata_document_supported": true' ] ||
	{ say "FAIL: Verify printed: $verify"; exit 1; }
# The client command the demo prints (on the pinned node, not Debian's 18).
client_cmd=$(grep -o '[^ ]*node scripts/demo-client.mjs' /tmp/demo.log | head -n 1)
[ "$client_cmd" = "tools/node/bin/node scripts/demo-client.mjs" ] ||
	{ say "FAIL: the demo prints the client command as: ${client_cmd:-nothing}"; exit 1; }
if ! $client_cmd >/tmp/demo-client.log 2>&1; then
	tail -n 40 /tmp/demo-client.log >&2
	say "FAIL: $client_cmd"
	exit 1
fi
say "$client_cmd (CIMD login + tool call): passed, on $(tools/node/bin/node --version)"
kill -TERM $demo
rc=0
wait $demo || rc=$?
[ $rc = 0 ] || { tail -n 20 /tmp/demo.log >&2; say "FAIL: the demo exited $rc on SIGTERM"; exit 1; }
say "command 1 passed in $((SECONDS - c1))s"

# ---- README command 2: ./scripts/test.sh (--unit unless FULL=1)
c2=$SECONDS
if [ "${FULL:-0}" = 1 ]; then
	say "command 2: ./scripts/test.sh"
	./scripts/test.sh
else
	say "command 2: ./scripts/test.sh --unit"
	./scripts/test.sh --unit
fi
say "command 2 passed in $((SECONDS - c2))s"
INSIDE

env_args=()
cafile=$(npm config get cafile 2>/dev/null || true)
if [ -n "$cafile" ] && [ "$cafile" != null ] && [ "$cafile" != undefined ]; then
	env_args+=(--env "npm_config_cafile=$cafile")
fi
vol_args=(-v "$work/src:/src" -v "$work/inside.sh:/inside.sh:ro")
if [ -d /usr/local/share/ca-certificates ]; then
	vol_args+=(-v /usr/local/share/ca-certificates:/usr/local/share/ca-certificates:ro)
fi
priv=()
if [ $full = 1 ]; then
	priv=(--privileged)
	# the image test's podman inside: its storage on the host's file system
	# (overlay over the container's overlayfs is refused)
	mkdir -p "$work/containers"
	vol_args+=(-v "$work/containers:/var/lib/containers")
fi

step "podman run $image: README command 1, then command 2$([ $full = 1 ] && echo ' (whole suite)' || echo ' (--unit)')"
rc=0
podman run --name "$name" --pull=never --network host "${priv[@]}" "${env_args[@]}" \
	--env FULL=$full --env DEBIAN_FRONTEND=noninteractive "${vol_args[@]}" \
	"$image" bash /inside.sh 2>&1 | tee "$work/run.log" || rc=$?
[ "$rc" = 0 ] || fail "in the container (exit $rc; output above)"
step "PASS (total $((SECONDS - t0))s)"
