#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Builds shaudit's node image (shauditd for the DaemonSet in installer/kubernetes) without a
# container engine or registry: a Debian 12 root from debootstrap, this project's Debian
# package installed into it with dpkg, assembled as an OCI image layout with umoci.
#
#   installer/kubernetes/build-node-image.sh OUT_DIR [DEB | BUILD_DIR]
#
# DEB is a shaudit_<version>_amd64.deb; BUILD_DIR a CMake build directory, from which the
# package is made with `cpack -G DEB` (default: $SHAUDIT_BUILD, else ./build). Writes
#   OUT_DIR       an OCI image layout holding shaudit-node:<version> (index.json names it
#                 `shaudit-node:<version>`, and for containerd's import
#                 `docker.io/library/shaudit-node:<version>`, the name the kubelet asks for)
#   OUT_DIR.tar   the same layout as one archive, for `ctr images import`
# Load it on each node:  ctr -n k8s.io images import OUT_DIR.tar
# or push it:           skopeo copy oci:OUT_DIR:shaudit-node:<version> docker://REGISTRY/shaudit-node:<version>
#
# Needs root (chroot, dpkg, file ownership), debootstrap, umoci, dpkg-deb and the Debian
# mirror (apt's, or $MIRROR). The debootstrapped root is cached as a tarball in
# $SHAUDIT_IMAGE_CACHE (default /var/cache/shaudit-node-image), one per set of packages.
set -euo pipefail

usage() { echo "usage: $0 OUT_DIR [DEB | BUILD_DIR]" >&2; exit 2; }
die() { echo "build-node-image: $*" >&2; exit 1; }
say() { echo "build-node-image: $*"; }

if [ $# -lt 1 ] || [ $# -gt 2 ]; then usage; fi
case "$1" in -h|--help) usage ;; esac
OUT=$(realpath -m "$1")
SRC_ARG=${2:-${SHAUDIT_BUILD:-build}}
CACHE=${SHAUDIT_IMAGE_CACHE:-/var/cache/shaudit-node-image}
SUITE=bookworm
NAME=shaudit-node

[ "$(id -u)" = 0 ] || die "run as root (chroot, dpkg into the image's root, file ownership)"
for t in debootstrap umoci dpkg-deb unshare chroot tar sha256sum python3; do
  command -v "$t" >/dev/null || die "$t is missing (Debian: apt-get install debootstrap umoci)"
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/shaudit-node-image.XXXXXX")
cleanup() { rm -rf --one-file-system "$WORK"; }
trap cleanup EXIT

# --- the package -----------------------------------------------------------------------------
if [ -f "$SRC_ARG" ]; then
  DEB=$(realpath "$SRC_ARG")
elif [ -f "$SRC_ARG/CPackConfig.cmake" ]; then
  command -v cpack >/dev/null || die "cpack is missing"
  say "building the Debian package from $SRC_ARG with cpack"
  cpack -G DEB --config "$(realpath "$SRC_ARG")/CPackConfig.cmake" -B "$WORK/deb" >"$WORK/cpack.log" 2>&1 ||
    { cat "$WORK/cpack.log" >&2; die "cpack failed"; }
  DEB=
  for f in "$WORK"/deb/shaudit_*_amd64.deb; do if [ -f "$f" ]; then DEB=$f; fi; done
  [ -n "$DEB" ] || die "cpack wrote no shaudit_*_amd64.deb"
else
  die "$SRC_ARG is neither a .deb nor a build directory (no CPackConfig.cmake)"
fi
[ "$(dpkg-deb -f "$DEB" Package)" = shaudit ] || die "$DEB is not the shaudit package"
VERSION=$(dpkg-deb -f "$DEB" Version)
TAG=$NAME:$VERSION
say "package $(basename "$DEB") (version $VERSION)"

# --- the Debian root (cached) ----------------------------------------------------------------
# minbase (Essential and required packages: a shell, coreutils, mount, util-linux) plus what the
# package depends on, so that dpkg -i needs nothing else.
DEPS=$( { dpkg-deb -f "$DEB" Pre-Depends; dpkg-deb -f "$DEB" Depends; } |
  tr ',' '\n' | sed 's/|.*//; s/(.*)//; s/:any//; s/[[:space:]]//g' | grep -v '^$' | sort -u | paste -sd, -)
mirror() {
  if [ -n "${MIRROR:-}" ]; then echo "$MIRROR"; return; fi
  local f m
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    m=$(sed -n 's/^URIs:[[:space:]]*\([^[:space:]]*\).*/\1/p' "$f" | head -n 1)
    [ -n "$m" ] && { echo "$m"; return; }
  done
  if [ -f /etc/apt/sources.list ]; then
    m=$(sed -n 's/^deb[[:space:]]\+\(\[[^]]*\][[:space:]]\+\)\?\([^[:space:]]*\).*/\2/p' /etc/apt/sources.list | head -n 1)
    [ -n "$m" ] && { echo "$m"; return; }
  fi
  echo http://deb.debian.org/debian
}
KEY=$(printf '%s %s' "$SUITE" "$DEPS" | sha256sum | cut -c1-12)
BASE=$CACHE/$SUITE-minbase-$KEY.tar
if [ ! -f "$BASE" ]; then
  mkdir -p "$CACHE"
  say "debootstrapping Debian $SUITE (minbase + $DEPS) once, into $BASE"
  debootstrap --variant=minbase --include="$DEPS" "$SUITE" "$WORK/base" "$(mirror)" >"$WORK/debootstrap.log" 2>&1 ||
    { tail -n 30 "$WORK/debootstrap.log" >&2; die "debootstrap failed"; }
  tar -C "$WORK/base" --numeric-owner -cf "$BASE.tmp" .
  mv -f "$BASE.tmp" "$BASE"
  rm -rf --one-file-system "$WORK/base"
