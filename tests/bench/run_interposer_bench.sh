#!/usr/bin/env bash
# Interposer overhead benchmark (issue "host capture"). Not a test: nothing runs it from ctest.
# Needs root (mount namespaces, /etc/snoopy.ini), hyperfine, snoopy, python3, dash, bash.
#
#   tests/bench/run_interposer_bench.sh                  # 20 rounds, all parts
#   ROUNDS=5 PARTS="A C" tests/bench/run_interposer_bench.sh
#
# A  3,000 sequential /bin/true execs from a dash loop;
# B  a fork-heavy dash script: 1,000 iterations of  x=$(echo $i | cat)  and a 3-stage pipeline
#    (3,000 execs a run);
#    each in these configurations (one hyperfine -N run of each per round, rounds interleave
#    the configurations and rotate their order; ratios are taken within a round):
#      base        no interposer
#      snoopy      LD_PRELOAD=libsnoopy.so, /etc/snoopy.ini "output = file:..." for the run
#      shaudit     LD_PRELOAD=libshaudit_preload.so, shauditd running (bpf: off), private socket
#      hostwide    /etc/ld.so.preload lists libshaudit_preload.so (private mount namespace,
#                  bind mounts only), the process's audit session id is not in the table
#      ns-base     control: the host-wide namespace set-up (nsenter, /etc bind-mounted from a
#                  copy) without any preload file
#      empty-env   floor: an empty shared library via LD_PRELOAD (the cost of preloading anything)
#      empty-hw    floor: an empty shared library via /etc/ld.so.preload (same namespace set-up)
#      shaudit-nodaemon  diagnostic: as shaudit, but nothing listens on its socket path (the
#                  interposer's own cost without the daemon's: connect fails, reports are held)
# C  typed-line-to-record latency: interactive bash and dash on a pty with the interposer,
#    LINES short lines; Enter written to the pty -> the command record is in the log file.
#
# Environment: BUILD (default <repo>/build), ROUNDS (20), RUNS_PER_ROUND (1), PARTS ("A B C"),
# CONFIGS (default all eight above; "base" is always included), LINES (200), KEEP=1 keeps the
# work directory (/var/tmp/shaudit-ibench.*).
# Safety: the host's /etc/ld.so.preload is never written (the host-wide configurations see a
# bind-mounted file inside their own mount namespace); /etc/snoopy.ini is saved first and
# restored byte-exact, with its mode, owner and mtime, on every exit path.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
rounds="${ROUNDS:-20}"
runs_per_round="${RUNS_PER_ROUND:-1}"
parts="${PARTS:-A B C}"
configs="${CONFIGS:-base snoopy shaudit hostwide ns-base empty-env empty-hw shaudit-nodaemon}"
lines="${LINES:-200}"
snoopy_lib=/usr/lib/x86_64-linux-gnu/libsnoopy.so
py="$here/interposer_bench.py"

require_root
require_tools hyperfine python3 dash bash unshare nsenter cc
case " $configs " in *" base "*) ;; *) configs="base $configs" ;; esac
if [[ " $configs " == *" snoopy "* && ! -e $snoopy_lib ]]; then
  # Never let the package enable itself host-wide (/etc/ld.so.preload).
  echo "snoopy snoopy/install-ld-preload boolean false" | debconf-set-selections
  DEBIAN_FRONTEND=noninteractive apt-get install -y snoopy
fi

build_shaudit

