# SPDX-License-Identifier: Apache-2.0
"""Scratch Debian 12 root filesystems for the install and package tests: a debootstrap'd root
(cached as a tarball, built once per machine), entered with chroot inside a private mount
namespace (so /proc, /dev and /sys mounts never reach the host), or booted with systemd under
systemd-nspawn. Nothing here touches the host's own /etc."""
import hashlib
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import tempfile
import time
from pathlib import Path

from conftest import kill_pids

# What the root holds besides minbase: shaudit's runtime libraries (the package's Depends
# must be met by exactly these), systemd to boot it, sshd to log in.
INCLUDE = ["libbpf1", "libyaml-cpp0.7", "libfmt9", "libre2-9", "libcurl4", "libssl3", "zlib1g",
           "libaudit1", "libelf1", "systemd", "systemd-sysv", "dbus", "openssh-server",
           "openssh-client"]
CACHE = Path(os.environ.get("SHAUDIT_TEST_CACHE", "/var/cache/shaudit-test"))
TOOLS_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
             "LANG": "C.UTF-8", "HOME": "/root", "DEBIAN_FRONTEND": "noninteractive"}


def mirror():
    """The Debian mirror this machine's apt uses."""
    for f in sorted(Path("/etc/apt/sources.list.d").glob("*.sources")):
        m = re.search(r"^URIs:\s*(\S+)", f.read_text(), re.M)
        if m:
            return m.group(1)
    src = Path("/etc/apt/sources.list")
    if src.exists():
        m = re.search(r"^deb\s+(?:\[[^]]*\]\s+)?(\S+)", src.read_text(), re.M)
        if m:
            return m.group(1)
    return "http://deb.debian.org/debian"


def base_tarball():
    """The cached root tarball, debootstrapped when missing (about 3-5 minutes)."""
    key = hashlib.sha256(",".join(INCLUDE).encode()).hexdigest()[:12]
    tar = CACHE / f"bookworm-{key}.tar"
    if tar.exists():
        return tar
    CACHE.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="debootstrap-", dir=CACHE))
    try:
        r = subprocess.run(["debootstrap", "--variant=minbase", "--include=" + ",".join(INCLUDE),
                            "bookworm", str(work / "root"), mirror()],
                           capture_output=True, text=True, timeout=1800)
        if r.returncode != 0:
            raise RuntimeError(f"debootstrap failed ({r.returncode}): {r.stdout[-2000:]}{r.stderr[-2000:]}")
        subprocess.run(["tar", "-C", str(work / "root"), "-cf", str(work / "root.tar"), "."], check=True)
        os.replace(work / "root.tar", tar)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return tar


def extract(tar, dest: Path):
    dest.mkdir(parents=True)
    subprocess.run(["tar", "-C", str(dest), "--numeric-owner", "-xpf", str(tar)], check=True)
    # What a Debian installer writes and debootstrap does not.
    (dest / "etc/hostname").write_text("shaudit-test\n")
    (dest / "etc/hosts").write_text("127.0.0.1\tlocalhost\n127.0.1.1\tshaudit-test\n::1\tlocalhost\n")
    return dest


def pids_in_root(root: Path):
    """Processes whose root directory is root (by pid; never by name)."""
    out = []
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            if os.readlink(p / "root") == str(root):
                out.append(int(p.name))
        except OSError:
            pass
    return out


class Chroot:
    """A root entered with chroot from a private mount namespace that has /proc, /dev and /sys
    mounted inside the root. The namespace is held by a sleeping process; close() ends every
    process in the root and the holder, and the mounts go with the namespace."""

    def __init__(self, root: Path):
        self.root = root
        script = (f"mount -t proc proc {root}/proc && mount --rbind /dev {root}/dev && "
                  f"mount --rbind /sys {root}/sys && echo ready && exec sleep 100000")
        self.holder = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                                       stdout=subprocess.PIPE, text=True)
        line = self.holder.stdout.readline()
        if line.strip() != "ready":
            self.holder.kill()
            raise RuntimeError("could not set up the chroot's mounts")

    def argv(self, argv, env=None):
        """argv run as root inside the root, with a clean environment."""
        e = dict(TOOLS_ENV, **(env or {}))
        # -r: the holder's root too (when this suite itself runs in a chroot, the namespace's
        # root is not ours).
        return [shutil.which("nsenter"), "-t", str(self.holder.pid), "-m", "-r", "chroot", str(self.root),
                "/usr/bin/env", "-i", *[f"{k}={v}" for k, v in e.items()], *argv]

    def run(self, *argv, env=None, timeout=300, input=None):
        return subprocess.run(self.argv(list(argv), env), capture_output=True, text=True,
                              timeout=timeout, input=input, stdin=None if input is not None else subprocess.DEVNULL)

    def popen(self, *argv, env=None, **kw):
        return subprocess.Popen(self.argv(list(argv), env), **kw)

    def close(self):
        for _ in range(50):
            pids = [p for p in pids_in_root(self.root) if p != self.holder.pid]
            if not pids:
                break
            kill_pids(pids, signal.SIGTERM if _ < 20 else signal.SIGKILL)
            time.sleep(0.1)
        self.holder.kill()
        self.holder.wait()