fi

# --- the package installed into a copy of it ---------------------------------------------------
ROOT=$WORK/rootfs
mkdir "$ROOT"
tar -C "$ROOT" --numeric-owner -xpf "$BASE"
cp "$DEB" "$ROOT/tmp/shaudit.deb"
# No service starts in an image build.
printf '#!/bin/sh\nexit 101\n' >"$ROOT/usr/sbin/policy-rc.d"
chmod 0755 "$ROOT/usr/sbin/policy-rc.d"
# dpkg in a chroot from a private mount namespace: /proc and /dev for the maintainer scripts,
# gone with the namespace.
# shellcheck disable=SC2016 # $1 is the inner shell's
unshare --mount --propagation private -- sh -ec '
  mount -t proc proc "$1/proc"
  mount --rbind /dev "$1/dev"
  chroot "$1" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
    DEBIAN_FRONTEND=noninteractive dpkg -i /tmp/shaudit.deb' sh "$ROOT" >"$WORK/dpkg.log" 2>&1 ||
  { cat "$WORK/dpkg.log" >&2; die "dpkg -i failed in the image's root"; }

# What a daemon image must not carry or does not need:
# - the signing key the package's postinst made: the key comes from the Secret, one per
#   cluster, never baked into an image;
# - the unit's enablement, the package's and apt's caches, documentation, logs.
rm -f "$ROOT/etc/shaudit/signing.key" "$ROOT/etc/shaudit/signing.key.pub" \
  "$ROOT/usr/sbin/policy-rc.d" "$ROOT/tmp/shaudit.deb"
rm -rf "$ROOT/etc/systemd/system/multi-user.target.wants/shauditd.service" \
  "$ROOT"/var/cache/apt/* "$ROOT"/var/lib/apt/lists/* "$ROOT"/var/cache/debconf/*-old \
  "$ROOT"/usr/share/doc/* "$ROOT"/usr/share/man/* "$ROOT"/usr/share/info/* \
  "$ROOT"/usr/share/locale/* "$ROOT"/var/log/*.log "$ROOT"/var/log/apt/* "$ROOT"/tmp/* "$ROOT"/var/tmp/*
# The runtime writes these per container (the kubelet mounts them).
rm -f "$ROOT/etc/hostname" "$ROOT/etc/resolv.conf"
# Mount points of the DaemonSet's volumes.
mkdir -p "$ROOT/etc/shaudit/key" "$ROOT/etc/shaudit/rules.d" "$ROOT/run/shaudit" "$ROOT/run/containerd" \
  "$ROOT/run/runc" "$ROOT/run/containers" "$ROOT/opt/shaudit" "$ROOT/var/log/shaudit" "$ROOT/var/lib/shaudit"
[ -x "$ROOT/usr/sbin/shauditd" ] || die "the package did not install /usr/sbin/shauditd"
[ -f "$ROOT/usr/lib/x86_64-linux-gnu/libshaudit_preload.so" ] || die "the package did not install the interposer"
chroot "$ROOT" /usr/sbin/shauditd --version >/dev/null || die "shauditd does not run in the image's root"

# --- the OCI image layout ----------------------------------------------------------------------
if [ -e "$OUT" ]; then
  [ -f "$OUT/oci-layout" ] || die "$OUT exists and is not an OCI image layout: not replacing it"
  rm -rf --one-file-system "$OUT"
fi
mkdir -p "$(dirname "$OUT")"
umoci init --layout "$OUT"
umoci new --image "$OUT:$TAG"
umoci unpack --image "$OUT:$TAG" "$WORK/bundle" >/dev/null
tar -C "$ROOT" --numeric-owner --xattrs -cf - . | tar -C "$WORK/bundle/rootfs" --numeric-owner --xattrs -xpf -
umoci repack --image "$OUT:$TAG" "$WORK/bundle"
umoci config --image "$OUT:$TAG" --os linux --architecture amd64 \
  --author "shaudit maintainers" \
  --config.entrypoint /usr/sbin/shauditd \
  --config.cmd=--config --config.cmd=/etc/shaudit/shauditd.yaml \
  --config.workingdir / \
  --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --config.stopsignal SIGTERM \
  --config.label org.opencontainers.image.title=shaudit-node \
  --config.label org.opencontainers.image.version="$VERSION" \
  --config.label org.opencontainers.image.description="shauditd for Kubernetes nodes (installer/kubernetes)" \
  --history.created_by "installer/kubernetes/build-node-image.sh ($(basename "$DEB"))"
umoci gc --layout "$OUT"
# containerd's importer names an image by io.containerd.image.name (a full reference); the
# OCI ref.name stays `shaudit-node:<version>` for umoci and skopeo.
python3 - "$OUT/index.json" "$TAG" "docker.io/library/$TAG" <<'EOF'
import json, sys
path, tag, full = sys.argv[1:]
index = json.load(open(path))
hits = [m for m in index["manifests"] if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag]
if len(hits) != 1:
    sys.exit(f"index.json: expected one manifest named {tag}, found {len(hits)}")
hits[0]["annotations"]["io.containerd.image.name"] = full
json.dump(index, open(path, "w"), separators=(",", ":"))
EOF
chmod 0644 "$OUT/index.json"
rm -f "$OUT.tar"
tar -C "$OUT" --numeric-owner -cf "$OUT.tar" oci-layout index.json blobs

size=$(du -sm "$ROOT" | cut -f1)
say "wrote the OCI image layout $OUT ($TAG, root filesystem ${size} MiB) and $OUT.tar"
say "load it on a node:  ctr -n k8s.io images import $OUT.tar"
say "or push it:         skopeo copy oci:$OUT:$TAG docker://REGISTRY/$TAG"
