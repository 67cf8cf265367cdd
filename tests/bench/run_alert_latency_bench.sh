#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# End-to-end alert latency benchmark: Enter typed in an interactive shell -> the webhook receives
# the alert (target: p99 under 100 ms on loopback). Not a test: nothing runs it from ctest.
# Needs root (the typed lines read /etc/shadow), python3, bash.
#
#   tests/bench/run_alert_latency_bench.sh
#   BUILD=/tmp/mybuild LINES=100 tests/bench/run_alert_latency_bench.sh
#
# For each configuration, a fresh shauditd of its own (bpf: off; private socket, control
# socket, log and state_dir) with `rules: [<repo>/daemon/rules/default.yaml]` and one output
#   {name: hook, type: webhook, url: http://127.0.0.1:PORT/, seals: false}
# (events: alerts, the default), first with batch_wait_ms left at its default (10), then with
# batch_wait_ms: 0. The receiver (tests/integration/httprecv.py) runs inside
# alert_latency_bench.py, which types LINES lines  cat /etc/shadow > /dev/null # lat-NNNN  into
# `bash --norc --noprofile -i` on a pty with the interposer preloaded and times Enter -> POST.
# Each daemon is then stopped with SIGTERM and its log verified.
#
# Environment: BUILD (default <repo>/build; configured with Ninja, RelWithDebInfo, when it has
# no build files yet), LINES (200), DELAY_MS (2, between typed characters), GAP_MS (50, after
# the prompt is back), BATCH_WAITS ("default 0": batch_wait_ms values, "default" leaves the key
# out), ROUNDS (1: the configurations once each; more rounds alternate them), KEEP=1 keeps the
# work directory (/var/tmp/shaudit-alat.*).
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
lines="${LINES:-200}"
delay_ms="${DELAY_MS:-2}"
gap_ms="${GAP_MS:-50}"
batch_waits="${BATCH_WAITS:-default 0}"
rounds="${ROUNDS:-1}"
py="$here/alert_latency_bench.py"
rules_file="$repo/daemon/rules/default.yaml"

require_root "the typed lines read /etc/shadow"
require_tools python3 bash cmake

echo "command: BUILD=$build LINES=$lines DELAY_MS=$delay_ms GAP_MS=$gap_ms BATCH_WAITS=\"$batch_waits\" ROUNDS=$rounds $0"
build_shaudit

W="$(mktemp -d /var/tmp/shaudit-alat.XXXXXX)"
daemon_pid=""
cleanup() {
  local rc=$?
  set +e
  if [[ -n $daemon_pid ]]; then kill "$daemon_pid" 2>/dev/null; wait "$daemon_pid" 2>/dev/null; fi
  if [[ ${KEEP:-0} == 1 ]]; then echo "work directory kept: $W"; else rm -rf "$W"; fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A stable copy of the interposer: a rebuild during the run must not change what is measured.
mkdir -p "$W/lib"
cp "$build/preload/libshaudit_preload.so" "$W/lib/libshaudit_preload.so"
preload="$W/lib/libshaudit_preload.so"
shauditd="$build/daemon/shauditd"
shaudit="$build/cli/shaudit"

dirty="$(git -C "$repo" diff --name-only HEAD -- daemon libshaudit preload cli 2>/dev/null | tr '\n' ' ')"
[[ -z $dirty ]] || dirty=" + uncommitted changes in the built tree: $dirty"
echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), kernel $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "tree: $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo '?')$dirty"
echo "shauditd: $shauditd (sha256 $(sha256sum < "$shauditd" | cut -c1-16)...), interposer sha256 $(sha256sum < "$preload" | cut -c1-16)..."
echo "rules: $rules_file (sha256 $(sha256sum < "$rules_file" | cut -c1-16)...; $("$shaudit" rules check "$rules_file"))"
echo "lines: $lines per configuration (+1 warm-up), $delay_ms ms between typed characters, $gap_ms ms after each prompt"
echo "work directory: $W"

"$shaudit" keygen --out "$W/signing.key" >/dev/null

results=()
status=0
run_config() {  # $1: batch_wait_ms value or "default", $2: round
  local bw=$1 round=$2
  local label="batch_wait_ms=${bw/default/10 (default)}"
  local D="$W/r$round-bw-$bw"
  mkdir -p "$D/home"
  local port
  port="$(python3 "$py" free-port)"
  {
    echo "socket: $D/d.sock"
    echo "control_socket: $D/d.ctl"
    echo "log: $D/log/audit.jsonl"
    echo "signing_key: $W/signing.key"
    echo "bpf: off"
    echo "state_dir: $D/state"
    echo "rules:"
    echo "  - \"$rules_file\""
    echo "outputs:"
    echo "  - name: hook"
    echo "    type: webhook"
    echo "    url: \"http://127.0.0.1:$port/\""
    echo "    seals: false"
    [[ $bw == default ]] || echo "    batch_wait_ms: $bw"
  } > "$D/shauditd.yaml"
  echo
  echo "=== $label (round $round): shauditd --config $D/shauditd.yaml"
  sed 's/^/    /' "$D/shauditd.yaml"
  "$shauditd" --config "$D/shauditd.yaml" > /dev/null 2> "$D/shauditd.stderr" &
  daemon_pid=$!
  for _ in $(seq 200); do [[ -S $D/d.sock ]] && break; sleep 0.05; done
  [[ -S $D/d.sock ]] || { echo "shauditd did not start: $(cat "$D/shauditd.stderr")" >&2; exit 1; }

  local label_r="$label"
  ((rounds > 1)) && label_r="$label, round $round"
  python3 "$py" run --socket "$D/d.sock" --preload "$preload" --port "$port" --label "$label_r" \
    --lines "$lines" --delay-ms "$delay_ms" --gap-ms "$gap_ms" --home "$D/home" \
    --out "$D/latency.json" || { status=1; echo "WARNING: $label_r: checks failed"; }
  [[ -f $D/latency.json ]] && results+=("$D/latency.json")

  echo "  output stats: $("$shaudit" stats --control "$D/d.ctl" --json | python3 -c '
import json, sys
o = next(x for x in json.load(sys.stdin)["outputs"] if x["name"] == "hook")
print(", ".join(f"{k} {o[k]}" for k in ("spooled", "delivered", "pending", "failed", "retries", "overflowed")))')"
  kill -TERM "$daemon_pid"
  local rc=0
  wait "$daemon_pid" || rc=$?
  daemon_pid=""
  echo "  shauditd exit status after SIGTERM: $rc"
  ((rc == 0)) || status=1
  local log="$D/log/audit.jsonl"
  local v vrc=0
  v="$("$shaudit" verify "$log" --pubkey "$W/signing.key.pub" 2>&1)" || vrc=$?
  echo "  log: $(wc -l < "$log") records ($(grep -c '"type":"alert"' "$log") alerts, $(grep -c '"type":"command"' "$log") commands); shaudit verify (exit $vrc): $(echo "$v" | tail -1)"
  ((vrc == 0)) || status=1
}

for ((r = 1; r <= rounds; r++)); do
  for bw in $batch_waits; do run_config "$bw" "$r"; done
done

echo
echo "=== summary (Enter written to the pty -> the webhook receiver has the POST with the alert)"
python3 "$py" summarize "${results[@]}"
exit $status