W="$(mktemp -d /var/tmp/shaudit-ibench.XXXXXX)"
pids=()
snoopy_saved=""
cleanup() {
  local rc=$?
  set +e
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
  if [[ -n $snoopy_saved && -f $snoopy_saved ]]; then
    cat "$snoopy_saved" > /etc/snoopy.ini
    chmod --reference="$snoopy_saved" /etc/snoopy.ini
    chown --reference="$snoopy_saved" /etc/snoopy.ini
    touch -r "$snoopy_saved" /etc/snoopy.ini
    if cmp -s "$snoopy_saved" /etc/snoopy.ini; then
      echo "/etc/snoopy.ini restored (sha256 $(sha256sum < /etc/snoopy.ini | cut -c1-16)...)"
    else
      echo "WARNING: /etc/snoopy.ini differs from the saved copy $snoopy_saved" >&2; rc=1
    fi
  fi
  if [[ ${KEEP:-0} == 1 ]]; then echo "work directory kept: $W"; else rm -rf "$W"; fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A stable copy of the interposer: a rebuild during the run must not change what is measured.
mkdir -p "$W/lib"
cp "$build/preload/libshaudit_preload.so" "$W/lib/libshaudit_preload.so"
echo 'void shaudit_bench_empty(void) {}' > "$W/lib/empty.c"
cc -O2 -shared -fPIC -o "$W/lib/libempty.so" "$W/lib/empty.c"
preload="$W/lib/libshaudit_preload.so"

echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), kernel $(uname -r)"
echo "tree: $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$repo" diff --quiet HEAD -- preload 2>/dev/null || echo ' + uncommitted changes in preload/')"
echo "interposer: $build/preload/libshaudit_preload.so (sha256 $(sha256sum < "$preload" | cut -c1-16)...)"
echo "hyperfine: $(hyperfine --version); rounds: $rounds x $runs_per_round run(s) per configuration"
echo "work directory: $W"

# An audit session id of our own (when we have none), so the host-wide check goes all the way
# to the table lookup: open+read+close /proc/self/sessionid, then access(<dir>/sessions/<id>).
if [[ $(cat /proc/self/sessionid) == 4294967295 ]]; then
  echo "$(id -u)" > /proc/self/loginuid 2>/dev/null || true
fi
sid="$(cat /proc/self/sessionid)"
echo "audit session id of the benchmark: $sid"

# ------------------------------------------------------------------ shauditd
"$build/cli/shaudit" keygen --out "$W/signing.key" >/dev/null
cat > "$W/shauditd.yaml" <<EOF
socket: $W/d.sock
control_socket: $W/d.ctl
log: $W/log/audit.jsonl
signing_key: $W/signing.key
bpf: off
EOF
"$build/daemon/shauditd" --config "$W/shauditd.yaml" > /dev/null 2> "$W/shauditd.stderr" &
daemon_pid=$!
pids+=("$daemon_pid")
for _ in $(seq 100); do [[ -S $W/d.sock ]] && break; sleep 0.05; done
[[ -S $W/d.sock ]] || { echo "shauditd did not start: $(cat "$W/shauditd.stderr")" >&2; exit 1; }
log="$W/log/audit.jsonl"

# ------------------------------------------------------------------ snoopy
if [[ " $configs " == *" snoopy "* ]]; then
  cp -p /etc/snoopy.ini "$W/snoopy.ini.saved"
  snoopy_saved="$W/snoopy.ini.saved"       # set only once the copy exists: cleanup restores it
  printf '[snoopy]\noutput = file:%s\n' "$W/snoopy.log" > /etc/snoopy.ini
fi

