#!/usr/bin/env bash
# README command 2: install what is missing (Debian packages, the pinned
# Node.js 22 in tools/node), build normally and with ASan+UBSan, install the
# pinned test peers (npm ci) and run ctest for both; then build the
# libFuzzer harnesses with clang and run each on a fixed seed for 100000
# inputs (deterministic, so a green commit stays green). Ends with one
# "== timing:" line per stage and the total, also when a stage fails.
#
# Usage: test.sh [--unit]   --unit: the same install and builds, then only
# the unit suites and the source checks (ctest -L 'unit|check') in both
# builds: no valgrind, integration or fuzz runs (test/fresh-debian.sh uses it).
set -euo pipefail
cd "$(dirname "$0")/.."
unit_only=0
case "${1:-}" in
  --unit) unit_only=1 ;;
  "") ;;
  *) echo "usage: scripts/test.sh [--unit]" >&2; exit 2 ;;
esac
jobs=$(nproc 2>/dev/null || echo 2)
now_ms() { local t=${EPOCHREALTIME/./}; echo $((t / 1000)); }
secs() { printf '%d.%d' $(($1 / 1000)) $(($1 % 1000 / 100)); } # ms -> "12.3"
t_all=$(now_ms)
timings=()
# stage NAME CMD...: run CMD, note how long it took (also when it fails).
stage() {
  local name=$1 t0 rc=0
  t0=$(now_ms)
  shift
  "$@" || rc=$?
  timings+=("$(printf '== timing: %-24s %7ss%s' "$name" "$(secs $(($(now_ms) - t0)))" \
    "$([ $rc -eq 0 ] || echo "  (exit $rc)")")")
  return $rc
}
print_timings() {
  local rc=$?
  echo
  for line in "${timings[@]}"; do echo "$line"; done
  printf '== timing: %-24s %7ss\n' total "$(secs $(($(now_ms) - t_all)))"
  return $rc
}
trap print_timings EXIT

stage deps scripts/install-deps.sh --test --container
. scripts/node-env.sh
echo "== node: $NODE ($(node --version)), npm $(npm --version)"
# Stage bodies (set -e does not reach into a function run by `stage`, so
# each chains its steps with &&).
peers_ci() { (cd test/peers && npm ci --no-audit --no-fund --loglevel=error); }
build_release() {
  cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNODE="$NODE" >/dev/null &&
    cmake --build build -j"$jobs"
}
build_asan() {
  cmake -S . -B build-asan -DMCP_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug -DNODE="$NODE" >/dev/null &&
    cmake --build build-asan -j"$jobs"
}
build_fuzz() {
  CC=clang cmake -S . -B build-fuzz -DMCP_FUZZ=ON >/dev/null &&
    cmake --build build-fuzz -j"$jobs" --target fuzz
}
if [ -f test/peers/package-lock.json ]; then
  stage "npm ci (test/peers)" peers_ci
fi
stage "build (release)" build_release
stage "build (ASan+UBSan)" build_asan
status=0
if [ $unit_only = 1 ]; then
  echo "== ctest -L 'unit|check' (release build)"
  stage "ctest unit (release)" ctest --test-dir build --output-on-failure -j"$jobs" -L 'unit|check' || status=1
  echo "== ctest -L 'unit|check' (ASan+UBSan build)"
  stage "ctest unit (ASan+UBSan)" ctest --test-dir build-asan --output-on-failure -j"$jobs" -L 'unit|check' || status=1
  exit $status
fi
echo "== ctest (release build)"
stage "ctest (release)" ctest --test-dir build --output-on-failure -j"$jobs" || status=1
echo "== ctest (ASan+UBSan build; the container test runs only above)"
stage "ctest (ASan+UBSan)" ctest --test-dir build-asan --output-on-failure -j"$jobs" -LE container || status=1
echo "== ctest (libFuzzer smoke: each parser, seed 1, 100000 inputs over its seeds)"
stage "build (fuzz)" build_fuzz
stage "ctest (fuzz)" ctest --test-dir build-fuzz --output-on-failure -j"$jobs" -L fuzz || status=1
exit $status
