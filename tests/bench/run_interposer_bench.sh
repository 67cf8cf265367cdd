#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Interposer overhead benchmark (issue "host capture"; issue 11: the kernel as the source of
# process facts). Not a test: nothing runs it from ctest.
# Needs root (sessions, eBPF, mount namespaces, /etc/snoopy.ini), hyperfine, snoopy, python3,
# dash, bash, cc; bpftrace and bpftool for the bpftrace and shaudit-bpf configurations.
#
#   tests/bench/run_interposer_bench.sh                  # 20 rounds, parts A B C
#   ROUNDS=5 PARTS="A B" tests/bench/run_interposer_bench.sh
#   SKIP_BUILD=1 ROUNDS=2 PARTS=A tests/bench/run_interposer_bench.sh   # a smoke run
#
# A  3,000 sequential /bin/true execs from a dash loop;
# B  a fork-heavy dash script: 1,000 iterations of  x=$(echo $i | cat)  and a 3-stage pipeline
#    (3,000 execs a run);
#    each in these configurations. A round runs every configuration once, each as its own
#    hyperfine -N invocation (so a per-run daemon or bpftrace is up only during its own
#    configuration's run); the order rotates from round to round; ratios are taken within a
#    round. Every configuration's command is wrapped in session_run (tests/bench/session_run.c,
#    compiled on the fly): `env [PRELOAD...] session_run SOCKET|- -- PROGRAM`, so all pay the
#    same wrapper (one more exec, and the same interposer or snoopy in it):
#      base        no interposer (session_run -)
#      empty-env   floor: an empty shared library via LD_PRELOAD (the cost of preloading anything)
#      snoopy      anchor: LD_PRELOAD=libsnoopy.so, /etc/snoopy.ini "output = file:..." for the run
#      shaudit     LD_PRELOAD=libshaudit_preload.so, shauditd running (bpf: off), no session
#                  (session_run -), private socket: the interposer's reports only
#      shaudit-bpf LD_PRELOAD=libshaudit_preload.so and a fresh shauditd per run with bpf: on and
#                  `interposer:` the very file preloaded (its initialisation is probed by inode);
#                  session_run opens an audited session (SESSION_OPEN as root) and the loop runs
#                  as its entry, so the kernel follows every exec; the exec records are the
#                  kernel's exec events, matched with the interposer's reports
#      bpftrace    the base loop while a bpftrace (started for this run, stopped after it) runs
#                  tracepoint:syscalls:sys_enter_execve { printf("%d %s\n", pid, str(args->filename)); }
#                  writing to a file
#    and, by name in CONFIGS only:
#      hostwide    /etc/ld.so.preload lists libshaudit_preload.so (private mount namespace,
#                  bind mounts only), the process's audit session id is not in the table
#      ns-base     control: the host-wide namespace set-up (nsenter, /etc bind-mounted from a
#                  copy) without any preload file
#      empty-hw    floor: an empty shared library via /etc/ld.so.preload (same namespace set-up)
#      shaudit-nodaemon  diagnostic: as shaudit, but nothing listens on its socket path
#    and the container configurations (run_container_bench.sh runs part A with these):
#      ctr-base    the same command inside a runc container (rootfs: dash, /bin/true, sleep,
#                  session_run and their libraries, the host's ld.so.cache; `runc spec`'s
#                  defaults: new pid, mount, net, ipc, uts namespaces, no seccomp filter;
#                  private runc --root; the container's cgroups under the benchmark's own):
#                  `runc exec ID session_run - -- dash -c LOOP`
#      ctr-empty-env  floor in the container: a container created through shaudit-oci-runtime
#                  with `preload:` the empty library (bind-mounted, listed in the bind-mounted
#                  /etc/ld.so.preload and in LD_PRELOAD, as the wrapper does)
#      ctr-snoopy  anchor: the same with `preload:` libsnoopy.so; the container's own
#                  /etc/snoopy.ini (in its rootfs) says "output = file:/tmp/snoopy.log"
#      ctr-shaudit-bpf  a container created through shaudit-oci-runtime with the interposer (the
#                  file shauditd's `interposer:` names), under a second private runc root that
#                  shauditd's container_state_dirs names; a fresh shauditd per run (bpf: on) on
#                  the socket the wrapper mounts at /run/shaudit; session_run inside the container
#                  opens an audited session there and the loop runs as its entry; the kernel's
#                  exec records are counted as for shaudit-bpf
#      ctr-bpftrace  ctr-base's command while bpftrace runs (as bpftrace)
#    Container configurations are taken against ctr-base of the same round. Once before the
#    rounds, the interactive path: a dash -i through `runc exec -t` in ctr-shaudit-bpf's
#    container, loop A typed at its prompt; its implicit session names the container and holds
#    the kernel's exec records (interposer_bench.py ctr-probe).
#    The summary prints per part each configuration's median ratio to base (IQR), the two
#    target figures per round: shaudit-bpf ratio - empty-env ratio (median, max; target <= 0.03)
#    and snoopy ratio - shaudit-bpf ratio (median, min; target >= 0.08), and the machine's other
#    load: for every run, the machine's busy time (/proc/stat) less the CPU of the benchmark's
#    own processes (the hyperfine tree, shauditd, bpftrace), and the 1-minute load average
#    before and after; the targets again over the quiet rounds only (QUIET_MAX).
# C  typed-line-to-record latency: interactive bash and dash on a pty with the interposer,
#    LINES short lines; Enter written to the pty -> the command record is in the log file.
#
# Environment: BUILD (default <repo>/build), SKIP_BUILD=1 (do not build; use BUILD as it is),
# ROUNDS (20), RUNS_PER_ROUND (1), PARTS ("A B C"), A_EXECS (3000, loop A's execs), CONFIGS (default
# "base empty-env snoopy shaudit shaudit-bpf bpftrace"; "base" is always included), LINES (200),
# QUIET_MAX (0.15 CPUs), KEEP=1 keeps the work directory (/var/tmp/shaudit-ibench.*); without it
# each part's runs/ and summary are copied to /var/tmp/shaudit-ibench-results/.
# Safety: the host's /etc/ld.so.preload is never written (the host-wide configurations see a
# bind-mounted file inside their own mount namespace); /etc/snoopy.ini is saved first and
# restored byte-exact, with its mode, owner and mtime, on every exit path; every process the
# script starts is stopped by its pid; every container it creates (under its own runc roots in
# the work directory) is killed and deleted by its id; the containers' bind mounts live in
# their own mount namespaces. The shaudit-bpf daemons read container state only from the
# work directory's runc root (container_state_dirs), never the machine's other containers.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
rounds="${ROUNDS:-20}"
runs_per_round="${RUNS_PER_ROUND:-1}"
parts="${PARTS:-A B C}"
configs="${CONFIGS:-base empty-env snoopy shaudit shaudit-bpf bpftrace}"
lines="${LINES:-200}"
a_execs="${A_EXECS:-3000}"
quiet_max="${QUIET_MAX:-0.15}"
snoopy_lib=/usr/lib/x86_64-linux-gnu/libsnoopy.so
py="$here/interposer_bench.py"

