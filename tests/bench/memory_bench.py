#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Driver for tests/bench/run_memory_bench.sh (not a test; nothing runs it from ctest): shauditd's
resident memory with many tracked processes and open sessions, then over a soak of session
churn. Needs root.

  memory_bench.py --work DIR --results DIR --shauditd BIN --shaudit BIN --preload LIB
                  --session-load BIN [--hold-sessions 1000] [--hold-children 10]
                  [--hold-seconds 30] [--soak-seconds 3600] [--soak-concurrent 10]
                  [--soak-lines 3] [--soak-execs 3] [--soak-interval-ms 300:800]
                  [--sample-s 5] [--idle 10]

One shauditd (bpf: on, `interposer:` the preloaded copy; private sockets, log, state_dir) for
the whole run; its RSS (VmRSS, and VmHWM) is sampled every --sample-s seconds into
RESULTS/memory.csv, with the phase and shauditd's counters. Phases:
  idle   --idle s: shauditd alone
  hold   `session_load hold -n HOLD_SESSIONS -c HOLD_CHILDREN`: HOLD_SESSIONS session entries (each
         opened an audited session as root and keeps its connection), each with HOLD_CHILDREN
         sleeping children: HOLD_SESSIONS x (1 + HOLD_CHILDREN) live tracked processes (the
         count in shauditd's "tracked" eBPF map is read with bpftool) and HOLD_SESSIONS open
         sessions, for --hold-seconds
  release  those processes exit (the sessions end); 10 s
  soak   `session_load churn`: --soak-concurrent sessions at a time for --soak-seconds, each a
         new process that opens a session, types --soak-lines lines, runs `sh -c '/bin/true; ...'`
         (--soak-execs execs, with the interposer) and ends (every other one by SESSION_CLOSE)
  after  10 s
Then shauditd is stopped and its log counted (loss, bypass records) and verified.
Results: RESULTS/memory.csv, RESULTS/memory.md (figures and targets: RSS <= 64 MiB, flat over the
soak), RESULTS/memory.png (gnuplot, when installed).
"""
import argparse
import csv
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import Daemon, LoadMeter, end_load, tracked_count  # noqa: E402
from scale_bench import expect_line  # noqa: E402

TARGET_MIB = 64


class Sampler(threading.Thread):
    def __init__(self, daemon, path, every):
        super().__init__(daemon=True)
        self.d = daemon
        self.every = every
        self.phase = "idle"
        self.rows = []
        self.stop_flag = threading.Event()
        self.f = open(path, "w", newline="")
        self.w = csv.writer(self.f)
        self.w.writerow(["t_s", "phase", "rss_kib", "hwm_kib", "sessions_open", "records_written",
                         "connections_open", "bpf_events", "bpf_dropped", "loss_records", "bypasses",
                         "cpu_s", "live_processes"])
        self.t0 = time.monotonic()

    def sample(self):
        rss, hwm = self.d.rss()
        try:
            s = self.d.stats()
        except (OSError, ValueError, subprocess.TimeoutExpired):
            s = {}
        row = [round(time.monotonic() - self.t0, 1), self.phase, rss, hwm, s.get("sessions_open"),
               s.get("records_written"), s.get("connections_open"), s.get("bpf_events"),
               s.get("bpf_dropped"), s.get("loss_records"), s.get("bypasses"),
               round(self.d.cpu() or 0, 3), sum(1 for p in os.listdir("/proc") if p.isdigit())]
        self.rows.append(row)
        self.w.writerow(row)
        self.f.flush()
        return row

    def run(self):
        while not self.stop_flag.is_set():
            if self.d.p.poll() is not None:
                break
            self.sample()
            self.stop_flag.wait(self.every)

    def stop(self):
        self.stop_flag.set()
        self.join(timeout=30)
        self.f.close()


def mib(kib):
    return kib / 1024 if kib is not None else float("nan")


def slope_kib_per_h(rows):
    """Least-squares slope of RSS over time (KiB per hour)."""
    xs = [r[0] for r in rows]
    ys = [r[2] for r in rows]
    if len(xs) < 3:
        return float("nan")
    mx, my = statistics.mean(xs), statistics.mean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / den * 3600 if den else float("nan")


def plot(results, hold_label, rows):
    if not shutil.which("gnuplot"):
        print("(no gnuplot: no plot)")
        return
    marks = ""
    for i, r in enumerate(rows):  # a dotted line and the name where each phase begins
        if i == 0 or r[1] != rows[i - 1][1]:
            marks += (f"set arrow from {r[0] / 60:.3f}, graph 0 to {r[0] / 60:.3f}, graph 1 nohead dt 3 lc rgb 'gray'\n"
                      f"set label '{r[1]}' at {r[0] / 60:.3f}, graph 0.05 offset 0.3,0 font ',9'\n")
    gp = Path(results) / "memory.gp"
    gp.write_text(marks + f"""set terminal pngcairo size 1200,500 font ",10"
set output "{results}/memory.png"
set datafile separator ","
set title "shauditd RSS (bpf: on): {hold_label}, then a soak of session churn"
set xlabel "time since shauditd started (min)"
set ylabel "MiB"
set yrange [0:*]
set grid
set key top right
plot "{results}/memory.csv" every ::1 u ($1/60):($3/1024) w l lw 2 t "VmRSS", \\
     "" every ::1 u ($1/60):($4/1024) w l dt 2 t "VmHWM (peak)", \\
     {TARGET_MIB} w l lc rgb "red" dt 3 t "target {TARGET_MIB} MiB"
""")
    r = subprocess.run(["gnuplot", str(gp)], capture_output=True, text=True)
    print(f"gnuplot failed: {r.stderr.strip()}" if r.returncode else f"plot: {results}/memory.png")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for k in ("work", "results", "shauditd", "shaudit", "preload", "session-load"):
        ap.add_argument(f"--{k}", required=True)
    ap.add_argument("--hold-sessions", type=int, default=1000)
    ap.add_argument("--hold-children", type=int, default=10)
    ap.add_argument("--hold-seconds", type=float, default=30)
    ap.add_argument("--soak-seconds", type=float, default=3600)
    ap.add_argument("--soak-concurrent", type=int, default=10)
    ap.add_argument("--soak-lines", type=int, default=3)
    ap.add_argument("--soak-execs", type=int, default=3)
    ap.add_argument("--soak-interval-ms", default="300:800")
    ap.add_argument("--sample-s", type=float, default=5)
    ap.add_argument("--idle", type=float, default=10)
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    res = Path(a.results)
    res.mkdir(parents=True, exist_ok=True)
    work = Path(a.work)
    key = work / "signing.key"
    subprocess.run([a.shaudit, "keygen", "--out", str(key)], check=True, capture_output=True)
    daemon = Daemon(a.shauditd, a.shaudit, work / "d", key, bpf=True, interposer=a.preload)
    sampler = Sampler(daemon, res / "memory.csv", a.sample_s)
    out = {"hold_sessions": a.hold_sessions, "hold_children": a.hold_children,
           "soak_seconds": a.soak_seconds, "soak_concurrent": a.soak_concurrent}
    hold = churn = None
    rc = 0
    try:
        sampler.start()
        print(f"shauditd pid {daemon.pid}: RSS {mib(daemon.rss()[0]):.1f} MiB at start", flush=True)
        time.sleep(a.idle)
        out["rss_idle_kib"] = daemon.rss()[0]

        # ---- hold: many live tracked processes, many open sessions
        n_procs = a.hold_sessions * (1 + a.hold_children)
        sampler.phase = "hold"
        t0 = time.monotonic()
        hold = subprocess.Popen([a.session_load, "hold", "-s", str(daemon.sock), "-n",
                                 str(a.hold_sessions), "-c", str(a.hold_children), "-d", "0",
                                 "-t", "mem", "-p", str(work / "hold.pids")],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        ok, failed = map(int, expect_line(hold, "ready", 300 + a.hold_sessions * 0.5))
        out["hold_ready_s"] = time.monotonic() - t0
        out["hold_sessions_ok"], out["hold_sessions_failed"] = ok, failed
        time.sleep(3)
        st = daemon.stats()
        out["hold_sessions_open"] = st["sessions_open"]
        out["hold_tracked"] = tracked_count(daemon.pid)
        print(f"hold: {ok} sessions open ({failed} failed) in {out['hold_ready_s']:.1f} s, "
              f"{n_procs} processes started; shauditd sessions_open {st['sessions_open']}, tracked "
              f"processes (eBPF map) {out['hold_tracked']}; RSS {mib(daemon.rss()[0]):.1f} MiB", flush=True)
        t_end = time.monotonic() + a.hold_seconds
        hold_rss = []
        while time.monotonic() < t_end:
            hold_rss.append(daemon.rss()[0])
            time.sleep(1)
        out["rss_hold_max_kib"] = max(hold_rss)
        out["rss_hold_median_kib"] = statistics.median(hold_rss)
        hold.stdin.write(b"go\n")
        hold.stdin.flush()
        expect_line(hold, "done", 60)
        sampler.phase = "release"
        hold.stdin.write(b"exit\n")
        hold.stdin.flush()
        expect_line(hold, "exited", 300)
        hold.wait(timeout=60)
        hold = None
        time.sleep(10)
        out["rss_after_release_kib"] = daemon.rss()[0]
        st = daemon.stats()
        print(f"release: sessions_open {st['sessions_open']}; RSS {mib(out['rss_after_release_kib']):.1f} MiB",
              flush=True)

        # ---- soak: session churn
        sampler.phase = "soak"
        print(f"soak: {a.soak_seconds:.0f} s, {a.soak_concurrent} sessions at a time ...", flush=True)
        meter = LoadMeter({"shauditd": daemon.pid})
        churn = subprocess.Popen([a.session_load, "churn", "-s", str(daemon.sock), "-C",
                                  str(a.soak_concurrent), "-T", str(a.soak_seconds), "-L",
                                  str(a.soak_lines), "-E", str(a.soak_execs), "-i",
                                  a.soak_interval_ms, "-P", a.preload, "-t", "soak"],
                                 stdout=subprocess.PIPE)
        cout, _ = churn.communicate(timeout=a.soak_seconds + 600)
        out["soak_rc"] = churn.returncode
        churn = None
        out["soak"] = json.loads(cout.decode().strip().splitlines()[-1])
        out["soak_load"] = meter.stop()
        sampler.phase = "after"
        time.sleep(10)
        out["rss_end_kib"], out["rss_hwm_kib"] = daemon.rss()
        st = daemon.stats()
        out["stats_end"] = {k: st[k] for k in ("sessions_open", "records_written", "bpf_events",
                                               "bpf_dropped", "loss_records", "bypasses",
                                               "connections_refused")}
    finally:
        for p in (hold, churn):
            end_load(p, 60)
        sampler.stop()
        out["daemon_exit"] = daemon.stop()

    # ---- the log
    counts = {}
    with open(daemon.log, "rb") as f:
        for line in f:
            r = json.loads(line)
            k = r.get("type")
            if k in ("bypass", "loss"):
                k = f"{k}:{r.get('kind') or r.get('cause')}"
            counts[k] = counts.get(k, 0) + 1
    out["log_counts"] = counts
    out["verify_ok"], out["verify_msg"] = daemon.verify(f"{key}.pub")
    if not a.keep:
        shutil.rmtree(daemon.d / "log", ignore_errors=True)

    # ---- figures
    rows = sampler.rows
    soak = [r for r in rows if r[1] == "soak" and r[2]]
    n = max(1, len(soak) // 10)
    first, last = soak[:n], soak[-n:]
    out["soak_samples"] = len(soak)
    if soak:
        out["soak_rss_first_kib"] = statistics.median(r[2] for r in first)
        out["soak_rss_last_kib"] = statistics.median(r[2] for r in last)
        out["soak_rss_max_kib"] = max(r[2] for r in soak)
        out["soak_rss_min_kib"] = min(r[2] for r in soak)
        out["soak_slope_kib_per_h"] = slope_kib_per_h(soak)
    all_max = max([r[2] for r in rows if r[2]] + [out.get("rss_hold_max_kib", 0)])
    out["rss_max_kib"] = all_max
    (res / "memory.json").write_text(json.dumps(out, indent=1) + "\n")

    growth = out.get("soak_rss_last_kib", 0) - out.get("soak_rss_first_kib", 0)
    flat = soak and growth <= max(1024, 0.05 * out["soak_rss_first_kib"])
    s = out.get("soak", {})
    md = [f"shauditd (bpf: on) resident memory; RSS sampled every {a.sample_s:.0f} s "
          f"({len(rows)} samples, memory.csv)\n",
          "| phase | figure | RSS (MiB) |", "|---|---|---:|",
          f"| idle | shauditd alone, after {a.idle:.0f} s | {mib(out.get('rss_idle_kib')):.1f} |",
          f"| hold | {out.get('hold_sessions_ok')} open sessions, {n_procs} live processes in them "
          f"(tracked by the kernel: {out.get('hold_tracked')}), median / max over {a.hold_seconds:.0f} s "
          f"| {mib(out.get('rss_hold_median_kib')):.1f} / {mib(out.get('rss_hold_max_kib')):.1f} |",
          f"| release | 10 s after they all exited | {mib(out.get('rss_after_release_kib')):.1f} |",
          f"| soak | first 10 % of the samples (median) | {mib(out.get('soak_rss_first_kib')):.1f} |",
          f"| soak | last 10 % of the samples (median) | {mib(out.get('soak_rss_last_kib')):.1f} |",
          f"| soak | min – max | {mib(out.get('soak_rss_min_kib')):.1f} – {mib(out.get('soak_rss_max_kib')):.1f} |",
          f"| soak | least-squares slope | {out.get('soak_slope_kib_per_h', float('nan')) / 1024:+.2f} MiB/h |",
          f"| end | 10 s after the soak; peak (VmHWM) of the whole run | {mib(out.get('rss_end_kib')):.1f}; "
          f"{mib(out.get('rss_hwm_kib')):.1f} |",
          "",
          f"Soak: {a.soak_seconds:.0f} s, {a.soak_concurrent} sessions at a time: "
          f"{s.get('sessions_started')} sessions ({s.get('sessions_failed')} failed), {s.get('lines')} lines, "
          f"{s.get('execs_true')} execs of /bin/true and {s.get('execs_sh')} of sh; other load on the machine "
          f"during the soak {out.get('soak_load', {}).get('other_cpus', float('nan')):.2f} CPUs.",
          f"Log: {json.dumps(counts, sort_keys=True)}; verify: {'OK' if out['verify_ok'] else 'FAILED'}.",
          "",
          "| target | measured | met? |", "|---|---|---|",
          f"| RSS ≤ {TARGET_MIB} MiB | max sampled {mib(all_max):.1f} MiB, peak (VmHWM) "
          f"{mib(out.get('rss_hwm_kib')):.1f} MiB | {'yes' if (out.get('rss_hwm_kib') or all_max) <= TARGET_MIB * 1024 else 'no'} |",
          f"| flat over the soak (last 10 % − first 10 % ≤ max(1 MiB, 5 %)) | {growth / 1024:+.2f} MiB "
          f"| {'yes' if flat else 'no'} |"]
    text = "\n".join(md)
    (res / "memory.md").write_text(text + "\n")
    print()
    print(text)
    print()
    plot(a.results, f"{out.get('hold_sessions_ok')} sessions with {n_procs} live processes", rows)
    bad = (out.get("hold_sessions_failed") or s.get("sessions_failed") or not out["verify_ok"]
           or any(k.startswith(("loss", "bypass")) for k in counts))
    return 1 if bad or rc else 0


if __name__ == "__main__":
    sys.exit(main())
