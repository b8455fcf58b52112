#!/usr/bin/env bash
# Container image test: builds docker/Dockerfile with podman and runs the image
# the way the Kubernetes example does (read-only root filesystem, no tmpfs,
# UID 65532, all capabilities dropped, no privilege escalation) with a mounted
# config on loopback, then checks GET /health on the diagnostics port.
#
# Runs as root with Debian's podman, runc and debootstrap (scripts/install-deps.sh
# --container installs them; missing tools FAIL this test, they never skip it).
# No registry is needed: the Debian 12 base images are made once from the host's
# apt mirror by docker/base-image.sh and kept in podman's default storage, so a
# warm run only rebuilds the changed layers. Network: --network host and every
# socket on 127.0.0.1.
#
# Env: MCP_SOURCE_DIR (repo root; set by ctest), MCP_CONTAINER_KEEP=1 keeps the
# container and the work directory for inspection.
set -euo pipefail

src=${MCP_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
image_tag=localhost/mcp-proxy-runner:test
name=mcp-proxy-runner-test-$$
t0=$SECONDS

step() { printf '[container %4ds] %s\n' $((SECONDS - t0)) "$*"; }
fail() {
	printf '[container %4ds] FAIL: %s\n' $((SECONDS - t0)) "$*" >&2
	exit 1
}

# ---- prerequisites ----------------------------------------------------------
missing=()
for tool in podman runc debootstrap curl openssl; do
	command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/sbin/$tool" ] || missing+=("$tool")
done
[ ${#missing[@]} -eq 0 ] ||
	fail "not installed: ${missing[*]} — run scripts/install-deps.sh --container (scripts/test.sh does)"
[ "$(id -u)" -eq 0 ] || fail "needs root (podman's default storage and debootstrap); run as root"
[ -f "$src/docker/Dockerfile" ] || fail "no $src/docker/Dockerfile (is MCP_SOURCE_DIR the repo root?)"

work=$(mktemp -d "${TMPDIR:-/tmp}/mcp-container-test.XXXXXX")
cleanup() {
	local rc=$?
	if [ "${MCP_CONTAINER_KEEP:-0}" = 1 ]; then
		echo "[container] kept container $name and $work" >&2
		return
	fi
	podman rm --force --time 0 "$name" >/dev/null 2>&1 || true
	rm -rf "$work"
	return $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# podman settings that work on these hosts (found by trying): runc (crun fails
# on hybrid cgroups), cgroupfs, file events, ulimits within the host's hard
# limits. Passed through CONTAINERS_CONF; /etc is never edited.
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

# ---- base images (cached between runs) --------------------------------------
if podman image exists docker.io/library/debian:12 && podman image exists docker.io/library/debian:12-slim; then
	step "base images docker.io/library/debian:12 and :12-slim present (cached)"
else
	step "base images missing: making them with debootstrap (once; about a minute)"
	timeout 420 "$src/docker/base-image.sh" || fail "could not make the Debian base images (output above)"
fi

# ---- build ------------------------------------------------------------------
old_id=$(podman image inspect --format '{{.Id}}' "$image_tag" 2>/dev/null || true)
step "podman build -f docker/Dockerfile (cold: about 2 minutes; warm: only changed layers)"
build_rc=0
timeout 420 podman build --pull=never --network host --layers \
	-f "$src/docker/Dockerfile" --ignorefile "$src/docker/.dockerignore" \
	--iidfile "$work/iid" -t "$image_tag" "$src" >"$work/build.log" 2>&1 &
build_pid=$!
# Progress: the STEP lines as they come.
tail -n +1 -f --pid=$build_pid "$work/build.log" 2>/dev/null | grep --line-buffered -E '^(\[[0-9]+/[0-9]+\] )?STEP [0-9]+/' |
	sed -u -E 's/^(.{0,110}).*/    \1/' || true
wait $build_pid || build_rc=$?
if [ $build_rc -ne 0 ]; then
	tail -n 60 "$work/build.log" >&2
	fail "podman build failed (exit $build_rc; last lines above)"
fi
image=$(cat "$work/iid")
step "built $image_tag ${image:7:12} ($(podman image inspect --format '{{.Size}}' "$image" | awk '{printf "%.0f MB", $1/1e6}'))"
# Drop the image this tag named before (its cached layers stay for the next build).
if [ -n "$old_id" ] && [ "$old_id" != "${image#sha256:}" ] && [ "$old_id" != "$image" ]; then
	podman rmi "$old_id" >/dev/null 2>&1 || true
fi

# The image's own settings, as a Kubernetes securityContext relies on them.
cfg=$(podman image inspect --format '{{.Config.User}}|{{json .Config.Entrypoint}}|{{json .Config.ExposedPorts}}' "$image")
[[ $cfg == 65532:65532\|* || $cfg == 65532\|* ]] || fail "image USER is not 65532: $cfg"
[[ $cfg == *'"--config","/etc/mcp-proxy/config.yaml"'* ]] || fail "ENTRYPOINT lacks --config /etc/mcp-proxy/config.yaml: $cfg"
[[ $cfg == *8080/tcp* && $cfg == *9464/tcp* ]] || fail "image does not EXPOSE 8080 and 9464: $cfg"
[ -z "$(podman image inspect --format '{{range .Config.Env}}{{.}} {{end}}' "$image" | grep -o DEBIAN_FRONTEND || true)" ] ||
	fail "DEBIAN_FRONTEND leaked into the runtime image"
step "image config: USER 65532, ENTRYPOINT --config /etc/mcp-proxy/config.yaml, EXPOSE 8080 9464"

# ---- the example configurations are valid for this image ---------------------
# The ConfigMap's config.yaml (k8s/configmap.yaml) and compose.config.yaml,
# checked by the image's own loader (--check-config) with throwaway secrets
# mounted where Kubernetes mounts the Secrets of k8s/secret.yaml, and POD_IP as
# the downward API sets it (k8s-redis's peer listener needs it).
awk '/^  config.yaml: \|/ { on = 1; next }
	on && /^    / { print substr($0, 5); next }
	on && /^[[:space:]]*$/ { print ""; next }
	on { exit }' "$src/docker/k8s/configmap.yaml" >"$work/k8s-config.yaml"
grep -q '^embeddedAuthServer:' "$work/k8s-config.yaml" ||
	fail "could not extract config.yaml from docker/k8s/configmap.yaml"
# The same for the variant with Redis (k8s-redis/configmap.yaml, a whole config.yaml).
awk '/^  config.yaml: \|/ { on = 1; next }
	on && /^    / { print substr($0, 5); next }
	on && /^[[:space:]]*$/ { print ""; next }
	on { exit }' "$src/docker/k8s-redis/configmap.yaml" >"$work/k8s-redis-config.yaml"
grep -q '^embeddedAuthServer:' "$work/k8s-redis-config.yaml" ||
	fail "could not extract config.yaml from docker/k8s-redis/configmap.yaml"
mkdir -p "$work/secrets/google-oauth-secret" "$work/secrets/mcp-proxy-signing-key" \
	"$work/secrets/mcp-proxy-redis" "$work/secrets/mcp-proxy-peer"
printf 'test-client-secret' >"$work/secrets/google-oauth-secret/client_secret"
openssl rand -base64 32 >"$work/secrets/mcp-proxy-redis/encryption_key" ||
	fail "openssl could not generate a throwaway encryption key"
openssl rand -base64 32 >"$work/secrets/mcp-proxy-peer/secret" ||
	fail "openssl could not generate a throwaway peer secret"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
	-out "$work/secrets/mcp-proxy-signing-key/private.pem" 2>/dev/null ||
	fail "openssl could not generate a throwaway signing key"
chmod -R a+rX "$work/secrets"
chmod 0644 "$work/k8s-config.yaml" "$work/k8s-redis-config.yaml"
for example in "k8s/configmap.yaml:$work/k8s-config.yaml" "k8s-redis/configmap.yaml:$work/k8s-redis-config.yaml" \
	"compose.config.yaml:$src/docker/compose.config.yaml"; do
	label=${example%%:*}
	file=${example#*:}
	if ! out=$(podman run --rm --pull=never --network none --read-only --read-only-tmpfs=false \
		--user 65532:65532 --cap-drop ALL --security-opt no-new-privileges \
		-e POD_IP=127.0.0.7 \
		-v "$file:/etc/mcp-proxy/config.yaml:ro" -v "$work/secrets:/etc/mcp-proxy/secrets:ro" \
		"$image" --check-config 2>&1); then
		echo "$out" >&2
		fail "docker/$label: the image's --check-config rejects it (output above)"
	fi
done
step "docker/k8s/configmap.yaml, docker/k8s-redis/configmap.yaml and docker/compose.config.yaml pass --check-config in the image"

# ---- run ----------------------------------------------------------------------
# A loopback port nothing listens on (the backend: down on purpose).
free_port() {
	local p
	for _ in $(seq 1 200); do
		p=$((20000 + RANDOM % 40000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return 0
		fi
	done
	return 1
}
backend=$(free_port) || fail "no free loopback port"

# Port 0: the kernel picks free ports and the proxy logs the ones it bound
# ({"msg":"listening","listener":"mcp"|"diagnostics",...,"port":N}), so
# concurrent runs never race for a port.
cat >"$work/config.yaml" <<CONFIG
# container.test.sh: development mode on loopback, no backend running.
server:
  listen: "127.0.0.1:0"
  diagnosticsListen: "127.0.0.1:0"
backend:
  url: "http://127.0.0.1:$backend"
auth:
  mode: none
CONFIG
chmod 0644 "$work/config.yaml"

step "podman run --read-only --user 65532 --cap-drop ALL --network host (listeners on 127.0.0.1)"
podman run --detach --name "$name" --pull=never --network host \
	--read-only --read-only-tmpfs=false --user 65532:65532 --cap-drop ALL \
	--security-opt no-new-privileges --timeout 900 \
	-v "$work/config.yaml:/etc/mcp-proxy/config.yaml:ro" \
	"$image" >/dev/null || fail "podman run failed"

show_logs() {
	echo "---- container log ($name) ----" >&2
	podman logs "$name" 2>&1 | tail -n 40 >&2 || true
	echo "-------------------------------" >&2
}
running_or_fail() {
	local state
	state=$(podman inspect --format '{{.State.Status}} {{.State.ExitCode}}' "$name" 2>/dev/null || echo "gone")
	if [[ $state != running* ]]; then
		show_logs
		fail "container stopped $1 (state: $state)"
	fi
}
# The port a listener reports in its "listening" log line, or nothing yet.
bound_port() {
	podman logs "$name" 2>&1 | grep '"msg":"listening"' | grep "\"listener\":\"$1\"" |
		sed -n 's/.*"port":\([0-9][0-9]*\).*/\1/p' | tail -n 1
}

port="" diag=""
for _ in $(seq 1 60); do
	running_or_fail "before it reported its listeners"
	port=$(bound_port mcp)
	diag=$(bound_port diagnostics)
	[ -n "$port" ] && [ -n "$diag" ] && break
	sleep 0.5
done
if [ -z "$port" ] || [ -z "$diag" ]; then
	show_logs
	fail "no 'listening' log lines with the bound ports after 30 s"
fi
step "listening: MCP 127.0.0.1:$port, diagnostics 127.0.0.1:$diag"

# GET /health on the diagnostics port, retried for up to 15 s.
code=000
for _ in $(seq 1 30); do
	running_or_fail "before answering /health"
	code=$(curl -sS -o "$work/health.json" -w '%{http_code}' --max-time 2 \
		"http://127.0.0.1:$diag/health" 2>/dev/null || true)
	[ "$code" = 200 ] && break
	sleep 0.5
done
if [ "$code" != 200 ]; then
	show_logs
	fail "GET http://127.0.0.1:$diag/health answered ${code:-nothing} (want 200)"
fi
body=$(cat "$work/health.json")
grep -q '"status"' <<<"$body" || { show_logs; fail "/health body has no \"status\": $body"; }
step "GET /health on the diagnostics port: 200 $body"

# The proxy process itself (seen from the host): UID 65532, no capabilities,
# no_new_privs; and the root filesystem refuses writes.
pid=$(podman inspect --format '{{.State.Pid}}' "$name")
status=$(cat "/proc/$pid/status" 2>/dev/null) || fail "cannot read /proc/$pid/status of the proxy"
uid=$(awk '/^Uid:/ { print $2 }' <<<"$status")
capeff=$(awk '/^CapEff:/ { print $2 }' <<<"$status")
nnp=$(awk '/^NoNewPrivs:/ { print $2 }' <<<"$status")
[ "$uid" = 65532 ] || fail "the proxy runs as UID $uid, want 65532"
[[ $capeff =~ ^0+$ ]] || fail "the proxy has capabilities (CapEff $capeff), want none"
[ "$nnp" = 1 ] || fail "the proxy may gain privileges (NoNewPrivs $nnp)"
if podman exec "$name" sh -c ': > /etc/mcp-proxy/probe || : > /tmp/probe || : > /probe' 2>/dev/null; then
	fail "root filesystem is writable"
fi
step "the proxy runs as UID 65532, no capabilities, no_new_privs, read-only root filesystem"

# The MCP listener answers HTTP too (502: no backend is running).
mcp_code=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$port/mcp" 2>/dev/null || true)
if [ -z "$mcp_code" ] || [ "$mcp_code" = 000 ]; then
	show_logs
	fail "nothing answers HTTP on 127.0.0.1:$port"
fi
step "MCP listener 127.0.0.1:$port answers HTTP ($mcp_code)"

# SIGTERM as PID 1 (what kubelet sends) must stop the proxy well before SIGKILL.
stop_start=$SECONDS
podman stop --time 25 "$name" >/dev/null 2>&1 || true
stopped_in=$((SECONDS - stop_start))
exit_code=$(podman inspect --format '{{.State.ExitCode}}' "$name" 2>/dev/null || echo "?")
[ "$stopped_in" -lt 25 ] || { show_logs; fail "did not stop on SIGTERM within 25 s (killed; exit $exit_code)"; }
[ "$exit_code" = 0 ] || [ "$exit_code" = 143 ] || { show_logs; fail "exit code $exit_code after SIGTERM"; }
step "stopped on SIGTERM in ${stopped_in}s (exit $exit_code)"

step "PASS (total $((SECONDS - t0))s)"
