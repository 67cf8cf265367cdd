#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs test dependencies, builds shaudit (warnings are errors), and runs:
#   1. the libFuzzer targets briefly (wire decoder, record-log parser, rules, outputs, the
#      OCI wrapper's config.json edit),
#   2. the unit tests built with ASan+UBSan,
#   3. a build of shauditd without eBPF (SHAUDIT_BPF=OFF),
#   4. every test (unit + integration against real shauditd processes) with ctest.
# Must run as root (integration tests mount tmpfs, switch users, bind sockets in /run).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
source installer/deps.sh
shaudit_mount_kernel_fs
shaudit_install_deps --test
JOBS=$(nproc)
FUZZ_SECONDS=${SHAUDIT_FUZZ_SECONDS:-20}

echo "== fuzz build (clang, libFuzzer + ASan/UBSan)"
CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DSHAUDIT_FUZZ=ON -DSHAUDIT_TESTS=OFF >/dev/null
cmake --build build-fuzz -j"$JOBS" --target wire_fuzz log_fuzz rules_fuzz redact_fuzz outputs_fuzz \
  oci_config_fuzz
# DIR/TARGET: the fuzzer is DIR/fuzz/TARGET.cc, its seed corpus DIR/fuzz/corpus/<TARGET minus _fuzz>.
for dt in libshaudit/wire_fuzz libshaudit/log_fuzz libshaudit/rules_fuzz libshaudit/redact_fuzz \
    daemon/outputs_fuzz \
    oci_runtime/oci_config_fuzz; do
  dir=${dt%/*} t=${dt#*/}
  corpus=$(mktemp -d)
  cp "$dir"/fuzz/corpus/"${t%_fuzz}"/* "$corpus"/
  echo "== fuzz $t for ${FUZZ_SECONDS}s"
  (cd "$corpus" && "$ROOT/build-fuzz/$dir/$t" -max_total_time="$FUZZ_SECONDS" -max_len=16384 \
    -print_final_stats=1 "$corpus" 2>&1 | tail -4)
  rm -rf "$corpus"
done

echo "== unit tests with ASan+UBSan"
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DSHAUDIT_SANITIZE=ON -DSHAUDIT_WERROR=ON >/dev/null
cmake --build build-asan -j"$JOBS" --target libshaudit_test outputs_format_test oci_runtime_test
for t in libshaudit/libshaudit_test daemon/outputs_format_test oci_runtime/oci_runtime_test; do
  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 ./build-asan/$t --gtest_brief=1
done

echo "== shauditd without eBPF (SHAUDIT_BPF=OFF) builds, and its cross-check unit tests pass"
cmake -S . -B build-nobpf -G Ninja -DCMAKE_BUILD_TYPE=Release -DSHAUDIT_BPF=OFF -DSHAUDIT_WERROR=ON >/dev/null
cmake --build build-nobpf -j"$JOBS" --target shauditd crosscheck_test
./build-nobpf/daemon/crosscheck_test --gtest_brief=1

echo "== build and all tests"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSHAUDIT_WERROR=ON >/dev/null
cmake --build build -j"$JOBS"
cd build
ctest --output-on-failure --timeout 1200
