#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Puts shaudit's OCI runtime wrapper on a Kubernetes node and wires containerd to it, so that
# every shell in every new pod container (`kubectl exec -it POD -- /bin/sh`) loads the
# interposer and reports to the node's shauditd. Run by the init container of the DaemonSet
# shaudit-runtime-wrapper (runtime-wrapper/daemonset.yaml) with the node's directories under
# $SHAUDIT_HOST; it EDITS NODE FILES:
#   /opt/shaudit/bin/shaudit-oci-runtime   the wrapper (replaced only when it differs)
#   /etc/shaudit/oci-runtime.yaml          its settings: the real runtime, shauditd's socket
#                                          and the interposer published by shauditd's pod
#   /etc/containerd/config.toml            only with CONTAINERD_CONFIG=patch: BinaryName of
#                                          the runtime "runc" set to the wrapper; the file as
#                                          it was is kept once as config.toml.shaudit-orig
# With CONTAINERD_CONFIG=print (the default) the containerd change is printed, not made.
# Either way containerd reads its configuration only when it starts: restart it on the node
# (systemctl restart containerd; running containers keep running) for new containers to get
# the wrapper. A second run changes nothing.
set -eu

HOST=${SHAUDIT_HOST:-/host}
MODE=${CONTAINERD_CONFIG:-print}
RUNTIME=${RUNTIME:-}
SRC=${SHAUDIT_WRAPPER_SOURCE:-/usr/sbin/shaudit-oci-runtime}
# Paths on the node (as containerd and the wrapper see them).
WRAPPER=/opt/shaudit/bin/shaudit-oci-runtime
SETTINGS=/etc/shaudit/oci-runtime.yaml
SOCKET=${SHAUDIT_SOCKET:-/run/shaudit/shaudit.sock}
PRELOAD=${SHAUDIT_PRELOAD:-/opt/shaudit/lib/libshaudit_preload.so}
CONF=${CONTAINERD_CONFIG_FILE:-/etc/containerd/config.toml}

say() { echo "shaudit-runtime-wrapper: $*"; }
die() { echo "shaudit-runtime-wrapper: $*" >&2; exit 1; }

case "$MODE" in
  print|patch) ;;
  *) die "CONTAINERD_CONFIG must be print or patch, not '$MODE'" ;;
esac

# Writes stdin to FILE (a path under $HOST) through a temporary file and a rename, only when
# the content differs; MODE is the new file's mode. Says whether it changed anything.
put() {
  file=$1 mode=$2
  tmp=$file.shaudit-new
  cat >"$tmp"
  if cmp -s "$tmp" "$file"; then
    rm -f "$tmp"
    return 1
  fi
  chmod "$mode" "$tmp"
  mv -f "$tmp" "$file"
}

# --- the wrapper ---------------------------------------------------------------------------
[ -f "$SRC" ] || die "$SRC is not in this image (its shaudit package has no OCI runtime wrapper)"
mkdir -p "$HOST/opt/shaudit/bin" "$HOST/etc/shaudit"
if put "$HOST$WRAPPER" 0755 <"$SRC"; then
  say "installed $WRAPPER"
else
  say "$WRAPPER is up to date"
fi

