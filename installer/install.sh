#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs shaudit on a Debian host (or into another root filesystem), and takes it away again.
#
#   installer/install.sh [--prefix /usr] [--root DIR] [--build DIR] [--pam SERVICES|none]
#                        [--host-wide] [--no-start]
#   installer/install.sh --uninstall [--purge [--yes]] [--root DIR]
#
# Installs the built files under PREFIX, /etc/shaudit/shauditd.yaml (every key explained),
# /etc/shaudit/rules.d/00-default.yaml, a signing key when none exists (never replaces one),
# /var/log/shaudit and /var/lib/shaudit (0700), the systemd unit (enabled), and the PAM line:
# by default through a pam-auth-update profile (common-session and
# common-session-noninteractive), with --pam sshd,login,... in those service files instead.
# --host-wide also lists the interposer in /etc/ld.so.preload.
#
# Every file it adds and every file it edits (with a byte-for-byte backup) is written down in
# ROOT/var/lib/shaudit/install/manifest. A second run changes nothing. --uninstall removes
# what was added and restores what was edited, byte for byte (a file edited by someone else
# since keeps their edits: only the shaudit line goes); logs and keys stay unless --purge.
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
PREFIX=/usr
ROOT=
BUILD=
PAM=auto
HOST_WIDE=0
MODE=install
PURGE=0
YES=0
START=1

die() { echo "install.sh: $*" >&2; exit 1; }
say() { echo "install.sh: $*"; }
usage() { sed -n '3,8p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }

while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) PREFIX=${2:?--prefix needs a directory}; shift ;;
    --prefix=*) PREFIX=${1#*=} ;;
    --root) ROOT=${2:?--root needs a directory}; shift ;;
    --root=*) ROOT=${1#*=} ;;
    --build) BUILD=${2:?--build needs a directory}; shift ;;
    --build=*) BUILD=${1#*=} ;;
    --pam) PAM=${2:?--pam needs SERVICES or none}; shift ;;
    --pam=*) PAM=${1#*=} ;;
    --host-wide) HOST_WIDE=1 ;;
    --no-start) START=0 ;;
    --uninstall) MODE=uninstall ;;
    --purge) MODE=uninstall; PURGE=1 ;;
    --yes|-y) YES=1 ;;
    -h|--help) usage 0 ;;
    *) echo "install.sh: unknown argument '$1'" >&2; usage 2 ;;
  esac
  shift
done

