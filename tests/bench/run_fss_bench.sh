#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Forward-secure sealing against the single-key scheme, side by side: ROUNDS (default 3)
# interleaved rounds of writer_bench, each round running three variants in turn (the order
# rotates between rounds, so no variant always runs first or last):
#
#   off    forward_secure: false (every seal signed with the fixed signing key)
#   on60   forward_secure: true, seal_epoch_s: 60 (shauditd's default)
#   on0    forward_secure: true, seal_epoch_s: 0 (a new epoch key at every seal: worst case)
#
# Then prints each round's RESULT figures and, per variant, the medians and the ratios
# on/off of throughput, latency p99 (to file, to sealed) at each paced rate and verify time.
#
#   tests/bench/run_fss_bench.sh                     # 3 rounds, writer_bench defaults
#   ROUNDS=1 tests/bench/run_fss_bench.sh --records 200000 --latency-seconds 2
#
# Extra arguments go to every writer_bench run (not --forward-secure / --seal-epoch-s).
# Environment: BUILD (default <repo>/build), ROUNDS (default 3), SKIP_BUILD=1 (use the
# binaries in BUILD as they are), KEEP=1 (keep the work directory with every run's output).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

rounds="${ROUNDS:-3}"
BENCH_ARGS="$*"
for a; do
  case $a in
    --forward-secure | --seal-epoch-s | --workdir | --keep)
      echo "run_fss_bench.sh: $a is set by the script, not an extra argument" >&2
      exit 2
      ;;
  esac
done
if (($(nproc) < 2)); then
  echo "run_fss_bench.sh: needs at least 2 CPUs (daemon on CPU 1, clients on CPU 0)" >&2
  exit 1
fi
require_tools python3

if [[ ${SKIP_BUILD:-0} != 1 ]]; then
  if [[ ! -f "$build/build.ninja" && ! -f "$build/Makefile" ]]; then
    cmake -S "$repo" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
  fi
  cmake --build "$build" --target writer_bench shauditd shaudit_cli
fi
for f in tests/writer_bench daemon/shauditd cli/shaudit; do
  [[ -x $build/$f ]] || { echo "run_fss_bench.sh: $build/$f is missing" >&2; exit 1; }
done

bench_workdir shaudit-fss-bench
# Stable copies: a rebuild during the run must not change what is measured.
# writer_bench finds libshaudit.so.1 at $ORIGIN/../libshaudit: the copies keep that layout.
mkdir -p "$W/bin" "$W/tests" "$W/libshaudit"
cp "$build/daemon/shauditd" "$build/cli/shaudit" "$W/bin/"
cp "$build/tests/writer_bench" "$W/tests/"
cp -L "$build/libshaudit/libshaudit.so.1" "$W/libshaudit/"

variants=(off on60 on0)
declare -A vargs=(
  [off]="--forward-secure off --seal-epoch-s 60"
  [on60]="--forward-secure on --seal-epoch-s 60"
  [on0]="--forward-secure on --seal-epoch-s 0"
)

print_command ROUNDS BUILD SKIP_BUILD
print_machine
print_tree
echo "shauditd: sha256 $(sha256sum <"$W/bin/shauditd" | cut -c1-16)...; work directory: $W"
echo "each run: $W/tests/writer_bench --shauditd $W/bin/shauditd --shaudit $W/bin/shaudit VARIANT_ARGS $*"
for v in "${variants[@]}"; do echo "  $v: ${vargs[$v]}"; done

status=0
results="$W/results.txt"
: >"$results"
for ((r = 1; r <= rounds; r++)); do
  for ((k = 0; k < ${#variants[@]}; k++)); do
    v="${variants[$(((k + r - 1) % ${#variants[@]}))]}"
    echo
    echo "=== round $r/$rounds: $v (${vargs[$v]}) ==="
    out="$W/round$r-$v.out"
    # shellcheck disable=SC2086 # vargs holds several words on purpose
    if ! "$W/tests/writer_bench" --shauditd "$W/bin/shauditd" --shaudit "$W/bin/shaudit" \
        ${vargs[$v]} "$@" >"$out" 2>&1; then
      echo "(writer_bench exited non-zero: the run's figures are not used)"
      status=1
      cat "$out"
      continue
    fi
    cat "$out"
    grep '^RESULT ' "$out" | sed "s/^RESULT /round=$r variant=$v /" >>"$results"
  done
done

echo
echo "=== summary ==="
python3 - "$results" "${variants[@]}" <<'EOF'
import statistics
import sys

path, variants = sys.argv[1], sys.argv[2:]
runs = {}  # (round, variant) -> {metric: value}
for line in open(path):
    f = dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
    key = (int(f["round"]), f["variant"])
    m = runs.setdefault(key, {})
    if "throughput_rps" in f:
        m["throughput_rps"] = float(f["throughput_rps"])
        m["tp_other_load"] = float(f["other_load"])
    elif f.get("rate"):
        r = f["rate"]
        for k in ("file_p99_ms", "sealed_p50_ms", "sealed_p99_ms", "sealed_max_ms"):
            m[f"{k}@{r}"] = float(f[k])
        m[f"other_load@{r}"] = float(f["other_load"])
    elif "verify_s" in f:
        m["verify_s"] = float(f["verify_s"])
        m["verify_records"] = int(f["records"])
        m["verify_ok"] = int(f["ok"])
    elif "epoch_seals" in f:
        m["seals"] = int(f["seals"])
        m["epoch_seals"] = int(f["epoch_seals"])

metrics = []
for m in runs.values():
    for k in m:
        if k not in metrics:
            metrics.append(k)

print("every run:")
for (r, v), m in sorted(runs.items()):
    print(f"  round {r} {v:5s} " + " ".join(f"{k}={m[k]:g}" for k in metrics if k in m))

med = {}
print("\nmedians:")
print("  " + "metric".ljust(22) + "".join(v.rjust(12) for v in variants))
for k in metrics:
    row = "  " + k.ljust(22)
    for v in variants:
        vals = [m[k] for (r, vv), m in runs.items() if vv == v and k in m]
        if vals:
            med[(v, k)] = statistics.median(vals)
            row += f"{med[(v, k)]:12g}"
        else:
            row += "-".rjust(12)
    print(row)

# Within 10 %: throughput on/off >= 0.90; latency and verify time on/off <= 1.10.
print("\nratios on/off (medians; within 10 % of the old scheme: throughput >= 0.90, times <= 1.10):")
for k in metrics:
    higher_better = k == "throughput_rps"
    if not (higher_better or k.startswith(("file_p99", "sealed_p99", "verify_s"))):
        continue
    for v in variants[1:]:
        if (v, k) not in med or ("off", k) not in med or med[("off", k)] == 0:
            continue
        ratio = med[(v, k)] / med[("off", k)]
        ok = ratio >= 0.90 if higher_better else ratio <= 1.10
        print(f"  {k:22s} {v}/off = {ratio:.3f}  "
              f"({med[(v, k)]:g} vs {med[('off', k)]:g})  {'within 10 %' if ok else 'NOT within 10 %'}")
EOF
exit $status
