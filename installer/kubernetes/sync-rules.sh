#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Keeps rules/00-default.yaml, the rule set the ConfigMap shaudit-rules carries, equal to the
# project's default rule set (daemon/rules/default.yaml). kustomize reads no file outside this
# directory, so the ConfigMap needs a copy here.
#   sync-rules.sh           copy daemon/rules/default.yaml over rules/00-default.yaml
#   sync-rules.sh --check   exit 1 (saying so) when the copy differs
set -eu
here=$(cd "$(dirname "$0")" && pwd)
src=$here/../../daemon/rules/default.yaml
dst=$here/rules/00-default.yaml
case "${1:-}" in
  --check)
    if cmp -s "$src" "$dst"; then exit 0; fi
    echo "installer/kubernetes/rules/00-default.yaml differs from daemon/rules/default.yaml;" \
      "run installer/kubernetes/sync-rules.sh" >&2
    exit 1 ;;
  "")
    cp "$src" "$dst"
    echo "copied daemon/rules/default.yaml to installer/kubernetes/rules/00-default.yaml" ;;
  *)
    echo "usage: sync-rules.sh [--check]" >&2
    exit 2 ;;
esac
