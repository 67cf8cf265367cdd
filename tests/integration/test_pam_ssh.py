# SPDX-License-Identifier: Apache-2.0
"""PAM module end to end: pamtester against a service file of our own, and real sshd (and
su inside it) in a private mount namespace whose PAM stack carries pam_shaudit.so, first with
the interposer exported through `preload=`, then in host-wide mode (/etc/ld.so.preload inside
the namespace only). Host files are never changed: PAM service files get names of their own
and are removed, everything under /etc that must differ is mounted inside a private mount
namespace, test users are removed with `userdel -r`, and processes are ended by PID."""
import json
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import time
from pathlib import Path

import pytest

import wire
from conftest import AS_NOBODY, NOBODY_UID, PAM_MODULE, PRELOAD, built, kill_pids, public_daemon, run_cli, stats
from ptyshell import PS1, PS2, PtyShell

# Copies every user may read (conftest.PUBLIC_BUILD): sshd and su sessions, and pamtester run
# as nobody, load them.
MODULE = PAM_MODULE
SSHD = "/usr/sbin/sshd"
SSH = "/usr/bin/ssh"

SESSION_OPEN, SESSION_CLOSE, SESSION_REPLY = 6, 7, 8
F_SESSION, F_USER, F_UID, F_SERVICE, F_ERROR = 6, 19, 20, 21, 23
LOG_AUTHPRIV = 10 << 3
LOG_ERR, LOG_WARNING = 3, 4
SESSION_ERR_TEXT = "Cannot make/remove an entry for the specified session"
TOOLS_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}


def _missing(*tools):
    return [t for t in tools if not (shutil.which(t) or os.path.exists(t))]


pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (PAM sessions, mount namespaces, useradd)"),
    pytest.mark.skipif(not built(MODULE).exists() or not built(PRELOAD).exists(),
                       reason="build pam_shaudit.so and the interposer first"),
    pytest.mark.skipif(bool(_missing("unshare", "nsenter", "mount", "useradd", "userdel", "chpasswd")),
                       reason="missing util-linux/passwd tools: "
                       + " ".join(_missing("unshare", "nsenter", "mount", "useradd", "userdel", "chpasswd"))),
]


# ---------------------------------------------------------------------------------------------
# helpers


def uniq(prefix):
    return f"{prefix}{secrets.token_hex(3)}"


def of_type(recs, t):
    return [r for r in recs if r["type"] == t]


def starts(recs):
    return of_type(recs, "session_start")


def commands_in(recs, session):
    return [r for r in recs if r["type"] == "command" and r.get("session") == session]


def ends_of(recs, session):
    return [r for r in recs if r["type"] == "session_end" and r["session"] == session]


def procs_where(pred):
    """PIDs of live processes for which pred(pid) holds (pred may raise for vanished ones)."""
    out = []
    for e in os.listdir("/proc"):
        if not e.isdigit():
            continue
        try:
            if pred(int(e)):
                out.append(int(e))
        except OSError:
            pass
    return out


