# SPDX-License-Identifier: Apache-2.0
"""Pieces shared by the benchmark drivers in tests/bench (not a test; nothing runs it from ctest):
process and machine figures from /proc, a shauditd of the benchmark's own, quantiles, a log tailer.
"""
import ctypes
import json
import os
import re
import select
import shutil
import signal
import subprocess
import time
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def quantile(xs, q):
    """The q-quantile of xs, interpolated linearly (NaN for no values)."""
    xs = sorted(xs)
    if not xs:
        return float("nan")
    pos = q * (len(xs) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def spread(xs, f="{:.3f}", iqr="IQR "):
    """median (IQR q1–q3; min–max) of xs, each value formatted with f; "-" for no values."""
    if not xs:
        return "-"
    import statistics
    return (f"{f.format(statistics.median(xs))} ({iqr}{f.format(quantile(xs, .25))}–"
            f"{f.format(quantile(xs, .75))}; {f.format(min(xs))}–{f.format(max(xs))})")


def end_load(p, timeout):
    """Ends a session_load process: its stdin says stop (two lines), then it is waited for;
    killed when it does not end in time."""
    if p is None or p.poll() is not None:
        return
    try:
        if p.stdin:
            p.stdin.write(b"x\nx\n")
            p.stdin.close()
        p.wait(timeout=timeout)
    except (OSError, subprocess.TimeoutExpired):
        p.kill()
        p.wait()


def pid_cpu(pid):
    """utime+stime (s) of a live process, all threads; None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            s = f.read()
    except OSError:
        return None
    rest = s[s.rindex(")") + 2:].split()
    return (int(rest[11]) + int(rest[12])) / CLK_TCK


def pid_cpu_ns(pid):
    """CPU time (s, ns resolution) of a live process: the sum of its threads' run time from
    /proc/PID/task/*/schedstat (utime+stime in /proc/PID/stat counts 10 ms ticks, too coarse for
    an idle daemon); None when it is gone. Threads that already exited are not counted."""
    total = 0
    try:
        for t in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{t}/schedstat") as f:
                    total += int(f.read().split()[0])
            except (OSError, ValueError, IndexError):
                pass
    except OSError:
        return None
    return total / 1e9


def pids_cpu(pids):
    """Sum of utime+stime (s) of those of pids that are alive."""
    return sum(c for c in (pid_cpu(p) for p in pids) if c is not None)


def sys_busy():
    """Busy CPU seconds of the whole machine so far (/proc/stat: user nice system irq softirq)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (v[0] + v[1] + v[2] + v[5] + v[6]) / CLK_TCK


def loadavg():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def rss_kib(pid):
    """(VmRSS, VmHWM) of a process in KiB; (None, None) when it is gone."""
    rss = hwm = None
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
                elif line.startswith("VmHWM:"):
                    hwm = int(line.split()[1])
    except OSError:
        pass
    return rss, hwm


def own_cpu():
    """CPU (s) of this process and of its waited-for children so far."""
    s = os.times()
    return s.user + s.system + s.children_user + s.children_system


class LoadMeter:
    """The machine's busy time over an interval less the CPU of the benchmark's own processes:
    this process and its waited-for children (own_cpu) plus the watched processes (a daemon,
    bpftrace, session processes): the load the benchmark did not cause, in CPU seconds and in
    CPUs. watch: {name: pid or [pids]}."""

    def __init__(self, watch=None):
        self.watch = {k: (v if isinstance(v, (list, tuple)) else [v]) for k, v in (watch or {}).items()}
        self.t_start = time.time()
        self.t0 = time.monotonic()
        self.b0 = sys_busy()
        self.o0 = own_cpu()
        self.w0 = {k: pids_cpu(v) for k, v in self.watch.items()}
        self.la0 = loadavg()

    def stop(self):
        wall = time.monotonic() - self.t0
        busy = sys_busy() - self.b0
        own = own_cpu() - self.o0
        watched = {k: pids_cpu(v) - self.w0[k] for k, v in self.watch.items()}
        other = busy - own - sum(watched.values())
        return {"t_start": self.t_start, "wall_s": wall, "busy_s": busy,
                "ours_s": own + sum(watched.values()), "cmd_tree_cpu_s": own,
                "watched_cpu_s": watched, "other_s": other,
                "other_cpus": other / wall if wall > 0 else 0.0,
                "loadavg_before": self.la0, "loadavg_after": loadavg()}


def bpf_exec_progs():
    """Loaded eBPF programs named handle_exec (shaudit collectors, ours and other users')."""
    try:
        r = subprocess.run(["bpftool", "prog", "show", "--json"], capture_output=True, text=True,
                           timeout=20)
        return sum(1 for p in json.loads(r.stdout or "[]") if p.get("name") == "handle_exec")
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return -1


def tracked_count(pid):
    """Entries in the 'tracked' eBPF map (tgid -> session) held by process pid, or -1."""
    ids = []
    fddir = f"/proc/{pid}/fd"
    try:
        for fd in os.listdir(fddir):
            try:
                if os.readlink(f"{fddir}/{fd}") != "anon_inode:bpf-map":
                    continue
                with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                    m = re.search(r"map_id:\s*(\d+)", f.read())
                if m:
                    ids.append(int(m.group(1)))
            except OSError:
                pass
    except OSError:
        return -1
    for i in sorted(set(ids)):
        try:
            r = subprocess.run(["bpftool", "map", "show", "id", str(i), "--json"],
                               capture_output=True, text=True, timeout=20)
            if json.loads(r.stdout or "{}").get("name") != "tracked":
                continue
            r = subprocess.run(["bpftool", "map", "dump", "id", str(i), "--json"],
                               capture_output=True, text=True, timeout=120)
            return len(json.loads(r.stdout or "[]"))
        except (OSError, ValueError, subprocess.TimeoutExpired):
            return -1
    return -1


def own_key(key, d):
    """A copy of the signing key (and .pub) in directory d for one shauditd: with forward-secure
    sealing (the default) shauditd moves the key into its state_dir's key state at its first
    start, so each run's shauditd needs a key file of its own."""
    key, mine = Path(key), Path(d) / "signing.key"
    if not mine.exists():
        shutil.copyfile(key, mine)
        os.chmod(mine, 0o600)
        shutil.copyfile(f"{key}.pub", f"{mine}.pub")
    return mine


class Daemon:
    """A shauditd of the benchmark's own: private sockets, log, state_dir and key in DIR."""

    def __init__(self, shauditd, shaudit, d, key, bpf=True, interposer=None, extra=""):
        self.shaudit = shaudit
        self.d = Path(d)
        self.d.mkdir(parents=True, exist_ok=True)
        self.sock = self.d / "d.sock"
        self.ctl = self.d / "d.ctl"
        self.log = self.d / "log" / "audit.jsonl"
        cfg = self.d / "shauditd.yaml"
        key = own_key(key, self.d)
        text = (f"socket: {self.sock}\ncontrol_socket: {self.ctl}\nlog: {self.log}\n"
                f"signing_key: {key}\nstate_dir: {self.d}/state\nbpf: {'on' if bpf else 'off'}\n")
        if interposer:
            text += f"interposer: {interposer}\n"
        cfg.write_text(text + extra)
        err = open(self.d / "shauditd.stderr", "wb")
        self.p = subprocess.Popen([shauditd, "--config", str(cfg)], stdout=subprocess.DEVNULL,
                                  stderr=err)
        err.close()
        self.pid = self.p.pid
        deadline = time.monotonic() + 30
        while not (self.sock.exists() and self.ctl.exists()):
            if self.p.poll() is not None:
                raise RuntimeError(f"shauditd exited: {(self.d / 'shauditd.stderr').read_text()}")
            if time.monotonic() > deadline:
                self.stop(signal.SIGKILL)
                raise RuntimeError("shauditd did not start within 30 s")
            time.sleep(0.02)

    def stats(self):
        r = subprocess.run([self.shaudit, "stats", "--control", str(self.ctl), "--json"],
                           capture_output=True, text=True, timeout=30)
        return json.loads(r.stdout)

    def cpu(self):
        """Its CPU time so far (s): threads' run time (ns resolution)."""
        c = pid_cpu_ns(self.pid)
        return c if c is not None else pid_cpu(self.pid)

    def cpu_ticks(self):
        """utime+stime (s, 10 ms ticks) from /proc/PID/stat."""
        return pid_cpu(self.pid)

    def rss(self):
        return rss_kib(self.pid)

    def settle(self, min_wait=1.3, timeout=120):
        """Waits until the daemon's counters have not moved for 0.5 s (and min_wait s have
        passed): the cross-check decides an exec after its window (1 s)."""
        t0 = time.monotonic()
        last, since = None, t0
        while True:
            s = self.stats()
            k = (s["bpf_events"], s["records_written"], s["queue_depth"])
            now = time.monotonic()
            if k != last:
                last, since = k, now
            if now - since >= 0.5 and now - t0 >= min_wait:
                return s
            if now - t0 > timeout:
                return s
            time.sleep(0.1)

    def stop(self, sig=signal.SIGTERM, timeout=60):
        if self.p.poll() is None:
            self.p.send_signal(sig)
            try:
                self.p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        return self.p.returncode

    def verify(self, key_pub):
        v = subprocess.run([self.shaudit, "verify", str(self.log), "--pubkey", str(key_pub)],
                           capture_output=True, text=True, timeout=600)
        return v.returncode == 0, (v.stdout + v.stderr).strip().splitlines()[-1:] or [""]


IN_MODIFY = 0x2


class Tail:
    """Follows a growing file line by line; inotify wake-ups (polling without inotify)."""

    def __init__(self, path, from_end=True):
        self.f = open(path, "rb")
        if from_end:
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

    def lines(self):
        data = self.f.read()
        if not data:
            return []
        data = self.partial + data
        out = data.split(b"\n")
        self.partial = out.pop()
        return out

    def close(self):
        self.f.close()
        if self.ifd >= 0:
            os.close(self.ifd)


def iso_to_ns(s):
    """A record's "time" (RFC 3339, UTC, up to ns) as ns since the epoch."""
    import datetime
    m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?Z$", s)
    base = datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S").replace(
        tzinfo=datetime.timezone.utc)
    frac = (m.group(2) or "0").ljust(9, "0")[:9]
    return int(base.timestamp()) * 1_000_000_000 + int(frac)
