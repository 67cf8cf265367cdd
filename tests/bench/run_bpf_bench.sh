#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Kernel cross-check (eBPF collector) benchmark. Not a test: nothing runs it from ctest.
# Needs root, python3, cc, bpftool; installs bpftrace with apt-get when it is missing.
#
#   tests/bench/run_bpf_bench.sh                        # 10 rounds + ring sizes + BPF profile
#   ROUNDS=5 PARTS=R tests/bench/run_bpf_bench.sh
#   VARIANTS="exp-lazy=/tmp/b2/daemon/shauditd,SHAUDIT_EXP_LAZY_WAKEUP=2" \
#     CONFIGS=base,shaudit-off,shaudit-bpf,exp-lazy,shaudit-bpf+unhooked,exp-lazy+unhooked \
#     tests/bench/run_bpf_bench.sh     # another build side by side (bpf_wakeup_experiment.patch)
#
# Results of a run: tests/bench/BPF_RESULTS.md.
#
# The exec storm's targets (issue 11), printed after part R: the full stack (shaudit-bpf) wall
# ratio vs base (<= 1.15), no loss, every exec recorded and cross-checked (in the audited session
# the kernel's exec event is the exec record, "source": "bpf", with "reported": true when the
# interposer's report matched it: one for each /bin/true), shauditd CPU per exec (<= 15 µs),
# with bt-exec in the same rounds. shauditd gets `interposer: <the preloaded copy>` (its
# initialisation is probed by inode; with bpf: on shauditd refuses to start without it).
# A quick check: ROUNDS=1 PARTS=R WORKERS=2 PER_WORKER=200 QUIET_WAIT=2 tests/bench/run_bpf_bench.sh
#
# The load: exec_load (tests/bench/exec_load.c), WORKERS (4) processes each fork+exec'ing
# /bin/true PER_WORKER (2500) times as fast as they can, typed as one command line into an
# interactive bash on a pseudo-terminal. With the interposer in that bash, shauditd opens an
# implicit session for it and the collector tracks it and every descendant: every exec of
# the load is in the audited session.
#
# Parts (PARTS, default "R L P"):
#   R  ROUNDS rounds (after one warm-up round) of the configurations, each run of the same
#      load; the order rotates from round to round; ratios are taken within a round:
#        base         no daemon, no interposer
#        shaudit-off  interposer + shauditd, bpf: off
#        shaudit-bpf  interposer + shauditd, bpf: on (bpf_ringbuf_kib 8192, the default)
#        bt-exec      no interposer; bpftrace, sched_process_exec: pid, ppid, filename
#        bt-argv      no interposer; bpftrace, sched_process_exec: pid, ppid, filename and
#                     the argument area of the new image (%r, up to 64 bytes)
#      (CONFIGS="... bt-join" adds bpftrace with join(args->argv) at sys_enter_execve;
#      "C+unhooked" runs configuration C with the load started as
#      `env -u LD_PRELOAD -u SHAUDIT_SOCKET exec_load ...` from the interposed shell: tracked by
#      the kernel, no interposer, every exec an unhooked_process bypass.)
#      The bpftrace probes filter on a cgroup (v2) the benchmark puts each run's shell in, the
#      counterpart of shaudit's tracked-process map (other users' execs are not printed).
#   L  shaudit-bpf with bpf_ringbuf_kib in RING_KIB (8192 1024 256 64 16 4), RING_ROUNDS (3)
#      rounds, RING_PER_WORKER execs per worker (default PER_WORKER): where loss starts
#   P  one run each of shaudit-bpf, each variant, bt-exec, bt-argv and bt-count (the bt-exec
#      probe counting in a map, no output) with BPF run-time statistics enabled
#      (BPF_ENABLE_STATS through a descriptor held for that run only): each program's own
#      run time per call and per exec
# Each run starts its own shauditd (or bpftrace) and stops it afterwards, so no probe of
# one configuration is attached during another's run. Before each run the script waits
# (up to QUIET_WAIT s, default 60) for a second in which other users' load is at most
# QUIET_MAX CPUs (default 0.15); each run records that load and the load during the run.
#
# Environment: BUILD (default <repo>/build), ROUNDS (10), WORKERS (4), PER_WORKER (2500),
# PARTS, CONFIGS (comma-separated), RING_KIB, RING_ROUNDS, RING_PER_WORKER, QUIET_MAX,
# QUIET_WAIT, VARIANTS ("NAME=SHAUDITD[,VAR=VALUE...] ...": more configurations, each as
# shaudit-bpf but with another shauditd binary, e.g. an experimental build), KEEP=1 keeps
# the work directory (/var/tmp/shaudit-bpfbench.*) with every log. Without KEEP the per-run
# data is copied to /var/tmp/shaudit-bpfbench-results/runs-DATE.jsonl.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
parts="${PARTS:-R L P}"
py="$here/bpf_bench.py"
BENCH_ARGS="$*"
print_command BUILD ROUNDS WORKERS PER_WORKER PARTS CONFIGS RING_KIB RING_ROUNDS RING_PER_WORKER QUIET_MAX QUIET_WAIT VARIANTS KEEP

