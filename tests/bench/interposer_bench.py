#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Helpers for tests/bench/run_interposer_bench.sh (not a test; nothing runs it from ctest).

  interposer_bench.py summarize DIR BASE EXECS [--order NAME,...]
      Reads the hyperfine JSON files DIR/round-*.json (one per round, every configuration
      once per round, named with hyperfine -n) and prints a Markdown table: per configuration
      the median wall time, the per-round ratio of wall time to BASE's in the same round
      (median, IQR, min-max), the median extra wall time per exec (EXECS execs per run), and
      the same ratio for user+system CPU time of the benchmarked process tree (less disturbed
      by other load; a daemon's CPU is not in it).

  interposer_bench.py count-execs LOG ARGV0... [--expect N] [--timeout S] [--count-only]
                                  [--source bpf|report] [--json FILE] [--daemon-cpu-s S]
                                  [--verify SHAUDIT PUBKEY]
      Counts exec records in a shauditd log whose argv[0] is one of ARGV0 (waits until N are
      there when --expect is given), with --source only those of that source ("bpf": the
      kernel's exec event is the record; "reported": true when the interposer's report matched
      it), and the loss and bypass records; prints them; exit 1 if short.

  interposer_bench.py latency --log LOG --socket SOCK --preload LIB --shell bash|dash
                              [--lines 200] [--delay-ms 2] [--out FILE]
      Types LINES short lines into an interactive shell on a pseudo-terminal, with the
      interposer preloaded, and measures for each the time from writing Enter to the pty
      until the line's command record is in LOG (tailed with inotify); prints p50/p90/p99/max.

  interposer_bench.py measure --out LOAD.json [--watch [NAME=]PID]... -- CMD...
      Runs CMD (one hyperfine invocation) and writes what the machine did meanwhile: wall time,
      busy CPU (/proc/stat), the CPU of CMD's process tree and of the watched pids (shauditd,
      bpftrace), the rest ("other": load the benchmark did not cause, in CPU s and in CPUs),
      the 1-minute load average before and after, the eBPF exec programs loaded. Exit: CMD's.

  interposer_bench.py settle --shaudit BIN --control CTL [--min-wait 1.3]
      Waits until shauditd's counters (kernel events, records written, queue) are still.

  interposer_bench.py count-bt OUT ARGV0... [--json FILE]
      Counts a bpftrace output file's lines (pid filename) and those whose filename's last
      component is that of one of ARGV0; empty filenames; "Lost N events".

  interposer_bench.py round-line DIR ROUND
      One line: each configuration's wall time in that round (new layout: DIR/runs/).

  interposer_bench.py ctr-rootfs ROOTFS PROGRAM[=PATH]...
      A container root filesystem for the container configurations (ctr-*): each PROGRAM (at
      PATH inside when given) with the libraries ldd lists and the loader, the host's
      /etc/ld.so.cache, /etc/passwd, /etc/group, the mount points runc needs.

  interposer_bench.py ctr-probe --runc RUNC --root ROOT --cid CID --log LOG [--execs N]
      The path an interactive `kubectl exec -it` takes, once, untimed by hyperfine: an
      interactive dash in the container through `runc exec -t` on a pseudo-terminal, loop A typed
      at its prompt. Checks in shauditd's LOG that the shell opened an implicit session naming
      the container CID and that the kernel's exec records of its N /bin/true execs are in it;
      prints the time from Enter to the next prompt. Exit 1 when a check fails.

  interposer_bench.py ctr-bundle BUNDLE CID NAME
      A runc bundle (config.json from `runc spec`) around BUNDLE/rootfs running `sleep
      infinity` detached, with CRI-style annotations naming the container NAME, and no
      cgroupsPath: runc puts the container's cgroups under the benchmark's own.

