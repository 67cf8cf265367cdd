#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Scale benchmark (issue 11): 1, 10, 100, 1000 concurrent typing sessions against one shauditd
# with bpf: on. Not a test: nothing runs it from ctest. Needs root, python3, cc, bpftool;
# installs gnuplot-nox with apt-get when gnuplot is missing (for the plot).
#
#   tests/bench/run_scale_bench.sh                        # 1 10 100 1000 sessions, 120 s each
#   SESSIONS="1 10" DURATION=10 IDLE=3 SKIP_BUILD=1 tests/bench/run_scale_bench.sh   # smoke
#
# For each N: a fresh shauditd (bpf: on, `interposer:` the stable copy of the interposer; private
# sockets, log, state_dir) and N session processes (tests/bench/session_load.c, compiled on the
# fly; each a process of its own, so shauditd sees N distinct pids), each the entry of an audited
# session it opened with SESSION_OPEN as root, like session_run.c, then sending LINE reports
# (SHELL, TEXT, CMD_NO, LINE_INDEX 0, LINE_FLAGS 0) at a typist's pace, one every INTERVAL_MS
# (1000:2000, uniform) for DURATION seconds. Each line's text carries a unique id and its send
# time; a tailer reads the log as it grows. Per N (tests/bench/scale_bench.py): lines sent,
# records found (must be equal), p50/p99 latency to the log file and to shauditd's receipt stamp,
# shauditd CPU per record in µs (also less its idle CPU, measured for IDLE s with the sessions
# open and silent), shauditd RSS, the other load on the machine during the typing. Target: CPU
# per record and latency flat within 2x from 1 to 1000 sessions.
#
# Environment: BUILD (default <repo>/build), SKIP_BUILD=1 (use BUILD as it is), SESSIONS
# ("1 10 100 1000"), DURATION (120 s of typing per N), INTERVAL_MS ("1000:2000"), IDLE (10 s),
# RESULTS (default /var/tmp/shaudit-scale-results/DATE: scale.md, scale.jsonl, scale.png),
# KEEP=1 keeps the work directory (/var/tmp/shaudit-scale.*) with the logs.
# A full run takes about len(SESSIONS) x (DURATION + IDLE + 20 s) plus the start-up of 1000
# sessions: some 10-12 minutes with the defaults.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
sessions="${SESSIONS:-1 10 100 1000}"
duration="${DURATION:-120}"
interval="${INTERVAL_MS:-1000:2000}"
idle="${IDLE:-10}"
results="${RESULTS:-/var/tmp/shaudit-scale-results/$(date +%Y%m%d-%H%M%S)}"
py="$here/scale_bench.py"
mkdir -p "$results"
exec > >(tee "$results/output.txt") 2>&1   # everything printed is also kept with the results

BENCH_ARGS="$*"
print_command BUILD SKIP_BUILD SESSIONS DURATION INTERVAL_MS IDLE RESULTS KEEP
require_root "sessions are opened by root; eBPF"
require_tools python3 cc bpftool
ensure_gnuplot
maybe_build

bench_workdir shaudit-scale

copy_binaries
compile_helper session_load "$W/bin/session_load"

print_machine
print_tree
print_copies "$results"
echo

args=(--work "$W" --results "$results" --shauditd "$W/bin/shauditd" --shaudit "$W/bin/shaudit"
      --preload "$W/bin/libshaudit_preload.so" --session-load "$W/bin/session_load"
      --sessions "$(echo $sessions | tr ' ' ,)" --duration "$duration" --interval-ms "$interval"
      --idle "$idle")
[[ ${KEEP:-0} == 1 ]] && args+=(--keep)
run_driver "${args[@]}"
echo "results: $results"
exit $rc