require_root
require_tools python3 cc bpftool bash
if ! command -v bpftrace >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y bpftrace
fi
for f in daemon/shauditd cli/shaudit preload/libshaudit_preload.so; do
  if [[ ! -x $build/$f ]]; then
    build_shaudit
    break
  fi
done

bench_workdir shaudit-bpfbench

copy_binaries
cc -O2 -Wall -o "$W/bin/exec_load" "$here/exec_load.c"

echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')" \
  "(family $(grep -m1 'cpu family' /proc/cpuinfo | sed 's/.*: //'), model $(grep -m1 '^model[[:space:]]' /proc/cpuinfo | sed 's/.*: //')," \
  "$(grep -m1 'cpu MHz' /proc/cpuinfo | sed 's/.*: //') MHz), kernel $(uname -r), $(free -g | awk '/^Mem:/ {print $2}') GB"
dirty="$(git -C "$repo" status --porcelain -- bpf daemon preload libshaudit 2>/dev/null | awk '{print $2}' | tr '\n' ' ')"
echo "tree: $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo '?')${dirty:+ + uncommitted changes in: $dirty}"
for f in shauditd libshaudit_preload.so; do
  echo "  $f: $(stat -c '%y' "$build/$( [[ $f == shauditd ]] && echo daemon || echo preload)/$f" | cut -c1-19) sha256 $(sha256sum < "$W/bin/$f" | cut -c1-16)..."
done
echo "bpftrace: $(bpftrace --version 2>&1); bpftool: $(bpftool version 2>&1 | head -1)"
echo "work directory: $W"
echo "kernel.bpf_stats_enabled: $(cat /proc/sys/kernel/bpf_stats_enabled) (part P enables run-time stats only while it holds a BPF_ENABLE_STATS descriptor)"
echo

args=(run --work "$W" --shauditd "$W/bin/shauditd" --shaudit "$W/bin/shaudit"
      --preload "$W/bin/libshaudit_preload.so" --exec-load "$W/bin/exec_load"
      --rounds "${ROUNDS:-10}" --workers "${WORKERS:-4}" --per-worker "${PER_WORKER:-2500}"
      --ring-kib "$(echo "${RING_KIB:-8192 1024 256 64 16 4}" | tr ' ' ',')"
      --ring-rounds "${RING_ROUNDS:-3}" --ring-per-worker "${RING_PER_WORKER:-0}"
      --parts "$(echo "$parts" | tr ' ' ',')"
      --quiet-max "${QUIET_MAX:-0.15}" --quiet-wait "${QUIET_WAIT:-60}")
[[ -n ${CONFIGS:-} ]] && args+=(--configs "$CONFIGS")
[[ ${KEEP:-0} == 1 ]] && args+=(--keep)
for v in ${VARIANTS:-}; do args+=(--variant "$v"); done
run_driver "${args[@]}"
[[ $rc == 0 ]] || { echo "bpf_bench.py failed ($rc)" >&2; exit $rc; }
if [[ ${KEEP:-0} != 1 ]]; then
  mkdir -p /var/tmp/shaudit-bpfbench-results
  cp "$W/runs.jsonl" "/var/tmp/shaudit-bpfbench-results/runs-$(date +%Y%m%d-%H%M%S).jsonl"
  echo "per-run data: /var/tmp/shaudit-bpfbench-results/ (bpf_bench.py summarize FILE prints the tables again)"
fi
