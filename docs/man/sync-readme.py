#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Copies the reference text of the man page sources into README.md.

The man page sources docs/man/PAGE.md are the one source of truth for the reference text the
README shows too (options, signals, configuration keys, PAM options, CLI commands). In a
source, such a region is marked

    <!-- readme:NAME begin -->
    ...
    <!-- readme:NAME end -->

and README.md holds a copy of it between

    <!-- man:PAGE NAME begin -->
    <!-- man:PAGE NAME end -->

where PAGE is the source's file name without ".md" (e.g. shauditd.yaml.5). Edit the source,
then run this script; never edit the text between README markers by hand.

usage: sync-readme.py [--check] [--readme FILE] [--man-dir DIR]
  (no option)  rewrite README.md's blocks from the sources
  --check      change nothing; exit 1 with a diff when README.md is not what the sources
               make it (CTest runs this), or when a marker is unpaired, names an unknown page
               or region, or a source region is not in the README
"""
import argparse
import difflib
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SRC_MARK = re.compile(r"^<!-- readme:([A-Za-z0-9_-]+) (begin|end) -->$")
README_MARK = re.compile(r"^<!-- man:(\S+) ([A-Za-z0-9_-]+) (begin|end) -->$")


class SyncError(Exception):
    pass


def strip_blank_edges(lines):
    while lines and not lines[0].strip():
        lines = lines[1:]
    while lines and not lines[-1].strip():
        lines = lines[:-1]
    return lines


def source_regions(path):
    """NAME -> the region's lines (without blank lines at its edges), in file order."""
    regions = {}
    open_name, open_line, body = None, 0, []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        m = SRC_MARK.match(line.strip())
        if not m:
            if line.strip().startswith("<!-- readme:"):
                raise SyncError(f"{path}:{n}: malformed marker (want '<!-- readme:NAME begin -->')")
            if open_name:
                body.append(line)
            continue
        name, kind = m.groups()
        if kind == "begin":
            if open_name:
                raise SyncError(f"{path}:{n}: region {name} begins inside {open_name} "
                                f"(line {open_line})")
            if name in regions:
                raise SyncError(f"{path}:{n}: region {name} is marked twice")
            open_name, open_line, body = name, n, []
        else:
            if name != open_name:
                raise SyncError(f"{path}:{n}: 'end' of {name} without its 'begin'")
            regions[name] = strip_blank_edges(body)
            open_name = None
    if open_name:
        raise SyncError(f"{path}:{open_line}: region {open_name} has no 'end'")
    return regions


def load_sources(man_dir):
    pages = {}
    for path in sorted(man_dir.glob("*.md")):
        pages[path.name[:-3]] = (path, source_regions(path))
    if not pages:
        raise SyncError(f"{man_dir}: no man page sources (*.md)")
    return pages


def render(readme_path, pages):
    """README.md's text with every marked block replaced by its source region."""
    out, used = [], set()
    lines = readme_path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        m = README_MARK.match(line.strip())
        if not m:
            if line.strip().startswith("<!-- man:"):
                raise SyncError(f"{readme_path}:{i + 1}: malformed marker "
                                f"(want '<!-- man:PAGE NAME begin -->')")
            out.append(line)
            i += 1
            continue
        page, name, kind = m.groups()
        where = f"{readme_path}:{i + 1}"
        if kind != "begin":
            raise SyncError(f"{where}: 'end' of {page} {name} without its 'begin'")
        if page not in pages:
            raise SyncError(f"{where}: no man page source docs/man/{page}.md")
        path, regions = pages[page]
        if name not in regions:
            raise SyncError(f"{where}: {path.name} has no region {name} "
                            f"(it has: {', '.join(regions) or 'none'})")
        if (page, name) in used:
            raise SyncError(f"{where}: {page} {name} is in the README twice")
        used.add((page, name))
        end = f"<!-- man:{page} {name} end -->"
        j = i + 1
        while j < len(lines) and lines[j].strip() != end:
            if README_MARK.match(lines[j].strip()):
                raise SyncError(f"{where}: {page} {name} has no '{end}' before line {j + 1}")
            j += 1
        if j == len(lines):
            raise SyncError(f"{where}: {page} {name} has no '{end}'")
        # Blank lines around the copy keep the markers out of the Markdown blocks beside them.
        out += [line, ""] + regions[name] + ["", lines[j]]
        i = j + 1
    missing = [f"{page} {name}" for page, (_, regions) in pages.items() for name in regions
               if (page, name) not in used]
    if missing:
        raise SyncError(f"{readme_path}: no block for source region(s): {', '.join(missing)} "
                        f"(add '<!-- man:PAGE NAME begin -->' / 'end' markers where it belongs)")
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check", action="store_true",
                    help="exit 1 with a diff when README.md differs from the sources")
    ap.add_argument("--readme", type=Path, default=HERE.parent.parent / "README.md")
    ap.add_argument("--man-dir", type=Path, default=HERE)
    args = ap.parse_args()
    try:
        old = args.readme.read_text(encoding="utf-8")
        new = render(args.readme, load_sources(args.man_dir))
    except (OSError, SyncError) as e:
        print(f"sync-readme: {e}", file=sys.stderr)
        return 1
    if old == new:
        if not args.check:
            print(f"{args.readme}: up to date")
        return 0
    if args.check:
        sys.stdout.writelines(difflib.unified_diff(
            old.splitlines(keepends=True), new.splitlines(keepends=True),
            f"{args.readme} (as it is)", f"{args.readme} (from {args.man_dir}/*.md)"))
        print(f"sync-readme: {args.readme} differs from the man page sources: edit "
              f"docs/man/*.md, not the README's marked blocks, then run docs/man/sync-readme.py",
              file=sys.stderr)
        return 1
    args.readme.write_text(new, encoding="utf-8")
    print(f"{args.readme}: blocks rewritten from {args.man_dir}/*.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
