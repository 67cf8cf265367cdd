#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Helpers for tests/bench/run_alert_latency_bench.sh (not a test; nothing runs it from ctest).

  alert_latency_bench.py free-port
      Prints a loopback TCP port that is free now (the receiver binds it again; shauditd's
      configuration must name the webhook's URL before the receiver runs).

  alert_latency_bench.py run --socket SOCK --preload LIB --port PORT --label NAME
                             [--lines 200] [--delay-ms 2] [--gap-ms 50] [--timeout 5]
                             [--home DIR] [--out FILE]
      Runs the local HTTP receiver of the integration tests (tests/integration/httprecv.py) in
      this process on 127.0.0.1:PORT, with every POST time-stamped by the receiver's thread
      (time.monotonic_ns, the clock the typing side reads) as soon as its body is read; starts
      `bash --norc --noprofile -i` on a pseudo-terminal with the interposer preloaded; types one
      warm-up line and then LINES lines  cat /etc/shadow > /dev/null # lat-NNNN  (each fires the
      default rule "Read shadow or private keys" on the typed line), one character every
      DELAY_MS; reads the clock just before writing Enter ("\\r") and waits for the POST whose
      alert's output carries lat-NNNN, then for the prompt, then GAP_MS. Latency = POST received
      - Enter written. Also: Enter -> the alert record's own `time` stamp (shauditd's clock,
      wall time), which splits the path into "until the alert is written" and "output
      delivery". Checks every tag arrived exactly once (exit 1 otherwise).

  alert_latency_bench.py summarize FILE...
      A Markdown table of the `run` results (FILE: its --out JSON).