[ "$(id -u)" = 0 ] || die "must run as root"
case "$PREFIX" in /*) ;; *) die "--prefix must be an absolute path: $PREFIX" ;; esac
if [ -n "$ROOT" ]; then
  [ -d "$ROOT" ] || die "--root: no such directory: $ROOT"
  ROOT=$(cd "$ROOT" && pwd)
  [ "$ROOT" = / ] && ROOT=
fi
R=$ROOT                               # prepended to every path inside the target root
STATE=$R/var/lib/shaudit/install      # manifest and backups
MANIFEST=$STATE/manifest
systemd_running() { [ -z "$R" ] && [ -d /run/systemd/system ]; }
in_root() { if [ -n "$R" ]; then chroot "$R" "$@"; else "$@"; fi; }
sha() { sha256sum "$1" | cut -d' ' -f1; }

# ---------------------------------------------------------------------------------------
# The manifest: one line per thing done, tab-separated.
#   dir  PATH            a directory this script created
#   file PATH SHA256     a file (or symlink: SHA256 is "link:TARGET") this script installed
#   keep PATH            created here, kept by --uninstall, removed by --purge (keys, logs)
#   edit PATH EXISTED    a file this script edited; backup in STATE/backup/PATH, its content
#                        right after the edit in STATE/after/PATH
declare -A M_KIND=()
M_ORDER=()
m_load() {
  [ -f "$MANIFEST" ] || return 0
  local kind path rest
  while IFS=$'\t' read -r kind path rest; do
    [ -n "$kind" ] || continue
    [ -n "${M_KIND[$path]:-}" ] || M_ORDER+=("$path")
    M_KIND[$path]="$kind"$'\t'"$rest"
  done <"$MANIFEST"
}
m_set() {  # PATH KIND [REST]
  [ -n "${M_KIND[$1]:-}" ] || M_ORDER+=("$1")
  M_KIND[$1]="$2"$'\t'"${3:-}"
}
m_save() {  # rewritten only when it changes, so a second run touches nothing
  ensure_dir /var/lib/shaudit 0700
  ensure_dir /var/lib/shaudit/install 0700
  local tmp p
  tmp=$(mktemp)
  for p in "${M_ORDER[@]}"; do
    if [ -n "${M_KIND[$p]:-}" ]; then
      printf '%s\t%s\t%s\n' "${M_KIND[$p]%%$'\t'*}" "$p" "${M_KIND[$p]#*$'\t'}"
    fi
  done | sed 's/\t$//' >"$tmp"
  if ! cmp -s "$tmp" "$MANIFEST" 2>/dev/null; then
    install -m 0600 "$tmp" "$MANIFEST"
  fi
  rm -f "$tmp"
}

ensure_dir() {  # PATH MODE: creates it (and records that) when missing
  local p=$1 mode=$2
  [ -d "$R$p" ] && return 0
  ensure_dir "$(dirname "$p")" 0755
  install -d -m "$mode" "$R$p"
  m_set "$p" dir
}

# An edit of a file this script does not own: back it up once, before the first edit.
begin_edit() {  # PATH
  local p=$1
  case "${M_KIND[$p]:-}" in edit*) return 0 ;; esac
  ensure_dir /var/lib/shaudit 0700
  ensure_dir /var/lib/shaudit/install 0700
  install -d -m 0700 "$STATE/backup$(dirname "$p")" "$STATE/after$(dirname "$p")"
  if [ -e "$R$p" ]; then
    cp -a "$R$p" "$STATE/backup$p"
    m_set "$p" edit 1
  else
    m_set "$p" edit 0
  fi
}
end_edit() {  # PATH: remembers what the file is right after our edit
  local p=$1
  if [ -e "$R$p" ]; then cp -a "$R$p" "$STATE/after$p"; else rm -f "$STATE/after$p"; fi
}

# ---------------------------------------------------------------------------------------
build_tree() {
  BUILD=${BUILD:-$SRC/build-install}
  if [ ! -x "$BUILD/daemon/shauditd" ] || [ ! -f "$BUILD/CMakeCache.txt" ]; then
    # shellcheck source=installer/deps.sh
    source "$SRC/installer/deps.sh"
    shaudit_install_deps
    cmake -S "$SRC" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSHAUDIT_TESTS=OFF \
      -DCMAKE_INSTALL_PREFIX="$PREFIX" >/dev/null
  fi
  cmake --build "$BUILD" -j"$(nproc)" | { grep -v "^\[" || true; }  # progress lines off; errors shown, and fatal
}

# The files as they will be in the root: `cmake --install` into a stage, plus the system
# files rendered for PREFIX. Compared with the root file by file.
stage_files() {
  STAGE=$(mktemp -d)
  trap 'rm -rf "$STAGE"' EXIT
  DESTDIR=$STAGE cmake --install "$BUILD" --prefix "$PREFIX" >/dev/null
  LIBDIR=$(dirname "$(find "$STAGE$PREFIX" -name libshaudit_preload.so | head -n 1)")
  LIBDIR=${LIBDIR#"$STAGE"}
  [ -n "$LIBDIR" ] || die "the build installs no libshaudit_preload.so ($BUILD)"
  render() { sed -e "s|@SBINDIR@|$PREFIX/sbin|g" -e "s|@LIBDIR@|$LIBDIR|g" "$1"; }
  install -d -m 0700 "$STAGE/etc/shaudit"
  install -d -m 0755 "$STAGE/etc/shaudit/rules.d"
  render "$SRC/installer/system/shauditd.yaml.in" >"$STAGE/etc/shaudit/shauditd.yaml"
  chmod 0600 "$STAGE/etc/shaudit/shauditd.yaml"  # output credentials go in it
  install -m 0644 "$SRC/daemon/rules/default.yaml" "$STAGE/etc/shaudit/rules.d/00-default.yaml"
  # shaudit-oci-runtime's settings: used only once a container runtime is pointed at the
  # wrapper (nothing here does that); the musl interposer named when the build made one.
  local musl_line='#preload_musl:'
  [ -e "$STAGE$LIBDIR/libshaudit_preload_musl.so" ] && musl_line="preload_musl: $LIBDIR/libshaudit_preload_musl.so"
  render "$SRC/installer/system/oci-runtime.yaml.in" | sed -e "s|^#preload_musl:\$|$musl_line|" \
    >"$STAGE/etc/shaudit/oci-runtime.yaml"
  chmod 0644 "$STAGE/etc/shaudit/oci-runtime.yaml"
  install -d -m 0755 "$STAGE/lib/systemd/system"
  render "$SRC/installer/system/shauditd.service.in" >"$STAGE/lib/systemd/system/shauditd.service"
  chmod 0644 "$STAGE/lib/systemd/system/shauditd.service"
  install -d -m 0755 "$STAGE/etc/systemd/system/multi-user.target.wants"
  ln -s /lib/systemd/system/shauditd.service "$STAGE/etc/systemd/system/multi-user.target.wants/shauditd.service"
  if [ "$PAM" = auto ]; then
    install -d -m 0755 "$STAGE/usr/share/pam-configs"
    render "$SRC/installer/system/pam-config.in" >"$STAGE/usr/share/pam-configs/shaudit"
    chmod 0644 "$STAGE/usr/share/pam-configs/shaudit"
  fi
}

# Configuration under /etc/shaudit is the operator's once installed: a changed file is kept
# and the new default is put beside it as FILE.dist.
is_config() { case "$1" in /etc/shaudit/*) return 0 ;; *) return 1 ;; esac; }

place_files() {
  local rel p want have
  while IFS= read -r rel; do
    p=${rel#.}
    if [ -d "$STAGE$p" ] && [ ! -L "$STAGE$p" ]; then
      ensure_dir "$p" "$(stat -c %a "$STAGE$p")"
      continue
    fi
    if [ -L "$STAGE$p" ]; then want="link:$(readlink "$STAGE$p")"; else want=$(sha "$STAGE$p"); fi
    have=
    if [ -L "$R$p" ]; then have="link:$(readlink "$R$p")"; elif [ -f "$R$p" ]; then have=$(sha "$R$p"); fi
    if [ "$have" = "$want" ]; then
      case "${M_KIND[$p]:-}" in file*|"") m_set "$p" file "$want" ;; esac
      continue
    fi
    if [ -n "$have" ] && is_config "$p"; then
      local recorded=${M_KIND[$p]:-}
      if [ "$recorded" != "file"$'\t'"$have" ]; then  # edited by the operator (or not ours)
        if ! cmp -s "$STAGE$p" "$R$p.dist" 2>/dev/null; then
          cp -a "$STAGE$p" "$R$p.dist"
          say "kept your $p; the new default is $p.dist"
        fi
        m_set "$p.dist" file "$want"
        continue
      fi
    elif [ -n "$have" ] && [ -z "${M_KIND[$p]:-}" ]; then
      say "replacing $p (it was not installed by this script)"
    fi
    rm -f "$R$p"
    cp -a "$STAGE$p" "$R$p"
    m_set "$p" file "$want"
  done < <(cd "$STAGE" && find . -mindepth 1 | LC_ALL=C sort)
}

make_key() {
  local key=/etc/shaudit/signing.key
  if [ ! -e "$R$key" ]; then
    "$BUILD/cli/shaudit" keygen --out "$R$key" >/dev/null
    m_set "$key" keep
    m_set "$key.pub" keep
    say "created the signing key $key (give verifiers $key.pub)"
  fi
}

setup_pam_auth_update() {
  local files=(/etc/pam.d/common-session /etc/pam.d/common-session-noninteractive)
  if grep -qs pam_shaudit.so "$R/etc/pam.d/common-session"; then return 0; fi
  [ -x "$R/usr/sbin/pam-auth-update" ] || die "no pam-auth-update in the target (package libpam-runtime); use --pam SERVICES"
  local f
  for f in "${files[@]}"; do begin_edit "$f"; done
  # pam-auth-update's own record of what it wrote (created when missing).
  for f in auth account password session session-noninteractive seen; do files+=("/var/lib/pam/$f"); done
  # ... and debconf's cache, which it reads and writes.
  for f in config.dat config.dat-old templates.dat templates.dat-old passwords.dat; do
    files+=("/var/cache/debconf/$f")
  done
  for f in "${files[@]}"; do begin_edit "$f"; done
  in_root /usr/sbin/pam-auth-update --package --enable shaudit
  for f in "${files[@]}"; do end_edit "$f"; done
  grep -qs pam_shaudit.so "$R/etc/pam.d/common-session" ||
    die "pam-auth-update did not add pam_shaudit.so to common-session (locally edited PAM files? see pam-auth-update(8)); use --pam SERVICES"
  say "PAM: pam_shaudit.so in common-session and common-session-noninteractive (pam-auth-update profile 'shaudit')"
}

setup_pam_services() {
  local line="session optional pam_shaudit.so preload=$LIBDIR/libshaudit_preload.so noninteractive=skip"
  local svc f
  IFS=, read -r -a svcs <<<"$PAM"
  for svc in "${svcs[@]}"; do
    f=/etc/pam.d/$svc
    [ -f "$R$f" ] || die "--pam: no PAM service file $f"
    grep -q pam_shaudit.so "$R$f" && continue
    begin_edit "$f"
    # Before the service's session stack (so the session is registered before a shell
    # starts); at the end when it includes no common-session.
    if grep -q '^@include[[:space:]]\+common-session' "$R$f"; then
      awk -v l="$line" '!done && /^@include[ \t]+common-session/ {print l; done=1} {print}' "$R$f" >"$R$f.shaudit-tmp"
    else
      { cat "$R$f"; echo "$line"; } >"$R$f.shaudit-tmp"
    fi
    chmod --reference="$R$f" "$R$f.shaudit-tmp"
    mv "$R$f.shaudit-tmp" "$R$f"
    end_edit "$f"
    say "PAM: added pam_shaudit.so to $f"
  done
}

setup_host_wide() {
  local f=/etc/ld.so.preload lib=$LIBDIR/libshaudit_preload.so
  grep -qxF "$lib" "$R$f" 2>/dev/null && return 0
  begin_edit "$f"
  echo "$lib" >>"$R$f"
  chmod 0644 "$R$f"
  end_edit "$f"
  say "host-wide: $lib listed in $f (every dynamically linked program now loads it)"
}

start_service() {
  [ "$START" = 1 ] || return 0
  if systemd_running; then
    systemctl daemon-reload
    systemctl start shauditd.service && say "shauditd.service is $(systemctl is-active shauditd.service)"
  elif [ -z "$R" ]; then
    say "systemd is not running here: start the daemon with: $PREFIX/sbin/shauditd --config /etc/shaudit/shauditd.yaml"
  fi
}

do_install() {
  build_tree
  m_load
  stage_files
  place_files
  ensure_dir /var/log/shaudit 0700
  ensure_dir /var/lib/shaudit 0700
  make_key
  case "$PAM" in
    auto) setup_pam_auth_update ;;
    none) ;;
    *) setup_pam_services ;;
  esac
  [ "$HOST_WIDE" = 1 ] && setup_host_wide
  m_save
  say "installed under ${R:-/} (prefix $PREFIX); manifest: $MANIFEST"
  start_service
}

# ---------------------------------------------------------------------------------------
stop_daemon() {
  if systemd_running && systemctl is-active -q shauditd.service 2>/dev/null; then
    systemctl stop shauditd.service
  fi
  # Daemons started by hand from the installed binary: found by their executable, ended by
  # pid, waited for (they write a closing seal).
  local p exe target pids=()
  for p in "${M_ORDER[@]}"; do
    case "$p" in */sbin/shauditd) ;; *) continue ;; esac
    for exe in /proc/[0-9]*/exe; do
      target=$(readlink "$exe" 2>/dev/null) || continue
      if [ "$target" = "$R$p" ] || [ "$target" = "$R$p (deleted)" ]; then
        exe=${exe#/proc/}
        pids+=("${exe%/exe}")
      fi
    done
  done
  [ ${#pids[@]} -gt 0 ] || return 0
  kill -TERM "${pids[@]}" 2>/dev/null || true
  for _ in $(seq 100); do
    kill -0 "${pids[@]}" 2>/dev/null || break
    sleep 0.1
  done
  say "stopped shauditd (pid ${pids[*]})"
}

undo_edit() {  # PATH EXISTED
  local p=$1 existed=$2 cur=
  [ -e "$R$p" ] && cur=$(sha "$R$p")
  local after=
  [ -e "$STATE/after$p" ] && after=$(sha "$STATE/after$p")
  if [ "$cur" = "$after" ]; then
    if [ "$existed" = 1 ]; then
      rm -f "$R$p"
      cp -a "$STATE/backup$p" "$R$p"
    else
      rm -f "$R$p"
    fi
    return 0
  fi
  # Changed since our edit by someone else: keep their changes, take out only our line.
  case "$p" in
    /var/lib/pam/*) ;;  # pam-auth-update's own state; it keeps it right below
    /etc/pam.d/common-*)
      if grep -q pam_shaudit.so "$R$p"; then in_root /usr/sbin/pam-auth-update --package --remove shaudit || true; fi
      say "$p changed since the install: removed the shaudit profile with pam-auth-update, kept the rest" ;;
    *)
      if [ -f "$R$p" ] && grep -q 'pam_shaudit.so\|libshaudit_preload.so' "$R$p"; then
        sed -i '/pam_shaudit\.so\|libshaudit_preload\.so/d' "$R$p"
      fi
      say "$p changed since the install: removed only the shaudit line, kept the rest" ;;
  esac
}

do_uninstall() {
  [ -f "$MANIFEST" ] || die "nothing to uninstall: no $MANIFEST"
  m_load
  if [ "$PURGE" = 1 ] && [ "$YES" != 1 ]; then
    local answer
    read -r -p "Remove the signed logs (/var/log/shaudit), the signing key and all configuration under ${R:-/}? [y/N] " answer
    case "$answer" in y|Y|yes) ;; *) die "not purged (answer y, or pass --yes)" ;; esac
  fi
  stop_daemon
  if systemd_running; then systemctl disable -q shauditd.service 2>/dev/null || true; fi
  local i p kind rest
  # Edits first (while the modules they name still exist), then files, then directories
  # (deepest first, only when empty).
  for p in "${M_ORDER[@]}"; do
    kind=${M_KIND[$p]%%$'\t'*}; rest=${M_KIND[$p]#*$'\t'}
    [ "$kind" = edit ] && undo_edit "$p" "$rest"
  done
  for p in "${M_ORDER[@]}"; do
    kind=${M_KIND[$p]%%$'\t'*}
    rest=${M_KIND[$p]#*$'\t'}
    case "$kind" in
      file)
        # The operator's edits of the configuration stay until --purge.
        if [ "$PURGE" != 1 ] && is_config "$p" && [ -f "$R$p" ] && [ ! -L "$R$p" ] &&
          [ "$(sha "$R$p")" != "$rest" ]; then
          say "kept $p (edited since the install; --purge removes it)"
        else
          rm -f "$R$p"
        fi ;;
      keep) [ "$PURGE" = 1 ] && rm -f "$R$p" ;;
    esac
  done
  if [ "$PURGE" = 1 ]; then
    # (The key state holds the signing key once shauditd has moved it there.)
    rm -rf "$R/var/log/shaudit" "$R/var/lib/shaudit/spool" "$R/var/lib/shaudit/key-state" \
      "$R/var/lib/shaudit/log-state.json"
  fi
  rm -rf "$STATE"
  for ((i = ${#M_ORDER[@]} - 1; i >= 0; i--)); do
    p=${M_ORDER[$i]}
    if [ "${M_KIND[$p]:-}" = dir$'\t' ] && [ -d "$R$p" ] && rmdir "$R$p" 2>/dev/null; then
      unset "M_KIND[$p]"
    fi
  done
  # What stays (keys, logs) stays written down, so that a later --purge removes it.
  local kept=()
  if [ "$PURGE" != 1 ]; then
    for p in "${M_ORDER[@]}"; do
      kind=${M_KIND[$p]:-}
      kind=${kind%%$'\t'*}
      case "$kind:$p" in
        keep:*) if [ -e "$R$p" ]; then kept+=("$p"); fi ;;
        file:/etc/shaudit/*) if [ -e "$R$p" ]; then m_set "$p" keep; kept+=("$p"); fi ;;
        dir:/etc/shaudit | dir:/etc/shaudit/* | dir:/var/log/shaudit | dir:/var/lib/shaudit) ;;
        *) unset "M_KIND[$p]" ;;
      esac
    done
  fi
  if [ ${#kept[@]} -gt 0 ] || [ -n "$(ls -A "$R/var/log/shaudit" 2>/dev/null)" ]; then
    m_save
  fi
  if [ "$PURGE" = 1 ] && [ -d "$R/etc/shaudit" ]; then
    say "left $R/etc/shaudit: it holds files this script did not install"
  fi
  if systemd_running; then systemctl daemon-reload; fi
  if [ "$PURGE" = 1 ]; then
    say "purged from ${R:-/}"
  else
    say "uninstalled from ${R:-/}; kept the signing key and the logs (--purge removes them)"
  fi
}

if [ "$MODE" = install ]; then do_install; else do_uninstall; fi