# ------------------------------------------------------------------ host-wide namespaces
# /etc/ld.so.preload does not exist on the host, so a bind mount needs a mount point: each
# namespace bind-mounts a copy of /etc over /etc (identical lookups), and the copy used with a
# preload has an empty placeholder file over which the list file is bind-mounted.
mkdir -p "$W/hw/sessions" "$W/nodaemon"
touch "$W/hw/sessions/999999"              # some other session; ours ($sid) is not listed
[[ $sid != 999999 ]]
cp -a /etc "$W/etc-ctl"
rm -f "$W/etc-ctl/ld.so.preload"
cp -a "$W/etc-ctl" "$W/etc-pre"
: > "$W/etc-pre/ld.so.preload"
echo "$preload" > "$W/preload-shaudit.list"
echo "$W/lib/libempty.so" > "$W/preload-empty.list"
holder() {  # $1: /etc copy, $2: list file to bind over /etc/ld.so.preload (or "")
  unshare --mount --propagation private sh -c '
    mount --bind "$1" /etc || exit 1
    if [ -n "$2" ]; then mount --bind "$2" /etc/ld.so.preload || exit 1; fi
    exec sleep 1000000' holder "$1" "$2" </dev/null >/dev/null 2>>"$W/holder.stderr" &
  local p=$!
  pids+=("$p")
  local sleep_exe
  sleep_exe="$(readlink -f "$(command -v sleep)")"
  for _ in $(seq 200); do
    [[ $(readlink "/proc/$p/exe" 2>/dev/null) == "$sleep_exe" ]] && { holder_pid=$p; return; }
    kill -0 "$p" 2>/dev/null || break
    sleep 0.02
  done
  echo "namespace holder failed: $(cat "$W/holder.stderr")" >&2
  exit 1
}
holder "$W/etc-ctl" ""; ns_ctl=$holder_pid
holder "$W/etc-pre" "$W/preload-shaudit.list"; ns_hw=$holder_pid
holder "$W/etc-pre" "$W/preload-empty.list"; ns_hwe=$holder_pid
[[ ! -e /etc/ld.so.preload ]] || echo "note: the host has an /etc/ld.so.preload (left untouched)"
hw_env="SHAUDIT_SOCKET=$W/hw/shaudit.sock"   # where the no-op finds its (empty) table
echo "host-wide self-check (inside the namespace, not in the table):"
echo "  /etc/ld.so.preload there: $(nsenter --mount=/proc/$ns_hw/ns/mnt cat /etc/ld.so.preload)"
echo "  interposer mappings in a process there: $(nsenter --mount=/proc/$ns_hw/ns/mnt env $hw_env dash -c 'grep -c libshaudit_preload /proc/$$/maps')"
if command -v strace >/dev/null; then
  echo "  what it does in /bin/true (strace; then /bin/true exits):"
  nsenter --mount=/proc/$ns_hw/ns/mnt env $hw_env strace -qq -e trace=openat,read,close,access,socket,connect -o "$W/hw.strace" /bin/true
  grep -A3 -e 'sessionid' "$W/hw.strace" | grep -v -e '^--' -e 'exit' | sed 's/^/    /'
  grep -c -e 'socket(' -e 'connect(' "$W/hw.strace" | sed 's/^/    socket or connect calls: /' || true
fi

# ------------------------------------------------------------------ A and B
cat > "$W/fork_heavy.sh" <<'EOF'
i=0
while [ $i -lt 1000 ]; do
  x=$(echo $i | cat)
  echo "$x" | tr 0-9 a-j | wc -c > /dev/null
  i=$((i+1))
done
EOF
loop_a='i=0; while [ $i -lt 3000 ]; do /bin/true; i=$((i+1)); done'

daemon_cpu() { awk '{print $14 + $15}' "/proc/$daemon_pid/stat"; }

cmd_for() {  # $1 config, $2 program and arguments (one string for hyperfine -N)
  case $1 in
    base) echo "env $2" ;;
    snoopy) echo "env LD_PRELOAD=$snoopy_lib $2" ;;
    shaudit) echo "env LD_PRELOAD=$preload SHAUDIT_SOCKET=$W/d.sock $2" ;;
    hostwide) echo "nsenter --mount=/proc/$ns_hw/ns/mnt env $hw_env $2" ;;
    ns-base) echo "nsenter --mount=/proc/$ns_ctl/ns/mnt env $2" ;;
    empty-env) echo "env LD_PRELOAD=$W/lib/libempty.so $2" ;;
    empty-hw) echo "nsenter --mount=/proc/$ns_hwe/ns/mnt env $2" ;;
    shaudit-nodaemon) echo "env LD_PRELOAD=$preload SHAUDIT_SOCKET=$W/nodaemon/shaudit.sock $2" ;;
    *) echo "unknown configuration $1" >&2; exit 1 ;;
  esac
}

