#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Checks that the man page sources name every option, key and command the code has.

usage: check-coverage.py --shauditd PATH --shaudit PATH

Asks the programs themselves, so a key or option added to the code without a word in its man
page fails the test docs/man_pages_cover_code:
  - configuration keys: what shauditd lists as known when a file has an unknown key (each
    must be a row of a table in shauditd.yaml.5.md), and likewise for an output's keys (each
    must appear in shauditd.yaml.5.md);
  - shauditd's options: the --options of `shauditd --help` (in shauditd.8.md);
  - shaudit's commands and options: the first word of each command line and the --options
    of `shaudit --help` (in shaudit.1.md);
  - the PAM module's options: the names pam_module/pam_shaudit.c compares its arguments with
    (in pam_shaudit.8.md).
"""
import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent


def known_from_error(shauditd, config, pattern):
    """The list of known keys shauditd names when CONFIG has an unknown one."""
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
        f.write(config)
        f.flush()
        run = subprocess.run([shauditd, "--check-config", "--config", f.name],
                             capture_output=True, text=True)
    m = re.search(pattern, run.stderr)
    if run.returncode == 0 or not m:
        sys.exit(f"check-coverage: cannot read the known keys from shauditd's error "
                 f"(exit {run.returncode}): {run.stderr.strip()}")
    return [k.strip() for k in m.group(1).split(",")]


def help_text(program):
    run = subprocess.run([program, "--help"], capture_output=True, text=True)
    if run.returncode != 0:
        sys.exit(f"check-coverage: {program} --help exited {run.returncode}")
    return run.stdout


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shauditd", required=True)
    ap.add_argument("--shaudit", required=True)
    args = ap.parse_args()
    pages = {p: (HERE / f"{p}.md").read_text(encoding="utf-8")
             for p in ("shauditd.8", "shaudit.1", "pam_shaudit.8", "shauditd.yaml.5")}
    missing = []

    def need(page, what, found):
        if not found:
            missing.append(f"{page}.md: {what}")

    yaml5 = pages["shauditd.yaml.5"]
    for key in known_from_error(args.shauditd, "no_such_key_for_the_man_page_check: 1\n",
                                r"known keys: ([^)]*)\)"):
        need("shauditd.yaml.5", f"configuration key '{key}' (a table row '| `{key}` |')",
             re.search(rf"^\| `{re.escape(key)}`", yaml5, re.M))
    for key in known_from_error(args.shauditd,
                                "outputs:\n  - {type: stdout, no_such_key_for_the_check: 1}\n",
                                r"\(known: ([^)]*)\)"):
        need("shauditd.yaml.5", f"output key '{key}'",
             re.search(rf"`{re.escape(key)}(?![A-Za-z0-9_])", yaml5))

    for opt in sorted(set(re.findall(r"--[a-z][a-z-]*", help_text(args.shauditd)))):
        need("shauditd.8", f"option '{opt}'", opt in pages["shauditd.8"])

    cli = help_text(args.shaudit)
    commands = set(re.findall(r"^  ([a-z]+) ", cli, re.M))
    if not commands:
        sys.exit("check-coverage: no commands found in `shaudit --help`")
    for cmd in sorted(commands):
        need("shaudit.1", f"command '{cmd}'", re.search(rf"`{cmd}[ `]", pages["shaudit.1"]))
    for opt in sorted(set(re.findall(r"--[a-z][a-z-]*", cli))):
        need("shaudit.1", f"option '{opt}'", opt in pages["shaudit.1"])

    pam_c = (ROOT / "pam_module" / "pam_shaudit.c").read_text(encoding="utf-8")
    pam_opts = set(re.findall(r'str(?:n)?cmp\(a, "([a-z_]+=?[a-z]*)"', pam_c))
    if not pam_opts:
        sys.exit("check-coverage: no options found in pam_module/pam_shaudit.c")
    for opt in sorted(pam_opts):
        need("pam_shaudit.8", f"PAM option '{opt}'", f"`{opt}" in pages["pam_shaudit.8"])

    if missing:
        print("check-coverage: the man pages miss what the code has:", file=sys.stderr)
        for m in missing:
            print(f"  {m}", file=sys.stderr)
        return 1
    print(f"check-coverage: OK ({len(commands)} shaudit commands, {len(pam_opts)} PAM options, "
          f"configuration and output keys, shauditd options)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