def wait_gone(pids, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not [p for p in pids if os.path.exists(f"/proc/{p}")]:
            return True
        time.sleep(0.02)
    return False


def proc_uid(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("Uid:"):
                return int(line.split()[1])
    raise OSError("no Uid line")


def read_proc_id(pid, what):
    return Path(f"/proc/{pid}/{what}").read_text().strip()


class Users:
    """Test users created with useradd and removed with userdel -r (after their remaining
    processes, all started by this test, are killed by PID)."""

    def __init__(self):
        self.made = []

    def add(self, role, password=None, profile=True):
        name = uniq(f"sat{role}")
        for attempt in range(50):  # another process may hold the passwd lock for a moment
            r = subprocess.run(["useradd", "-m", "-s", "/bin/bash", name], capture_output=True,
                               text=True, env=TOOLS_ENV)
            if r.returncode == 0:
                break
            if "lock" not in r.stderr:
                raise AssertionError(f"useradd {name}: {r.stderr}")
            time.sleep(0.1)
        else:
            raise AssertionError(f"useradd {name}: {r.stderr}")
        self.made.append(name)
        if password:
            subprocess.run(["chpasswd"], input=f"{name}:{password}\n", text=True, check=True,
                           env=TOOLS_ENV)
        pw = pwd.getpwnam(name)
        home = Path(pw.pw_dir)
        if profile:
            # A login bash reads ~/.bash_profile last: a plain prompt for the test to wait for.
            p = home / ".bash_profile"
            p.write_text(f"PS1='{PS1}'\nPS2='{PS2}'\nunset PROMPT_COMMAND\n")
            os.chown(p, pw.pw_uid, pw.pw_gid)
        return name, pw.pw_uid, pw.pw_gid, home

    def remove_all(self):
        for name in self.made:
            try:
                uid = pwd.getpwnam(name).pw_uid
            except KeyError:
                continue
            left = procs_where(lambda p: proc_uid(p) == uid)
            kill_pids(left)
            wait_gone(left)
            for attempt in range(50):
                r = subprocess.run(["userdel", "-r", name], capture_output=True, text=True,
                                   env=TOOLS_ENV)
                if r.returncode in (0, 12) or "lock" not in r.stderr:  # 12: mail spool absent
                    break
                time.sleep(0.1)
        self.made = []


@pytest.fixture
def users():
    u = Users()
    yield u
    u.remove_all()


@pytest.fixture
def pam_services():
    """Writes PAM service files of our own names in /etc/pam.d; removes them after."""
    made = []

    def make(text):
        name = uniq("shaudit-test-")
        path = Path("/etc/pam.d") / name
        assert not path.exists()
        path.write_text(text)
        made.append(path)
        return name

    yield make
    for p in made:
        p.unlink(missing_ok=True)


# ---------------------------------------------------------------------------------------------
# syslog capture: pam_syslog writes to /dev/log, which this machine does not have. Inside a
# private mount namespace /dev is replaced by a directory holding the device nodes a PAM
# stack needs and our own datagram socket as `log`.

class Syslog:
    NODES = ("null", "zero", "full", "random", "urandom")

    def __init__(self, d: Path):
        self.dir = d
        d.mkdir(mode=0o755)
        for n in self.NODES:
            (d / n).touch()
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(d / "log"))
        os.chmod(d / "log", 0o666)
        self.sock.setblocking(False)
        self.got = []

    def wrap(self, argv):
        script = ('set -e; D=$1; shift; for n in ' + " ".join(self.NODES) + '; do '
                  'mount --bind "/dev/$n" "$D/$n"; done; mount --rbind "$D" /dev; exec "$@"')
        return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh",
                str(self.dir), *argv]

    def messages(self):
        """(severity, facility bits, text) of every message received so far."""
        while True:
            try:
                data = self.sock.recv(65536)
            except BlockingIOError:
                break
            text = data.decode(errors="replace").rstrip("\0\n")
            assert text.startswith("<"), text
            pri, rest = text[1:].split(">", 1)
            self.got.append((int(pri) & 7, int(pri) & ~7, rest))
        return list(self.got)

    def close(self):
        self.sock.close()


@pytest.fixture
def syslog(tmp_path):
    if _missing("pamtester"):
        pytest.skip("pamtester is not installed (apt-get install pamtester)")
    s = Syslog(tmp_path / "devlog")
    yield s
    s.close()


def pamtester(syslog, service, user, *ops, as_nobody=False):
    """Runs pamtester (its pid is the Popen pid: unshare, sh and setpriv exec) with /dev/log
    captured; returns (CompletedProcess, pid)."""
    argv = syslog.wrap((AS_NOBODY if as_nobody else []) + ["pamtester", "-v", service, user, *ops])
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=TOOLS_ENV)
    out, err = p.communicate(timeout=60)
    return subprocess.CompletedProcess(argv, p.returncode, out, err), p.pid


def module_line(sock, *opts, control="required"):
    return f"session {control} {MODULE} socket={sock} " + " ".join(opts) + "\n"


# ---------------------------------------------------------------------------------------------
# 1. pamtester


def test_pamtester_open_and_close_session(daemon_factory, public_dir, users, pam_services, syslog):
    d = public_daemon(daemon_factory, public_dir).start()
    name, uid, _, _ = users.add("pt")
    svc = pam_services(module_line(d.socket))
    r, pid = pamtester(syslog, svc, name, "open_session", "close_session")
    assert r.returncode == 0, f"pamtester failed: {r.stdout}{r.stderr}; syslog: {syslog.messages()}"
    assert "successfully opened a session" in r.stdout + r.stderr
    assert "session has successfully been closed" in r.stdout + r.stderr

    recs = d.wait_for(lambda rs: any(e["type"] == "session_end" for e in rs))
    st = starts(recs)
    assert len(st) == 1, st
    s = st[0]
    assert s["user"] == name
    assert s["uid"] == uid
    assert s["service"] == svc
    assert s["pid"] == pid  # the opener: pamtester itself (unshare and sh exec into it)
    assert s["tty"] == ""  # pamtester sets no PAM_TTY
    assert "remote_host" not in s and "parent_session" not in s
    # pytest runs outside any login: no loginuid, no audit session
    assert "loginuid" not in s and "audit_session" not in s
    assert re.fullmatch(r"[0-9a-f]{16}", s["session"]), s
    en = of_type(recs, "session_end")
    assert len(en) == 1
    e = en[0]
    assert e["session"] == s["session"]
    assert e["reason"] == "pam_close"
    assert e["user"] == name and e["uid"] == uid and e["service"] == svc
    assert e["commands"] == 0 and e["failed_commands"] == 0 and 0 < e["duration_ns"] < 10**10
    assert recs.index(s) < recs.index(e)
    # nothing went wrong on the module's side
    assert not [m for m in syslog.messages() if "pam_shaudit" in m[2]], syslog.messages()

    rc = d.stop()
    assert rc == 0
    v = d.verify()
    assert v.returncode == 0, v.stdout + v.stderr


