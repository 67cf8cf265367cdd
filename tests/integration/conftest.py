# SPDX-License-Identifier: Apache-2.0
"""Shared fixtures for shaudit integration tests: real shauditd processes, real sockets."""
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

BUILD = Path(os.environ.get("SHAUDIT_BUILD", Path(__file__).resolve().parents[2] / "build"))
SHAUDITD = BUILD / "daemon" / "shauditd"
SHAUDIT = BUILD / "cli" / "shaudit"

# What processes of other users load or run, and what a daemon names as the genuine
# interposer, comes from PUBLIC_BUILD: copies of build artifacts in a directory every user may
# read (the public_build fixture makes it for the session and removes it). The build tree may
# sit where only root can look (a clone in /root, mode 0700); a program run as nobody, a
# session's shell, a setuid program or sshd's session could not load a file from there
# ("ld.so: object ... cannot be preloaded"). Paths inside it mirror the build tree's (cli/shaudit
# finds libshaudit/libshaudit.so.1 through its $ORIGIN-relative run path).
PUBLIC_BUILD = Path("/tmp").resolve() / f"shaudit-it-build-{os.getpid()}-{secrets.token_hex(4)}"
PUBLIC_FILES = ("preload/libshaudit_preload.so", "pam_module/pam_shaudit.so",
                "tests/interposer_probe", "cli/shaudit", "libshaudit/libshaudit.so.1",
                "daemon/shauditd")
# The interposer every test preloads and every test daemon names as genuine: the eBPF collector
# knows that file by device and inode, so sessions must map this very copy.
PRELOAD = PUBLIC_BUILD / "preload" / "libshaudit_preload.so"
PAM_MODULE = PUBLIC_BUILD / "pam_module" / "pam_shaudit.so"
PROBE = PUBLIC_BUILD / "tests" / "interposer_probe"
PUBLIC_SHAUDIT = PUBLIC_BUILD / "cli" / "shaudit"  # the CLI for processes of other users
PUBLIC_SHAUDITD = PUBLIC_BUILD / "daemon" / "shauditd"  # shauditd run as another user


def built(copy):
    """The build tree's file of which copy (a path in PUBLIC_BUILD) is the copy."""
    return BUILD / Path(copy).relative_to(PUBLIC_BUILD)


@pytest.fixture(scope="session", autouse=True)
def public_build():
    """Makes PUBLIC_BUILD (0755) with copies (0755) of the build's PUBLIC_FILES that
    exist; removes it at the end of the session."""
    PUBLIC_BUILD.mkdir(mode=0o700)  # fails if the name exists: nobody else made it
    try:
        for rel in PUBLIC_FILES:
            src = BUILD / rel
            if not src.exists():
                continue  # not built: the tests that need it say so
            dst = PUBLIC_BUILD / rel
            dst.parent.mkdir(exist_ok=True)
            dst.parent.chmod(0o755)
            shutil.copyfile(src, dst)  # (libshaudit.so.1 is a symlink: its target's bytes)
            dst.chmod(0o755)
        PUBLIC_BUILD.chmod(0o755)
        yield PUBLIC_BUILD
    finally:
        shutil.rmtree(PUBLIC_BUILD, ignore_errors=True)


def run_cli(*args, check=False, **kw):
    """Runs the shaudit CLI; returns CompletedProcess with text output."""
    return subprocess.run([str(SHAUDIT), *map(str, args)], capture_output=True, text=True,
                          check=check, timeout=120, **kw)


def read_records(path):
    with open(path, "rb") as f:
        return [json.loads(line) for line in f.read().splitlines()]


