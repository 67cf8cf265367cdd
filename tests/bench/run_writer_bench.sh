#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Builds (if needed) and runs the signing-writer benchmark: shauditd pinned to CPU 1, clients
# on CPU 0; throughput with 1,000,000 records (whose log is then verified), latency at
# 20,000 and 2,000 records/s. The machine is usually noisy, so it runs RUNS times (default 3)
# and prints every run's figures, then a one-line-per-run summary.
#
#   tests/bench/run_writer_bench.sh                 # 3 runs, default settings
#   RUNS=1 tests/bench/run_writer_bench.sh --records 200000 --latency-seconds 2
#
# Extra arguments go to writer_bench (see writer_bench --help). Environment:
#   BUILD  build directory (default: <repo>/build)   RUNS  number of runs (default 3)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
build="${BUILD:-$repo/build}"
runs="${RUNS:-3}"

if [[ ! -f "$build/build.ninja" && ! -f "$build/Makefile" ]]; then
  cmake -S "$repo" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
fi
cmake --build "$build" --target writer_bench shauditd shaudit_cli

if (( $(nproc) < 2 )); then
  echo "run_writer_bench.sh: needs at least 2 CPUs (daemon on CPU 1, clients on CPU 0)" >&2
  exit 1
fi

echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), kernel $(uname -r)"
echo "command: $build/tests/writer_bench --shauditd $build/daemon/shauditd --shaudit $build/cli/shaudit $*"

summary=()
status=0
for ((i = 1; i <= runs; i++)); do
  echo
  echo "=== run $i/$runs ==="
  out="$(mktemp)"
  if ! "$build/tests/writer_bench" --shauditd "$build/daemon/shauditd" \
      --shaudit "$build/cli/shaudit" "$@" | tee "$out"; then
    status=1
  fi
  summary+=("run $i: $(grep '^RESULT ' "$out" | sed 's/^RESULT //' | tr '\n' ';' | sed 's/;$//')")
  rm -f "$out"
done

echo
echo "=== summary ==="
printf '%s\n' "${summary[@]}"
exit $status