# --- containerd's configuration: where the runtime "runc" is set ---------------------------
# Config version 2 (containerd 1.x) and 3 (containerd 2.x) name the CRI runtime's table
# differently; version 1 (no `version` line) is not handled.
SECTION_RE='^[[:blank:]]*\[[[:blank:]]*plugins\.["'"'"']io\.containerd\.(grpc\.v1\.cri["'"'"']\.containerd|cri\.v1\.runtime["'"'"']\.containerd)\.runtimes\.runc\.options[[:blank:]]*\]'
version=
old_binary=
if [ -f "$HOST$CONF" ]; then
  version=$(sed -n 's/^[[:blank:]]*version[[:blank:]]*=[[:blank:]]*\([0-9]*\).*/\1/p' "$HOST$CONF" | head -n 1)
  # BinaryName in the runc options table, if set.
  old_binary=$(SECTION_RE=$SECTION_RE awk '
    BEGIN { re = ENVIRON["SECTION_RE"] }
    /^[[:blank:]]*\[/ { in_sec = ($0 ~ re); next }
    in_sec && /^[[:blank:]]*BinaryName[[:blank:]]*=/ {
      v = $0; sub(/^[^=]*=[[:blank:]]*/, "", v); sub(/[[:blank:]]*(#.*)?$/, "", v)
      gsub(/^["'"'"']|["'"'"']$/, "", v); print v; exit
    }' "$HOST$CONF")
fi
case "$version" in
  3) header="[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]" ;;
  *) header='[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]' ;;
esac

# --- the real runtime the wrapper runs -------------------------------------------------------
# RUNTIME if given; else what containerd ran before (BinaryName); else the runc on the node's
# PATH, as containerd's shim finds it.
if [ -z "$RUNTIME" ] && [ -n "$old_binary" ] && [ "$old_binary" != "$WRAPPER" ]; then
  RUNTIME=$old_binary
fi
if [ -z "$RUNTIME" ] && [ -f "$HOST$SETTINGS" ]; then
  RUNTIME=$(sed -n 's/^runtime:[[:blank:]]*//p' "$HOST$SETTINGS" | head -n 1)
fi
if [ -z "$RUNTIME" ]; then
  for d in /usr/local/sbin /usr/local/bin /usr/sbin /usr/bin /sbin /bin; do
    if [ -x "$HOST$d/runc" ]; then
      RUNTIME=$d/runc
      break
    fi
  done
fi
[ -n "$RUNTIME" ] || die "no runc found on the node (looked in /usr/local/sbin, /usr/local/bin, /usr/sbin, /usr/bin, /sbin, /bin): set RUNTIME"
[ "$RUNTIME" != "$WRAPPER" ] || die "RUNTIME names the wrapper itself"

if put "$HOST$SETTINGS" 0644 <<EOF
# Written by shaudit's runtime wrapper installer (installer/kubernetes/runtime-wrapper).
runtime: $RUNTIME
socket: $SOCKET
preload: $PRELOAD
EOF
then
  say "wrote $SETTINGS (runtime: $RUNTIME)"
else
  say "$SETTINGS is up to date (runtime: $RUNTIME)"
fi

# --- containerd -----------------------------------------------------------------------------
if [ "$old_binary" = "$WRAPPER" ]; then
  say "$CONF already runs runc through the wrapper"
  exit 0
fi
if [ "$MODE" = print ]; then
  say "containerd is not changed (CONTAINERD_CONFIG=print). To run new containers through the"
  say "wrapper, put this into the node's $CONF, then restart containerd"
  say "(systemctl restart containerd):"
  echo "$header"
  echo "  BinaryName = \"$WRAPPER\""
  say "or set CONTAINERD_CONFIG=patch in runtime-wrapper/kustomization.yaml and apply it again."
  exit 0
fi

[ -f "$HOST$CONF" ] || die "$CONF does not exist (containerd runs on its defaults): write it first, e.g. containerd config default > $CONF"
case "$version" in
  2|3) ;;
  *) die "$CONF is a version 1 configuration (or has no version line): not patched; add the lines above by hand" ;;
esac
if [ ! -e "$HOST$CONF.shaudit-orig" ]; then
  cp -p "$HOST$CONF" "$HOST$CONF.shaudit-orig"
  say "kept the original as $CONF.shaudit-orig"
fi
# BinaryName replaced in, or added at the end of, the runc options table; the table added at
# the end of the file when there is none.
SECTION_RE=$SECTION_RE LINE="BinaryName = \"$WRAPPER\"" HEADER=$header awk '
  BEGIN { re = ENVIRON["SECTION_RE"]; line = ENVIRON["LINE"]; header = ENVIRON["HEADER"] }
  function add() { if (in_sec && !done) { print indent line; done = 1 } }
  /^[[:blank:]]*\[/ {
    add()
    in_sec = ($0 ~ re)
    if (in_sec) { indent = $0; sub(/[^[:blank:]].*$/, "", indent); indent = indent "  " }
    print; next
  }
  in_sec && /^[[:blank:]]*BinaryName[[:blank:]]*=/ {
    ind = $0; sub(/[^[:blank:]].*$/, "", ind); print ind line; done = 1; next
  }
  { print }
  END {
    add()
    if (!done) { print ""; print header; print "  " line }
  }' "$HOST$CONF" | put "$HOST$CONF" "$(stat -c %a "$HOST$CONF")" || true
say "patched $CONF: runc runs through $WRAPPER; restart containerd on this node to apply"
say "(systemctl restart containerd). To undo: restore $CONF.shaudit-orig and restart containerd."