class Daemon:
    """One shauditd on a private socket, log and key under tmp."""

    def __init__(self, tmp: Path, name="d", **config):
        self.dir = tmp
        self.socket = tmp / f"{name}.sock"
        self.control = tmp / f"{name}.ctl"
        self.log = tmp / "log" / "audit.jsonl"
        self.key = tmp / "signing.key"
        self.pub = tmp / "signing.key.pub"
        self.config_path = tmp / f"{name}.yaml"
        self.config = {
            "socket": str(self.socket),
            "control_socket": str(self.control),
            "log": str(self.log),
            "signing_key": str(self.key),
            "bpf": "off",
            "state_dir": str(tmp / "state"),
            # The genuine interposer the eBPF collector probes: the copy of this build's that
            # the tests' sessions load.
            "interposer": str(PRELOAD),
        }
        # Lists and mappings (outputs, rules, ...) as JSON, which is YAML flow syntax.
        self.config.update({k: (json.dumps(v, default=str) if isinstance(v, (list, dict)) else str(v))
                            for k, v in config.items()})
        self.proc = None
        self.stderr_path = tmp / f"{name}.stderr"

    def write_config(self):
        self.config_path.write_text("".join(f"{k}: {v}\n" for k, v in self.config.items()))

    def keygen(self):
        if not self.key.exists():
            run_cli("keygen", "--out", self.key, check=True)

    def start(self, wait=True, extra_args=(), wrapper=()):
        """Starts shauditd (under `wrapper`, a command that execs its arguments, if given)."""
        self.keygen()
        self.write_config()
        self.stderr_file = open(self.stderr_path, "ab")
        self.proc = subprocess.Popen([*wrapper, str(SHAUDITD), "--config", str(self.config_path), *extra_args],
                                     stdout=subprocess.DEVNULL, stderr=self.stderr_file)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"shauditd exited {self.proc.returncode}: {self.stderr()}")
            try:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
                s.connect(str(self.socket))
                s.close()
                return
            except OSError:
                time.sleep(0.01)
        raise AssertionError("shauditd did not become ready")

    def stderr(self):
        try:
            return self.stderr_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stop(self, sig=signal.SIGTERM, timeout=20):
        """Stops the daemon; returns its exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        rc = self.proc.wait(timeout=timeout)
        self.stderr_file.close()
        self.proc = None
        return rc

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        s.connect(str(self.socket))
        return s

    def records(self):
        return read_records(self.log)

    def lines(self):
        """The log's lines as str, without their newlines."""
        return [line.decode() for line in read_lines(self.log)]

    def verify(self, *extra):
        return run_cli("verify", self.log, "--pubkey", self.pub, *extra)

    def wait_for(self, pred, timeout=10):
        """Waits until pred(records) is true; returns the records."""
        deadline = time.monotonic() + timeout
        recs = []
        while time.monotonic() < deadline:
            if self.log.exists():
                try:
                    recs = self.records()
                except ValueError:
                    recs = []
                if pred(recs):
                    return recs
            time.sleep(0.02)
        raise AssertionError(f"condition not met; records: {recs[-5:]}")


@pytest.fixture
def daemon_factory(tmp_path):
    made = []

    def make(name="d", **config):
        d = Daemon(tmp_path, name, **config)
        made.append(d)
        return d

    yield make
    for d in made:
        if d.proc is not None and d.proc.poll() is None:
            d.proc.kill()
            d.proc.wait()


@pytest.fixture
def work(tmp_path):
    """A working directory for a shell (tmp_path/work)."""
    d = tmp_path / "work"
    d.mkdir()
    return d


@pytest.fixture
def daemon(daemon_factory):
    return daemon_factory().start()


# ---------------------------------------------------------------------------------------
# Generic helpers added for test_lifecycle.py and test_verify_cli.py (additions only).

import hashlib  # noqa: E402
import re  # noqa: E402
import tempfile  # noqa: E402

CLIENT_FORK = BUILD / "tests" / "client_fork"
NOBODY_UID = 65534
# Runs a command as uid/gid 65534 with no supplementary groups (util-linux setpriv).
AS_NOBODY = ["setpriv", f"--reuid={NOBODY_UID}", f"--regid={NOBODY_UID}", "--clear-groups"]
# A record's time: RFC 3339 UTC with exactly nine fractional digits.
RECORD_TIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{9}Z$")