def test_pamtester_daemon_down_fail_closed_and_fail_open(daemon_factory, public_dir, users,
                                                       pam_services, syslog):
    d = public_daemon(daemon_factory, public_dir).start()
    assert d.stop() == 0
    assert not d.socket.exists()
    name, _, _, _ = users.add("fc")

    closed = pam_services(module_line(d.socket, "fail=closed", "timeout_ms=500"))
    r, _ = pamtester(syslog, closed, name, "open_session")
    assert r.returncode != 0, r.stdout + r.stderr
    assert "successfully opened" not in r.stdout + r.stderr
    assert SESSION_ERR_TEXT in r.stderr  # pam_strerror(PAM_SESSION_ERR)
    msgs = [m for m in syslog.messages() if f"pam_shaudit({closed}:session)" in m[2]]
    assert len(msgs) == 1, syslog.messages()
    sev, fac, text = msgs[0]
    assert sev == LOG_ERR and fac == LOG_AUTHPRIV
    assert f"cannot register the session with shauditd at {d.socket}" in text
    assert "refusing the session (fail=closed)" in text

    opened = pam_services(module_line(d.socket, "fail=open", "timeout_ms=500"))
    r, _ = pamtester(syslog, opened, name, "open_session", "close_session")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "successfully opened a session" in r.stdout + r.stderr
    msgs = [m for m in syslog.messages() if f"pam_shaudit({opened}:session)" in m[2]]
    assert len(msgs) == 1, syslog.messages()  # close_session has no session to close
    sev, fac, text = msgs[0]
    assert sev == LOG_WARNING and fac == LOG_AUTHPRIV
    assert "continuing unregistered (fail=open)" in text

    # Default (no fail=): open.
    default = pam_services(module_line(d.socket, "timeout_ms=500"))
    r, _ = pamtester(syslog, default, name, "open_session")
    assert r.returncode == 0, r.stdout + r.stderr
    # Nothing was logged anywhere: the daemon is down.
    assert not [x for x in d.records() if x["type"].startswith("session")]


def test_pamtester_unknown_option_fails_open_session(daemon_factory, public_dir, users,
                                                    pam_services, syslog):
    d = public_daemon(daemon_factory, public_dir).start()
    name, _, _, _ = users.add("uo")
    svc = pam_services(module_line(d.socket, "fail=open", "bogus=1"))
    r, _ = pamtester(syslog, svc, name, "open_session")
    assert r.returncode != 0, r.stdout + r.stderr
    assert "successfully opened" not in r.stdout + r.stderr
    msgs = [m for m in syslog.messages() if f"pam_shaudit({svc}:session)" in m[2]]
    assert len(msgs) == 1, syslog.messages()
    sev, fac, text = msgs[0]
    assert sev == LOG_ERR and fac == LOG_AUTHPRIV
    assert text.endswith("unknown option: bogus=1"), text
    # A malformed value is an unknown option too (socket= must be absolute).
    svc2 = pam_services(module_line(d.socket, "socket=relative.sock"))
    r, _ = pamtester(syslog, svc2, name, "open_session")
    assert r.returncode != 0, r.stdout + r.stderr
    assert any(m[0] == LOG_ERR and m[2].endswith("unknown option: socket=relative.sock")
               for m in syslog.messages()), syslog.messages()
    # The daemon never heard of either.
    assert d.proc.poll() is None
    st = stats(d)
    assert st["sessions_opened"] == 0
    assert not starts(d.records())


def _exchange(sock_path, mtype, fields):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        s.settimeout(10)
        s.connect(sock_path)
        s.send(wire.message(mtype, 1, fields))
        return s.recv(65536)
    finally:
        s.close()


def _parse_reply(data):
    """(type, {tag: bytes}) of a daemon reply."""
    magic, version, mtype, _flags, length, _res, _seq, _sent = wire.HEADER.unpack_from(data)
    assert magic == wire.MAGIC and version == wire.VERSION and length == len(data)
    fields = {}
    pos = wire.HEADER.size
    while pos + wire.FIELD.size <= len(data):
        tag, _f, n = wire.FIELD.unpack_from(data, pos)
        pos += wire.FIELD.size
        fields[tag] = data[pos:pos + n]
        pos += n
    return mtype, fields


