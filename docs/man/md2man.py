#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Builds a man page from its Markdown source (docs/man/PAGE.md) with go-md2man.

usage: md2man.py --go-md2man PATH --version VERSION SOURCE OUTPUT

The sources are written for GitHub as much as for man: their reference regions are copied
into README.md (sync-readme.py), where tables read best. A man page reads better as a list,
and go-md2man lays tables out with tbl, which at 80 columns overflows and warns. So before
go-md2man runs:
  - HTML comments (the SPDX line, the readme: markers), each on lines of its own, are dropped;
  - every table becomes a definition list: the first cell is the term, middle cells are
    added to it as "(HEADER: VALUE)" ("(VALUE)" when the value is already in parentheses),
    the last cell is the definition; "\\|" in a cell is a "|";
  - a text line that starts with "." or "'" is joined to the line before it (go-md2man
    would pass it on at the start of a roff line, where it reads as a request);
  - @VERSION@ becomes VERSION.
and after it, its ".nh" (no hyphenation) moves below ".TH", which would otherwise turn
hyphenation back on: option names and paths must not be split. Anything go-md2man says on
stderr (a Markdown construct it cannot render) is an error.
"""
import argparse
import re
import subprocess
import sys
from pathlib import Path

COMMENT = re.compile(r"^\s*<!--.*-->\s*$")
SEPARATOR = re.compile(r"^\s*\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*$")


def cells(line):
    """The cells of a Markdown table row, with "\\|" turned into "|"."""
    s = line.strip()
    if s.startswith("|"):
        s = s[1:]
    if s.endswith("|") and not s.endswith("\\|"):
        s = s[:-1]
    out, cur, i = [], "", 0
    while i < len(s):
        if s.startswith("\\|", i):
            cur += "|"
            i += 2
        elif s[i] == "|":
            out.append(cur.strip())
            cur = ""
            i += 1
        else:
            cur += s[i]
            i += 1
    out.append(cur.strip())
    return out


def table_to_list(header, rows, where):
    out = []
    for n, row in rows:
        if len(row) != len(header):
            sys.exit(f"{where}:{n}: {len(row)} cells in a table of {len(header)} columns")
        if not row[-1]:
            sys.exit(f"{where}:{n}: the last cell (the definition) is empty")
        extra = []
        for name, value in zip(header[1:-1], row[1:-1]):
            if not value:
                continue
            if value.startswith("(") and value.endswith(")"):
                extra.append(value[1:-1])
            else:
                extra.append(f"{name}: {value}")
        term = row[0] + (f" ({'; '.join(extra)})" if extra else "")
        out += [term, f": {row[-1]}", ""]
    return out


def prepare(text, where, version):
    lines = text.replace("@VERSION@", version).splitlines()
    out, i, fenced = [], 0, False
    while i < len(lines):
        line = lines[i]
        if line.lstrip().startswith("```"):
            fenced = not fenced
            out.append(line)
            i += 1
            continue
        if fenced:
            out.append(line)
            i += 1
            continue
        if COMMENT.match(line):
            i += 1
            continue
        if line.lstrip().startswith("<!--"):
            end = next((j for j in range(i, len(lines)) if "-->" in lines[j]), None)
            if end is None or not lines[end].rstrip().endswith("-->"):
                sys.exit(f"{where}:{i + 1}: an HTML comment must end a line with '-->'")
            i = end + 1
            continue
        if "<!--" in line:
            sys.exit(f"{where}:{i + 1}: an HTML comment must start a line of its own")
        if (line.lstrip().startswith("|") and i + 1 < len(lines)
                and SEPARATOR.match(lines[i + 1]) and "-" in lines[i + 1]):
            header = cells(line)
            j, rows = i + 2, []
            while j < len(lines) and lines[j].lstrip().startswith("|"):
                rows.append((j + 1, cells(lines[j])))
                j += 1
            if out and out[-1].strip():
                out.append("")
            out += table_to_list(header, rows, where)
            i = j
            continue
        indented_code = line.startswith(("    ", "\t")) and (not out or not out[-1].strip()
                                                            or out[-1].startswith(("    ", "\t")))
        if (not indented_code and line.lstrip().startswith((".", "'"))
                and out and out[-1].strip()):
            out[-1] = out[-1].rstrip() + " " + line.strip()
            i += 1
            continue
        out.append(line)
        i += 1
    # Dropped comments leave runs of blank lines: one is enough.
    squeezed = []
    for line in out:
        if line.strip() or (squeezed and squeezed[-1].strip()):
            squeezed.append(line if line.strip() else "")
    while squeezed and not squeezed[-1]:
        squeezed.pop()
    return "\n".join(squeezed) + "\n"


def postprocess(roff, where):
    lines = roff.splitlines()
    th = next((i for i, line in enumerate(lines) if line.startswith(".TH ")), None)
    if th is None:
        sys.exit(f"{where}: go-md2man wrote no .TH line (the source must start with "
                 f"'% NAME SECTION ...')")
    lines = [line for line in lines if line != ".nh"]
    th = next(i for i, line in enumerate(lines) if line.startswith(".TH "))
    lines.insert(th + 1, ".nh")
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--go-md2man", default="go-md2man", help="the go-md2man program")
    ap.add_argument("--version", required=True, help="replaces @VERSION@")
    ap.add_argument("source", type=Path)
    ap.add_argument("output", type=Path)
    args = ap.parse_args()
    where = str(args.source)
    markdown = prepare(args.source.read_text(encoding="utf-8"), where, args.version)
    try:
        run = subprocess.run([args.go_md2man], input=markdown, capture_output=True,
                             text=True, encoding="utf-8")
    except OSError as e:
        sys.exit(f"{where}: cannot run {args.go_md2man}: {e}")
    if run.returncode != 0 or run.stderr.strip():
        sys.exit(f"{where}: go-md2man failed (exit {run.returncode}):\n{run.stderr}")
    args.output.write_text(postprocess(run.stdout, where), encoding="utf-8")


if __name__ == "__main__":
    main()