BENCH_ARGS="$*"
print_command BUILD SKIP_BUILD ROUNDS RUNS_PER_ROUND PARTS A_EXECS CONFIGS LINES QUIET_MAX KEEP
require_root
require_tools hyperfine python3 dash bash unshare nsenter cc
case " $configs " in *" base "*) ;; *) configs="base $configs" ;; esac
has_cfg() { [[ " $configs " == *" $1 "* ]]; }
has_ctr() { [[ " $configs " == *" ctr-"* ]]; }
has_cfg shaudit-bpf || has_cfg ctr-shaudit-bpf && require_tools bpftool
has_cfg bpftrace || has_cfg ctr-bpftrace && require_tools bpftrace
if has_ctr; then
  require_tools runc
  # Container configurations are taken against ctr-base.
  case " $configs " in *" ctr-base "*) ;; *) configs="${configs/ ctr-/ ctr-base ctr-}" ;; esac
fi
if [[ " $configs " == *" snoopy "* || " $configs " == *" ctr-snoopy "* ]] && [[ ! -e $snoopy_lib ]]; then
  # Never let the package enable itself host-wide (/etc/ld.so.preload).
  echo "snoopy snoopy/install-ld-preload boolean false" | debconf-set-selections
  DEBIAN_FRONTEND=noninteractive apt-get install -y snoopy
fi

maybe_build