def _session_request(sock_path, mtype, fields, uid=None):
    """Sends one session request and returns the reply's (type, {tag: bytes}): from this
    process (which then is the session's entry), or as uid from a forked child with no
    supplementary groups."""
    if uid is None:
        return _parse_reply(_exchange(sock_path, mtype, fields))
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.close(rfd)
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            os.write(wfd, _exchange(sock_path, mtype, fields))
            code = 0
        finally:
            os._exit(code)
    os.close(wfd)
    chunks = []
    while True:
        c = os.read(rfd, 65536)
        if not c:
            break
        chunks.append(c)
    os.close(rfd)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "session request child failed"
    return _parse_reply(b"".join(chunks))


def test_session_requests_only_from_root(daemon_factory, public_dir, pam_services, syslog):
    d = public_daemon(daemon_factory, public_dir).start()
    # Through the module: a PAM stack run by a non-root process is refused by the daemon.
    svc = pam_services(module_line(d.socket, "fail=closed"))
    r, _ = pamtester(syslog, svc, "nobody", "open_session", as_nobody=True)
    assert r.returncode != 0 and SESSION_ERR_TEXT in r.stderr, r.stdout + r.stderr
    msgs = [m for m in syslog.messages() if f"pam_shaudit({svc}:session)" in m[2]]
    assert len(msgs) == 1 and msgs[0][0] == LOG_ERR, syslog.messages()
    assert msgs[0][2].endswith("only root may open a session; refusing the session (fail=closed)")

    # Directly on the socket.
    open_fields = [wire.field(F_USER, "mallory"), wire.field(F_UID, struct.pack("<Q", 0)),
                   wire.field(F_SERVICE, "forged")]
    mtype, fields = _session_request(str(d.socket), SESSION_OPEN, open_fields, uid=NOBODY_UID)
    assert mtype == SESSION_REPLY
    assert fields.get(F_ERROR) == b"only root may open a session"
    assert F_SESSION not in fields

    # A root peer gets a session id; a non-root peer may not close it.
    mtype, fields = _session_request(str(d.socket), SESSION_OPEN,
                                     [wire.field(F_USER, "root"), wire.field(F_UID, struct.pack("<Q", 0)),
                                      wire.field(F_SERVICE, "wire-test")])
    assert mtype == SESSION_REPLY and F_ERROR not in fields
    sid = fields[F_SESSION].decode()
    mtype, fields = _session_request(str(d.socket), SESSION_CLOSE, [wire.field(F_SESSION, sid)],
                                     uid=NOBODY_UID)
    assert mtype == SESSION_REPLY
    assert fields.get(F_ERROR) == b"only root may close a session"
    mtype, fields = _session_request(str(d.socket), SESSION_CLOSE, [wire.field(F_SESSION, sid)])
    assert mtype == SESSION_REPLY and fields.get(F_SESSION) == sid.encode()

    recs = d.wait_for(lambda rs: any(r["type"] == "session_end" for r in rs))
    st = starts(recs)
    assert [s["service"] for s in st] == ["wire-test"]  # nothing from the forged request
    assert not [r for r in recs if r.get("user") in ("mallory", "nobody") or r.get("service") in ("forged", svc)]
    assert st[0]["session"] == sid and st[0]["pid"] == os.getpid()
    assert st[0]["user"] == "root" and st[0]["uid"] == 0
    en = of_type(recs, "session_end")
    assert len(en) == 1 and en[0]["session"] == sid and en[0]["reason"] == "pam_close"
    s = stats(d)
    assert s["rejected_by_reason"] == {"not_root": 3}, s
    assert s["sessions_opened"] == 1 and s["sessions_open"] == 0
    assert d.stop() == 0


# ---------------------------------------------------------------------------------------------
# 2 and 3. sshd (and su) in a private mount namespace


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def mnt_ns(pid):
    return os.readlink(f"/proc/{pid}/ns/mnt")


