#!/usr/bin/env python3
"""Helpers for tests/bench/run_interposer_bench.sh (not a test; nothing runs it from ctest).

  interposer_bench.py summarize DIR BASE EXECS [--order NAME,...]
      Reads the hyperfine JSON files DIR/round-*.json (one per round, every configuration
      once per round, named with hyperfine -n) and prints a Markdown table: per configuration
      the median wall time, the per-round ratio of wall time to BASE's in the same round
      (median, IQR, min-max), the median extra wall time per exec (EXECS execs per run), and
      the same ratio for user+system CPU time of the benchmarked process tree (less disturbed
      by other load; a daemon's CPU is not in it).

  interposer_bench.py count-execs LOG ARGV0... [--expect N] [--timeout S] [--count-only]
      Counts exec records in a shauditd log whose argv[0] is one of ARGV0 (waits until N are
      there when --expect is given) and the loss records; prints them; exit 1 if short.

  interposer_bench.py latency --log LOG --socket SOCK --preload LIB --shell bash|dash
                              [--lines 200] [--delay-ms 2] [--out FILE]
      Types LINES short lines into an interactive shell on a pseudo-terminal, with the
      interposer preloaded, and measures for each the time from writing Enter to the pty
      until the line's command record is in LOG (tailed with inotify); prints p50/p90/p99/max.
"""
import argparse
import ctypes
import datetime
import glob
import json
import os
import re
import select
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "integration"))


def quantile(xs, q):
    """The q-quantile of xs, interpolated linearly (NaN for no values)."""
    xs = sorted(xs)
    if not xs:
        return float("nan")
    pos = q * (len(xs) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


# ------------------------------------------------------------------ summarize

def summarize(args):
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
        n = sum(1 for r in recs if r.get("type") == "exec" and r.get("argv")
                and r["argv"][0] in want)
        loss = [r for r in recs if r.get("type") == "loss"]
        if args.expect is None or n >= args.expect or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    if args.count_only:
        print(n)
        return 0
    print(f"exec records with argv[0] in {sorted(want)}: {n}"
          + (f" (expected {args.expect})" if args.expect is not None else "")
          + f"; loss records: {len(loss)}")
    return 0 if (args.expect is None or n == args.expect) and not loss else 1


# ------------------------------------------------------------------ latency

IN_MODIFY = 0x2


class LogTail:
    """Follows a growing JSONL file; inotify wake-ups (polling if inotify is unavailable)."""

    def __init__(self, path):
        self.f = open(path, "rb")
        self.f.seek(0, os.SEEK_END)
        self.partial = b""
        self.ifd = -1
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            ifd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
            if ifd >= 0 and libc.inotify_add_watch(ifd, str(path).encode(), IN_MODIFY) >= 0:
                self.ifd = ifd
        except (OSError, AttributeError):
            pass

    def wait(self, timeout):
        if self.ifd >= 0:
            r, _, _ = select.select([self.ifd], [], [], timeout)
            if r:
                try:
                    os.read(self.ifd, 65536)
                except BlockingIOError:
                    pass
        else:
            time.sleep(min(timeout, 0.0002))

    def read_records(self):
        data = self.f.read()
        if not data:
            return []
        data = self.partial + data
        lines = data.split(b"\n")
        self.partial = lines.pop()
        return parse_records(lines)


def iso_to_ns(s):
    m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?Z$", s)
    base = datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S").replace(
        tzinfo=datetime.timezone.utc)
    frac = (m.group(2) or "0").ljust(9, "0")[:9]
    return int(base.timestamp()) * 1_000_000_000 + int(frac)


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
    tail = LogTail(args.log)
    sh = PtyShell(argv[args.shell], env=env, cwd=os.path.dirname(args.log))
    lat_file, lat_stamp = [], []
    try:
        sh.wait_prompt()
        for i in range(args.lines):
            text = f": lat-{args.shell}-{i:04d}"
            sh.type(text, args.delay_ms / 1000.0)
            tail.read_records()                       # drop anything older
            t0_real = time.time_ns()                  # taken before the write: the shell
            t0 = time.monotonic_ns()                  # may run before write() returns
            os.write(sh.fd, b"\r")
            found = None
            deadline = t0 + int(args.timeout * 1e9)
            while found is None:
                recs = tail.read_records()
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
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("summarize")
    s.add_argument("dir")
    s.add_argument("base")
    s.add_argument("execs", type=int)
    s.add_argument("--order")
    c = sub.add_parser("count-execs")
    c.add_argument("log")
    c.add_argument("argv0", nargs="+")
    c.add_argument("--expect", type=int)
    c.add_argument("--timeout", type=float, default=30)
    c.add_argument("--count-only", action="store_true")
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
    if a.cmd == "summarize":
        summarize(a)
        return 0
    if a.cmd == "count-execs":
        return count_execs(a)
    return latency(a)


if __name__ == "__main__":
    sys.exit(main())