W="$(mktemp -d /var/tmp/shaudit-ibench.XXXXXX)"
pids=()
bpfd_pid=""
bt_pid=""
snoopy_saved=""
ctr_made=()   # "RUNC_ROOT ID" of every container created
cleanup() {
  local rc=$?
  set +e
  [[ -n $bt_pid ]] && kill -INT "$bt_pid" 2>/dev/null
  [[ -n $bpfd_pid ]] && kill -TERM "$bpfd_pid" 2>/dev/null
  for p in $bt_pid $bpfd_pid; do wait "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
  local rc_id croot cid
  for rc_id in "${ctr_made[@]}"; do
    read -r croot cid <<< "$rc_id"
    runc --root "$croot" kill "$cid" KILL >/dev/null 2>&1
    for _ in $(seq 50); do
      runc --root "$croot" delete -f "$cid" >/dev/null 2>&1 && break
      sleep 0.1
    done
    if runc --root "$croot" state "$cid" >/dev/null 2>&1; then
      echo "WARNING: container $cid (runc --root $croot) could not be deleted" >&2; rc=1
    else
      echo "container $cid deleted"
    fi
  done
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
  if [[ ${KEEP:-0} == 1 ]]; then
    echo "work directory kept: $W"
  else
    local keep_to="/var/tmp/shaudit-ibench-results/$(date +%Y%m%d-%H%M%S)" part
    for part in A B; do
      if [[ -d $W/$part/runs ]]; then
        mkdir -p "$keep_to/$part"
        cp -r "$W/$part/runs" "$keep_to/$part/"
        cp "$W/$part/summary.md" "$keep_to/$part/" 2>/dev/null
      fi
    done
    [[ -d $keep_to ]] && echo "per-run data: $keep_to (interposer_bench.py summarize DIR/PART base EXECS$(has_ctr && echo " --group ctr-=ctr-base") prints the tables again)"
    rm -rf "$W"
  fi
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
mkdir -p "$W/bin"
cp "$build/daemon/shauditd" "$build/cli/shaudit" "$W/bin/"   # stable copies, as the interposer
mkdir -p "$W/libshaudit"   # the CLI's libshaudit.so.1, where its runpath ($ORIGIN/../libshaudit) looks
cp -L "$build/libshaudit/libshaudit.so.1" "$W/libshaudit/"
if has_ctr; then cp "$build/oci_runtime/shaudit-oci-runtime" "$W/bin/"; fi
compile_helper session_run "$W/bin/session_run"
sr="$W/bin/session_run"

print_machine
print_tree
echo "interposer: $build/preload/libshaudit_preload.so (sha256 $(sha256sum < "$preload" | cut -c1-16)...)"
echo "shauditd: $build/daemon/shauditd (sha256 $(sha256sum < "$W/bin/shauditd" | cut -c1-16)...)"
echo "hyperfine: $(hyperfine --version); rounds: $rounds x $runs_per_round run(s) per configuration; configurations: $configs"
has_cfg bpftrace || has_cfg ctr-bpftrace && echo "bpftrace: $(bpftrace --version 2>&1)"
has_ctr && echo "runc: $(runc --version | head -1); shaudit-oci-runtime: $build/oci_runtime/shaudit-oci-runtime (sha256 $(sha256sum < "$W/bin/shaudit-oci-runtime" | cut -c1-16)...)"
echo "work directory: $W"

# An audit session id of our own (when we have none), so the host-wide check goes all the way
# to the table lookup: open+read+close /proc/self/sessionid, then access(<dir>/sessions/<id>).
if [[ $(cat /proc/self/sessionid) == 4294967295 ]]; then
  echo "$(id -u)" > /proc/self/loginuid 2>/dev/null || true
fi
sid="$(cat /proc/self/sessionid)"
echo "audit session id of the benchmark: $sid"

# ------------------------------------------------------------------ shauditd
"$W/bin/shaudit" keygen --out "$W/signing.key" >/dev/null
cat > "$W/shauditd.yaml" <<EOF
socket: $W/d.sock
control_socket: $W/d.ctl
log: $W/log/audit.jsonl
signing_key: $W/signing.key
state_dir: $W/state
bpf: off
EOF
"$W/bin/shauditd" --config "$W/shauditd.yaml" > /dev/null 2> "$W/shauditd.stderr" &
daemon_pid=$!
pids+=("$daemon_pid")
for _ in $(seq 100); do [[ -S $W/d.sock ]] && break; sleep 0.05; done
[[ -S $W/d.sock ]] || { echo "shauditd did not start: $(cat "$W/shauditd.stderr")" >&2; exit 1; }
log="$W/log/audit.jsonl"

# ------------------------------------------------------------------ snoopy
if has_cfg snoopy; then
  cp -p /etc/snoopy.ini "$W/snoopy.ini.saved"
  snoopy_saved="$W/snoopy.ini.saved"       # set only once the copy exists: cleanup restores it
  printf '[snoopy]\noutput = file:%s\n' "$W/snoopy.log" > /etc/snoopy.ini
fi

# ------------------------------------------------------------------ host-wide namespaces
if has_cfg hostwide || has_cfg ns-base || has_cfg empty-hw; then
# /etc/ld.so.preload does not exist on the host, so a bind mount needs a mount point: each
# namespace bind-mounts a copy of /etc over /etc (identical lookups), and the copy used with a
# preload has an empty placeholder file over which the list file is bind-mounted.
mkdir -p "$W/hw/sessions"
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
fi

mkdir -p "$W/nodaemon"

# ------------------------------------------------------------------ containers
# Two private runc roots: ctr-shaudit-bpf's container under runc-audited (the shaudit-bpf
# daemons' container_state_dirs), the others under runc (shauditd never looks at them, so it
# binds nothing inside ctr-base's container). The wrapper containers all get the same socket
# directory ($ctr/sock) at /run/shaudit; only ctr-shaudit-bpf's runs have a shauditd on it.
ctr="$W/ctr"
mkdir -p "$ctr/runc" "$ctr/runc-audited" "$ctr/sock"
declare -A ctr_cid ctr_root
ctr_make() {  # $1 configuration, $2 runc root, $3 library the wrapper preloads ("": plain runc)
  local name=$1 root=$2 lib=$3 b="$ctr/$1" cid
  cid="$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')"   # 64 hex digits, as CRI runtimes name them
  mkdir -p "$b"
  cp -a "$ctr/rootfs" "$b/rootfs"
  if [[ $name == ctr-snoopy ]]; then
    printf '[snoopy]\noutput = file:/tmp/snoopy.log\n' > "$b/rootfs/etc/snoopy.ini"
  fi
  python3 "$py" ctr-bundle "$b" "$cid" "$name"
  ctr_made+=("$root $cid")
  if [[ -z $lib ]]; then
    runc --root "$root" run -d --bundle "$b" "$cid" < /dev/null > "$b/runc.log" 2>&1 ||
      { echo "$name: runc run failed: $(cat "$b/runc.log")" >&2; exit 1; }
  else
    printf '%s\n' "runtime: $(command -v runc)" "socket: $ctr/sock/d.sock" "preload: $lib" \
      "state_dir: $b/oci-state" > "$b/oci-runtime.yaml"
    SHAUDIT_OCI_CONFIG="$b/oci-runtime.yaml" "$W/bin/shaudit-oci-runtime" --root "$root" \
      run -d --bundle "$b" "$cid" < /dev/null > "$b/runc.log" 2>&1 ||
      { echo "$name: shaudit-oci-runtime run failed: $(cat "$b/runc.log")" >&2; exit 1; }
    [[ ! -s $b/runc.log ]] || { echo "$name: the wrapper said: $(cat "$b/runc.log")" >&2; exit 1; }
  fi
  runc --root "$root" state "$cid" | grep -q '"status": "running"' ||
    { echo "$name: container $cid is not running" >&2; exit 1; }
  ctr_cid[$name]=$cid
  ctr_root[$name]=$root
}
# Which library a process in the container has mapped at the wrapper's path: the container's
# own dash reads its /proc/$$/maps (no other tool needed inside); the inode names the host file.
ctr_lib() {  # $1 configuration
  local ino f
  # shellcheck disable=SC2016  # expanded by the container's dash
  ino="$(runc --root "${ctr_root[$1]}" exec "${ctr_cid[$1]}" dash -c \
    'while read -r a p o d i f; do case $f in /usr/lib/shaudit/*) echo "$i"; break;; esac; done < /proc/$$/maps')"
  [[ -n $ino ]] || { echo "none"; return; }
  for f in "$preload" "$W/lib/libempty.so" "$(readlink -f "$snoopy_lib")"; do
    [[ -e $f && $(stat -c %i "$f") == "$ino" ]] && { echo "$(basename "$f") (inode $ino)"; return; }
  done
  echo "inode $ino (not one of ours)"
}
if has_ctr; then
  python3 "$py" ctr-rootfs "$ctr/rootfs" /bin/dash /bin/true /bin/sleep "$sr=/usr/local/bin/session_run"
  for c in $configs; do
    case $c in
      ctr-base) ctr_make ctr-base "$ctr/runc" "" ;;
      ctr-empty-env) ctr_make ctr-empty-env "$ctr/runc" "$W/lib/libempty.so" ;;
      ctr-snoopy) ctr_make ctr-snoopy "$ctr/runc" "$snoopy_lib" ;;
      ctr-shaudit-bpf) ctr_make ctr-shaudit-bpf "$ctr/runc-audited" "$preload" ;;
      ctr-bpftrace) ;;   # ctr-base's container
      ctr-*) echo "unknown configuration $c" >&2; exit 1 ;;
    esac
  done
  echo "containers (runc roots $ctr/runc and $ctr/runc-audited; rootfs $(du -sh "$ctr/rootfs" | cut -f1), the cgroups under the benchmark's own):"
  for c in "${!ctr_cid[@]}"; do
    # shellcheck disable=SC2016  # expanded by the container's dash
    echo "  $c: ${ctr_cid[$c]}: annotation shaudit.io/interposer=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["annotations"].get("shaudit.io/interposer", "(none: plain runc)"))' "$ctr/$c/config.json")," \
      "/etc/ld.so.preload there: $(runc --root "${ctr_root[$c]}" exec "${ctr_cid[$c]}" dash -c 'cat() { while read -r l; do echo "$l"; done < "$1"; }; [ -e /etc/ld.so.preload ] && cat /etc/ld.so.preload || echo "(none)"')," \
      "mapped at /usr/lib/shaudit/ in a dash there: $(ctr_lib "$c")"
  done
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
loop_a="i=0; while [ \$i -lt $a_execs ]; do /bin/true; i=\$((i+1)); done"