class SshBed:
    """sshd on 127.0.0.1 in a private mount namespace. Inside it only: our PAM files are
    bind-mounted over /etc/pam.d/sshd and /etc/pam.d/su, and (host-wide mode) /etc carries
    an ld.so.preload through an overlay (the host has no /etc/ld.so.preload to bind over)."""

    def __init__(self, root: Path):
        self.dir = root
        root.mkdir(mode=0o755)
        self.keys = root / "authorized"
        self.keys.mkdir(mode=0o755)
        self.port = free_port()
        self.proc = None
        self.ns = None
        self.log = root / "sshd.log"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(root / "hostkey")],
                       check=True, env=TOOLS_ENV)
        self.client_key = root / "clientkey"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.client_key)],
                       check=True, env=TOOLS_ENV)
        (root / "sshd_config").write_text(
            f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {root / 'hostkey'}\n"
            f"PidFile {root / 'sshd.pid'}\nUsePAM yes\nPubkeyAuthentication yes\n"
            "PasswordAuthentication no\nKbdInteractiveAuthentication no\n"
            f"AuthorizedKeysFile {self.keys}/%u\nStrictModes no\nPermitRootLogin no\n"
            "UseDNS no\nPrintMotd no\nPrintLastLog no\nX11Forwarding no\nLogLevel VERBOSE\n")

    def authorize(self, user):
        p = self.keys / user
        p.write_text((self.dir / "clientkey.pub").read_text())
        p.chmod(0o644)

    def start(self, pam_sshd, pam_su, ld_preload=None):
        (self.dir / "pam.sshd").write_text(pam_sshd)
        (self.dir / "pam.su").write_text(pam_su)
        lines = ["set -e"]
        if ld_preload is not None:
            upper, work = self.dir / "etc-upper", self.dir / "etc-work"
            upper.mkdir()
            work.mkdir()
            (upper / "ld.so.preload").write_text(ld_preload)
            (upper / "ld.so.preload").chmod(0o644)
            lines.append(f"mount -t overlay overlay -o lowerdir=/etc,upperdir={upper},workdir={work} /etc")
        # sshd's privilege separation directory, /run/sshd, on a tmpfs of the namespace's own
        # (so nothing is created on the host; this also hides the host's /run/shaudit).
        lines += ["mount -t tmpfs -o mode=0755 shaudit-test-run /run", "mkdir -m 0755 /run/sshd",
                  f"mount --bind {self.dir / 'pam.sshd'} /etc/pam.d/sshd",
                  f"mount --bind {self.dir / 'pam.su'} /etc/pam.d/su",
                  f"exec {SSHD} -D -e -f {self.dir / 'sshd_config'}"]
        self.logf = open(self.log, "ab")
        self.proc = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                                      "\n".join(lines)], stdin=subprocess.DEVNULL,
                                     stdout=self.logf, stderr=self.logf, env=TOOLS_ENV)
        deadline = time.monotonic() + 20
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"sshd exited {self.proc.returncode}: {self.sshd_log()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise AssertionError(f"sshd did not listen: {self.sshd_log()}")
                time.sleep(0.02)
        self.ns = mnt_ns(self.proc.pid)
        assert self.ns != mnt_ns(os.getpid())

    def sshd_log(self):
        try:
            return self.log.read_text(errors="replace")[-3000:]
        except FileNotFoundError:
            return ""

    def ssh_argv(self, user, *remote):
        return [SSH, "-tt", "-F", "/dev/null", "-p", str(self.port), "-i", str(self.client_key),
                "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                "-o", "BatchMode=yes", "-o", "LogLevel=ERROR", "-o", "IdentitiesOnly=yes",
                f"{user}@127.0.0.1", *remote]

    def ssh(self, user):
        env = dict(TOOLS_ENV, TERM="xterm", HOME=str(self.dir))
        return PtyShell(self.ssh_argv(user), env=env)

    def in_ns(self, argv):
        """argv run inside the namespace (nsenter keeps our credentials and session ids)."""
        # -r: its root too (when the suite itself runs in a chroot, the namespace's root is not
        # ours).
        return [shutil.which("nsenter"), "-t", str(self.proc.pid), "-m", "-r", "--", *argv]

    def stop(self):
        """Ends sshd and every process left in its namespace, by PID; the namespace (and
        its mounts) goes away with its last process."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.ns:
            left = procs_where(lambda p: p != os.getpid() and mnt_ns(p) == self.ns)
            kill_pids(left)
            wait_gone(left)
        self.logf.close()
        self.proc = None


@pytest.fixture
def sshbed(public_dir):
    if _missing(SSHD, SSH, "ssh-keygen"):
        pytest.skip(f"missing {_missing(SSHD, SSH, 'ssh-keygen')} "
                    "(apt-get install openssh-server openssh-client)")
    bed = SshBed(public_dir / "ssh")
    yield bed
    bed.stop()


def sshd_pam(sock, preload=None):
    opts = f" preload={preload}" if preload else ""
    return ("@include common-auth\n"
            "account required pam_nologin.so\n"
            "@include common-account\n"
            "session required pam_loginuid.so\n"
            f"session required {MODULE} socket={sock}{opts}\n"
            "@include common-session\n")


def su_pam(sock, preload=None):
    # Debian's /etc/pam.d/su-l (used by `su -`) includes su.
    opts = f" preload={preload}" if preload else ""
    return ("auth sufficient pam_rootok.so\n"
            "@include common-auth\n"
            "@include common-account\n"
            f"session required {MODULE} socket={sock}{opts}\n"
            "@include common-session\n")


def output_line(sh, text):
    """Whether the terminal showed text as a whole output line (not within an echoed input
    line: those start after the prompt)."""
    return re.search(rb"[\r\n]" + re.escape(text.encode()) + rb"\r\n", sh.out) is not None


def login(bed, user):
    sh = bed.ssh(user)
    try:
        sh.wait_prompt(timeout=30)
    except (TimeoutError, EOFError) as e:
        sh.kill()
        raise AssertionError(f"ssh login failed: {e}\nsshd log: {bed.sshd_log()}")
    return sh


def wait_login_session(d, user):
    recs = d.wait_for(lambda rs: any(s["user"] == user for s in starts(rs)), timeout=20)
    return next(s for s in starts(recs) if s["user"] == user)


def check_login_start(s, user, uid, shell_pid):
    """The ssh session_start: who, from where, and the kernel's audit ids of the login."""
    assert s["user"] == user
    assert s["uid"] == uid
    assert s["service"] == "sshd"
    assert s["remote_host"] == "127.0.0.1"
    assert s["tty"] == "ssh"  # sshd opens the PAM session before it allocates the pty
    assert "parent_session" not in s
    sid = read_proc_id(shell_pid, "sessionid")
    assert sid.isdigit() and sid != "4294967295"
    assert s["audit_session"] == sid
    assert s["loginuid"] == str(uid)
    assert read_proc_id(shell_pid, "loginuid") == str(uid)
    return sid


