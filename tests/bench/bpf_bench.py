#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Driver for tests/bench/run_bpf_bench.sh: the kernel cross-check (eBPF collector) benchmark.
Not a test; nothing runs it from ctest. Needs root. Start it through run_bpf_bench.sh, which
builds and copies the binaries it measures.

  bpf_bench.py run --work DIR --shauditd BIN --shaudit BIN --preload LIB --exec-load BIN
                   [--rounds 10] [--workers 4] [--per-worker 2500]
                   [--configs base,shaudit-off,shaudit-bpf,bt-exec,bt-argv]
                   [--ring-kib 4,16,64,256,1024,8192] [--ring-rounds 3] [--ring-per-worker N]
                   [--parts R,L,P] [--variant NAME=SHAUDITD[,VAR=VALUE...]]... [--keep]
                   [--quiet-max 0.15] [--quiet-wait 60]
  bpf_bench.py summarize RUNS.jsonl [--configs ...]     # the tables again, from a run's data

Every run starts a fresh interactive bash on a pseudo-terminal (with the interposer in the
shaudit configurations, so the daemon opens an implicit session for it and the collector
tracks it), types one command line into it that runs exec_load (WORKERS processes, each
fork+exec'ing /bin/true PER_WORKER times as fast as it can), and waits for the prompt. The
shell is put in a cgroup (v2) of the benchmark's own; the bpftrace probes filter on it.

Configurations (all runs of a round use the same load; rounds rotate the order):
  base          no daemon, no interposer, no eBPF
  shaudit-off   interposer + shauditd with bpf: off
  shaudit-bpf   interposer + shauditd with bpf: on (ring buffer bpf_ringbuf_kib, default 8192)
  bt-exec       no interposer; bpftrace: sched_process_exec -> printf pid, ppid, filename
  bt-argv       no interposer; bpftrace: sched_process_exec -> printf pid, ppid, filename and the
                new image's argument area (%r, up to 64 bytes)
  bt-join       (not by default) bpftrace: sys_enter_execve -> printf ... + join(args->argv)
  C+unhooked    (not by default) C (shaudit-bpf or a variant) with the load started through
                `env -u LD_PRELOAD -u SHAUDIT_SOCKET` from the interposed shell: its processes are
                tracked by the kernel but carry no interposer (every exec is an unhooked_process
                bypass); the exec'ing processes' CPU then holds the eBPF programs and no report
  NAME          --variant NAME=SHAUDITD[,VAR=VALUE...]: as shaudit-bpf, but with another shauditd
                binary (and environment variables for it): another build, side by side
The daemon (or bpftrace) is started before and stopped after each run, so its programs are
attached only during its own runs.

Parts:  R  the interleaved rounds above (figures, ratios within a round)
        L  ring-buffer sizes for shaudit-bpf (where loss starts)
        P  one run of shaudit-bpf, each variant, bt-exec, bt-argv and bt-count (the bt-exec
           probe and filter, counting in a map, no output) with BPF run-time statistics on
           (BPF_ENABLE_STATS, held by a descriptor; off again when it is closed): the
           programs' own run time per call, from /proc/PID/fdinfo of their descriptors
shauditd is given `interposer: PRELOAD` (the very file the shells preload): the collector
probes the interposer's initialisation by inode. In the benchmark shell's session the kernel's
exec event is the exec record ("source": "bpf", "reported": true when the interposer's report
matched it); the summary counts those per run and prints the exec storm's targets for
shaudit-bpf (wall ratio vs base <= 1.15, no loss, every exec recorded and cross-checked,
shauditd CPU per exec <= 15 µs) with bt-exec in the same rounds.
Results: DIR/runs.jsonl (one object per run) and a Markdown summary on stdout.
"""
import argparse
import ctypes
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "integration"))
from ptyshell import PS1, PtyShell  # noqa: E402
sys.path.insert(0, str(HERE))
from benchlib import own_key, spread  # noqa: E402


def spread0(xs, f="{:.0f}"):
    """This summary's figures: median (q1–q3; min–max)."""
    return spread(xs, f, iqr="")

CLK_TCK = os.sysconf("SC_CLK_TCK")
# Every run's shell (and so the whole load) is in a cgroup of its own (cgroup v2); the
# bpftrace probes filter on it in the kernel, the counterpart of shaudit's tracked-process
# map: other users' execs on this shared machine are neither printed nor counted.
BT_PROGS = {
    # The probe the brief names: every exec, pid and filename (+ the parent, to count ours).
    "bt-exec": 'tracepoint:sched:sched_process_exec /cgroup == cgroupid("@CG@")/ { '
               'printf("%d %d %s\\n", pid, curtask->real_parent->tgid, str(args->filename)); }',
    # With the arguments, read where shaudit's handle_exec reads them: the new image's
    # argument area (mm->arg_start..arg_end), up to bpftrace's string size (64 bytes).
    "bt-argv": 'tracepoint:sched:sched_process_exec /cgroup == cgroupid("@CG@")/ { '
               '$a = curtask->mm->arg_start; $l = curtask->mm->arg_end - $a; '
               'printf("%d %d %s %r\\n", pid, curtask->real_parent->tgid, str(args->filename), '
               'buf(uptr($a), $l)); }',
    # Not in the default set: argv with join() at sys_enter_execve. In a fork child the
    # filename and argv pages are often not faulted in yet, so the strings come out empty.
    "bt-join": 'tracepoint:syscalls:sys_enter_execve /cgroup == cgroupid("@CG@")/ { '
               'printf("%d %d %s ", pid, curtask->real_parent->tgid, str(args->filename)); '
               'join(args->argv); }',
    # Control (part P): the same probe and filter, counting in a map, no output at all.
    "bt-count": 'tracepoint:sched:sched_process_exec /cgroup == cgroupid("@CG@")/ { @c = count(); }',
}
ALL_CONFIGS = ["base", "shaudit-off", "shaudit-bpf", "bt-exec", "bt-argv"]


def pid_cpu(pid):
    """utime+stime (s) of a live process, all threads."""
    with open(f"/proc/{pid}/stat") as f:
        s = f.read()
    rest = s[s.rindex(")") + 2:].split()
    return (int(rest[11]) + int(rest[12])) / CLK_TCK


def sys_busy():
    """Busy CPU seconds of the whole machine so far (/proc/stat: user nice system irq softirq)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (v[0] + v[1] + v[2] + v[5] + v[6]) / CLK_TCK


def bpf_progs_of(pid):
    """{prog_id: {name fields from fdinfo}} for the BPF program descriptors pid holds."""
    out = {}
    fddir = f"/proc/{pid}/fd"
    for fd in os.listdir(fddir):
        try:
            if os.readlink(f"{fddir}/{fd}") != "anon_inode:bpf-prog":
                continue
            info = {}
            with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                for line in f:
                    k, _, v = line.partition(":")
                    info[k.strip()] = v.strip()
            out[int(info["prog_id"])] = info
        except (OSError, KeyError, ValueError):
            pass
    return out


def prog_names():
    """{prog_id: name} of every loaded BPF program (bpftool), or {} without bpftool."""
    try:
        r = subprocess.run(["bpftool", "prog", "show", "--json"], capture_output=True, text=True,
                           timeout=20)
        return {p["id"]: p.get("name", "") for p in json.loads(r.stdout or "[]")}
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return {}


def foreign_exec_progs(own_ids):
    """Loaded programs not ours that also run on every exec: other shauditd collectors
    (handle_exec) and anything else on sched_process_exec we can name."""
    names = prog_names()
    return sum(1 for i, n in names.items() if i not in own_ids and n in ("handle_exec",))


def settle(rec, t_end, min_wait, probe, key=lambda v: v):
    """Polls probe() until key(value) has not changed for 0.5 s and min_wait s have passed
    since t_end, or 120 s have passed (then sets rec["settle_timeout"]); returns the last value."""
    last, stable_since = object(), time.monotonic()
    while True:
        v = probe()
        now = time.monotonic()
        if key(v) != last:
            last, stable_since = key(v), now
        if now - stable_since >= 0.5 and now - t_end >= min_wait:
            return v
        if now - t_end > 120:
            rec["settle_timeout"] = True
            return v
        time.sleep(0.1)


class StatsFd:
    """BPF_ENABLE_STATS(BPF_STATS_RUN_TIME): run-time accounting while the descriptor is open."""

    def __init__(self):
        libc = ctypes.CDLL(None, use_errno=True)
        attr = ctypes.create_string_buffer(120)  # union bpf_attr, enable_stats.type = 0
        fd = libc.syscall(321, 32, attr, 120)   # __NR_bpf (x86_64), BPF_ENABLE_STATS
        if fd < 0:
            raise OSError(ctypes.get_errno(), "BPF_ENABLE_STATS")
        self.fd = fd

    def close(self):
        os.close(self.fd)


class Bench:
    def __init__(self, a):
        for k in ("work", "shauditd", "shaudit", "preload", "exec_load"):
            setattr(a, k, os.path.abspath(getattr(a, k)))
        self.a = a
        self.work = Path(a.work)
        self.runs_path = self.work / "runs.jsonl"
        self.children = []  # Popen objects we started and must stop
        self.work.mkdir(parents=True, exist_ok=True)
        self.key = self.work / "signing.key"
        if not self.key.exists():
            subprocess.run([a.shaudit, "keygen", "--out", str(self.key)], check=True,
                           capture_output=True)
        self.seq = 0
        self.variants = {}
        for v in a.variant:
            name, _, rest = v.partition("=")
            binary, *envs = rest.split(",")
            self.variants[name] = (os.path.abspath(binary), dict(e.split("=", 1) for e in envs))
        # The cgroup (v2) every run's shell is put in.
        root = "/sys/fs/cgroup/unified" if os.path.isdir("/sys/fs/cgroup/unified") else "/sys/fs/cgroup"
        self.cgroup = f"{root}/shaudit-bpfbench-{os.getpid()}"
        os.makedirs(self.cgroup, exist_ok=True)

    # ------------------------------------------------------------------ processes
    def stop_child(self, p, sig=signal.SIGTERM, timeout=30):
        if p.poll() is None:
            p.send_signal(sig)
            try:
                p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if p in self.children:
            self.children.remove(p)
        return p.returncode

    def cleanup(self):
        for p in list(self.children):
            self.stop_child(p, signal.SIGKILL, 5)
        for _ in range(50):
            try:
                os.rmdir(self.cgroup)
                break
            except FileNotFoundError:
                break
            except OSError:
                time.sleep(0.1)

    def start_daemon(self, d, bpf, ring_kib, binary=None, env=None):
        d.mkdir(parents=True, exist_ok=True)
        cfg = d / "shauditd.yaml"
        # interposer: the very file the shells preload (a stable copy): the collector probes its
        # initialisation by inode (with bpf: on, shauditd refuses to start if it cannot).
        cfg.write_text(f"socket: {d}/d.sock\ncontrol_socket: {d}/d.ctl\nlog: {d}/log/audit.jsonl\n"
                       f"signing_key: {own_key(self.key, d)}\nstate_dir: {d}/state\nbpf: {'on' if bpf else 'off'}\n"
                       f"bpf_ringbuf_kib: {ring_kib}\ninterposer: {self.a.preload}\n")
        err = open(d / "shauditd.stderr", "wb")
        p = subprocess.Popen([binary or self.a.shauditd, "--config", str(cfg)],
                             stdout=subprocess.DEVNULL, stderr=err,
                             env=dict(os.environ, **(env or {})))
        err.close()
        self.children.append(p)
        deadline = time.monotonic() + 20
        while not (d / "d.sock").exists() or not (d / "d.ctl").exists():
            if p.poll() is not None:
                raise RuntimeError(f"shauditd exited: {(d / 'shauditd.stderr').read_text()}")
            if time.monotonic() > deadline:
                raise RuntimeError("shauditd did not start")
            time.sleep(0.02)
        return p

    def stats(self, d):
        r = subprocess.run([self.a.shaudit, "stats", "--control", f"{d}/d.ctl", "--json"],
                           capture_output=True, text=True, timeout=20)
        return json.loads(r.stdout)

    def start_bpftrace(self, d, cfg):
        out = open(d / "bpftrace.out", "wb")
        err = open(d / "bpftrace.stderr", "wb")
        p = subprocess.Popen(["bpftrace", "-e", BT_PROGS[cfg].replace("@CG@", self.cgroup)],
                             stdout=out, stderr=err)
        out.close()
        err.close()
        self.children.append(p)
        deadline = time.monotonic() + 60
        while b"Attaching" not in (d / "bpftrace.out").read_bytes()[:200]:
            if p.poll() is not None:
                raise RuntimeError(f"bpftrace exited: {(d / 'bpftrace.stderr').read_text()}")
            if time.monotonic() > deadline:
                raise RuntimeError("bpftrace did not attach")
            time.sleep(0.05)
        time.sleep(0.2)
        return p

    def wait_quiet(self):
        """Waits (up to --quiet-wait s) for a second in which the machine's busy time is below
        --quiet-max CPUs (nothing of ours runs between runs: this is other users' load)."""
        t0 = time.monotonic()
        while True:
            b0 = sys_busy()
            time.sleep(1.0)
            busy = sys_busy() - b0
            waited = time.monotonic() - t0
            if busy <= self.a.quiet_max or waited >= self.a.quiet_wait:
                return busy, waited

    # ------------------------------------------------------------------ one run
    def run_one(self, cfg, round_no, part, ring_kib=8192, per_worker=None, profile=False):
        a = self.a
        per_worker = per_worker or a.per_worker
        self.seq += 1
        d = self.work / f"run-{self.seq:04d}-{cfg}"
        d.mkdir(parents=True)
        # NAME+unhooked: the shell is interposed (its session is open and tracked), the load
        # runs without the interposer (env -u LD_PRELOAD): only the kernel sees its execs.
        kind, _, suffix = cfg.partition("+")
        unhooked = suffix == "unhooked"
        variant = self.variants.get(kind)
        bpf_on = kind == "shaudit-bpf" or variant is not None
        interposed = kind.startswith("shaudit") or variant is not None
        daemon = bt = None
        rec = {"part": part, "round": round_no, "config": cfg, "ring_kib": ring_kib if bpf_on else None,
               "workers": a.workers, "per_worker": per_worker}
        stats_fd = None
        sh = None
        rec["pre_busy_cpus"], rec["quiet_wait_s"] = self.wait_quiet()
        try:
            if interposed:
                daemon = self.start_daemon(d, bpf_on, ring_kib, *(variant or (None, None)))
            if cfg.startswith("bt-"):
                bt = self.start_bpftrace(d, cfg)
            watch = [p.pid for p in (daemon, bt) if p]
            own = set()
            for p in watch:
                own |= set(bpf_progs_of(p))
            rec["own_bpf_progs"] = len(own)
            rec["foreign_exec_progs"] = foreign_exec_progs(own)
            env = {"PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "HOME": str(d),
                   "TERM": "xterm", "LANG": "C.UTF-8", "PS1": PS1}
            if interposed:
                env.update(LD_PRELOAD=a.preload, SHAUDIT_SOCKET=f"{d}/d.sock")
            procs = f"{self.cgroup}/cgroup.procs"

            def enter_cgroup():
                with open(procs, "w") as f:
                    f.write("0")
            sh = PtyShell(["/bin/bash", "--norc", "--noprofile", "-i"], env=env, cwd=str(d),
                          preexec=enter_cgroup)
            sh.wait_prompt(timeout=30)
            with open(f"/proc/{sh.pid}/cgroup") as f:
                if f"::/{os.path.basename(self.cgroup)}\n" not in f.read():
                    raise RuntimeError("the benchmark shell is not in its cgroup")
            if interposed:  # the implicit session is open (the collector tracks the shell)
                deadline = time.monotonic() + 10
                while self.stats(d)["sessions_open"] < 1:
                    if time.monotonic() > deadline:
                        raise RuntimeError("no implicit session for the benchmark shell")
                    time.sleep(0.05)
            time.sleep(0.3)
            s0 = self.stats(d) if interposed else None
            cpu0 = {p: pid_cpu(p) for p in watch}
            if profile:
                stats_fd = StatsFd()
                progs0 = {p: bpf_progs_of(p) for p in watch}
            out = d / "load.json"
            cmd = f"{a.exec_load} -w {a.workers} -n {per_worker} -o {out}"
            if unhooked:
                cmd = "env -u LD_PRELOAD -u SHAUDIT_SOCKET " + cmd
            if watch:
                cmd += " -p " + ",".join(map(str, watch))
            sh.line(cmd, timeout=3600)
            t_end = time.monotonic()
            load = json.loads(out.read_text())
            rec.update(load)
            # Settle: the daemon (or bpftrace) finishes what the load left it; cross-check
            # decisions wait for their window (1 s).
            if interposed:
                s1 = settle(rec, t_end, 1.6, lambda: self.stats(d),
                            key=lambda s: (s["bpf_events"], s["records_written"], s["queue_depth"]))
            if bt:
                path = d / "bpftrace.out"
                settle(rec, t_end, 1.0, lambda: path.stat().st_size)
            rec["settle_s"] = time.monotonic() - t_end
            cpu1 = {p: pid_cpu(p) for p in watch}
            if profile:
                progs1 = {p: bpf_progs_of(p) for p in watch}
                stats_fd.close()
                stats_fd = None
                names = prog_names()
                prof = {}
                for p in watch:
                    for pid_, info in progs1[p].items():
                        i0 = progs0[p].get(pid_, {})
                        cnt = int(info.get("run_cnt", 0)) - int(i0.get("run_cnt", 0))
                        ns = int(info.get("run_time_ns", 0)) - int(i0.get("run_time_ns", 0))
                        prof[names.get(pid_, str(pid_))] = {"run_cnt": cnt, "run_time_ns": ns}
                rec["bpf_prog_profile"] = prof
            sh.exit(timeout=30)
            sh = None
            rec["wall_s"] = load["wall_s"]
            load_cpu = load["load_user_s"] + load["load_sys_s"]
            in_window = sum(v for v in load["pids"].values() if v > 0)
            rec["load_cpu_s"] = load_cpu
            rec["other_cpu_s"] = load["sys_busy_s"] - load_cpu - in_window
            if daemon:
                rec["daemon_cpu_s"] = cpu1[daemon.pid] - cpu0[daemon.pid]
                rec["daemon_cpu_in_window_s"] = load["pids"][str(daemon.pid)]
                rec["bpf_events"] = s1["bpf_events"] - s0["bpf_events"]
                rec["bpf_dropped"] = s1["bpf_dropped"]
                rec["bypasses"] = s1["bypasses"]
                rec["loss_records"] = s1["loss_records"]
                rec["reports_lost"] = s1["reports_lost"]
                rec["queue_high_water"] = s1["queue_high_water"]
                # fork + exec + exit of each /bin/true; the rest is the constant (bash's fork
                # and exec of exec_load, its workers' forks and exits, its exit, the line).
                if bpf_on:
                    rec["bpf_events_minus_3x_execs"] = rec["bpf_events"] - 3 * load["execs"]
                    # ... and, with the interposer in /bin/true, its initialisation (the probe
                    # on the library: SA_EV_HOOKED) is a fourth event per exec.
                    k = 3 if unhooked else 4
                    rec["bpf_events_k"] = k
                    rec["bpf_events_minus_kx_execs"] = rec["bpf_events"] - k * load["execs"]
            if bt:
                rec["bpftrace_cpu_s"] = cpu1[bt.pid] - cpu0[bt.pid]
                rec["bpftrace_cpu_in_window_s"] = load["pids"][str(bt.pid)]
            rec["attrib_cpu_s"] = load_cpu + rec.get("daemon_cpu_s", 0) + rec.get("bpftrace_cpu_s", 0)
            if daemon:
                rc = self.stop_child(daemon)
                rec["daemon_exit"] = rc
                self.check_log(d, load, rec)
            if bt:
                self.stop_child(bt, signal.SIGINT)
                self.check_bpftrace(d, load, rec)
        finally:
            if stats_fd:
                stats_fd.close()
            if sh:
                sh.kill()
            for p in (daemon, bt):
                if p and p in self.children:
                    self.stop_child(p, signal.SIGKILL)
        with open(self.runs_path, "a") as f:
            f.write(json.dumps(rec) + "\n")
        return rec

    def check_log(self, d, load, rec):
        """Counts the log's records. In a session the kernel follows (the benchmark shell's
        implicit session, bpf: on), the kernel's exec event is the exec record ("source": "bpf",
        with "reported": true when the interposer's report matched it); with bpf: off the
        interposer's report is ("source": "report")."""
        log = d / "log" / "audit.jsonl"
        n_exec = n_bpf_exec = n_bpf_reported = n_loss = n_bypass = n_unhooked = 0
        kinds = {}
        with open(log, "rb") as f:
            for line in f:
                r = json.loads(line)
                t = r.get("type")
                if t == "exec" and r.get("argv") and r["argv"][0] == "/bin/true":
                    if r.get("source") == "bpf":
                        n_bpf_exec += 1
                        n_bpf_reported += r.get("reported") is True
                    else:
                        n_exec += 1
                elif t == "loss":
                    n_loss += 1
                elif t == "bypass":
                    n_bypass += 1
                    kinds[r.get("kind")] = kinds.get(r.get("kind"), 0) + 1
                    n_unhooked += r.get("kind") == "unhooked_process" and r.get("exe") == "/bin/true"
        rec["log_exec_records"] = n_exec          # from the interposer's report (bpf: off)
        rec["log_bpf_exec_records"] = n_bpf_exec  # the kernel's exec event
        rec["log_bpf_reported"] = n_bpf_reported  # ... that the interposer's report matched
        rec["log_loss_records"] = n_loss
        rec["log_bypass_records"] = n_bypass
        rec["log_bypass_kinds"] = kinds
        rec["log_unhooked_true"] = n_unhooked  # unhooked_process bypasses for /bin/true
        v = subprocess.run([self.a.shaudit, "verify", str(log), "--pubkey", f"{self.key}.pub"],
                           capture_output=True, text=True, timeout=300)
        rec["verify_ok"] = v.returncode == 0
        if not self.a.keep:
            log.unlink()

    def check_bpftrace(self, d, load, rec):
        workers = {str(p) for p in load["worker_pids"]}
        n = named = lost = total = 0
        pat = re.compile(rb"Lost (\d+) events")
        cnt = re.compile(rb"^@c: (\d+)")
        with open(d / "bpftrace.out", "rb") as f:
            for line in f:
                m = pat.search(line)
                if m:
                    lost += int(m.group(1))
                    continue
                total += 1
                m = cnt.match(line)
                if m:
                    n = named = int(m.group(1))
                    continue
                parts = line.split(b" ", 3)
                if len(parts) >= 3 and parts[1].decode(errors="replace") in workers:
                    n += 1
                    named += parts[2].rstrip(b"\n") == b"/bin/true"
        rec["bt_events_for_load"] = n
        rec["bt_events_with_filename"] = named
        rec["bt_lost"] = lost
        # other users' execs that got through the filter (the "Attaching" line and the count
        # lines of bt-count aside)
        rec["bt_lines_other"] = max(0, total - n - 1 - (3 if named == n and total <= 4 else 0))
        if not self.a.keep:
            (d / "bpftrace.out").unlink()


# ---------------------------------------------------------------------- summary

def other_cpus(r):
    """Other users' load during a run, in CPUs (busy time not ours / wall time)."""
    return r["other_cpu_s"] / r["wall_s"]


def targets(rounds, by, c="shaudit-bpf"):
    """The exec storm's targets (issue 11) for the full stack c, against base and bt-exec in the
    same rounds."""
    out = []
    xs = [by[(k, c)] for k in rounds if (k, c) in by]
    if not xs:
        return out
    wr = [by[(k, c)]["wall_s"] / by[(k, "base")]["wall_s"] for k in rounds
          if (k, c) in by and (k, "base") in by]
    bt = [by[(k, "bt-exec")]["wall_s"] / by[(k, "base")]["wall_s"] for k in rounds
          if (k, "bt-exec") in by and (k, "base") in by]
    us = [r["daemon_cpu_s"] / r["execs"] * 1e6 for r in xs]
    lost = sum(r.get("bpf_dropped", 0) for r in xs)
    loss = sum(r.get("log_loss_records", 0) for r in xs)
    # (interposers send no exec reports while the kernel records execs: "reported" is informative)
    full = sum(1 for r in xs if r.get("log_bpf_exec_records") == r["execs"])
    byp = sum(r.get("bypasses", 0) for r in xs)
    out.append(f"Targets for the full stack ({c}: interposer + shauditd with bpf: on, every exec in "
               f"an audited session), {len(xs)} runs (median (IQR; min–max)):\n")
    out.append("| target | measured | met? |")
    out.append("|---|---|---|")
    if wr:
        out.append(f"| wall ratio vs base ≤ 1.15 | {spread0(wr, '{:.3f}')} "
                   f"| {'yes' if statistics.median(wr) <= 1.15 else 'no'} (median) |")
    out.append(f"| no loss | bpf_dropped {lost}, loss records {loss} | {'yes' if lost == 0 and loss == 0 else 'no'} |")
    out.append(f"| every exec recorded (kernel exec record for each /bin/true) and cross-checked "
               f"(unhooked_process decided for each) | {full} of {len(xs)} runs complete; records "
               f"{','.join(sorted({str(r.get('log_bpf_exec_records')) for r in xs}))}, reported "
               f"{','.join(sorted({str(r.get('log_bpf_reported')) for r in xs}))} of "
               f"{','.join(sorted({str(r['execs']) for r in xs}))}; bypasses {byp} "
               f"| {'yes' if full == len(xs) and byp == 0 else 'no'} |")
    out.append(f"| shauditd CPU per exec ≤ 15 µs | {spread0(us, '{:.1f}')} µs "
               f"| {'yes' if statistics.median(us) <= 15 else 'no'} (median) |")
    if bt:
        out.append(f"| (reference) bt-exec wall ratio vs base, same rounds | {spread0(bt, '{:.3f}')} | |")
    out.append("")
    return out


def summarize(runs, configs, quiet_max=None):
    out = []
    rs = [r for r in runs if r["part"] == "R"]
    title = ""
    if quiet_max is not None:
        loud = {r["round"] for r in rs if other_cpus(r) > quiet_max}
        rs = [r for r in rs if r["round"] not in loud]
        title = f", only rounds in which no run saw more than {quiet_max} CPUs of other load"
    if rs:
        rounds = sorted({r["round"] for r in rs})
        by = {(r["round"], r["config"]): r for r in rs}
        out.append(f"### Part R: {len(rounds)} rounds, configurations interleaved{title} "
                   f"(median (IQR; min–max) over rounds)\n")
        out.append("| configuration | runs | execs/run | execs/s | wall ratio to base | total CPU µs/exec "
                   "| CPU ratio to base | added CPU µs/exec vs base | daemon or bpftrace CPU µs/exec "
                   "| irq-work interrupts per exec | other load during run (CPUs) |")
        out.append("|---|---:|---:|---|---|---|---|---|---|---|---|")
        for c in configs:
            xs = [by[(k, c)] for k in rounds if (k, c) in by]
            if not xs:
                continue
            rate = [r["execs"] / r["wall_s"] for r in xs]
            cpu = [r["attrib_cpu_s"] / r["execs"] * 1e6 for r in xs]
            wr = [by[(k, c)]["wall_s"] / by[(k, "base")]["wall_s"] for k in rounds
                  if (k, c) in by and (k, "base") in by]
            cr = [by[(k, c)]["attrib_cpu_s"] / by[(k, "base")]["attrib_cpu_s"] for k in rounds
                  if (k, c) in by and (k, "base") in by]
            add = [(by[(k, c)]["attrib_cpu_s"] - by[(k, "base")]["attrib_cpu_s"]) / by[(k, c)]["execs"] * 1e6
                   for k in rounds if (k, c) in by and (k, "base") in by]
            helper = [(r.get("daemon_cpu_s", 0) + r.get("bpftrace_cpu_s", 0)) / r["execs"] * 1e6 for r in xs]
            other = [other_cpus(r) for r in xs]
            iwi = [r["irq"]["IWI"] / r["execs"] for r in xs]
            out.append(f"| {c} | {len(xs)} | {xs[0]['execs']} | {spread0(rate)} | {spread0(wr, '{:.2f}')} "
                       f"| {spread0(cpu)} | {spread0(cr, '{:.2f}')} | {spread0(add)} "
                       f"| {spread0(helper) if c != 'base' else '-'} | {spread0(iwi, '{:.2f}')} "
                       f"| {spread0(other, '{:.2f}')} |")
        out.append("")
        # The collector's own increment: each bpf: on configuration against shaudit-off, within
        # a round.
        bpf_cfgs = [c for c in configs if "+" not in c
                    and any(r["config"] == c and r.get("ring_kib") for r in rs)]
        for c in bpf_cfgs:
            pairs = [(by[(k, c)], by[(k, "shaudit-off")]) for k in rounds
                     if (k, c) in by and (k, "shaudit-off") in by]
            if not pairs:
                continue
            out.append(f"The eBPF collector's increment, {c} against shaudit-off in the same round:\n")
            out.append("| measure | median (IQR; min–max) |")
            out.append("|---|---|")
            out.append("| wall ratio bpf/off | " + spread0([b["wall_s"] / o["wall_s"] for b, o in pairs], "{:.3f}") + " |")
            out.append("| total CPU ratio bpf/off | " + spread0([b["attrib_cpu_s"] / o["attrib_cpu_s"] for b, o in pairs], "{:.3f}") + " |")
            out.append("| added total CPU µs/exec | " + spread0([(b["attrib_cpu_s"] - o["attrib_cpu_s"]) / b["execs"] * 1e6 for b, o in pairs]) + " |")
            out.append("| added CPU in the exec'ing processes µs/exec (eBPF programs run there) | " + spread0([(b["load_cpu_s"] - o["load_cpu_s"]) / b["execs"] * 1e6 for b, o in pairs]) + " |")
            out.append("| added daemon CPU µs/exec | " + spread0([(b["daemon_cpu_s"] - o["daemon_cpu_s"]) / b["execs"] * 1e6 for b, o in pairs]) + " |")
            out.append("| daemon CPU µs/exec, bpf: on | " + spread0([b["daemon_cpu_s"] / b["execs"] * 1e6 for b, o in pairs]) + " |")
            out.append("| daemon CPU µs/exec, bpf: off | " + spread0([o["daemon_cpu_s"] / o["execs"] * 1e6 for b, o in pairs]) + " |")
            out.append("")
        for c in [c for c in configs if c.endswith("+unhooked")]:
            pairs = [(by[(k, c)], by[(k, "base")]) for k in rounds if (k, c) in by and (k, "base") in by]
            if pairs:
                out.append(f"{c} against base in the same round: added CPU in the exec'ing processes "
                           "µs/exec " + spread0([(b["load_cpu_s"] - o["load_cpu_s"]) / b["execs"] * 1e6 for b, o in pairs])
                           + ", daemon CPU µs/exec " + spread0([b["daemon_cpu_s"] / b["execs"] * 1e6 for b, o in pairs])
                           + ", wall ratio " + spread0([b["wall_s"] / o["wall_s"] for b, o in pairs], "{:.3f}") + "\n")
        for c in ("bt-exec", "bt-argv"):
            pairs = [(by[(k, c)], by[(k, "base")]) for k in rounds if (k, c) in by and (k, "base") in by]
            if pairs:
                out.append(f"{c} against base in the same round: wall ratio "
                           + spread0([b["wall_s"] / o["wall_s"] for b, o in pairs], "{:.3f}")
                           + ", added total CPU µs/exec "
                           + spread0([(b["attrib_cpu_s"] - o["attrib_cpu_s"]) / b["execs"] * 1e6 for b, o in pairs])
                           + ", bpftrace process µs/exec "
                           + spread0([b["bpftrace_cpu_s"] / b["execs"] * 1e6 for b, o in pairs]) + "\n")
        out.append("Completeness per run (kernel events vs execs done):\n")
        out.append("| configuration | runs | execs done (each run) | bpf events − k×execs (k) | bpf_dropped | loss records | bypasses | exec records from the kernel (source bpf) for /bin/true | ... of them reported (cross-checked) | exec records from reports (bpf: off) | unhooked_process bypasses for /bin/true | bpftrace lines for the load | bpftrace Lost | verify |")
        out.append("|---|---:|---|---|---|---|---|---|---|---|---|---|---|---|")
        for c in configs:
            xs = [by[(k, c)] for k in rounds if (k, c) in by]
            if not xs or c == "base":
                continue
            u = lambda key: ",".join(sorted({str(r.get(key, "-")) for r in xs}))  # noqa: E731
            kx = ",".join(sorted({f"{r.get('bpf_events_minus_kx_execs', r.get('bpf_events_minus_3x_execs', '-'))}"
                                  f" ({r.get('bpf_events_k', 3)})" for r in xs})) if any(
                "bpf_events_minus_3x_execs" in r for r in xs) else "-"
            out.append(f"| {c} | {len(xs)} | {u('execs')} | {kx} | {u('bpf_dropped')} "
                       f"| {u('log_loss_records')} | {u('bypasses')} | {u('log_bpf_exec_records')} "
                       f"| {u('log_bpf_reported')} | {u('log_exec_records')} | {u('log_unhooked_true')} "
                       f"| {u('bt_events_for_load')} | {u('bt_lost')} | {u('verify_ok')} |")
        out.append("")
        out += targets(rounds, by)
    if quiet_max is not None:
        return "\n".join(out)
    ls = [r for r in runs if r["part"] == "L"]
    if ls:
        out.append("### Part L: ring buffer size (shaudit-bpf)\n")
        out.append("| bpf_ringbuf_kib | runs | execs/s | execs | bpf events − 3×execs | bpf_dropped (per run) | loss records | bypasses | daemon CPU µs/exec | other load (CPUs, per run) |")
        out.append("|---:|---:|---|---|---|---|---|---|---|---|")
        for kib in sorted({r["ring_kib"] for r in ls}, reverse=True):
            xs = [r for r in ls if r["ring_kib"] == kib]
            out.append(f"| {kib} | {len(xs)} | {spread0([r['execs'] / r['wall_s'] for r in xs])} "
                       f"| {','.join(str(r['execs']) for r in xs)} "
                       f"| {','.join(str(r['bpf_events_minus_3x_execs']) for r in xs)} "
                       f"| {','.join(str(r['bpf_dropped']) for r in xs)} "
                       f"| {','.join(str(r['log_loss_records']) for r in xs)} "
                       f"| {','.join(str(r['bypasses']) for r in xs)} "
                       f"| {spread0([r['daemon_cpu_s'] / r['execs'] * 1e6 for r in xs])} "
                       f"| {','.join(f'{other_cpus(r):.2f}' for r in xs)} |")
        out.append("")
    ps = [r for r in runs if r["part"] == "P"]
    if ps:
        out.append("### Part P: eBPF program run time (BPF_ENABLE_STATS, one run each)\n")
        out.append("Calls include every exec, fork and exit on the machine during the run (other users' "
                   "too); shaudit's programs return early for untracked processes.\n")
        out.append("| configuration | program | calls | calls per exec | ns per call | µs per exec |")
        out.append("|---|---|---:|---:|---:|---:|")
        for r in ps:
            tot = 0
            for name, v in sorted(r.get("bpf_prog_profile", {}).items()):
                if not v["run_cnt"]:
                    continue
                tot += v["run_time_ns"]
                out.append(f"| {r['config']} | {name} | {v['run_cnt']} | {v['run_cnt'] / r['execs']:.2f} "
                           f"| {v['run_time_ns'] / v['run_cnt']:.0f} | {v['run_time_ns'] / r['execs'] / 1e3:.2f} |")
            out.append(f"| {r['config']} | **all** | | | | **{tot / r['execs'] / 1e3:.2f}** |")
        out.append("")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--work", required=True)
    r.add_argument("--shauditd", required=True)
    r.add_argument("--shaudit", required=True)
    r.add_argument("--preload", required=True)
    r.add_argument("--exec-load", required=True)
    r.add_argument("--rounds", type=int, default=10)
    r.add_argument("--workers", type=int, default=4)
    r.add_argument("--per-worker", type=int, default=2500)
    r.add_argument("--configs", default=",".join(ALL_CONFIGS))
    r.add_argument("--ring-kib", default="8192,1024,256,64,16,4")
    r.add_argument("--ring-rounds", type=int, default=3)
    r.add_argument("--ring-per-worker", type=int, default=0)
    r.add_argument("--parts", default="R,L,P")
    r.add_argument("--keep", action="store_true")
    r.add_argument("--variant", action="append", default=[],
                   help="NAME=SHAUDITD[,VAR=VALUE...]: one more configuration, shaudit-bpf with this binary")
    r.add_argument("--quiet-max", type=float, default=0.15,
                   help="before each run, wait for a second with at most this much other load (CPUs)")
    r.add_argument("--quiet-wait", type=float, default=60, help="... but no longer than this (s)")
    s = sub.add_parser("summarize")
    s.add_argument("runs")
    s.add_argument("--configs", default=",".join(ALL_CONFIGS))
    a = ap.parse_args()
    if a.cmd == "summarize":
        runs = [json.loads(line) for line in open(a.runs)]
        print(summarize(runs, a.configs.split(",")))
        print(summarize(runs, a.configs.split(","), quiet_max=0.1))
        return 0

    configs = [c for c in a.configs.split(",") if c]
    if "base" not in configs:
        configs.insert(0, "base")
    for v in a.variant:  # a variant no configuration names (NAME or NAME+...) runs as NAME
        if not any(c.partition("+")[0] == v.partition("=")[0] for c in configs):
            configs.append(v.partition("=")[0])
    parts = a.parts.split(",")
    b = Bench(a)
    runs = []
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    def show(rec):
        extra = ""
        if "bpf_events_minus_3x_execs" in rec:
            extra = (f" bpf_events-{rec.get('bpf_events_k', 3)}x={rec.get('bpf_events_minus_kx_execs', rec['bpf_events_minus_3x_execs'])}"
                     f" dropped={rec['bpf_dropped']} bypasses={rec['bypasses']} loss={rec['log_loss_records']}"
                     f" exec_records={rec['log_bpf_exec_records']} reported={rec['log_bpf_reported']}"
                     f" daemon={rec['daemon_cpu_s']:.2f}s={rec['daemon_cpu_s'] / max(rec['execs'], 1) * 1e6:.0f}µs/exec")
        elif "daemon_cpu_s" in rec:
            extra = (f" bypasses={rec['bypasses']} loss={rec['log_loss_records']}"
                     f" exec_records={rec['log_exec_records']}"
                     f" daemon={rec['daemon_cpu_s']:.2f}s={rec['daemon_cpu_s'] / max(rec['execs'], 1) * 1e6:.0f}µs/exec")
        if "bt_lost" in rec:
            extra = (f" bt_lines={rec['bt_events_for_load']} named={rec['bt_events_with_filename']}"
                     f" other_lines={rec['bt_lines_other']} lost={rec['bt_lost']}"
                     f" bpftrace={rec['bpftrace_cpu_s']:.2f}s")
        print(f"  {rec['part']} r{rec['round']} {rec['config']:<12}"
              f"{'' if rec.get('ring_kib') in (None, 8192) else ' ring=' + str(rec['ring_kib']) + 'KiB'}"
              f" execs={rec['execs']} wall={rec['wall_s']:.2f}s rate={rec['execs'] / rec['wall_s']:.0f}/s"
              f" cpu={rec['attrib_cpu_s']:.2f}s other={rec['other_cpu_s']:.2f}s"
              f" IWI/exec={rec['irq']['IWI'] / max(rec['execs'], 1):.2f}"
              f" pre={rec['pre_busy_cpus']:.2f}cpu/{rec['quiet_wait_s']:.0f}s"
              f" foreign_exec_progs={rec['foreign_exec_progs']}{extra}", flush=True)
        runs.append(rec)

    try:
        if "R" in parts:
            print(f"=== part R: {a.rounds} rounds + 1 warm-up of {configs}, {a.workers} x {a.per_worker} execs", flush=True)
            for rnd in range(a.rounds + 1):
                order = configs[rnd % len(configs):] + configs[:rnd % len(configs)]
                for c in order:
                    rec = b.run_one(c, rnd, "R" if rnd else "warmup")
                    show(rec)
        if "L" in parts:
            sizes = [int(x) for x in a.ring_kib.split(",") if x]
            print(f"=== part L: ring buffer sizes {sizes} KiB, {a.ring_rounds} rounds", flush=True)
            for rnd in range(1, a.ring_rounds + 1):
                for kib in (sizes if rnd % 2 else list(reversed(sizes))):
                    show(b.run_one("shaudit-bpf", rnd, "L", ring_kib=kib,
                                   per_worker=a.ring_per_worker or a.per_worker))
        if "P" in parts:
            print("=== part P: eBPF program run time (BPF_ENABLE_STATS during these runs only)", flush=True)
            for c in ["shaudit-bpf", *b.variants, "bt-exec", "bt-argv", "bt-count"]:
                if c in configs or c == "bt-count":
                    show(b.run_one(c, 1, "P", profile=True))
    finally:
        b.cleanup()
    print()
    print(summarize(runs, configs))
    print(summarize(runs, configs, quiet_max=0.1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
