#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Rule evaluation cost per record with the default rule set (issue "rules and alerts").
# Not a test: nothing runs it from ctest. Writes nothing; prints a Markdown table.
#
#   tests/bench/run_rules_bench.sh [ROUNDS]     # default 20000 evaluations per repetition
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
build="${BUILD:-$repo/build}"
cmake --build "$build" --target rules_bench >/dev/null
echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), kernel $(uname -r)"
echo "tree: $(git -C "$repo" rev-parse --short HEAD)$(git -C "$repo" diff --quiet || echo ' (with local changes)')"
"$build/tests/rules_bench" "$repo/daemon/rules/default.yaml" "${1:-20000}"