def ssh_su_scenario(d, bed, users, public_dir, preload):
    """Logs in over ssh as one test user, types the seed lines, `su -` to a second user,
    types more lines there, exits both. Checks every record of both sessions; returns the
    records, the login's audit session id and the users' details."""
    user, uid, gid, home = users.add("ssh", password=secrets.token_hex(8))
    pw2 = secrets.token_hex(8)
    user2, uid2, _, home2 = users.add("su", password=pw2)
    bed.authorize(user)
    work = public_dir / uniq("w")
    work.mkdir()
    os.chown(work, uid, gid)
    if preload:
        bed.start(sshd_pam(d.socket, PRELOAD), su_pam(d.socket, PRELOAD))
    else:  # host-wide: /etc/ld.so.preload in the namespace, no preload= option
        bed.start(sshd_pam(d.socket), su_pam(d.socket), ld_preload=f"{PRELOAD}\n")
        # Inside the namespace every process maps the interposer; outside it none does.
        assert str(PRELOAD) in Path(f"/proc/{bed.proc.pid}/maps").read_text()
        assert str(PRELOAD) not in Path("/proc/self/maps").read_text()

    ssh_lines = ["ls /bin", f"mkdir {work}/hellofalco", 'echo "hello world" > example.txt']
    su_lines = ["whoami", 'echo "inside su" > su.txt', "echo sid=$(cat /proc/self/sessionid)"]
    sh = login(bed, user)
    try:
        for line in ssh_lines:
            sh.line(line)
        login_start = wait_login_session(d, user)
        ssh_id = login_start["session"]
        recs = d.wait_for(lambda rs: len(commands_in(rs, ssh_id)) >= len(ssh_lines))
        shell_pid = commands_in(recs, ssh_id)[0]["pid"]
        sid = check_login_start(login_start, user, uid, shell_pid)
        env = Path(f"/proc/{shell_pid}/environ").read_bytes().split(b"\0")
        assert f"SHAUDIT_SOCKET={d.socket}".encode() in env
        assert f"SHAUDIT_SESSION={ssh_id}".encode() in env
        if preload:
            assert f"LD_PRELOAD={PRELOAD}".encode() in env
        else:
            assert not [e for e in env if e.startswith(b"LD_PRELOAD=")]
        assert str(PRELOAD) in Path(f"/proc/{shell_pid}/maps").read_text()
        assert (d.socket.parent / "sessions" / sid).exists()  # published for host-wide mode

        sh.type("su - " + user2 + "\r")
        sh.expect("Password:", timeout=20)
        sh.type(pw2 + "\r", delay=0.002)
        sh.wait_prompt(timeout=30)
        for line in su_lines:
            sh.line(line)
        sh.line("exit")  # back in the ssh shell
        assert sh.exit(timeout=30) == 0
    finally:
        sh.kill()

    # The commands ran as typed, as who they should.
    assert (work / "hellofalco").is_dir() and (work / "hellofalco").stat().st_uid == uid
    assert (home / "example.txt").read_text() == "hello world\n"
    assert (home2 / "su.txt").read_text() == "inside su\n" and (home2 / "su.txt").stat().st_uid == uid2
    assert output_line(sh, user2)  # whoami
    assert output_line(sh, f"sid={sid}")  # su keeps the login's audit session

    recs = d.wait_for(lambda rs: len(ends_of(rs, ssh_id)) == 1, timeout=20)
    assert len(starts(recs)) == 2, starts(recs)
    su_starts = [s for s in starts(recs) if s.get("parent_session") == ssh_id]
    assert len(su_starts) == 1, starts(recs)
    su = su_starts[0]
    su_id = su["session"]
    assert su["user"] == user2 and su["uid"] == uid2
    assert su["service"] == "su-l"  # Debian's `su -` uses the su-l service (it includes su)
    ssh_tty = commands_in(recs, ssh_id)[0]["tty"]  # the login shell's terminal
    assert ssh_tty.startswith("/dev/pts/") and su["tty"] == ssh_tty
    assert "remote_host" not in su
    # su keeps the login's audit session and loginuid: the kernel still says who logged in.
    assert su["audit_session"] == sid and su["loginuid"] == str(uid)
    assert recs.index(login_start) < recs.index(su)

    ssh_cmds = commands_in(recs, ssh_id)
    assert [c["text"] for c in ssh_cmds] == ssh_lines + [f"su - {user2}", "exit"]
    for c in ssh_cmds:
        assert c["user"] == user and c["uid"] == uid
        assert c["pid"] == shell_pid and c["shell"] == "bash"
        assert c["audit_session"] == sid and c["loginuid"] == str(uid)
        assert c["cwd"] == str(home) and c["tty"] == ssh_tty
    su_cmds = commands_in(recs, su_id)
    assert [c["text"] for c in su_cmds] == su_lines + ["exit"]
    su_shell = su_cmds[0]["pid"]
    for c in su_cmds:
        assert c["user"] == user2 and c["uid"] == uid2 and c["shell"] == "bash"
        assert c["audit_session"] == sid and c["loginuid"] == str(uid)
        assert c["pid"] == su_shell != shell_pid and c["cwd"] == str(home2)
    # In order: the su lines come between `su -` and the outer `exit`, and nothing else.
    all_cmds = [r for r in recs if r["type"] == "command"]
    assert [c["text"] for c in all_cmds] == ssh_lines + [f"su - {user2}"] + su_lines + ["exit", "exit"]
    # The password typed to su is not a shell's input: it appears nowhere.
    assert pw2 not in json.dumps(recs)

    # Execs are attributed and linked to the typed command that caused them.
    by_text = {c["text"]: c for c in ssh_cmds + su_cmds}
    for argv, text, sess, who in ((["ls", "/bin"], "ls /bin", ssh_id, uid),
                                  (["mkdir", f"{work}/hellofalco"], f"mkdir {work}/hellofalco", ssh_id, uid),
                                  (["su", "-", user2], f"su - {user2}", ssh_id, uid),
                                  (["whoami"], "whoami", su_id, uid2)):
        ex = [r for r in recs if r["type"] == "exec" and r.get("argv") == argv]
        assert len(ex) == 1, (argv, ex)
        assert ex[0]["session"] == sess and ex[0]["uid"] == who
        assert ex[0]["command"] == by_text[text]["command"]

    su_end = ends_of(recs, su_id)
    ssh_end = ends_of(recs, ssh_id)
    assert len(su_end) == 1 and len(ssh_end) == 1
    assert su_end[0]["reason"] == "pam_close" and su_end[0]["user"] == user2
    assert su_end[0]["service"] == "su-l" and su_end[0]["uid"] == uid2
    assert su_end[0]["commands"] == len(su_lines) + 1
    assert ssh_end[0]["reason"] == "pam_close" and ssh_end[0]["user"] == user
    assert ssh_end[0]["service"] == "sshd" and ssh_end[0]["uid"] == uid
    assert ssh_end[0]["commands"] == len(ssh_lines) + 2
    assert recs.index(su_end[0]) < recs.index(ssh_end[0])
    assert not (d.socket.parent / "sessions" / sid).exists()  # unpublished at the end
    # Both session requests came from root peers (su is setuid root, run by a user).
    st = stats(d)
    assert st["rejected_by_reason"] == {}, st
    assert st["sessions_opened"] == 2 and st["sessions_open"] == 0
    return recs, sid