pid_cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
daemon_cpu() { pid_cpu_ticks "$daemon_pid"; }
tck="$(getconf CLK_TCK)"
ctr_exec() {  # $1 configuration whose container runs it: the `runc exec` prefix
  echo "$(command -v runc) --root ${ctr_root[$1]} exec ${ctr_cid[$1]}"
}
bt_prog='tracepoint:syscalls:sys_enter_execve { printf("%d %s\n", pid, str(args->filename)); }'

cmd_for() {  # $1 config, $2 program and arguments (one string for hyperfine -N)
  case $1 in
    base) echo "env $sr - -- $2" ;;
    snoopy) echo "env LD_PRELOAD=$snoopy_lib $sr - -- $2" ;;
    shaudit) echo "env LD_PRELOAD=$preload SHAUDIT_SOCKET=$W/d.sock $sr - -- $2" ;;
    shaudit-bpf) echo "env LD_PRELOAD=$preload SHAUDIT_SOCKET=$W/bpfd/d.sock $sr $W/bpfd/d.sock -- $2" ;;
    bpftrace) echo "env $sr - -- $2" ;;
    hostwide) echo "nsenter --mount=/proc/$ns_hw/ns/mnt env $hw_env $sr - -- $2" ;;
    ns-base) echo "nsenter --mount=/proc/$ns_ctl/ns/mnt env $sr - -- $2" ;;
    empty-env) echo "env LD_PRELOAD=$W/lib/libempty.so $sr - -- $2" ;;
    empty-hw) echo "nsenter --mount=/proc/$ns_hwe/ns/mnt env $sr - -- $2" ;;
    shaudit-nodaemon) echo "env LD_PRELOAD=$preload SHAUDIT_SOCKET=$W/nodaemon/shaudit.sock $sr - -- $2" ;;
    ctr-base | ctr-bpftrace) echo "$(ctr_exec ctr-base) /usr/local/bin/session_run - -- $2" ;;
    ctr-empty-env | ctr-snoopy) echo "$(ctr_exec "$1") /usr/local/bin/session_run - -- $2" ;;
    ctr-shaudit-bpf) echo "$(ctr_exec "$1") /usr/local/bin/session_run /run/shaudit/d.sock -- $2" ;;
    *) echo "unknown configuration $1" >&2; exit 1 ;;
  esac
}

