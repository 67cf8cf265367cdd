# SPDX-License-Identifier: Apache-2.0
"""What the terminal-input probes cost every read() on the machine (not a test; nothing runs it
from ctest). The eBPF collector attaches programs to the read system call's tracepoints: each
read of every process runs them, and they return at once unless the process is in an audited
session (one hash lookup); a followed process's reads also look up the file (is it a terminal?).

Workload: `dd if=/dev/zero of=/dev/null bs=1 count=N` (N reads and N writes; dd's own elapsed
time), in interleaved rounds, per configuration:
  base        no shauditd
  floor       an empty library preloaded (LD_PRELOAD), no shauditd
  bpftrace    a bpftrace program on the same two tracepoints that only filters on a pid (the least
              any tracepoint-based reader costs), no shauditd
  bpf-host    shauditd with bpf: on; dd is not in an audited session (every other process)
  bpf-session shauditd with bpf: on; dd runs in an audited session (an interactive bash on a pty
              with the interposer preloaded: the interposer's read and write hooks too)
Usage: python3 tests/bench/read_bench.py BUILD_DIR [ROUNDS] [N] > tests/bench/READ_RESULTS.md
"""
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

here = Path(__file__).resolve().parent
sys.path.insert(0, str(here))
sys.path.insert(0, str(here.parent / "integration"))
from benchlib import Daemon, loadavg  # noqa: E402
from ptyshell import PS1, PtyShell  # noqa: E402

build = Path(sys.argv[1]).resolve()
rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 5
n = int(sys.argv[3]) if len(sys.argv) > 3 else 300000
DD = f"dd if=/dev/zero of=/dev/null bs=1 count={n}"


def dd_seconds(text):
    m = re.search(r"copied, ([0-9.]+) s", text)
    if not m:
        raise RuntimeError(f"no dd timing in {text!r}")
    return float(m.group(1))


def run_dd(env=None):
    r = subprocess.run(DD.split(), capture_output=True, text=True, env=env)
    return dd_seconds(r.stderr)


work = Path(tempfile.mkdtemp(prefix="shaudit-read-bench-"))
empty_c = work / "empty.c"
empty_c.write_text("int shaudit_bench_empty;\n")
empty = work / "libempty.so"
subprocess.run(["cc", "-shared", "-fPIC", "-o", str(empty), str(empty_c)], check=True)
key = work / "k.key"
subprocess.run([str(build / "cli/shaudit"), "keygen", "--out", str(key)], check=True,
               capture_output=True)
preload = work / "libshaudit_preload.so"  # a copy the daemon names as genuine
shutil.copy(build / "preload/libshaudit_preload.so", preload)


def with_daemon(fn):
    d = Daemon(str(build / "daemon/shauditd"), str(build / "cli/shaudit"), work / "d", key,
               bpf=True, interposer=str(preload))
    try:
        return fn(d)
    finally:
        d.stop()


def bpf_host(d):
    return run_dd()


def bpf_session(d):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(work), "TERM": "xterm", "PS1": PS1,
           "LD_PRELOAD": str(preload), "SHAUDIT_SOCKET": str(d.sock)}
    sh = PtyShell(["/bin/bash", "--norc", "--noprofile", "-i"], env=env, cwd=str(work))
    try:
        sh.wait_prompt()
        sh.line(f"{DD} 2> dd.out", timeout=120)
        return dd_seconds((work / "dd.out").read_text())
    finally:
        sh.kill()


def bpftrace():
    p = subprocess.Popen(["bpftrace", "-e", "tracepoint:syscalls:sys_enter_read /pid == 1/ {} "
                          "tracepoint:syscalls:sys_exit_read /pid == 1/ {}"],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        seen = []
        while not seen or "Attaching" not in seen[-1]:  # (after warnings such as RLIMIT_MEMLOCK)
            seen.append(p.stdout.readline())
            if not seen[-1] or len(seen) > 10:
                raise RuntimeError(f"bpftrace: {''.join(seen)}")
        time.sleep(1)
        return run_dd()
    finally:
        p.terminate()
        p.wait()


configs = {
    "base": lambda: run_dd(),
    "floor": lambda: run_dd({**os.environ, "LD_PRELOAD": str(empty)}),
    "bpftrace": bpftrace,
    "bpf-host": lambda: with_daemon(bpf_host),
    "bpf-session": lambda: with_daemon(bpf_session),
}
results = {k: [] for k in configs}
run_dd()  # warm-up
for r in range(rounds):
    for name, fn in configs.items():
        results[name].append(fn())
base = statistics.median(results["base"])
print("# read() cost of the terminal-input probes\n")
print(f"Command: `python3 tests/bench/read_bench.py build {rounds} {n}` "
      f"({time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPUs, load average at the end "
      f"{loadavg()}); `{DD}`: {n} reads and {n} writes per run, dd's own elapsed time; "
      f"{rounds} interleaved rounds, every configuration once per round.\n")
print("| configuration | median s (min–max) | ns per read+write | ratio to base |")
print("|---|---|---|---|")
for name, xs in results.items():
    m = statistics.median(xs)
    print(f"| {name} | {m:.3f} ({min(xs):.3f}–{max(xs):.3f}) | {m / n * 1e9:.0f} | {m / base:.3f} |")
shutil.rmtree(work, ignore_errors=True)
