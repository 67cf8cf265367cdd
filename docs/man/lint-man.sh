#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# lint-man.sh PAGE...: each built man page renders at 80 columns without a groff or man
# warning, and lexgrog (what mandb and lintian use) finds its NAME section.
status=0
for page in "$@"; do
  warnings=$(MANWIDTH=80 man --warnings -E UTF-8 -l "$page" 2>&1 >/dev/null)
  if [ -n "$warnings" ]; then
    printf '%s: warnings from man:\n%s\n' "$page" "$warnings"
    status=1
  fi
  if ! lexgrog "$page" >/dev/null; then
    echo "$page: lexgrog finds no NAME section"
    status=1
  fi
done
exit $status