# A shauditd with bpf: on for one shaudit-bpf run: fresh log, same socket path ($W/bpfd; for
# ctr-shaudit-bpf the socket directory the wrapper mounts into its container, $1).
start_bpfd() {  # $1 reporter socket (default $W/bpfd/d.sock)
  local sock=${1:-$W/bpfd/d.sock}
  rm -rf "$W/bpfd"
  rm -f "$sock"
  mkdir -p "$W/bpfd"
  printf '%s\n' "socket: $sock" "control_socket: $W/bpfd/d.ctl" \
    "log: $W/bpfd/log/audit.jsonl" "signing_key: $W/signing.key" "state_dir: $W/bpfd/state" \
    "bpf: on" "interposer: $preload" "container_state_dirs: [$ctr/runc-audited]" > "$W/bpfd/shauditd.yaml"
  "$W/bin/shauditd" --config "$W/bpfd/shauditd.yaml" > /dev/null 2> "$W/bpfd/shauditd.stderr" &
  bpfd_pid=$!
  for _ in $(seq 600); do
    [[ -S $sock && -S $W/bpfd/d.ctl ]] && break
    kill -0 "$bpfd_pid" 2>/dev/null || break
    sleep 0.05
  done
  if [[ ! -S $W/bpfd/d.ctl ]]; then
    echo "shauditd (bpf: on) did not start: $(cat "$W/bpfd/shauditd.stderr")" >&2
    exit 1
  fi
  sleep 0.3
  bpfd_cpu0="$(pid_cpu_ticks "$bpfd_pid")"
}

