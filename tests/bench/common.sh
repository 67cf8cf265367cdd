# SPDX-License-Identifier: Apache-2.0
# Sourced by the run_*_bench.sh scripts: the paths, checks and build step they share.
# Sets here (this directory), repo and build (BUILD, default <repo>/build).

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
build="${BUILD:-$repo/build}"

# require_root [WHY]: exits unless running as root.
require_root() {
  [[ $(id -u) == 0 ]] || { echo "$(basename "$0"): needs root${1:+ ($1)}" >&2; exit 1; }
}

# require_tools TOOL...: exits naming the first tool missing from PATH.
require_tools() {
  local t
  for t; do
    command -v "$t" >/dev/null || { echo "$(basename "$0"): $t is missing" >&2; exit 1; }
  done
}

# build_shaudit: configures $build (Ninja, RelWithDebInfo) when it has no build files yet, then
# builds the daemon, the CLI and the interposer.
build_shaudit() {
  if [[ ! -f "$build/build.ninja" && ! -f "$build/Makefile" ]]; then
    cmake -S "$repo" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
  fi
  cmake --build "$build" --target shauditd shaudit_cli shaudit_preload
}

# maybe_build: build_shaudit, unless SKIP_BUILD=1 (then the binaries must already be in
# $build: a build directory someone else is building in is not touched).
maybe_build() {
  if [[ ${SKIP_BUILD:-0} == 1 ]]; then
    local f
    for f in daemon/shauditd cli/shaudit preload/libshaudit_preload.so; do
      [[ -e $build/$f ]] || { echo "$(basename "$0"): SKIP_BUILD=1 but $build/$f is missing" >&2; exit 1; }
    done
    echo "build: skipped (SKIP_BUILD=1), using $build as it is"
  else
    build_shaudit
  fi
}

# print_command VAR...: the exact command line, with those environment variables that are set.
print_command() {
  local v s=""
  for v; do
    if [[ -n ${!v+x} ]]; then s+="$v=$(printf '%q' "${!v}") "; fi
  done
  echo "command: ${s}$0${BENCH_ARGS:+ $BENCH_ARGS}"
}

# print_machine: CPUs, CPU model, kernel, memory.
print_machine() {
  echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //')" \
    "(family $(grep -m1 'cpu family' /proc/cpuinfo | sed 's/.*: //'), model $(grep -m1 '^model[[:space:]]' /proc/cpuinfo | sed 's/.*: //')," \
    "$(grep -m1 'cpu MHz' /proc/cpuinfo | sed 's/.*: //') MHz), kernel $(uname -r), $(free -g | awk '/^Mem:/ {print $2}') GB;" \
    "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
}

# print_tree: the git revision and the uncommitted changes in the parts that are measured.
print_tree() {
  local dirty
  dirty="$(git -C "$repo" status --porcelain -- bpf daemon preload libshaudit cli tests/bench 2>/dev/null | awk '{print $2}' | tr '\n' ' ')"
  echo "tree: $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo '?')${dirty:+ + uncommitted changes in: $dirty}"
}

# compile_helper NAME OUT: compiles tests/bench/NAME.c (with libshaudit's public headers) to OUT.
compile_helper() {
  cc -O2 -Wall -I"$repo/libshaudit/include" -o "$2" "$here/$1.c"
}

# gnuplot for the plots (installed when missing; without it the results have no plot).
ensure_gnuplot() {
  if ! command -v gnuplot >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y gnuplot-nox >/dev/null ||
      echo "note: gnuplot-nox could not be installed: no plot"
  fi
}

# A work directory W (/var/tmp/NAME.XXXXXX) and a cleanup on every exit path: it ends the
# driver process whose pid is in $driver, calls cleanup_extra when the script defines one, and
# removes W unless KEEP=1.
bench_workdir() {
  W="$(mktemp -d "/var/tmp/$1.XXXXXX")"
  driver=""
  trap bench_cleanup EXIT
  trap 'exit 130' INT TERM
}
bench_cleanup() {
  local rc=$?
  set +e
  if [[ -n ${driver:-} ]] && kill -0 "$driver" 2>/dev/null; then
    kill -TERM "$driver"
    wait "$driver"
  fi
  if declare -F cleanup_extra >/dev/null; then cleanup_extra; fi
  if [[ ${KEEP:-0} == 1 ]]; then echo "work directory kept: $W"; else rm -rf "$W"; fi
  exit $rc
}

# Stable copies of shauditd, shaudit and the interposer in $W/bin: a rebuild during the run
# must not change what is measured.
copy_binaries() {
  mkdir -p "$W/bin"
  cp "$build/daemon/shauditd" "$build/cli/shaudit" "$build/preload/libshaudit_preload.so" "$W/bin/"
  # The CLI loads libshaudit.so.1 from $ORIGIN/../libshaudit (its build-tree run path).
  mkdir -p "$W/libshaudit"
  cp -P "$build"/libshaudit/libshaudit.so* "$W/libshaudit/"
}

# Says what the run measures (the copies' hashes) and where it works and writes.
print_copies() {
  echo "shauditd: sha256 $(sha256sum < "$W/bin/shauditd" | cut -c1-16)...; interposer: sha256 $(sha256sum < "$W/bin/libshaudit_preload.so" | cut -c1-16)..."
  echo "work directory: $W; results: $1"
}

# Runs the Python driver $py with these arguments, in the background so that the cleanup can
# end it; its exit status goes into rc.
run_driver() {
  echo "driver: python3 $py $*"
  python3 "$py" "$@" &
  driver=$!
  rc=0
  wait "$driver" || rc=$?
  driver=""
}
