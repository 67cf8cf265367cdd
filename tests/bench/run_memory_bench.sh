#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Memory benchmark (issue 11): shauditd's RSS with 10,000 live tracked processes and 1,000 open
# sessions, then over a soak of session churn. Not a test: nothing runs it from ctest. Needs
# root, python3, cc, bpftool; installs gnuplot-nox with apt-get when gnuplot is missing.
#
#   tests/bench/run_memory_bench.sh                              # a one-hour soak
#   SOAK_SECONDS=30 HOLD_SECONDS=5 SKIP_BUILD=1 tests/bench/run_memory_bench.sh   # smoke
#
# One shauditd (bpf: on, `interposer:` a stable copy of the interposer; private sockets, log,
# state_dir) for the whole run; tests/bench/memory_bench.py samples its VmRSS every SAMPLE_S
# seconds into memory.csv:
#   hold   HOLD_SESSIONS (1000) session entries (tests/bench/session_load.c, compiled on the fly:
#          each opened an audited session with SESSION_OPEN as root, like session_run.c) with
#          HOLD_CHILDREN (10) sleeping children each: 11,000 live processes the kernel tracks
#          (counted in shauditd's "tracked" eBPF map) and 1,000 open sessions, for HOLD_SECONDS
#   soak   SOAK_SECONDS (3600) of session churn: SOAK_CONCURRENT (10) sessions at a time, each a
#          new process that opens a session, types 3 lines, runs `sh -c '/bin/true; /bin/true;
#          /bin/true'` with the interposer, and ends (every other one by SESSION_CLOSE)
# Targets: RSS <= 64 MiB; flat over the soak. Results (RESULTS, default
# /var/tmp/shaudit-memory-results/DATE): memory.md, memory.csv, memory.json, memory.png,
# output.txt.
# The hold needs HOLD_SESSIONS x (HOLD_CHILDREN + 1) more processes: when kernel.pid_max or
# kernel.threads-max leaves less than that (plus 4,000 for the rest of the machine), the script
# raises them for the run and puts the old values back on exit.
#
# Environment: BUILD (default <repo>/build), SKIP_BUILD=1 (use BUILD as it is), HOLD_SESSIONS,
# HOLD_CHILDREN, HOLD_SECONDS (30), SOAK_SECONDS (3600), SOAK_CONCURRENT (10), SOAK_LINES (3),
# SOAK_EXECS (3), SOAK_INTERVAL_MS ("300:800", between typed lines), SAMPLE_S (5), IDLE (10),
# RESULTS, KEEP=1 keeps the work directory (/var/tmp/shaudit-memory.*) with shauditd's log.
# A full run takes SOAK_SECONDS + HOLD_SECONDS + about 1.5 minutes.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
hold_sessions="${HOLD_SESSIONS:-1000}"
hold_children="${HOLD_CHILDREN:-10}"
hold_seconds="${HOLD_SECONDS:-30}"
soak_seconds="${SOAK_SECONDS:-3600}"
soak_concurrent="${SOAK_CONCURRENT:-10}"
soak_lines="${SOAK_LINES:-3}"
soak_execs="${SOAK_EXECS:-3}"
soak_interval="${SOAK_INTERVAL_MS:-300:800}"
sample_s="${SAMPLE_S:-5}"
idle="${IDLE:-10}"
results="${RESULTS:-/var/tmp/shaudit-memory-results/$(date +%Y%m%d-%H%M%S)}"
py="$here/memory_bench.py"
mkdir -p "$results"
exec > >(tee "$results/output.txt") 2>&1   # everything printed is also kept with the results

BENCH_ARGS="$*"
print_command BUILD SKIP_BUILD HOLD_SESSIONS HOLD_CHILDREN HOLD_SECONDS SOAK_SECONDS SOAK_CONCURRENT \
  SOAK_LINES SOAK_EXECS SOAK_INTERVAL_MS SAMPLE_S IDLE RESULTS KEEP
require_root "sessions are opened by root; eBPF; kernel limits"
require_tools python3 cc bpftool
ensure_gnuplot
maybe_build

bench_workdir shaudit-memory
old_pid_max=""
old_threads_max=""
cleanup_extra() {  # kernel limits raised for the hold are put back
  if [[ -n $old_pid_max ]]; then
    echo "$old_pid_max" > /proc/sys/kernel/pid_max && echo "kernel.pid_max put back to $old_pid_max"
  fi
  if [[ -n $old_threads_max ]]; then
    echo "$old_threads_max" > /proc/sys/kernel/threads-max && echo "kernel.threads-max put back to $old_threads_max"
  fi
}

# Room for the hold's processes.
need=$((hold_sessions * (hold_children + 1) + 4000))
live_tasks=$(awk '{split($4, a, "/"); print a[2]}' /proc/loadavg)   # threads on the machine
live_procs=$(find /proc -maxdepth 1 -name '[0-9]*' 2>/dev/null | wc -l)
pid_max=$(cat /proc/sys/kernel/pid_max)
threads_max=$(cat /proc/sys/kernel/threads-max)
echo "limits: kernel.pid_max $pid_max, kernel.threads-max $threads_max; live: $live_procs processes, $live_tasks threads; the hold adds $((hold_sessions * (hold_children + 1)))"
if ((pid_max < live_tasks + need)); then
  old_pid_max=$pid_max
  echo $((live_tasks + need + 8192)) > /proc/sys/kernel/pid_max
  echo "kernel.pid_max raised to $(cat /proc/sys/kernel/pid_max) for the run"
fi
if ((threads_max < live_tasks + need)); then
  old_threads_max=$threads_max
  echo $((live_tasks + need + 8192)) > /proc/sys/kernel/threads-max
  echo "kernel.threads-max raised to $(cat /proc/sys/kernel/threads-max) for the run"
fi

copy_binaries
compile_helper session_load "$W/bin/session_load"

print_machine
print_tree
print_copies "$results"
echo

args=(--work "$W" --results "$results" --shauditd "$W/bin/shauditd" --shaudit "$W/bin/shaudit"
      --preload "$W/bin/libshaudit_preload.so" --session-load "$W/bin/session_load"
      --hold-sessions "$hold_sessions" --hold-children "$hold_children" --hold-seconds "$hold_seconds"
      --soak-seconds "$soak_seconds" --soak-concurrent "$soak_concurrent" --soak-lines "$soak_lines"
      --soak-execs "$soak_execs" --soak-interval-ms "$soak_interval" --sample-s "$sample_s" --idle "$idle")
[[ ${KEEP:-0} == 1 ]] && args+=(--keep)
run_driver "${args[@]}"
echo "results: $results"
exit $rc