# After the run: settle (the cross-check decides after its 1 s window), read its CPU, stop it,
# count the kernel's exec records (every exec recorded and cross-checked), verify the log.
stop_bpfd() {  # $1 check file, $2 expected records, $3.. argv0 of the loop's execs
  local out=$1 expect=$2 cpu1
  shift 2
  python3 "$py" settle --shaudit "$W/bin/shaudit" --control "$W/bpfd/d.ctl"
  cpu1="$(pid_cpu_ticks "$bpfd_pid")"
  kill -TERM "$bpfd_pid"
  wait "$bpfd_pid" || echo "WARNING: shauditd (bpf: on) exited $?"
  bpfd_pid=""
  python3 "$py" count-execs "$W/bpfd/log/audit.jsonl" "$@" --source bpf --expect "$expect" \
    --timeout 0 --json "$out" --verify "$W/bin/shaudit" "$W/signing.key.pub" \
    --daemon-cpu-s "$(awk -v a="$bpfd_cpu0" -v b="$cpu1" -v t="$tck" 'BEGIN{printf "%.3f", (b-a)/t}')" |
    sed 's/^/    shaudit-bpf: /' || true
}

start_bt() {  # $1 output file
  bpftrace -e "$bt_prog" > "$1" 2> "$1.stderr" &
  bt_pid=$!
  for _ in $(seq 1200); do
    grep -q Attaching "$1" 2>/dev/null && break
    kill -0 "$bt_pid" 2>/dev/null || break
    sleep 0.05
  done
  grep -q Attaching "$1" || { echo "bpftrace did not attach: $(cat "$1.stderr")" >&2; exit 1; }
  sleep 0.2
}

stop_bt() {  # $1 output file, $2 check file, $3.. argv0 of the loop's execs
  local out=$1 check=$2
  shift 2
  kill -INT "$bt_pid"
  wait "$bt_pid" || true
  bt_pid=""
  python3 "$py" count-bt "$out" "$@" --json "$check" | sed 's/^/    /'
  [[ ${KEEP:-0} == 1 ]] || rm -f "$out"
}

