#!/usr/bin/env bash
# README command 2: install what is missing (Debian packages, the pinned
# Node.js 22 in tools/node), build normally and with ASan+UBSan, install the
# pinned test peers (npm ci) and run ctest for both; then build the
# libFuzzer harnesses with clang and run each on a fixed seed for 100000
# inputs (deterministic, so a green commit stays green).
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc 2>/dev/null || echo 2)
scripts/install-deps.sh --test --container
. scripts/node-env.sh
echo "== node: $NODE ($(node --version)), npm $(npm --version)"
if [ -f test/peers/package-lock.json ]; then
  (cd test/peers && npm ci --no-audit --no-fund --loglevel=error)
fi
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNODE="$NODE" >/dev/null
cmake --build build -j"$jobs"
cmake -S . -B build-asan -DMCP_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug -DNODE="$NODE" >/dev/null
cmake --build build-asan -j"$jobs"
status=0
echo "== ctest (release build)"
ctest --test-dir build --output-on-failure -j"$jobs" || status=1
echo "== ctest (ASan+UBSan build; the container test runs only above)"
ctest --test-dir build-asan --output-on-failure -j"$jobs" -LE container || status=1
echo "== ctest (libFuzzer smoke: each parser, seed 1, 100000 inputs over its seeds)"
CC=clang cmake -S . -B build-fuzz -DMCP_FUZZ=ON >/dev/null
cmake --build build-fuzz -j"$jobs" --target fuzz
ctest --test-dir build-fuzz --output-on-failure -j"$jobs" -L fuzz || status=1
exit $status