With run_interposer_bench.sh's layout (DIR/runs/rROUND-CONFIG.{hf,load,check}.json: one
hyperfine invocation per configuration and round, round 0 the warm-up), summarize also prints
per round the machine's other load, the two target figures (shaudit-bpf - empty-env and
snoopy - shaudit-bpf, per round) and the per-run checks of shaudit-bpf and bpftrace.
With --group PREFIX=BASE (run_container_bench.sh: ctr-=ctr-base) the configurations named
PREFIX... are taken against BASE of the same round, the target figures are given for each group,
and a side-by-side table sets each host configuration C beside PREFIX+C.
"""
import argparse
import glob
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "integration"))
sys.path.insert(0, str(HERE))
from benchlib import Tail, iso_to_ns, quantile, spread  # noqa: E402


# ------------------------------------------------------------------ summarize

def summarize(args):
    if os.path.isdir(os.path.join(args.dir, "runs")):
        return summarize_runs(args)
    rounds = sorted(glob.glob(os.path.join(args.dir, "round-*.json")),
                    key=lambda p: int(re.search(r"round-(\d+)", p).group(1)))
    per = {}    # name -> list of (round, mean time, user, system)
    order = []
    for path in rounds:
        r = int(re.search(r"round-(\d+)", path).group(1))
        for res in json.load(open(path))["results"]:
            name = res["command"]
            if name not in per:
                per[name] = []
                order.append(name)
            per[name].append((r, statistics.mean(res["times"]), res["user"], res["system"],
                              len(res["times"])))
    if args.base not in per:
        sys.exit(f"no configuration named {args.base!r} in {args.dir}")
    base = {r: t for r, t, *_ in per[args.base]}
    base_cpu = {r: u + s for r, _, u, s, _ in per[args.base]}
    if args.order:
        wanted = [n for n in args.order.split(",") if n in per]
        order = wanted + [n for n in order if n not in wanted]
    print(f"{len(rounds)} rounds; ratios are per round (same round's {args.base}); "
          f"{args.execs} execs per run\n")
    print("| configuration | runs | wall (s), median | min-max | wall ratio vs base, median "
          "| IQR | min-max | extra wall per exec (µs) | user+sys (s), median "
          "| user+sys ratio, median | IQR |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name in order:
        rows = per[name]
        ts = [t for _, t, *_ in rows]
        cpu = [u + s for _, _, u, s, _ in rows]
        ratios = [t / base[r] for r, t, *_ in rows if r in base]
        extra = [(t - base[r]) / args.execs * 1e6 for r, t, *_ in rows if r in base]
        cratios = [(u + s) / base_cpu[r] for r, _, u, s, _ in rows if r in base_cpu]
        runs = sum(n for *_, n in rows)
        print(f"| {name} | {runs} | {statistics.median(ts):.3f} | {min(ts):.3f}-{max(ts):.3f} "
              f"| **{statistics.median(ratios):.3f}** "
              f"| {quantile(ratios, 0.25):.3f}-{quantile(ratios, 0.75):.3f} "
              f"| {min(ratios):.3f}-{max(ratios):.3f} | {statistics.median(extra):+.0f} "
              f"| {statistics.median(cpu):.3f} | {statistics.median(cratios):.3f} "
              f"| {quantile(cratios, 0.25):.3f}-{quantile(cratios, 0.75):.3f} |")


# ------------------------------------------------------------------ count-execs

def parse_records(lines):
    """The records among lines that parse (a line being written does not)."""
    recs = []
    for line in lines:
        try:
            recs.append(json.loads(line))
        except ValueError:
            pass
    return recs


def read_records(path):
    with open(path, "rb") as f:
        return parse_records(f.read().splitlines())


def count_execs(args):
    want = set(args.argv0)
    deadline = time.monotonic() + args.timeout
    while True:
        recs = read_records(args.log)
        ex = [r for r in recs if r.get("type") == "exec" and r.get("argv")
              and r["argv"][0] in want and (args.source is None or r.get("source") == args.source)]
        n = len(ex)
        loss = [r for r in recs if r.get("type") == "loss"]
        if args.expect is None or n >= args.expect or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    reported = sum(1 for r in ex if r.get("reported") is True)
    bypass = [r for r in recs if r.get("type") == "bypass"]
    verify = None
    if args.verify:
        shaudit_bin, pub = args.verify
        verify = subprocess.run([shaudit_bin, "verify", args.log, "--pubkey", pub],
                                capture_output=True, text=True, timeout=600).returncode == 0
    if args.json:
        out = {"verify_ok": verify, "records": n, "reported": reported, "expected": args.expect, "loss": len(loss),
               "bypasses": len(bypass),
               "bypass_kinds": sorted({f"{b.get('kind')}:{b.get('exe')}" for b in bypass}),
               "sessions": sum(1 for r in recs if r.get("type") == "session_start"),
               "exec_sessions": len({r.get("session") for r in ex}),
               "source": args.source}
        if args.daemon_cpu_s is not None and args.expect:
            out["daemon_cpu_s"] = args.daemon_cpu_s
            out["daemon_us_per_exec"] = args.daemon_cpu_s / args.expect * 1e6
        with open(args.json, "w") as f:
            json.dump(out, f)
    if args.count_only:
        print(n)
        return 0
    src = f" (source {args.source})" if args.source else ""
    print(f"exec records{src} with argv[0] in {sorted(want)}: {n}"
          + (f" (expected {args.expect})" if args.expect is not None else "")
          + (f", {reported} reported" if args.source == "bpf" else "")
          + f"; loss records: {len(loss)}; bypass records: {len(bypass)}"
          + ("" if verify is None else f"; verify: {'OK' if verify else 'FAILED'}"))
    return 0 if (args.expect is None or n == args.expect) and not loss else 1


def count_bt(args):
    """bpftrace output of  printf("%d %s\\n", pid, str(args->filename))."""
    want = {os.path.basename(a) for a in args.argv0}
    total = ours = empty = lost = 0
    pat = re.compile(rb"Lost (\d+) events")
    with open(args.out, "rb") as f:
        for line in f:
            m = pat.search(line)
            if m:
                lost += int(m.group(1))
                continue
            if line.startswith(b"Attaching"):
                continue
            parts = line.rstrip(b"\n").split(b" ", 1)
            if not parts[0].isdigit():
                continue
            total += 1
            fn = parts[1] if len(parts) > 1 else b""
            if not fn:
                empty += 1
            elif os.path.basename(fn).decode(errors="replace") in want:
                ours += 1
    out = {"lines": total, "lines_for_load": ours, "empty_filename": empty, "lost": lost}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f)
    print(f"bpftrace: {total} lines, {ours} with a filename in {sorted(want)}, "
          f"{empty} with an empty filename, Lost {lost}")
    return 0


def settle(args):
    """Waits until a shauditd's counters have been still for 0.5 s, and --min-wait s have
    passed (the cross-check decides an exec after its 1 s window)."""
    t0 = time.monotonic()
    last, since = None, t0
    while True:
        r = subprocess.run([args.shaudit, "stats", "--control", args.control, "--json"],
                           capture_output=True, text=True, timeout=30)
        st = json.loads(r.stdout)
        k = (st["bpf_events"], st["records_written"], st["queue_depth"])
        now = time.monotonic()
        if k != last:
            last, since = k, now
        if (now - since >= 0.5 and now - t0 >= args.min_wait) or now - t0 > 120:
            return 0
        time.sleep(0.1)


def measure(args):
    from benchlib import LoadMeter, bpf_exec_progs
    cmd = args.cmd[1:] if args.cmd and args.cmd[0] == "--" else args.cmd
    progs = bpf_exec_progs() if args.bpf_progs else None
    watch = {}
    for w in args.watch:
        name, _, pid = w.rpartition("=")
        watch[name or pid] = int(pid)
    meter = LoadMeter(watch)
    rc = subprocess.call(cmd)
    out = meter.stop()
    if progs is not None:
        out["bpf_exec_progs"] = progs
    with open(args.out, "w") as f:
        json.dump(out, f)
    return rc


# ------------------------------------------------------------------ new layout (runs/)

RUN_RE = re.compile(r"r(\d+)-(.+)\.hf\.json$")


def load_runs(d):
    """{(round, config): {"hf": hyperfine result, "load": {...}, "check": {...}}} from DIR/runs."""
    runs = {}
    rd = os.path.join(d, "runs")
    for name in os.listdir(rd):
        m = RUN_RE.match(name)
        if not m:
            continue
        r, cfg = int(m.group(1)), m.group(2)
        rec = {"hf": json.load(open(os.path.join(rd, name)))["results"][0]}
        for part in ("load", "check"):
            p = os.path.join(rd, f"r{r}-{cfg}.{part}.json")
            if os.path.exists(p):
                rec[part] = json.load(open(p))
        runs[(r, cfg)] = rec
    return runs


def round_line(args):
    runs = load_runs(args.dir)
    r = args.round
    xs = [(c, v) for (k, c), v in runs.items() if k == r]
    xs.sort(key=lambda cv: cv[1].get("load", {}).get("t_start", 0))
    other = [v["load"]["other_cpus"] for _, v in xs if "load" in v]
    print("".join(f" {c} {v['hf']['mean']:.3f}s" for c, v in xs)
          + (f" | other load max {max(other):.2f} CPUs" if other else ""))
    return 0


def summarize_runs(args):
    runs = load_runs(args.dir)
    rounds = sorted({r for r, _ in runs if r >= 1})
    cfgs = []
    for n in (args.order.split(",") if args.order else []):
        if any(c == n for _, c in runs):
            cfgs.append(n)
    cfgs += sorted({c for _, c in runs} - set(cfgs))
    if args.base not in cfgs:
        sys.exit(f"no configuration named {args.base!r} in {args.dir}")
    B = args.base
    # Groups: configurations named PREFIX... are taken against that group's own base.
    groups = [("", B)]
    for g in args.group or []:
        prefix, _, gb = g.partition("=")
        if gb in cfgs:
            groups.append((prefix, gb))
    groups.sort(key=lambda pb: -len(pb[0]))

    def base_of(c):
        return next(gb for prefix, gb in groups if c.startswith(prefix))

    def wall(r, c):
        return statistics.mean(runs[(r, c)]["hf"]["times"])

    def cpu(r, c):
        h = runs[(r, c)]["hf"]
        return h["user"] + h["system"]

    def ratio(r, c):
        return wall(r, c) / wall(r, base_of(c))

    have = lambda r, *cs: all((r, c) in runs for c in cs)  # noqa: E731
    others_base = "".join(f"; {p}… against {gb}" for p, gb in groups if p)
    print(f"{len(rounds)} rounds (round 0, the warm-up, left out); ratios are per round (the same "
          f"round's {B}{others_base}); {args.execs} execs per run; one hyperfine invocation per "
          "configuration and round, the order rotating\n")
    print("| configuration | runs | wall (s), median | min-max | wall ratio vs base, median "
          "| IQR | min-max | extra wall per exec (µs) | user+sys (s), median "
          "| user+sys ratio, median | IQR | other load in its runs (CPUs), median | max |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for c in cfgs:
        cb = base_of(c)
        rs = [r for r in rounds if have(r, c, cb)]
        if not rs:
            continue
        ts = [wall(r, c) for r in rs]
        ra = [ratio(r, c) for r in rs]
        ex = [(wall(r, c) - wall(r, cb)) / args.execs * 1e6 for r in rs]
        cp = [cpu(r, c) for r in rs]
        cr = [cpu(r, c) / cpu(r, cb) for r in rs]
        ol = [runs[(r, c)]["load"]["other_cpus"] for r in rs if "load" in runs[(r, c)]]
        print(f"| {c} | {len(rs)} | {statistics.median(ts):.3f} | {min(ts):.3f}-{max(ts):.3f} "
              f"| **{statistics.median(ra):.3f}** | {quantile(ra, .25):.3f}-{quantile(ra, .75):.3f} "
              f"| {min(ra):.3f}-{max(ra):.3f} | {statistics.median(ex):+.0f} "
              f"| {statistics.median(cp):.3f} | {statistics.median(cr):.3f} "
              f"| {quantile(cr, .25):.3f}-{quantile(cr, .75):.3f} "
              f"| {statistics.median(ol) if ol else float('nan'):.2f} | {max(ol) if ol else float('nan'):.2f} |")

    def other_max(r):
        xs = [v["load"]["other_cpus"] for (k, _), v in runs.items() if k == r and "load" in v]
        return max(xs) if xs else float("nan")

    def fig1(r, p):  # shaudit-bpf - empty-env, in group p
        return ratio(r, p + "shaudit-bpf") - ratio(r, p + "empty-env")

    def fig2(r, p):  # snoopy - shaudit-bpf, in group p
        return ratio(r, p + "snoopy") - ratio(r, p + "shaudit-bpf")

    def has1(r, p):
        return have(r, base_of(p + "shaudit-bpf"), p + "shaudit-bpf", p + "empty-env")

    def has2(r, p):
        return have(r, base_of(p + "snoopy"), p + "snoopy", p + "shaudit-bpf")

    prefixes = sorted(p for p, _ in groups)

    def targets(rs, title):
        print(f"\n**Targets{title}** (per round: the difference of two wall ratios vs base):\n")
        print("| figure | rounds | median | IQR | worst round | target | median meets it | every round meets it |")
        print("|---|---:|---:|---|---:|---|---|---|")
        any_row = False
        for p in prefixes:
            d1 = [fig1(r, p) for r in rs if has1(r, p)]
            d2 = [fig2(r, p) for r in rs if has2(r, p)]
            if d1:
                print(f"| {p}shaudit-bpf − {p}empty-env | {len(d1)} | **{statistics.median(d1):+.3f}** "
                      f"| {quantile(d1, .25):+.3f} – {quantile(d1, .75):+.3f} | max {max(d1):+.3f} | ≤ 0.03 "
                      f"| {'yes' if statistics.median(d1) <= 0.03 else 'no'} | {'yes' if max(d1) <= 0.03 else 'no'} |")
            if d2:
                print(f"| {p}snoopy − {p}shaudit-bpf | {len(d2)} | **{statistics.median(d2):+.3f}** "
                      f"| {quantile(d2, .25):+.3f} – {quantile(d2, .75):+.3f} | min {min(d2):+.3f} | ≥ 0.08 "
                      f"| {'yes' if statistics.median(d2) >= 0.08 else 'no'} | {'yes' if min(d2) >= 0.08 else 'no'} |")
            any_row = any_row or bool(d1 or d2)
        if not any_row:
            print("| (needs base, empty-env, snoopy and shaudit-bpf in the same rounds) | | | | | | | |")

    targets(rounds, "")
    quiet = [r for r in rounds if other_max(r) <= args.quiet_max]
    if quiet and len(quiet) < len(rounds):
        targets(quiet, f", only the {len(quiet)} rounds in which no run saw more than "
                f"{args.quiet_max} CPUs of other load")
    elif not quiet:
        print(f"\n(no round had every run under {args.quiet_max} CPUs of other load)")

    # Side by side: each host configuration beside the container one (PREFIX + its name).
    for p, gb in groups:
        if not p:
            continue
        pairs = [(c, p + c) for c in cfgs if not c.startswith(tuple(q for q, _ in groups if q))
                 and p + c in cfgs]
        if not pairs:
            continue
        print(f"\n**Side by side** (host configuration C against {B}, container configuration "
              f"{p}C against {gb}, both per round; the last columns: {p}C's wall time over C's in the "
              "same round, what the container adds to that configuration):\n")
        print(f"| configuration | host: ratio vs {B}, median (IQR) | container: ratio vs {gb}, median (IQR) "
              "| host: extra µs per exec | container: extra µs per exec | container ÷ host wall, median (IQR) |")
        print("|---|---:|---:|---:|---:|---:|")
        for h, c in pairs:
            rs = [r for r in rounds if have(r, h, c, B, gb)]
            if not rs:
                continue
            hr = [ratio(r, h) for r in rs]
            cr_ = [ratio(r, c) for r in rs]
            hx = [(wall(r, h) - wall(r, B)) / args.execs * 1e6 for r in rs]
            cx = [(wall(r, c) - wall(r, gb)) / args.execs * 1e6 for r in rs]
            q = [wall(r, c) / wall(r, h) for r in rs]
            print(f"| {h} / {c} | {spread(hr)} | {spread(cr_)} | {statistics.median(hx):+.0f} "
                  f"| {statistics.median(cx):+.0f} | {spread(q)} |")
        d = [fig1(r, p) - fig1(r, "") for r in rounds if has1(r, p) and has1(r, "")]
        if d:
            print(f"\n({p}shaudit-bpf − {p}empty-env) − (shaudit-bpf − empty-env), per round: "
                  f"{spread(d, '{:+.3f}')}")

    # Per round: ratios, the figures, the machine's other load.
    print("\nPer round (wall ratio vs the round's base of the configuration's group; other load = "
          "machine busy time less the benchmark's own processes, in CPUs, the highest of the "
          "round's runs; 1-minute load average before the round's first run and after its last):\n")
    others = [c for c in cfgs if c != B]
    figs = []
    for p in prefixes:
        figs.append((f"{p}bpf − {p}empty", lambda r, p=p: fig1(r, p) if has1(r, p) else None))
        figs.append((f"{p}snoopy − {p}bpf", lambda r, p=p: fig2(r, p) if has2(r, p) else None))
    print("| round | base (s) | " + " | ".join(others) + " | "
          + " | ".join(n for n, _ in figs) + " | other load max (CPUs) | loadavg |")
    print("|---:|---:|" + "---:|" * len(others) + "---:|" * len(figs) + "---:|---|")
    for r in rounds:
        if not have(r, B):
            continue
        cells = [f"{ratio(r, c):.3f}" if have(r, c, base_of(c)) else "-" for c in others]
        fcells = []
        for _, f in figs:
            v = f(r)
            fcells.append("-" if v is None else f"{v:+.3f}")
        lds = sorted((v["load"] for (k, _), v in runs.items() if k == r and "load" in v),
                     key=lambda x: x.get("t_start", 0))
        la = f"{lds[0]['loadavg_before']:.2f} → {lds[-1]['loadavg_after']:.2f}" if lds else "-"
        print(f"| {r} | {wall(r, B):.3f} | " + " | ".join(cells) + " | " + " | ".join(fcells)
              + f" | {other_max(r):.2f} | {la} |")
    allo = [v["load"]["other_cpus"] for (k, _), v in runs.items() if k >= 1 and "load" in v]
    if allo:
        print(f"\nOther load over all {len(allo)} runs: median {statistics.median(allo):.2f} CPUs, "
              f"max {max(allo):.2f} CPUs; {sum(1 for x in allo if x > args.quiet_max)} runs above "
              f"{args.quiet_max} CPUs.")

    # Per-run checks: every configuration with the shauditd (count-execs) or bpftrace check.
    for c in cfgs:
        bc = [runs[(r, c)]["check"] for r in rounds
              if (r, c) in runs and "records" in runs[(r, c)].get("check", {})]
        if not bc:
            continue
        # Every exec has its kernel record (with the kernel recording execs, interposers send no
        # exec reports: "reported" counts only reports from older interposers).
        complete = sum(1 for x in bc if x["records"] == x["expected"])
        us = [x["daemon_us_per_exec"] for x in bc if "daemon_us_per_exec" in x]
        verified = [x.get("verify_ok") for x in bc if x.get("verify_ok") is not None]
        print(f"\n{c} checks ({len(bc)} runs, a fresh shauditd with bpf: on per run, the loop "
              f"in an audited session): exec records from the kernel (source bpf) for the loop's "
              f"programs per run {','.join(sorted({str(x['records']) for x in bc}))} of "
              f"{','.join(sorted({str(x['expected']) for x in bc}))}; reported (the interposer's report "
              f"matched) {','.join(sorted({str(x['reported']) for x in bc}))}; {complete} of {len(bc)} runs "
              f"complete; loss records {sum(x['loss'] for x in bc)}, bypass records "
              f"{sum(x['bypasses'] for x in bc)}"
              + (f" ({', '.join(sorted({k for x in bc for k in x['bypass_kinds']}))})"
                 if any(x['bypass_kinds'] for x in bc) else "")
              + (f"; sessions {','.join(sorted({str(x['sessions']) for x in bc}))}"
                 if all("sessions" in x for x in bc) else "")
              + (f"; verify OK {sum(1 for v in verified if v)} of {len(verified)}" if verified else "")
              + (f"; shauditd CPU per exec (start to settled) {spread(us, '{:.1f}')} µs" if us else ""))
    for c in cfgs:
        tc = [(r, runs[(r, c)]) for r in rounds
              if (r, c) in runs and "lines_for_load" in runs[(r, c)].get("check", {})]
        if not tc:
            continue
        ck = [v["check"] for _, v in tc]
        bt_us = [v["load"]["watched_cpu_s"].get("bpftrace", 0) / args.execs * 1e6 for _, v in tc if "load" in v]
        print(f"\n{c} checks ({len(ck)} runs, one bpftrace per run): lines for the loop's programs "
              f"per run {spread([x['lines_for_load'] for x in ck], '{:.0f}')} (expected "
              f"{args.execs}); all lines {spread([x['lines'] for x in ck], '{:.0f}')}; empty "
              f"filenames {sum(x['empty_filename'] for x in ck)}; Lost {sum(x['lost'] for x in ck)}"
              + (f"; bpftrace CPU per exec {spread(bt_us, '{:.1f}')} µs" if any(bt_us) else ""))


# ------------------------------------------------------------------ containers

def ctr_rootfs(args):
    import rootfs as rf
    root = Path(args.rootfs)
    for d in ("bin", "etc", "run", "tmp", "proc", "dev", "sys", "root", "usr/local/bin"):
        (root / d).mkdir(parents=True, exist_ok=True)
    (root / "tmp").chmod(0o1777)
    for spec in args.programs:
        src, _, dest = spec.partition("=")
        if not dest:
            rf.copy_with_libs(src, root)
            continue
        d = root / dest.lstrip("/")
        d.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, d)
        out = subprocess.run(["ldd", src], capture_output=True, text=True).stdout
        for lib in re.findall(r"(/\S+\.so[^\s]*) \(0x", out):
            rf.copy_with_libs(lib, root)
    # The host's loader cache, as an image's ldconfig leaves one: without it every exec's loader
    # would look for libc in the default directories instead of reading the cache, which is
    # not how real images run (and is measurably cheaper on this VM).
    if os.path.exists("/etc/ld.so.cache"):
        shutil.copy2("/etc/ld.so.cache", root / "etc/ld.so.cache")
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/dash\n")
    (root / "etc/group").write_text("root:x:0:\n")
    return 0


def ctr_probe(args):
    from ptyshell import PS1, PtyShell
    loop = f"i=0; while [ $i -lt {args.execs} ]; do /bin/true; i=$((i+1)); done"
    sh = PtyShell([args.runc, "--root", args.root, "exec", "-t", "--env", f"PS1={PS1}",
                   "--env", "TERM=dumb", args.cid, "/bin/dash", "-i"])
    try:
        sh.wait_prompt(timeout=30)
        sh.type(loop)
        t0 = time.monotonic()
        sh.type("\r", 0)
        sh.wait_prompt(timeout=600)
        dt = time.monotonic() - t0
        status = sh.exit()
    finally:
        sh.kill()
    deadline = time.monotonic() + 30
    while True:
        recs = read_records(args.log)
        starts = [r for r in recs if r.get("type") == "session_start"
                  and (r.get("container") or {}).get("id") == args.cid]
        sids = {r["session"] for r in starts}
        ex = [r for r in recs if r.get("type") == "exec" and r.get("session") in sids
              and r.get("argv") == ["/bin/true"]]
        if len(ex) >= args.execs or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    cmds = [r for r in recs if r.get("type") == "command" and r.get("session") in sids]
    srcs = sorted({r.get("source") for r in ex})
    svc = sorted({r.get("service") for r in starts})
    ok = status == 0 and len(starts) == 1 and len(ex) == args.execs
    print(f"runc exec -t {args.cid[:12]}… /bin/dash -i, the loop typed at its prompt: {dt:.3f} s "
          f"from Enter to the next prompt, exit {status}; sessions naming the container: "
          f"{len(starts)} (service {','.join(map(str, svc))}); command records in it: {len(cmds)}; "
          f"exec records of /bin/true in it: {len(ex)} of {args.execs} (source "
          f"{','.join(map(str, srcs))}) -> {'OK' if ok else 'FAILED'}")
    return 0 if ok else 1


def ctr_bundle(args):
    import rootfs as rf
    bundle = Path(args.bundle)
    rf.make_bundle(bundle, args.cid, rf.cri_annotations("bench-0", "bench", args.name, "bench/loop:1"))
    cfg = json.loads((bundle / "config.json").read_text())
    cfg["process"]["args"] = ["sleep", "infinity"]
    cfg["hostname"] = args.name
    # Without a cgroupsPath runc makes the container's cgroups (named by its id) under the
    # caller's own, and removes them at `delete`.
    cfg["linux"].pop("cgroupsPath", None)
    (bundle / "config.json").write_text(json.dumps(cfg, indent=2))
    return 0


# ------------------------------------------------------------------ latency

def latency(args):
    from ptyshell import PS1, PtyShell
    argv = {"bash": ["/bin/bash", "--norc", "--noprofile", "-i"], "dash": ["/bin/dash", "-i"]}
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
        "HOME": os.path.dirname(args.log),
        "TERM": "xterm",
        "LANG": "C.UTF-8",
        "PS1": PS1,
        "LD_PRELOAD": args.preload,
        "SHAUDIT_SOCKET": args.socket,
    }
    tail = Tail(args.log)
    sh = PtyShell(argv[args.shell], env=env, cwd=os.path.dirname(args.log))
    lat_file, lat_stamp = [], []
    try:
        sh.wait_prompt()
        for i in range(args.lines):
            text = f": lat-{args.shell}-{i:04d}"
            sh.type(text, args.delay_ms / 1000.0)
            parse_records(tail.lines())                       # drop anything older
            t0_real = time.time_ns()                  # taken before the write: the shell
            t0 = time.monotonic_ns()                  # may run before write() returns
            os.write(sh.fd, b"\r")
            found = None
            deadline = t0 + int(args.timeout * 1e9)
            while found is None:
                recs = parse_records(tail.lines())
                t_read = time.monotonic_ns()
                for r in recs:
                    if r.get("type") == "command" and r.get("text") == text and r.get("pid") == sh.pid:
                        found = r
                        break
                if found is None:
                    if t_read > deadline:
                        raise TimeoutError(f"no command record for {text!r}")
                    tail.wait(0.05)
            lat_file.append((t_read - t0) / 1e6)
            lat_stamp.append((iso_to_ns(found["time"]) - t0_real) / 1e6)
            sh.wait_prompt()
        sh.exit()
    finally:
        sh.kill()

    def line(name, xs):
        return (f"{name}: n={len(xs)} p50={quantile(xs, .5):.3f} ms p90={quantile(xs, .9):.3f} ms "
                f"p99={quantile(xs, .99):.3f} ms max={max(xs):.3f} ms min={min(xs):.3f} ms")
    out = [line(f"{args.shell} Enter->record in log file", lat_file),
           line(f"{args.shell} Enter->record 'time' stamp (daemon clock)", lat_stamp)]
    print("\n".join(out))
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"shell": args.shell, "file_ms": lat_file, "stamp_ms": lat_stamp}, f)
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="sub", required=True)
    s = sub.add_parser("summarize")
    s.add_argument("dir")
    s.add_argument("base")
    s.add_argument("execs", type=int)
    s.add_argument("--order")
    s.add_argument("--group", action="append", metavar="PREFIX=BASE",
                   help="configurations named PREFIX... are taken against BASE (ctr-=ctr-base)")
    s.add_argument("--quiet-max", type=float, default=0.15,
                   help="rounds in which every run saw at most this much other load (CPUs) "
                        "are summarized again on their own")
    c = sub.add_parser("count-execs")
    c.add_argument("log")
    c.add_argument("argv0", nargs="+")
    c.add_argument("--expect", type=int)
    c.add_argument("--timeout", type=float, default=30)
    c.add_argument("--count-only", action="store_true")
    c.add_argument("--source", help="count only exec records with this source (bpf, report, hello)")
    c.add_argument("--json", help="also write the counts to this file")
    c.add_argument("--daemon-cpu-s", type=float, help="shauditd CPU of the run (for --json)")
    c.add_argument("--verify", nargs=2, metavar=("SHAUDIT", "PUBKEY"),
                   help="also run `SHAUDIT verify LOG --pubkey PUBKEY`")
    st = sub.add_parser("settle")
    st.add_argument("--shaudit", required=True)
    st.add_argument("--control", required=True)
    st.add_argument("--min-wait", type=float, default=1.3)
    b = sub.add_parser("count-bt")
    b.add_argument("out")
    b.add_argument("argv0", nargs="+")
    b.add_argument("--json")
    m = sub.add_parser("measure")
    m.add_argument("--out", required=True)
    m.add_argument("--watch", action="append", default=[], metavar="[NAME=]PID",
                   help="a process of the benchmark's own (its CPU is not other load)")
    m.add_argument("--bpf-progs", action="store_true", help="count loaded handle_exec programs first")
    m.add_argument("cmd", nargs=argparse.REMAINDER)
    rl = sub.add_parser("round-line")
    rl.add_argument("dir")
    rl.add_argument("round", type=int)
    cr = sub.add_parser("ctr-rootfs")
    cr.add_argument("rootfs")
    cr.add_argument("programs", nargs="+", metavar="PROGRAM[=PATH]")
    cp_ = sub.add_parser("ctr-probe")
    cp_.add_argument("--runc", required=True)
    cp_.add_argument("--root", required=True)
    cp_.add_argument("--cid", required=True)
    cp_.add_argument("--log", required=True)
    cp_.add_argument("--execs", type=int, default=3000)
    cb = sub.add_parser("ctr-bundle")
    cb.add_argument("bundle")
    cb.add_argument("cid")
    cb.add_argument("name")
    lt = sub.add_parser("latency")
    lt.add_argument("--log", required=True)
    lt.add_argument("--socket", required=True)
    lt.add_argument("--preload", required=True)
    lt.add_argument("--shell", choices=["bash", "dash"], required=True)
    lt.add_argument("--lines", type=int, default=200)
    lt.add_argument("--delay-ms", type=float, default=2)
    lt.add_argument("--timeout", type=float, default=10)
    lt.add_argument("--out")
    a = ap.parse_args()
    if a.sub == "summarize":
        summarize(a)
        return 0
    if a.sub == "count-execs":
        return count_execs(a)
    if a.sub == "count-bt":
        return count_bt(a)
    if a.sub == "measure":
        return measure(a)
    if a.sub == "round-line":
        return round_line(a)
    if a.sub == "settle":
        return settle(a)
    if a.sub == "ctr-rootfs":
        return ctr_rootfs(a)
    if a.sub == "ctr-probe":
        return ctr_probe(a)
    if a.sub == "ctr-bundle":
        return ctr_bundle(a)
    return latency(a)


if __name__ == "__main__":
    sys.exit(main())