def test_ssh_and_su_sessions_with_preload(daemon_factory, public_dir, users, sshbed):
    d = public_daemon(daemon_factory, public_dir).start()
    ssh_su_scenario(d, sshbed, users, public_dir, preload=True)
    sshbed.stop()
    assert d.stop() == 0
    v = d.verify()
    assert v.returncode == 0, v.stdout + v.stderr


def test_ssh_host_wide_mode(daemon_factory, public_dir, users, sshbed):
    d = public_daemon(daemon_factory, public_dir).start()
    recs, sid = ssh_su_scenario(d, sshbed, users, public_dir, preload=False)

    # Processes in the namespace but outside every audited session report nothing: one
    # without an audit session (ours), one whose audit session is not in the table, and an
    # interactive shell on a terminal (which would otherwise open an implicit session).
    before = len(d.records())
    env = dict(TOOLS_ENV, SHAUDIT_SOCKET=str(d.socket))
    r = subprocess.run(sshbed.in_ns(["sh", "-c", "ls / >/dev/null && cat /proc/self/sessionid"]),
                       capture_output=True, text=True, env=env, timeout=30)
    assert r.returncode == 0 and r.stdout.strip() == "4294967295", r.stdout + r.stderr
    r = subprocess.run(sshbed.in_ns(["sh", "-c", "echo 0 > /proc/self/loginuid && "
                                     "exec sh -c 'ls / >/dev/null; cat /proc/self/sessionid'"]),
                       capture_output=True, text=True, env=env, timeout=30)
    assert r.returncode == 0, r.stderr
    other_sid = r.stdout.strip()
    assert other_sid.isdigit() and other_sid not in (sid, "4294967295")
    shenv = dict(env, TERM="xterm", PS1=PS1, PS2=PS2, HOME=str(public_dir))
    outside = PtyShell(sshbed.in_ns(["bash", "--norc", "--noprofile", "-i"]), env=shenv)
    try:
        outside.wait_prompt()
        outside.line("ls / > /dev/null")
        outside.line("grep -q shaudit_preload /proc/$$/maps && echo mapped-$((6*7))")
        assert outside.exit() == 0
    finally:
        outside.kill()
    assert output_line(outside, "mapped-42")  # the interposer was loaded, and did nothing
    # Barrier: a report through the C API after all of that; then nothing else came.
    r = run_cli("emit", "--socket", d.socket, "line", "barrier-" + secrets.token_hex(4))
    assert r.returncode == 0, r.stderr
    recs = d.wait_for(lambda rs: any(x.get("text", "").startswith("barrier-") for x in rs))
    new = [x for x in recs[before:] if x["type"] != "seal"]
    assert [x["type"] for x in new] == ["command"] and new[0]["text"].startswith("barrier-"), new

    sshbed.stop()
    assert d.stop() == 0
    v = d.verify()
    assert v.returncode == 0, v.stdout + v.stderr


