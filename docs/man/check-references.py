#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Every `see "SECTION"` in README.md (and in the man page sources) names a heading of the
README that exists, word for word. Exit 1 listing the ones that do not."""
import re
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[2]


def main():
    readme = (SRC / "README.md").read_text()
    headings = {h.strip() for h in re.findall(r"^#+ (.*)$", readme, re.M)}
    missing = []
    for f in [SRC / "README.md", *sorted((SRC / "docs/man").glob("*.md"))]:
        for n, line in enumerate(f.read_text().splitlines(), 1):
            for ref in re.findall(r'[Ss]ee "([^"]+)"(?! in the contract)', line):
                if ref not in headings:
                    missing.append(f"{f.relative_to(SRC)}:{n}: no README section \"{ref}\"")
    for m in missing:
        print(m)
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