run_part() {  # $1 part name, $2 program string, $3 execs per run, $4.. argv0 of its execs
  local part=$1 prog=$2 execs=$3
  shift 3
  local dir="$W/$part"
  mkdir -p "$dir"
  local -a cfgs=($configs)
  local n=${#cfgs[@]}
  echo
  echo "=== part $part: $prog"
  for c in "${cfgs[@]}"; do echo "  $c: $(cmd_for "$c" "$prog")"; done
  local before
  before="$(python3 "$py" count-execs "$log" "$@" --count-only)"
  local total_shaudit=0 cpu0
  cpu0="$(daemon_cpu)"
  for ((r = 0; r <= rounds; r++)); do   # round 0 is a warm-up, not summarized
    local -a args=()
    for ((k = 0; k < n; k++)); do
      local c=${cfgs[$(((k + r) % n))]}
      args+=(-n "$c" "$(cmd_for "$c" "$prog")")
      [[ $c == shaudit ]] && total_shaudit=$((total_shaudit + (r == 0 ? 1 : runs_per_round)))
    done
    local out="$dir/round-$r.json"
    ((r == 0)) && out="$dir/warmup.json"
    hyperfine -N --style basic --runs $((r == 0 ? 1 : runs_per_round)) --export-json "$out" \
      "${args[@]}" > "$dir/hyperfine-$r.txt" 2>&1 || { cat "$dir/hyperfine-$r.txt"; exit 1; }
    printf '  round %d/%d:' "$r" "$rounds"
    python3 -c 'import json,sys; print("".join(" %s %.3fs" % (x["command"], x["mean"]) for x in json.load(open(sys.argv[1]))["results"]))' "$out"
  done
  echo
  python3 "$py" summarize "$dir" base "$execs" --order "$(echo $configs | tr ' ' ,)" | tee "$dir/summary.md"
  if [[ " $configs " == *" shaudit "* ]]; then
    local cpu1 tck
    cpu1="$(daemon_cpu)"
    tck="$(getconf CLK_TCK)"
    echo
    echo "shauditd CPU (user+system, all threads) during part $part: $(awk -v a="$cpu0" -v b="$cpu1" -v t="$tck" 'BEGIN{printf "%.2f", (b-a)/t}') s" \
      "= $(awk -v a="$cpu0" -v b="$cpu1" -v t="$tck" -v n="$((total_shaudit * execs))" 'BEGIN{printf "%.0f", (b-a)/t/n*1e6}') µs per exec of the shaudit runs"
    echo
    echo "records check for shaudit ($total_shaudit runs x $execs execs, plus the $before already in the log):"
    python3 "$py" count-execs "$log" "$@" --expect $((before + total_shaudit * execs)) --timeout 60 ||
      echo "WARNING: the daemon did not record every exec"
  fi
}

for part in $parts; do
  case $part in
    A) run_part A "dash -c '$loop_a'" 3000 /bin/true ;;
    B) run_part B "dash $W/fork_heavy.sh" 3000 cat tr wc ;;
    C) ;;
    *) echo "unknown part $part" >&2; exit 1 ;;
  esac
done

# ------------------------------------------------------------------ C
if [[ " $parts " == *" C "* ]]; then
  echo
  echo "=== part C: typed line -> command record latency ($lines lines per shell)"
  for sh in bash dash; do
    python3 "$py" latency --log "$log" --socket "$W/d.sock" --preload "$preload" --shell "$sh" \
      --lines "$lines" --out "$W/latency-$sh.json"
  done
fi

# ------------------------------------------------------------------ the log is sound
echo
kill -TERM "$daemon_pid"
wait "$daemon_pid" || echo "WARNING: shauditd exited $?"
rest=()
for p in "${pids[@]}"; do [[ $p == "$daemon_pid" ]] || rest+=("$p"); done
pids=("${rest[@]}")
echo "daemon log: $(wc -l < "$log") records; verify: $("$build/cli/shaudit" verify "$log" --pubkey "$W/signing.key.pub" 2>&1 | tail -1)"
if [[ -n $snoopy_saved && -f $W/snoopy.log ]]; then echo "snoopy log: $(wc -l < "$W/snoopy.log") lines"; fi
