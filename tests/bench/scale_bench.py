#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Driver for tests/bench/run_scale_bench.sh (not a test; nothing runs it from ctest): many
concurrent typing sessions against one shauditd with bpf: on. Needs root.

  scale_bench.py --work DIR --results DIR --shauditd BIN --shaudit BIN --preload LIB
                 --session-load BIN [--sessions 1,10,100,1000] [--duration 120]
                 [--interval-ms 1000:2000] [--idle 10]

For each N in --sessions, a fresh shauditd (bpf: on, `interposer:` the preloaded copy, private
sockets, log and state_dir in DIR) and `session_load hold -n N`: N processes (distinct pids),
each the entry of an audited session it opened with SESSION_OPEN as root, each sending LINE
reports at a typist's pace (one every 1-2 s, jittered) for --duration seconds. Each line's text
carries a unique id and its send time (CLOCK_REALTIME just before send()):
  scale TAG s=SESSION n=K t=SENT_NS
A tailer (a thread, inotify) reads the log as it grows and takes for each command record of the
run: latency to the log file = the time the record was read from the file - SENT_NS; latency
to shauditd's receipt = the record's "time" (shauditd's clock at receipt) - SENT_NS.

Per N: lines sent, records found (must be equal), p50/p99/max latency, shauditd CPU
(utime+stime, /proc/PID/stat) from the release of the typing until the last record was found,
per record, in µs, also less shauditd's idle CPU (measured for --idle s with the N sessions open
and silent, before and after the typing: its timers), the seals written meanwhile (one per
seal_interval_ms at most: at a low rate, one per record), shauditd RSS and peak RSS (VmHWM) at the end,
the other load on the machine during the typing (busy time less the benchmark's own processes:
this driver and tailer, shauditd, the session processes). Results: RESULTS/scale.jsonl (one
object per N), RESULTS/scale.md (the table), RESULTS/scale.png (gnuplot, when installed).
"""
import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import Daemon, LoadMeter, Tail, end_load, iso_to_ns, quantile  # noqa: E402

LINE_RE = re.compile(rb'"text":"scale (\S+) s=(\d+) n=(\d+) t=(\d+)"')
TIME_RE = re.compile(rb'"time":"([^"]+)"')


class Tailer(threading.Thread):
    """Reads the log as it grows; for each command record of the run (its TAG): the latency to
    the file and to shauditd's receipt stamp."""

    def __init__(self, path, tag):
        super().__init__(daemon=True)
        self.tail = Tail(path, from_end=False)
        self.tag = tag.encode()
        self.file_ms = []
        self.stamp_ms = []
        self.ids = set()
        self.dups = 0
        self.stop_flag = False

    def run(self):
        while not self.stop_flag:
            lines = self.tail.lines()
            now = time.time_ns()
            for line in lines:
                if b'"type":"command"' not in line:
                    continue
                m = LINE_RE.search(line)
                if not m or m.group(1) != self.tag:
                    continue
                key = (int(m.group(2)), int(m.group(3)))
                if key in self.ids:
                    self.dups += 1
                    continue
                self.ids.add(key)
                sent = int(m.group(4))
                self.file_ms.append((now - sent) / 1e6)
                t = TIME_RE.search(line)
                if t:
                    self.stamp_ms.append((iso_to_ns(t.group(1).decode()) - sent) / 1e6)
            if not lines:
                self.tail.wait(0.05)
        self.tail.close()


def read_pids(path):
    try:
        return [int(x) for x in Path(path).read_text().split()]
    except OSError:
        return []


def expect_line(p, word, timeout):
    """Reads session_load's next handshake line (it starts with word)."""
    import select
    deadline = time.monotonic() + timeout
    buf = b""
    fd = p.stdout.fileno()
    while b"\n" not in buf:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"session_load: no '{word}' within {timeout:.0f} s")
        r, _, _ = select.select([fd], [], [], left)
        if r:
            c = os.read(fd, 1)
            if not c:
                raise RuntimeError(f"session_load exited before '{word}' (rc {p.wait()})")
            buf += c
    parts = buf.decode().split()
    if parts[0] != word:
        raise RuntimeError(f"session_load said {buf!r}, expected {word}")
    return parts[1:]