run_part() {  # $1 part name, $2 program string, $3 execs per run, $4.. argv0 of its execs
  local part=$1 prog=$2 execs=$3
  shift 3
  local dir="$W/$part"
  mkdir -p "$dir/runs"
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
    local runs=$((r == 0 ? 1 : runs_per_round))
    for ((k = 0; k < n; k++)); do
      local c=${cfgs[$(((k + r) % n))]}
      local base="$dir/runs/r$r-$c"
      local -a watch=(--watch "shauditd=$daemon_pid")
      case $c in
        shaudit) total_shaudit=$((total_shaudit + runs)) ;;
        shaudit-bpf) start_bpfd; watch+=(--watch "shauditd-bpf=$bpfd_pid") ;;
        ctr-shaudit-bpf) start_bpfd "$ctr/sock/d.sock"; watch+=(--watch "shauditd-bpf=$bpfd_pid") ;;
        bpftrace | ctr-bpftrace) start_bt "$base.bt.out"; watch+=(--watch "bpftrace=$bt_pid") ;;
      esac
      python3 "$py" measure --out "$base.load.json" "${watch[@]}" -- \
        hyperfine -N --style basic --runs "$runs" --export-json "$base.hf.json" \
        -n "$c" "$(cmd_for "$c" "$prog")" > "$base.txt" 2>&1 || { cat "$base.txt"; exit 1; }
      case $c in
        shaudit-bpf | ctr-shaudit-bpf) stop_bpfd "$base.check.json" $((runs * execs)) "$@" ;;
        bpftrace | ctr-bpftrace) stop_bt "$base.bt.out" "$base.check.json" "$@" ;;
      esac
    done
    printf '  round %d/%d:' "$r" "$rounds"
    python3 "$py" round-line "$dir" "$r"
  done
  echo
  local -a group=()
  has_ctr && group=(--group ctr-=ctr-base)
  python3 "$py" summarize "$dir" base "$execs" --order "$(echo $configs | tr ' ' ,)" \
    "${group[@]}" --quiet-max "$quiet_max" | tee "$dir/summary.md"
  if has_cfg shaudit; then
    local cpu1
    cpu1="$(daemon_cpu)"
    echo
    echo "shauditd (bpf: off) CPU (user+system, all threads) during part $part: $(awk -v a="$cpu0" -v b="$cpu1" -v t="$tck" 'BEGIN{printf "%.2f", (b-a)/t}') s" \
      "= $(awk -v a="$cpu0" -v b="$cpu1" -v t="$tck" -v n="$((total_shaudit * execs))" 'BEGIN{printf "%.0f", (b-a)/t/n*1e6}') µs per exec of the shaudit runs"
    echo
    echo "records check for shaudit ($total_shaudit runs x $execs execs, plus the $before already in the log):"
    python3 "$py" count-execs "$log" "$@" --expect $((before + total_shaudit * execs)) --timeout 60 ||
      echo "WARNING: the daemon did not record every exec"
  fi
}

# ------------------------------------------------------------------ the interactive path, once
# What the ctr-shaudit-bpf figures stand for: an interactive dash in the audited container through
# `runc exec -t` (what `kubectl exec -it` ends in) opens an implicit session naming the container,
# and the kernel's exec records of loop A typed at its prompt are in it. Not in the rounds (a
# pty and a typing driver are no part of the timed command).
if has_cfg ctr-shaudit-bpf && [[ " $parts " == *" A "* ]]; then
  echo
  echo "=== the audited container through runc exec -t, once (not one of the timed runs)"
  start_bpfd "$ctr/sock/d.sock"
  python3 "$py" ctr-probe --runc "$(command -v runc)" --root "${ctr_root[ctr-shaudit-bpf]}" \
    --cid "${ctr_cid[ctr-shaudit-bpf]}" --log "$W/bpfd/log/audit.jsonl" --execs "$a_execs" |
    sed 's/^/  /' || echo "WARNING: the interactive path in the audited container was not recorded as expected"
  stop_bpfd "$ctr/probe.check.json" "$a_execs" /bin/true
fi

for part in $parts; do
  case $part in
    A) run_part A "dash -c '$loop_a'" "$a_execs" /bin/true ;;
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
echo "daemon log: $(wc -l < "$log") records; verify: $("$W/bin/shaudit" verify "$log" --pubkey "$W/signing.key.pub" 2>&1 | tail -1)"
if [[ -n $snoopy_saved && -f $W/snoopy.log ]]; then echo "snoopy log: $(wc -l < "$W/snoopy.log") lines"; fi