def test_ssh_command_without_terminal(daemon_factory, public_dir, users, sshbed):
    """`ssh host 'cmd'`: no terminal, no typed line; the session and the execs with their argv
    are recorded (sshd runs the user's shell with -c, so the shell names its own argv)."""
    d = public_daemon(daemon_factory, public_dir).start()
    user, uid, _, home = users.add("cmd")
    sshbed.authorize(user)
    sock = d.socket
    sshbed.start(sshd_pam(sock, preload=PRELOAD), su_pam(sock))
    out = Path(home) / "remote-out"
    remote = f"ls / > /dev/null; /bin/echo remote-ran > {out}"
    argv = [a for a in sshbed.ssh_argv(user, remote) if a != "-tt"]
    argv.insert(1, "-T")
    r = subprocess.run(argv, capture_output=True, text=True, timeout=60,
                       env=dict(TOOLS_ENV, HOME=str(sshbed.dir)), stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr + sshbed.sshd_log()
    assert out.read_text() == "remote-ran\n"
    recs = d.wait_for(lambda rs: any(e["session"] == s["session"] for s in starts(rs)
                                     if s["user"] == user for e in ends_of(rs, s["session"])),
                      timeout=20)
    start = next(s for s in starts(recs) if s["user"] == user)
    sid = start["session"]
    assert start["service"] == "sshd" and start["uid"] == uid
    assert start["remote_host"] == "127.0.0.1"
    assert not commands_in(recs, sid)  # nothing was typed
    execs = [r for r in recs if r["type"] == "exec" and r.get("session") == sid]
    shell = [e for e in execs if e["source"] == "hello"]
    assert len(shell) == 1
    assert shell[0]["argv"][1:] == ["-c", remote]
    assert shell[0]["uid"] == uid and shell[0]["user"] == user
    ls = [e for e in execs if e["argv"] == ["ls", "/"]]
    echo = [e for e in execs if e["argv"] == ["/bin/echo", "remote-ran"]]
    assert len(ls) == 1 and len(echo) == 1
    assert ls[0]["source"] == "report" and ls[0]["uid"] == uid
    end = ends_of(recs, sid)[0]
    assert end["reason"] == "pam_close" and end["commands"] == 0
    sshbed.stop()
    assert d.stop() == 0
    assert d.verify().returncode == 0
