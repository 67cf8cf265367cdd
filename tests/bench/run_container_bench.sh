#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Container exec benchmark: loop A of the interposer benchmark (3,000 sequential /bin/true execs
# from a dash loop) on the host and inside runc containers, side by side in the same interleaved
# rounds. Not a test: nothing runs it from ctest. Results: tests/bench/CONTAINER_RESULTS.md.
#
#   tests/bench/run_container_bench.sh                 # 5 rounds after a warm-up
#   SKIP_BUILD=1 ROUNDS=8 tests/bench/run_container_bench.sh
#   SMOKE=1 SKIP_BUILD=1 tests/bench/run_container_bench.sh  # 1 round of a 300-exec loop
#
# It is run_interposer_bench.sh (its rounds, its hyperfine -N runs, its checks and summary) with
# PARTS=A and these configurations:
#   host:      base, empty-env (floor), snoopy, shaudit-bpf, bpftrace (as in INTERPOSER_RESULTS.md)
#   container: ctr-base (plain runc), ctr-empty-env (floor: the empty library through
#              shaudit-oci-runtime), ctr-snoopy (libsnoopy.so through the wrapper), ctr-shaudit-bpf
#              (the interposer through the wrapper, shauditd with bpf: on naming the container's
#              runc root in container_state_dirs, the loop the entry of an audited session inside
#              the container), ctr-bpftrace (ctr-base while bpftrace runs)
# Container configurations are taken against ctr-base, host ones against base, each in its own
# round; the summary adds a side-by-side table. See run_interposer_bench.sh for what each
# configuration runs exactly, the safety rules and the other variables (BUILD, SKIP_BUILD,
# KEEP, QUIET_MAX). Needs root, runc, hyperfine, snoopy, bpftrace, bpftool, python3, dash, cc.
#
# Environment: ROUNDS (5; SMOKE=1: 1), A_EXECS (3000; SMOKE=1: 300), CONFIGS (the ten above).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [[ ${SMOKE:-0} == 1 ]]; then
  : "${ROUNDS:=1}" "${A_EXECS:=300}"
fi
export ROUNDS="${ROUNDS:-5}"
export A_EXECS="${A_EXECS:-3000}"
export CONFIGS="${CONFIGS:-base empty-env snoopy shaudit-bpf bpftrace ctr-base ctr-empty-env ctr-snoopy ctr-shaudit-bpf ctr-bpftrace}"
export PARTS=A
s=""
for v in BUILD SKIP_BUILD SMOKE ROUNDS A_EXECS CONFIGS QUIET_MAX KEEP; do
  if [[ -n ${!v+x} ]]; then s+="$v=$(printf '%q' "${!v}") "; fi
done
echo "run_container_bench.sh: ${s}$here/run_interposer_bench.sh"
exec "$here/run_interposer_bench.sh" "$@"
