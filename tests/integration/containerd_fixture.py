# SPDX-License-Identifier: Apache-2.0
"""A containerd of a test's own: its config, root, state, gRPC and ttrpc sockets, FIFOs and
runc state under one temporary directory, never the host's /etc/containerd or /run/containerd.

containerd 1.6 keeps its shims' sockets under a fixed /run/containerd/s whatever its config
says, so it runs in a mount namespace of its own with a tmpfs on /run (`unshare --mount
--propagation private`): the shims it starts share that namespace, and nothing appears in the
host's /run. Everything else it is given lives in the temporary directory, which both
namespaces see alike.

stop() ends what it started, by pid and id, never by name: the tasks of the containers it
ran (`ctr task kill`, `task delete`, `container delete`), containerd itself, any shim still
serving its socket (a shim outlives containerd by design), any container left in its runc
state directory (`runc --root ... kill/delete`); then it unmounts what is mounted under the
directory and removes it.
"""
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

CONTAINERD = shutil.which("containerd")
CTR = shutil.which("ctr")
UNSHARE = shutil.which("unshare")
RUNC = shutil.which("runc") or "/usr/sbin/runc"

CONFIG = """version = 2
root = "{d}/root"
state = "{d}/state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.internal.v1.opt",
                    "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
                    "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]
[grpc]
  address = "{d}/containerd.sock"
[ttrpc]
  address = "{d}/containerd.sock.ttrpc"
[debug]
  address = ""
"""


def missing_tools():
    """What a private containerd needs and this machine lacks ("" when nothing)."""
    return " ".join(n for n, p in (("containerd", CONTAINERD), ("ctr", CTR), ("unshare", UNSHARE))
                    if not p)


class PrivateContainerd:
    """One private containerd: start(), ctr()/run_ctr() against it, stop() (always)."""

    def __init__(self, namespace="k8s.io", env=None, prefix="shaudit-ctrd-"):
        # Not under pytest's tmp_path: socket paths must stay short (108 bytes).
        self.dir = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
        self.namespace = namespace
        self.env = env  # extra environment for containerd (its shims and runtimes inherit it)
        self.socket = self.dir / "containerd.sock"
        self.state = self.dir / "state"
        self.fifos = self.dir / "fifo"
        self.runc_root = self.dir / "runc"  # for `ctr run --runc-root`
        self.log = self.dir / "containerd.log"
        # The cgroup parent of its containers (`ctr run --cgroup`), removed by stop().
        self.cgroup_parent = "/" + self.dir.name
        self.proc = None
        self.containers = []

    def ctr(self, *args):
        """ctr's argv for this containerd and namespace."""
        return [CTR, "--address", str(self.socket), "-n", self.namespace, *map(str, args)]

    def run_ctr(self, *args, check=True, timeout=60):
        r = subprocess.run(self.ctr(*args), stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=timeout)
        if check:
            assert r.returncode == 0, f"ctr {' '.join(map(str, args))}: {r.stdout}{r.stderr}"
        return r

    def log_text(self):
        try:
            return self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def start(self, timeout=60):
        (self.dir / "config.toml").write_text(CONFIG.format(d=self.dir))
        self.fifos.mkdir()
        script = 'mount -t tmpfs -o mode=0755 shaudit-private-run /run && exec "$@"'
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [UNSHARE, "--mount", "--propagation", "private", "/bin/sh", "-c", script, "sh",
                 CONTAINERD, "--config", str(self.dir / "config.toml")],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env=dict(os.environ, **(self.env or {})))
        deadline = time.monotonic() + timeout
        while subprocess.run(self.ctr("version"), capture_output=True).returncode != 0:
            assert self.proc.poll() is None, f"containerd exited: {self.log_text()}"
            assert time.monotonic() < deadline, f"containerd did not answer: {self.log_text()}"
            time.sleep(0.2)
        return self

    def cgroup(self, container_id):
        """A cgroup path for `ctr run --cgroup`: its last part is the id, as the kubelet's are."""
        return f"{self.cgroup_parent}/{container_id}"

    def remember(self, container_id):
        """A container stop() deletes (call before creating it)."""
        self.containers.append(container_id)

    def task_exists(self, cid):
        r = self.run_ctr("task", "ls", check=False)
        return any(line.split()[:1] == [cid] for line in r.stdout.splitlines())

    def _shim_pids(self):
        """Shims serving this containerd: their argv names its socket (`-address PATH`)."""
        pids = []
        for p in Path("/proc").iterdir():
            if not p.name.isdigit():
                continue
            try:
                argv = (p / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"-address" in argv and str(self.socket).encode() in argv and \
                    os.path.basename(argv[0]).startswith(b"containerd-shim"):
                pids.append(int(p.name))
        return pids

    def stop(self):
        try:
            if self.proc is not None and self.proc.poll() is None:
                for cid in reversed(self.containers):
                    self.run_ctr("task", "kill", "-s", "SIGKILL", cid, check=False)
                    deadline = time.monotonic() + 15
                    while self.run_ctr("task", "delete", "--force", cid, check=False).returncode != 0 \
                            and time.monotonic() < deadline:
                        if not self.task_exists(cid):
                            break
                        time.sleep(0.1)
                    self.run_ctr("container", "delete", cid, check=False)
        finally:
            self._end_processes()
            self._remove_cgroups()
            self._remove_dir()

    def _end_processes(self):
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            self.proc = None
        for pid in self._shim_pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        # Containers a killed shim left behind, by id in this containerd's runc state directory.
        if self.runc_root.is_dir():
            for ns in self.runc_root.iterdir():
                if not ns.is_dir():
                    continue
                for c in ns.iterdir():
                    argv = [RUNC, "--root", str(ns)]
                    subprocess.run(argv + ["kill", c.name, "KILL"], capture_output=True, timeout=30)
                    subprocess.run(argv + ["delete", "-f", c.name], capture_output=True, timeout=30)

    def _remove_cgroups(self):
        """The cgroup parent in each hierarchy (runc removed its containers' own cgroups);
        rmdir leaves one that is not empty."""
        base = Path("/sys/fs/cgroup")
        for d in [base / self.cgroup_parent.lstrip("/")] + \
                [h / self.cgroup_parent.lstrip("/") for h in base.iterdir() if h.is_dir()]:
            try:
                d.rmdir()
            except OSError:
                pass

    def _remove_dir(self):
        prefix = str(self.dir) + "/"
        with open("/proc/self/mounts") as f:
            targets = [line.split()[1] for line in f.read().splitlines()]
        for target in reversed(targets):
            if target.startswith(prefix):
                subprocess.run(["umount", "-l", target], capture_output=True)
        subprocess.run(["rm", "-rf", "--one-file-system", str(self.dir)], check=False)