def snapshot(root: Path, under="/", skip=("proc", "sys", "dev", "run", "tmp")):
    """path -> (kind, mode, content hash or link target, mtime) for every entry under root/under."""
    out = {}
    base = root / under.lstrip("/")
    for d, dirs, files in os.walk(base):
        rel = os.path.relpath(d, root)
        if rel.split("/")[0] in skip:
            dirs[:] = []
            continue
        for n in dirs + files:
            p = os.path.join(d, n)
            st = os.lstat(p)
            key = "/" + os.path.relpath(p, root)
            if key.split("/")[1] in skip:
                continue
            if stat.S_ISLNK(st.st_mode):
                out[key] = ("link", os.readlink(p))
            elif stat.S_ISDIR(st.st_mode):
                out[key] = ("dir", oct(st.st_mode & 0o7777), st.st_uid, st.st_gid)
            elif stat.S_ISREG(st.st_mode):
                with open(p, "rb") as f:
                    h = hashlib.sha256(f.read()).hexdigest()
                out[key] = ("file", oct(st.st_mode & 0o7777), st.st_uid, st.st_gid, h, st.st_mtime_ns)
            else:
                out[key] = ("other", oct(st.st_mode))
    return out


def differences(before, after, mtimes=False):
    """{path: (before, after)} for entries that differ (file mtimes compared only if asked)."""
    def norm(v):
        if v is None or mtimes or v[0] != "file":
            return v
        return v[:5]
    return {k: (before.get(k), after.get(k)) for k in sorted(set(before) | set(after))
            if norm(before.get(k)) != norm(after.get(k))}


class Nspawn:
    """The root booted with systemd as PID 1 under systemd-nspawn, with a network namespace of
    its own (only loopback). Commands run inside with nsenter into all of its namespaces."""

    def __init__(self, root: Path, console_log: Path):
        self.root = root
        self.console = open(console_log, "wb")
        self.proc = subprocess.Popen(
            ["systemd-nspawn", "--quiet", "--register=no", "--keep-unit", "--private-network",
             "--console=passive", f"--machine=shaudit-{os.getpid()}", "-D", str(root), "--boot"],
            stdin=subprocess.DEVNULL, stdout=self.console, stderr=subprocess.STDOUT)
        self.leader = None

    def wait_leader(self, timeout=60):
        """The container's PID 1: the descendant of systemd-nspawn whose pid in its own pid
        namespace is 1."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"systemd-nspawn exited with {self.proc.returncode}")
            parent, nspid = {}, {}
            for p in Path("/proc").iterdir():
                if not p.name.isdigit():
                    continue
                try:
                    status = (p / "status").read_text()
                except OSError:
                    continue
                parent[int(p.name)] = int(re.search(r"^PPid:\s+(\d+)", status, re.M).group(1))
                nspid[int(p.name)] = re.search(r"^NSpid:(.*)$", status, re.M).group(1).split()
            for pid, ids in nspid.items():
                q = pid
                while q in parent and q != self.proc.pid:
                    q = parent[q]
                if q == self.proc.pid and pid != q and len(ids) > 1 and ids[-1] == "1":
                    self.leader = pid
                    return pid
            time.sleep(0.2)
        raise RuntimeError("the container's systemd did not start")

    def argv(self, argv):
        return [shutil.which("nsenter"), "-t", str(self.leader), "--all", "-r", "-w",
                "/usr/bin/env", "-i", *[f"{k}={v}" for k, v in TOOLS_ENV.items()], *argv]

    def run(self, *argv, timeout=120):
        return subprocess.run(self.argv(list(argv)), capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)

    def close(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # nspawn asks the container's systemd to halt
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.console.close()


def read_records(path: Path):
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_bytes().splitlines() if line.strip()]
