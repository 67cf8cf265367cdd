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