def run_one(a, n, key):
    tag = f"N{n}-{int(time.time())}"
    d = Path(a.work) / f"n{n}"
    d.mkdir(parents=True, exist_ok=True)
    rec = {"sessions": n, "duration_s": a.duration, "interval_ms": a.interval_ms, "tag": tag}
    daemon = Daemon(a.shauditd, a.shaudit, d, key, bpf=True, interposer=a.preload)
    load = tailer = None
    try:
        rss0, _ = daemon.rss()
        rec["rss_start_kib"] = rss0
        tailer = Tailer(daemon.log, tag)
        tailer.start()
        pidfile = d / "pids"
        t_open = time.monotonic()
        load = subprocess.Popen([a.session_load, "hold", "-s", str(daemon.sock), "-n", str(n),
                                 "-d", str(a.duration), "-i", a.interval_ms, "-t", tag,
                                 "-p", str(pidfile)],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        ok, failed = map(int, expect_line(load, "ready", 120 + n * 0.2))
        rec["sessions_open_s"] = time.monotonic() - t_open
        rec["sessions_ok"], rec["sessions_failed"] = ok, failed
        pids = read_pids(pidfile)
        s = daemon.stats()
        rec["daemon_sessions_open"] = s["sessions_open"]
        print(f"  N={n}: {ok} sessions open ({failed} failed) in {rec['sessions_open_s']:.1f} s; "
              f"shauditd sessions_open {s['sessions_open']}, RSS {daemon.rss()[0] / 1024:.1f} MiB",
              flush=True)
        # shauditd's idle cost with the sessions open and silent: its 20 ms kernel-event tick,
        # seals; subtracted from the typing's CPU in the "less idle" column.
        time.sleep(1.0)
        c0, t0 = daemon.cpu(), time.monotonic()
        time.sleep(a.idle)
        rec["idle_cpu_per_s"] = (daemon.cpu() - c0) / (time.monotonic() - t0)
        # Go.
        meter = LoadMeter({"shauditd": daemon.pid, "sessions": pids})
        c0, k0 = daemon.cpu(), daemon.cpu_ticks()
        s0 = daemon.stats()
        t_go = time.monotonic()
        load.stdin.write(b"go\n")
        load.stdin.flush()
        sent, errors = map(int, expect_line(load, "done", a.duration + 120 + n * 0.1))
        t_done = time.monotonic()
        rec["lines_sent"], rec["send_errors"] = sent, errors
        deadline = time.monotonic() + 60
        while len(tailer.ids) < sent and time.monotonic() < deadline:
            time.sleep(0.05)
        t_found = time.monotonic()
        c1, k1 = daemon.cpu(), daemon.cpu_ticks()
        rec["daemon_cpu_ticks_s"] = k1 - k0
        rec["rss_end_kib"], rec["rss_hwm_kib"] = daemon.rss()
        s1 = daemon.stats()
        rec.update(meter.stop())
        rec["records_found"] = len(tailer.ids)
        rec["duplicates"] = tailer.dups
        rec["typing_s"] = t_done - t_go
        rec["until_found_s"] = t_found - t_go
        rec["daemon_cpu_s"] = c1 - c0
        rec["daemon_cpu_less_idle_s"] = c1 - c0 - rec["idle_cpu_per_s"] * (t_found - t_go)
        found = max(len(tailer.ids), 1)
        rec["cpu_us_per_record"] = rec["daemon_cpu_s"] / found * 1e6
        rec["cpu_us_per_record_less_idle"] = rec["daemon_cpu_less_idle_s"] / found * 1e6
        rec["records_written"] = s1["records_written"] - s0["records_written"]
        rec["seals"] = s1["seals"] - s0["seals"]
        rec["bpf_events"] = s1["bpf_events"] - s0["bpf_events"]
        rec["bpf_dropped"] = s1["bpf_dropped"]
        rec["loss_records"] = s1["loss_records"]
        rec["bypasses"] = s1["bypasses"]
        rec["connections_refused"] = s1["connections_refused"]
        rec["client_pauses"] = s1["client_pauses"] - s0["client_pauses"]
        fm, sm = tailer.file_ms, tailer.stamp_ms
        for name, xs in (("file", fm), ("stamp", sm)):
            rec[f"lat_{name}_p50_ms"] = quantile(xs, 0.5)
            rec[f"lat_{name}_p90_ms"] = quantile(xs, 0.9)
            rec[f"lat_{name}_p99_ms"] = quantile(xs, 0.99)
            rec[f"lat_{name}_max_ms"] = max(xs) if xs else float("nan")
        with open(d / "latency.json", "w") as f:
            json.dump({"file_ms": fm, "stamp_ms": sm}, f)
        # Idle again (the sessions open and silent): the idle rate is the mean of both.
        time.sleep(1.0)
        c2, t2 = daemon.cpu(), time.monotonic()
        time.sleep(a.idle)
        rec["idle_cpu_per_s_before"] = rec["idle_cpu_per_s"]
        rec["idle_cpu_per_s_after"] = (daemon.cpu() - c2) / (time.monotonic() - t2)
        rec["idle_cpu_per_s"] = (rec["idle_cpu_per_s_before"] + rec["idle_cpu_per_s_after"]) / 2
        rec["daemon_cpu_less_idle_s"] = c1 - c0 - rec["idle_cpu_per_s"] * (t_found - t_go)
        rec["cpu_us_per_record_less_idle"] = rec["daemon_cpu_less_idle_s"] / found * 1e6
        # The end: the sessions' processes exit (their sessions end).
        load.stdin.write(b"exit\n")
        load.stdin.flush()
        expect_line(load, "exited", 120 + n * 0.1)
        load.wait(timeout=60)
        load = None
        tailer.stop_flag = True
        tailer.join(timeout=10)
        rec["daemon_exit"] = daemon.stop()
        ok_v, msg = daemon.verify(Path(f"{key}.pub"))
        rec["verify_ok"] = ok_v
        # Authoritative count from the whole log, once shauditd has stopped.
        n_cmd = 0
        with open(daemon.log, "rb") as f:
            for line in f:
                if b'"type":"command"' in line:
                    m = LINE_RE.search(line)
                    n_cmd += bool(m and m.group(1) == tag.encode())
        rec["records_in_log"] = n_cmd
        if not a.keep:
            shutil.rmtree(d / "log", ignore_errors=True)
    finally:
        if tailer:
            tailer.stop_flag = True
        end_load(load, 30)
        daemon.stop(signal.SIGKILL if daemon.p.poll() is None else signal.SIGTERM)
    return rec


def fmt(x, f="{:.2f}"):
    return "-" if x is None or x != x else f.format(x)


def table(recs):
    out = ["| sessions | lines sent | records found | equal | latency to log file p50 / p99 / max (ms) "
           "| latency to shauditd's stamp p50 / p99 (ms) | shauditd CPU per record (µs) "
           "| ... less its idle CPU (µs) | shauditd idle CPU (% of a CPU) | seals written while typing "
           "| shauditd RSS at end (MiB) "
           "| peak RSS (MiB) | other load (CPUs) | send errors / loss / bypasses / refused |",
           "|---:|---:|---:|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in recs:
        out.append(
            f"| {r['sessions']} | {r['lines_sent']} | {r['records_found']} (log: {r['records_in_log']}) "
            f"| {'yes' if r['records_found'] == r['lines_sent'] == r['records_in_log'] else '**no**'} "
            f"| {fmt(r['lat_file_p50_ms'])} / {fmt(r['lat_file_p99_ms'])} / {fmt(r['lat_file_max_ms'])} "
            f"| {fmt(r['lat_stamp_p50_ms'])} / {fmt(r['lat_stamp_p99_ms'])} "
            f"| {fmt(r['cpu_us_per_record'], '{:.0f}')} | {fmt(r['cpu_us_per_record_less_idle'], '{:.0f}')} "
            f"| {r['idle_cpu_per_s'] * 100:.2f} | {r.get('seals', '-')} | {r['rss_end_kib'] / 1024:.1f} | {r['rss_hwm_kib'] / 1024:.1f} "
            f"| {r['other_cpus']:.2f} | {r['send_errors']} / {r['loss_records']} / {r['bypasses']} "
            f"/ {r['connections_refused']} |")
    if len(recs) >= 2:
        out.append("")
        out.append("Flatness from the fewest to the most sessions (target: within 2x):\n")
        out.append("| figure | min | max | max/min | within 2x |")
        out.append("|---|---:|---:|---:|---|")
        for key, name in (("cpu_us_per_record", "shauditd CPU per record (µs)"),
                          ("cpu_us_per_record_less_idle", "... less its idle CPU (µs)"),
                          ("lat_file_p50_ms", "latency to log file p50 (ms)"),
                          ("lat_file_p99_ms", "latency to log file p99 (ms)"),
                          ("lat_stamp_p50_ms", "latency to shauditd's stamp p50 (ms)"),
                          ("lat_stamp_p99_ms", "latency to shauditd's stamp p99 (ms)")):
            xs = [r[key] for r in recs if r[key] == r[key] and r[key] > 0]
            if len(xs) < 2:
                continue
            q = max(xs) / min(xs)
            out.append(f"| {name} | {min(xs):.2f} | {max(xs):.2f} | {q:.2f} | {'yes' if q <= 2 else 'no'} |")
    return "\n".join(out)


def plot(recs, results):
    if not shutil.which("gnuplot"):
        print("(no gnuplot: no plot)")
        return
    dat = Path(results) / "scale.dat"
    with open(dat, "w") as f:
        f.write("# sessions lat_file_p50 lat_file_p99 lat_stamp_p50 lat_stamp_p99 cpu_us cpu_us_less_idle rss_mib hwm_mib\n")
        for r in recs:
            f.write(f"{r['sessions']} {r['lat_file_p50_ms']} {r['lat_file_p99_ms']} {r['lat_stamp_p50_ms']} "
                    f"{r['lat_stamp_p99_ms']} {r['cpu_us_per_record']} {r['cpu_us_per_record_less_idle']} "
                    f"{r['rss_end_kib'] / 1024} {r['rss_hwm_kib'] / 1024}\n")
    gp = Path(results) / "scale.gp"
    gp.write_text(f"""set terminal pngcairo size 1500,450 font ",10"
set output "{results}/scale.png"
set multiplot layout 1,3 title "shauditd (bpf: on): N concurrent typing sessions"
set logscale x
set xlabel "concurrent sessions"
set grid
set key top left
set title "line -> record latency (ms)"
set logscale y
plot "{dat}" u 1:2 w lp t "log file p50", "" u 1:3 w lp t "log file p99", "" u 1:4 w lp t "stamp p50", "" u 1:5 w lp t "stamp p99"
set title "shauditd CPU per record (µs)"
plot "{dat}" u 1:6 w lp t "total", "" u 1:7 w lp t "less idle CPU"
unset logscale y
set title "shauditd RSS (MiB)"
set yrange [0:*]
plot "{dat}" u 1:8 w lp t "at end", "" u 1:9 w lp t "peak (VmHWM)"
unset multiplot
""")
    r = subprocess.run(["gnuplot", str(gp)], capture_output=True, text=True)
    if r.returncode != 0:
        print(f"gnuplot failed: {r.stderr.strip()}")
    else:
        print(f"plot: {results}/scale.png")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", required=True)
    ap.add_argument("--results", required=True)
    ap.add_argument("--shauditd", required=True)
    ap.add_argument("--shaudit", required=True)
    ap.add_argument("--preload", required=True)
    ap.add_argument("--session-load", required=True)
    ap.add_argument("--sessions", default="1,10,100,1000")
    ap.add_argument("--duration", type=float, default=120)
    ap.add_argument("--interval-ms", default="1000:2000")
    ap.add_argument("--idle", type=float, default=10)
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    os.makedirs(a.results, exist_ok=True)
    key = Path(a.work) / "signing.key"
    subprocess.run([a.shaudit, "keygen", "--out", str(key)], check=True, capture_output=True)
    recs = []
    out = Path(a.results) / "scale.jsonl"
    for n in [int(x) for x in a.sessions.split(",") if x]:
        print(f"=== {n} concurrent sessions, {a.duration:.0f} s of typing (one line every "
              f"{a.interval_ms} ms each)", flush=True)
        r = run_one(a, n, key)
        recs.append(r)
        with open(out, "a") as f:
            f.write(json.dumps(r) + "\n")
        print(f"  N={n}: sent {r['lines_sent']} found {r['records_found']} (log {r['records_in_log']}); "
              f"latency file p50 {r['lat_file_p50_ms']:.2f} p99 {r['lat_file_p99_ms']:.2f} ms, stamp p50 "
              f"{r['lat_stamp_p50_ms']:.2f} p99 {r['lat_stamp_p99_ms']:.2f} ms; CPU/record "
              f"{r['cpu_us_per_record']:.0f} µs ({r['cpu_us_per_record_less_idle']:.0f} less idle); RSS "
              f"{r['rss_end_kib'] / 1024:.1f} MiB (peak {r['rss_hwm_kib'] / 1024:.1f}); other load "
              f"{r['other_cpus']:.2f} CPUs; verify {'OK' if r['verify_ok'] else 'FAILED'}", flush=True)
    md = table(recs)
    (Path(a.results) / "scale.md").write_text(md + "\n")
    print()
    print(md)
    print()
    plot(recs, a.results)
    bad = [r for r in recs if not (r["records_found"] == r["lines_sent"] == r["records_in_log"])
           or r["sessions_failed"] or not r["verify_ok"]]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
