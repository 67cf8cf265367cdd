#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Writes the shaudit base layer for container images: a tarball that, extracted over a glibc
# image's root (`ADD shaudit-layer.tar /` in a Dockerfile, see Dockerfile.snippet), makes the
# interposer active in every dynamically linked process of the container:
#   /usr/lib/shaudit/libshaudit_preload.so   the interposer (0644)
#   /etc/ld.so.preload                       listing it (replaces the image's own, if any)
#   /run/shaudit/                            where shauditd puts its socket
# shauditd reaches such containers by itself: it binds /run/shaudit/shaudit.sock inside each
# running container it finds in the runtimes' state directories (`container_state_dirs`).
#
#   installer/container/build-layer.sh OUT.tar [INTERPOSER]
# INTERPOSER defaults to the installed one, else this checkout's build/.
set -euo pipefail
out=${1:?usage: build-layer.sh OUT.tar [INTERPOSER]}
lib=${2:-}
if [ -z "$lib" ]; then
  for c in /usr/lib/*-linux-gnu/libshaudit_preload.so /usr/local/lib/*-linux-gnu/libshaudit_preload.so \
    "$(dirname "$0")/../../build/preload/libshaudit_preload.so"; do
    [ -f "$c" ] && { lib=$c; break; }
  done
fi
[ -n "$lib" ] && [ -f "$lib" ] || { echo "build-layer.sh: no interposer found; give its path" >&2; exit 1; }
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
install -d -m 0755 "$stage/usr/lib/shaudit" "$stage/etc" "$stage/run/shaudit"
install -m 0644 "$lib" "$stage/usr/lib/shaudit/libshaudit_preload.so"
echo /usr/lib/shaudit/libshaudit_preload.so >"$stage/etc/ld.so.preload"
chmod 0644 "$stage/etc/ld.so.preload"
# Reproducible: fixed owner, order and times.
tar -C "$stage" --owner=0 --group=0 --numeric-owner --sort=name --mtime=@0 \
  -cf "$out" ./usr/lib/shaudit ./etc/ld.so.preload ./run/shaudit
echo "build-layer.sh: wrote $out (interposer: $lib)"