"""
import argparse
import collections
import json
import os
import re
import socket
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "integration"))
sys.path.insert(0, str(HERE))
from interposer_bench import iso_to_ns, quantile  # noqa: E402

TAG_RE = re.compile(r"lat-(\d{4}|warm)\b")
RULE = "Read shadow or private keys"


# ------------------------------------------------------------------ the receiver

class StampedRequests(list):
    """Stands in for Receiver.requests: the handler thread appends (path, headers, body) once
    the body is read; the time is taken there, and the waiting side is woken."""

    def __init__(self):
        super().__init__()
        self.times = []
        self.cond = threading.Condition()

    def append(self, item):
        t = time.monotonic_ns()
        with self.cond:
            self.times.append(t)
            super().append(item)
            self.cond.notify_all()


class Arrivals:
    """Parses the POSTs as they come: webhook bodies are [{"id": ..., "record": {...}}, ...]."""

    def __init__(self, stamped):
        self.s = stamped
        self.seen = 0
        self.by_tag = {}      # tag -> [(monotonic ns, item)]
        self.others = []      # alert items without a tag
        self.ids = {}         # item id -> times seen
        self.posts = []       # items per POST
        self.bad = []         # bodies that are not a webhook batch

    def _take(self):
        # Called with the condition held.
        while self.seen < len(self.s):
            _, _, body = self.s[self.seen]
            t = self.s.times[self.seen]
            self.seen += 1
            try:
                batch = json.loads(body)
                assert isinstance(batch, list)
            except (ValueError, AssertionError):
                self.bad.append(body[:200])
                continue
            self.posts.append(len(batch))
            for it in batch:
                rec = it.get("record", {})
                self.ids[it.get("id")] = self.ids.get(it.get("id"), 0) + 1
                m = TAG_RE.search(rec.get("output", "")) if rec.get("type") == "alert" else None
                if m:
                    self.by_tag.setdefault(m.group(0), []).append((t, it))
                else:
                    self.others.append((t, it))

    def wait_tag(self, tag, deadline_ns):
        with self.s.cond:
            while True:
                self._take()
                if tag in self.by_tag:
                    return self.by_tag[tag][0]
                left = (deadline_ns - time.monotonic_ns()) / 1e9
                if left <= 0:
                    return None
                self.s.cond.wait(left)

    def settle(self, seconds):
        time.sleep(seconds)
        with self.s.cond:
            self._take()


# ------------------------------------------------------------------ run

def run(args):
    from httprecv import Receiver
    from ptyshell import PS1, PtyShell

    recv = Receiver(args.port)
    stamped = StampedRequests()
    recv.requests = stamped          # before any POST can arrive (nothing matches a rule yet)
    arr = Arrivals(stamped)
    home = args.home or os.getcwd()
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
        "HOME": home,
        "TERM": "xterm",
        "LANG": "C.UTF-8",
        "PS1": PS1,
        "LD_PRELOAD": args.preload,
        "SHAUDIT_SOCKET": args.socket,
    }
    sh = PtyShell(["/bin/bash", "--norc", "--noprofile", "-i"], env=env, cwd=home)
    lat, stamp_lat, missing_inline = [], [], []
    texts = {}
    try:
        sh.wait_prompt()
        plan = [("warm", None)] + [(f"{i:04d}", i) for i in range(args.lines)]
        for name, i in plan:
            tag = f"lat-{name}"
            text = f"cat /etc/shadow > /dev/null # {tag}"
            texts[tag] = text
            sh.type(text, args.delay_ms / 1000.0)
            t0_real = time.time_ns()                   # both taken before the write: the shell
            t0 = time.monotonic_ns()                   # may run before write() returns
            os.write(sh.fd, b"\r")
            got = arr.wait_tag(tag, t0 + int(args.timeout * 1e9))
            if got is None:
                missing_inline.append(tag)
                print(f"  {args.label}: no alert for {tag} within {args.timeout}s", file=sys.stderr)
                if len(missing_inline) >= 3:
                    raise SystemExit(f"{args.label}: three alerts missing; giving up")
            elif i is not None:
                t_recv, it = got
                lat.append((t_recv - t0) / 1e6)
                stamp_lat.append((iso_to_ns(it["record"]["time"]) - t0_real) / 1e6)
            sh.wait_prompt()
            time.sleep(args.gap_ms / 1000.0)
        sh.exit()
    finally:
        sh.kill()
    arr.settle(args.settle)          # late or repeated deliveries would show up now
    recv.close()

    # ---- checks: every tag exactly once, from the expected rule, on the typed line
    problems = []
    for tag, text in texts.items():
        got = arr.by_tag.get(tag, [])
        if not got:
            problems.append(f"{tag}: missing")
            continue
        if len(got) > 1:
            problems.append(f"{tag}: received {len(got)} times")
        rec = got[0][1]["record"]
        if rec.get("rule") != RULE or rec.get("ref_type") != "command" or text not in rec.get("output", ""):
            problems.append(f"{tag}: unexpected alert {json.dumps(rec)[:300]}")
    extra_tags = sorted(set(arr.by_tag) - set(texts))
    if extra_tags:
        problems.append(f"alerts for tags never typed: {extra_tags[:5]}")
    dup_ids = sum(1 for n in arr.ids.values() if n > 1)
    if dup_ids:
        problems.append(f"{dup_ids} item id(s) delivered more than once")
    if arr.bad:
        problems.append(f"{len(arr.bad)} POST bodies not a webhook batch: {arr.bad[:2]}")
    others = {}
    for _, it in arr.others:
        r = it.get("record", {})
        k = f"{r.get('rule')} (on {r.get('ref_type')})"
        others[k] = others.get(k, 0) + 1
    measured = sum(1 for t in texts if t != "lat-warm" and len(arr.by_tag.get(t, [])) == 1)

    def line(name, xs):
        return (f"{name}: n={len(xs)} p50={quantile(xs, .5):.2f} ms p90={quantile(xs, .9):.2f} ms "
                f"p99={quantile(xs, .99):.2f} ms max={max(xs):.2f} ms min={min(xs):.2f} ms")
    print(f"[{args.label}]")
    if lat:
        print("  " + line("Enter -> webhook POST received", lat))
        print("  " + line("Enter -> alert record's time stamp (shauditd clock)", stamp_lat))
    print(f"  tagged alerts received: {measured} of {args.lines} measured lines exactly once "
          f"(+ warm-up); POSTs: {len(arr.posts)}, items: {sum(arr.posts)}, "
          f"POSTs by number of items: {dict(sorted(collections.Counter(arr.posts).items()))}")
    print(f"  other alerts received: {others or 'none'}")
    print(f"  checks: {'OK (no missing, no duplicates)' if not problems else '; '.join(problems[:10])}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"label": args.label, "lines": args.lines, "post_ms": lat, "stamp_ms": stamp_lat,
                       "received_once": measured, "posts": arr.posts, "others": others,
                       "problems": problems}, f)
    return 1 if problems or measured != args.lines else 0


# ------------------------------------------------------------------ summarize

def summarize(args):
    print("| configuration | lines | alerts received once | p50 (ms) | p90 (ms) | p99 (ms) | max (ms) "
          "| min (ms) | Enter → alert written, p50 / p99 (ms) | POSTs | checks |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for path in args.files:
        r = json.load(open(path))
        xs, st = r["post_ms"], r["stamp_ms"]
        if not xs:
            print(f"| {r['label']} | {r['lines']} | 0 | | | | | | | | {'; '.join(r['problems'][:3])} |")
            continue
        ok = "OK" if not r["problems"] and r["received_once"] == r["lines"] else "; ".join(r["problems"][:3])
        print(f"| {r['label']} | {r['lines']} | {r['received_once']} | {quantile(xs, .5):.2f} "
              f"| {quantile(xs, .9):.2f} | **{quantile(xs, .99):.2f}** | {max(xs):.2f} | {min(xs):.2f} "
              f"| {quantile(st, .5):.2f} / {quantile(st, .99):.2f} | {len(r['posts'])} | {ok} |")
    return 0


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    print(s.getsockname()[1])
    s.close()
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("free-port")
    r = sub.add_parser("run")
    r.add_argument("--socket", required=True)
    r.add_argument("--preload", required=True)
    r.add_argument("--port", type=int, required=True)
    r.add_argument("--label", required=True)
    r.add_argument("--lines", type=int, default=200)
    r.add_argument("--delay-ms", type=float, default=2)
    r.add_argument("--gap-ms", type=float, default=50)
    r.add_argument("--timeout", type=float, default=5)
    r.add_argument("--settle", type=float, default=1.0)
    r.add_argument("--home")
    r.add_argument("--out")
    s = sub.add_parser("summarize")
    s.add_argument("files", nargs="+")
    a = ap.parse_args()
    if a.cmd == "free-port":
        return free_port()
    if a.cmd == "summarize":
        return summarize(a)
    return run(a)


if __name__ == "__main__":
    sys.exit(main())