def stats(d):
    """`shaudit stats --json` of daemon d, parsed."""
    r = run_cli("stats", "--control", d.control, "--json")
    assert r.returncode == 0, f"stats failed: {r.stderr}"
    return json.loads(r.stdout)


def outputs(d):
    """Daemon d's output statistics by output name."""
    return {o["name"]: o for o in stats(d)["outputs"]}


def wait_output(d, name, pred, timeout=15):
    """Waits until pred(statistics of output `name`) is true; returns those statistics."""
    deadline = time.monotonic() + timeout
    st = None
    while time.monotonic() < deadline:
        st = outputs(d)[name]
        if pred(st):
            return st
        time.sleep(0.05)
    raise AssertionError(f"output {name}: stats never matched: {st}")


def public_daemon(daemon_factory, public_dir, name="d", **config):
    """A daemon (not started) whose sockets live in public_dir, where processes of every uid
    can reach them."""
    d = daemon_factory(name, **config)
    d.socket = public_dir / f"{name}.sock"
    d.control = public_dir / f"{name}.ctl"
    d.config["socket"] = str(d.socket)
    d.config["control_socket"] = str(d.control)
    return d


def record_time_ns(text):
    """Nanoseconds since the epoch of a record's `time` (RFC 3339 UTC, 9 fractional digits)."""
    import calendar
    m = re.fullmatch(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})\.(\d{9})Z", text)
    assert m, f"not a record time: {text!r}"
    y, mo, d, h, mi, s, frac = m.groups()
    secs = calendar.timegm((int(y), int(mo), int(d), int(h), int(mi), int(s), 0, 0, 0))
    return secs * 1_000_000_000 + int(frac)


def read_lines(path):
    """The log's lines as bytes, without their newlines."""
    return Path(path).read_bytes().splitlines()


def line_hash(line):
    """The chain hash of one log line (bytes without the newline): SHA-256 hex."""
    return hashlib.sha256(line).hexdigest()


def canonical_json(obj):
    """The log's canonical encoding of a record (sorted keys, no whitespace, UTF-8)."""
    return json.dumps(obj, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()


def emit(sock, *args, as_nobody=False, timeout=30):
    """Runs `shaudit emit --socket SOCK ARGS...`; returns (CompletedProcess, pid of the emitter).

    The pid is the one the daemon must record: Popen execs the CLI directly (or through
    setpriv, which execs it in the same process: nobody runs the copy in PUBLIC_BUILD)."""
    if as_nobody:
        cmd = AS_NOBODY + [str(PUBLIC_SHAUDIT), "emit", "--socket", str(sock), *map(str, args)]
    else:
        cmd = [str(SHAUDIT), "emit", "--socket", str(sock), *map(str, args)]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        raise
    return subprocess.CompletedProcess(cmd, p.returncode, out, err), p.pid


@pytest.fixture
def public_dir():
    """A directory under /tmp that every user may traverse (0755): for sockets that a
    process running as another uid must reach (pytest's tmp_path is root-only)."""
    d = Path(tempfile.mkdtemp(prefix="shaudit-it-", dir="/tmp"))
    d.chmod(0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def kill_pids(pids, sig=signal.SIGKILL):
    """Ends processes by pid (never by name); those already gone are skipped."""
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def _in_chroot():
    """Whether this process runs in a chroot: the mount at its "/" is not the root of its
    filesystem (a bind-mounted directory), or no mount is at its "/" at all. (PID 1's root,
    the obvious comparison, is not readable on every machine.)"""
    try:
        with open("/proc/self/mountinfo") as f:
            roots = [line.split()[3] for line in f if len(line.split()) > 4 and line.split()[4] == "/"]
    except OSError:
        return False
    return not roots or roots[-1] != "/"


# runc containers need a real root: inside a chroot a container gets the chroot's root, not its
# bundle's (seen when the suite runs in a debootstrapped chroot; systemd-nspawn does work
# there). Everywhere else they run.
NEEDS_REAL_ROOT = pytest.mark.skipif(
    _in_chroot(), reason="runc containers do not work inside a chroot (the container gets the "
    "chroot's root, not its bundle's): run the suite on a real root")
