# SPDX-License-Identifier: Apache-2.0
"""auditd output: every record becomes one AUDIT_USER_CMD message in the kernel's audit stream,
carrying the person's identity in its body (the kernel stamps shauditd's own pid/uid/auid/ses).

The tests that read an audit log start their own auditd (`auditd -n -c DIR`, DIR holding an
auditd.conf whose log_file is in the test's tmp dir), so they run only when no other auditd is
the kernel's audit daemon (`auditctl -s`: pid 0 or a dead pid); they put the kernel's enabled
flag back as it was and stop their auditd by its pid. A skip says why."""
import hashlib
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from conftest import NOBODY_UID, SHAUDITD, emit, public_daemon, read_lines, wait_output
from ptyshell import PtyShell
from test_capture import SHELLS, shell_env

AUDIT_OUTPUT = [{"name": "audit", "type": "auditd", "events": "records"}]
NETLINK_AUDIT = 9


# ---------------------------------------------------------------------------------------------
# Helpers


def audit_status():
    """`auditctl -s` as a dict of integers, or (None, why) when it cannot be read."""
    try:
        r = subprocess.run(["auditctl", "-s"], capture_output=True, text=True, timeout=30)
    except FileNotFoundError:
        return None, "auditctl is not installed (apt-get install auditd)"
    if r.returncode != 0:
        return None, f"auditctl -s failed: {(r.stderr or r.stdout).strip()}"
    st = {}
    for line in r.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[1].isdigit():
            st[parts[0]] = int(parts[1])
    if "enabled" not in st or "pid" not in st:
        return None, f"cannot read auditctl -s: {r.stdout!r}"
    return st, ""


def kernel_audit_or_skip():
    """Skips unless this process can talk to the kernel's audit netlink socket from the
    initial user namespace (where the kernel accepts audit messages)."""
    try:
        s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_AUDIT)
        s.close()
    except OSError as e:
        pytest.skip(f"no kernel audit support here (netlink audit socket: {e})")
    if Path("/proc/self/uid_map").read_text().split() != ["0", "0", "4294967295"]:
        pytest.skip("not in the initial user namespace: the kernel refuses audit messages here")


def pid_alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def no_other_auditd_or_skip():
    st, why = audit_status()
    if st is None:
        pytest.skip(why)
    if st["pid"] and pid_alive(st["pid"]):
        pytest.skip(f"another auditd (pid {st['pid']}) is the kernel's audit daemon; this test "
                    "runs its own auditd and does not take over a running one")
    if st["enabled"] == 2:
        pytest.skip("the kernel's audit configuration is locked (auditctl -s: enabled 2)")
    return st


def record_id(line: bytes):
    """outfmt::record_id: the first 32 hex digits of SHA-256 over the log line."""
    return hashlib.sha256(line).hexdigest()[:32]


def user_name(uid):
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return None


EVENT_RE = re.compile(r"^type=(\w+) msg=audit\(([\d.]+):(\d+)\) ?: (.*?) ?msg='(.*?)'")


def parse_event(line):
    """One raw audit line -> (header fields, body fields), values as written (quotes kept)."""
    m = EVENT_RE.match(line)
    assert m, line
    header = dict(kv.split("=", 1) for kv in m.group(4).split())
    body = dict(kv.split("=", 1) for kv in m.group(5).split(" "))
    return header, body


def text_value(v):
    """The bytes of a string field as auditd writes untrusted strings: "quoted" or HEX."""
    if v.startswith('"') and v.endswith('"'):
        return v[1:-1].encode()
    assert re.fullmatch(r"(?:[0-9A-F]{2})+", v), v
    return bytes.fromhex(v)


class Auditd:
    """Our own auditd: its log file, and ausearch/aureport over that file only."""

    def __init__(self, log: Path, proc):
        self.log = log
        self.proc = proc

    def ausearch(self, *args):
        r = subprocess.run(["ausearch", "--input", str(self.log), *map(str, args)],
                           capture_output=True, text=True, errors="replace", timeout=60)
        if r.returncode != 0 and "<no matches>" in r.stderr:
            return []
        assert r.returncode == 0, r.stderr
        return [ln for ln in r.stdout.splitlines() if ln.startswith("type=")]

    def aureport(self, *args):
        r = subprocess.run(["aureport", "--input", str(self.log), *map(str, args)],
                           capture_output=True, text=True, errors="replace", timeout=60)
        assert r.returncode == 0, r.stderr
        return r.stdout

    def events_by_id(self):
        """shaudit_id -> (header, body) of every USER_CMD message shauditd sent."""
        out = {}
        for line in self.ausearch("-m", "USER_CMD", "--format", "raw"):
            header, body = parse_event(line)
            if "shaudit_id" in body:
                out[body["shaudit_id"]] = (header, body)
        return out

    def wait_ids(self, ids, timeout=15):
        deadline = time.monotonic() + timeout
        got = {}
        while time.monotonic() < deadline:
            got = self.events_by_id() if self.log.exists() else {}
            if all(i in got for i in ids):
                return got
            time.sleep(0.1)
        raise AssertionError(f"missing from the audit log: {[i for i in ids if i not in got]}")


@pytest.fixture
def auditd(tmp_path):
    for tool in ("auditd", "auditctl", "ausearch", "aureport"):
        if not shutil.which(tool):
            pytest.skip(f"{tool} is not installed (apt-get install auditd)")
    kernel_audit_or_skip()
    before = no_other_auditd_or_skip()
    conf = tmp_path / "auditd-conf"
    (conf / "plugins.d").mkdir(parents=True)
    conf.chmod(0o750)
    logdir = tmp_path / "auditd-log"
    logdir.mkdir(mode=0o700)
    log = logdir / "audit.log"
    # auditd 3.0.9: -c names the configuration DIRECTORY (auditd.conf, plugins via plugin_dir).
    (conf / "auditd.conf").write_text(f"""\
local_events = yes
write_logs = yes
log_file = {log}
log_group = root
log_format = ENRICHED
flush = SYNC
max_log_file = 64
num_logs = 2
max_log_file_action = ROTATE
space_left = 2
space_left_action = IGNORE
admin_space_left = 1
admin_space_left_action = IGNORE
disk_full_action = IGNORE
disk_error_action = IGNORE
verify_email = no
action_mail_acct = root
name_format = NONE
q_depth = 2000
overflow_action = IGNORE
max_restarts = 0
plugin_dir = {conf / "plugins.d"}
end_of_event_timeout = 2
use_libwrap = no
""")
    (conf / "auditd.conf").chmod(0o640)
    errf = open(tmp_path / "auditd.stderr", "wb")
    proc = subprocess.Popen(["auditd", "-n", "-c", str(conf)], stdout=errf, stderr=errf)
    try:
        deadline = time.monotonic() + 15
        while True:
            st, _ = audit_status()
            if st and st["pid"] == proc.pid and log.exists():
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"auditd did not start (exit {proc.poll()}): "
                                     f"{(tmp_path / 'auditd.stderr').read_text(errors='replace')}")
            time.sleep(0.05)
        yield Auditd(log, proc)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        errf.close()
        subprocess.run(["auditctl", "-e", str(before["enabled"])], capture_output=True, timeout=30)


def as_nobody():
    # A login's kernel identity: loginuid (and with it a new audit session id), as pam_loginuid
    # sets it, so the records carry loginuid and audit_session.
    try:
        with open("/proc/self/loginuid", "w") as f:
            f.write(str(NOBODY_UID))
    except OSError:
        pass
    os.setgroups([])
    os.setgid(NOBODY_UID)
    os.setuid(NOBODY_UID)


# ---------------------------------------------------------------------------------------------
# Tests with a real auditd


def test_typed_commands_reach_the_audit_log(auditd, daemon_factory, public_dir):
    """A real bash on a pty, run by uid 65534: its typed lines arrive as USER_CMD messages with
    the person's identity and the exact command; a failing command has res=failed."""
    d = public_daemon(daemon_factory, public_dir, outputs=AUDIT_OUTPUT).start()
    typed = ["echo \"it's\" a 'quoted' test > /dev/null", "false", "true"]
    sh = PtyShell(SHELLS["bash"], env=shell_env(d), cwd=str(public_dir), preexec=as_nobody)
    try:
        sh.wait_prompt()
        loginuid = int(Path(f"/proc/{sh.pid}/loginuid").read_text())
        audit_session = int(Path(f"/proc/{sh.pid}/sessionid").read_text())
        for t in typed:
            sh.line(t)
    finally:
        sh.exit()
    recs = d.wait_for(lambda rs: sum(r["type"] == "command_status" for r in rs) >= len(typed))
    lines = read_lines(d.log)
    by_seq = {r["seq"]: (r, lines[i]) for i, r in enumerate(recs)}
    cmds = [(r, ln) for r, ln in by_seq.values()
            if r["type"] == "command" and r["pid"] == sh.pid and r["text"] != "exit"]
    assert [r["text"] for r, _ in cmds] == typed
    statuses = [(r, ln) for r, ln in by_seq.values()
                if r["type"] == "command_status" and r["pid"] == sh.pid]
    events = auditd.wait_ids([record_id(ln) for _, ln in cmds + statuses])

    name = user_name(NOBODY_UID)
    for r, ln in cmds:
        header, body = events[record_id(ln)]
        # The kernel's stamp is shauditd's; the person is in the body.
        assert header["pid"] == str(d.proc.pid)
        assert header["uid"] == "0"
        assert body["shaudit_type"] == "command"
        assert body["uid"] == str(NOBODY_UID)
        if name:
            assert text_value(body["user"]) == name.encode()
        assert text_value(body["shaudit_session"]) == r["session"].encode()
        assert body["pid"] == str(sh.pid)
        assert body["seq"] == str(r["seq"])
        if loginuid != 4294967295:  # set unless the kernel refused (no CAP_AUDIT_CONTROL)
            assert body["loginuid"] == str(loginuid) == str(r["loginuid"])
            assert body["audit_session"] == str(audit_session) == str(r["audit_session"])
        assert text_value(body["cmd"]) == r["text"].encode()
        assert text_value(body["exe"]).endswith(b"/shauditd")
        assert body["terminal"] == r.get("tty", "?")
        assert body["res"] == "success"
    # The command with spaces and quotes travels hex-encoded, as auditd encodes untrusted text.
    assert re.fullmatch(r"(?:[0-9A-F]{2})+", events[record_id(cmds[0][1])][1]["cmd"])
    # command_status: res=failed exactly for the non-zero exit.
    res = {r["command"]: events[record_id(ln)][1]["res"] for r, ln in statuses}
    exit_of = {r["command"]: r["exit_status"] for r, _ in statuses}
    assert sorted(exit_of.values()) == [0, 0, 1]
    for c, st in exit_of.items():
        assert res[c] == ("failed" if st else "success")

    # What an investigator runs: ausearch -i shows the decoded command line.
    shown = auditd.ausearch("-m", "USER_CMD", "-i")
    for t in typed:
        assert any(f" cmd={t} exe=" in ln for ln in shown), t
    # ... finds the person's messages by uid (ausearch takes a user message's second uid=),
    ids = {parse_event(ln)[1].get("shaudit_id")
           for ln in auditd.ausearch("-m", "USER_CMD", "-ui", NOBODY_UID, "--format", "raw")}
    assert {record_id(ln) for _, ln in cmds} <= ids
    assert record_id(lines[0]) not in ids  # the start record has no person
    # ... by terminal, and the failed ones with --success no.
    tty = cmds[0][0].get("tty")
    if tty and tty != "?":
        tm = {parse_event(ln)[1].get("shaudit_id")
              for ln in auditd.ausearch("-m", "USER_CMD", "-tm", tty, "--format", "raw")}
        assert {record_id(ln) for _, ln in cmds} <= tm
    failed = [parse_event(ln)[1] for ln in auditd.ausearch("-m", "USER_CMD", "-sv", "no",
                                                           "--format", "raw")]
    assert [b["shaudit_type"] for b in failed] == ["command_status"]
    assert d.stop() == 0
    assert d.verify().returncode == 0


def test_identity_fields_and_ausearch_by_uid(auditd, daemon_factory, public_dir):
    """Lines reported through `shaudit emit` by uid 65534 and by root: ausearch -ui tells them
    apart, -x finds everything shauditd sent, aureport counts it under shauditd's exe."""
    d = public_daemon(daemon_factory, public_dir, outputs=AUDIT_OUTPUT).start()
    texts = ["ls -l /tmp", "printf 'caf\u00e9\\n'", "cd"]
    emitted = []
    for t in texts:
        r, pid = emit(d.socket, "line", t, as_nobody=True)
        assert r.returncode == 0, r.stderr
        emitted.append(pid)
    r, root_pid = emit(d.socket, "line", "id -u")
    assert r.returncode == 0, r.stderr
    recs = d.wait_for(lambda rs: sum(x["type"] == "command" for x in rs) == 4)
    lines = read_lines(d.log)
    cmds = [(x, lines[i]) for i, x in enumerate(recs) if x["type"] == "command"]
    events = auditd.wait_ids([record_id(ln) for _, ln in cmds] + [record_id(lines[0])])

    for (x, ln), t, pid in zip(cmds, texts, emitted):
        _, body = events[record_id(ln)]
        assert text_value(body["cmd"]) == t.encode()
        assert body["uid"] == str(NOBODY_UID) and body["pid"] == str(pid)
        assert body["seq"] == str(x["seq"])
    # A plain word is quoted, anything with a space, quote or non-ASCII byte is hex.
    assert events[record_id(cmds[2][1])][1]["cmd"] == '"cd"'
    start = events[record_id(lines[0])][1]
    assert start["shaudit_type"] == "start" and "cmd" not in start

    def ids(*args):
        return {parse_event(ln)[1].get("shaudit_id")
                for ln in auditd.ausearch("-m", "USER_CMD", *args, "--format", "raw")}

    nobody_ids = {record_id(ln) for x, ln in cmds if x["uid"] == NOBODY_UID}
    root_id = record_id(cmds[3][1])
    assert cmds[3][0]["pid"] == root_pid
    assert ids("-ui", NOBODY_UID) == nobody_ids
    assert root_id in ids("-ui", 0)
    everything = ids("-x", "shauditd")
    assert nobody_ids | {root_id, record_id(lines[0])} <= everything
    report = auditd.aureport("-x", "--summary")
    count = next(int(ln.split()[0]) for ln in report.splitlines()
                 if ln.strip().endswith(str(SHAUDITD)))
    assert count >= 5
    assert d.stop() == 0


def test_typed_text_cannot_pose_as_audit_fields(auditd, daemon_factory, public_dir):
    d = public_daemon(daemon_factory, public_dir, outputs=AUDIT_OUTPUT).start()
    for t in ("res=failed", "terminal=/dev/pts/77"):
        r, _ = emit(d.socket, "line", t, as_nobody=True)
        assert r.returncode == 0, r.stderr
    recs = d.wait_for(lambda rs: sum(x["type"] == "command" for x in rs) == 2)
    lines = read_lines(d.log)
    auditd.wait_ids([record_id(lines[i]) for i, x in enumerate(recs) if x["type"] == "command"])
    assert auditd.ausearch("-m", "USER_CMD", "-sv", "no") == []
    assert auditd.ausearch("-m", "USER_CMD", "-tm", "/dev/pts/77") == []
    assert auditd.ausearch("-m", "USER_CMD", "-tm", '/dev/pts/77"') == []
    assert d.stop() == 0


# ---------------------------------------------------------------------------------------------
# Errors (no auditd needed)


def test_without_cap_audit_write_records_stay_spooled(daemon_factory):
    """shauditd without CAP_AUDIT_WRITE: libaudit swallows the kernel's EPERM; the sink says
    why, retries, and keeps the records spooled."""
    kernel_audit_or_skip()
    if not shutil.which("setpriv"):
        pytest.skip("setpriv is not installed (util-linux)")
    d = daemon_factory(outputs=AUDIT_OUTPUT).start(
        wrapper=["setpriv", "--bounding-set=-audit_write", "--inh-caps=-audit_write"])
    r, _ = emit(d.socket, "line", "whoami")
    assert r.returncode == 0, r.stderr
    out = wait_output(d, "audit", lambda o: o["retries"] >= 1 and o["last_error"])
    assert "CAP_AUDIT_WRITE" in out["last_error"] and "EPERM" in out["last_error"], out
    assert out["delivered"] == 0 and out["pending"] >= 2
    assert d.stop() == 0
    assert d.verify().returncode == 0
    # Nothing dropped: at most the one output_error saying it is failing and retrying.
    errs = [x for x in d.records() if x["type"].startswith("output_")]
    assert len(errs) <= 1 and all(e["type"] == "output_error" and e["action"] == "retrying" for e in errs), errs


def test_in_a_user_namespace_the_kernel_refuses(daemon_factory):
    """From outside the initial user namespace the kernel answers ECONNREFUSED (what libaudit
    treats as 'no audit'); nothing is logged anywhere, so the sink retries and says why."""
    kernel_audit_or_skip()
    if not shutil.which("unshare"):
        pytest.skip("unshare is not installed (util-linux)")
    probe = subprocess.run(["unshare", "--user", "--map-root-user", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"cannot create a user namespace: {probe.stderr.decode(errors='replace')}")
    d = daemon_factory(outputs=AUDIT_OUTPUT).start(wrapper=["unshare", "--user", "--map-root-user"])
    r, _ = emit(d.socket, "line", "hostname")
    assert r.returncode == 0, r.stderr
    out = wait_output(d, "audit", lambda o: o["retries"] >= 1 and o["last_error"])
    assert "ECONNREFUSED" in out["last_error"] and "user namespace" in out["last_error"], out
    assert out["delivered"] == 0 and out["pending"] >= 2
    assert d.stop() == 0


def test_disabled_kernel_auditing_is_noticed(daemon_factory, tmp_path):
    """With no auditd and auditing disabled (auditctl -e 0) the kernel accepts and discards
    user messages: delivery succeeds, and shauditd says on stderr that nothing is kept."""
    kernel_audit_or_skip()
    before = no_other_auditd_or_skip()
    try:
        if before["enabled"] != 0:
            subprocess.run(["auditctl", "-e", "0"], check=True, capture_output=True, timeout=30)
        d = daemon_factory(outputs=AUDIT_OUTPUT).start()
        r, _ = emit(d.socket, "line", "uptime")
        assert r.returncode == 0, r.stderr
        out = wait_output(d, "audit", lambda o: o["delivered"] >= 2)
        assert out["last_error"] == "" and out["retries"] == 0
        assert d.stop() == 0
        assert "kernel auditing is disabled" in d.stderr()
    finally:
        if before["enabled"] != 0:
            subprocess.run(["auditctl", "-e", str(before["enabled"])], capture_output=True,
                           timeout=30)


ALERT_RULES = """
- rule: Read shadow file
  condition: evt.type = command and cmd.text contains /etc/shadow
  output: "%user.name read %cmd.text"
  priority: WARNING
  tags: [test]
"""


def ausearch_i(auditd, *args):
    """ausearch -i lines in the C locale and UTC (its time is strftime %x %T)."""
    env = dict(os.environ, LC_ALL="C", TZ="UTC")
    r = subprocess.run(["ausearch", "--input", str(auditd.log), "-i", *map(str, args)],
                       capture_output=True, text=True, errors="replace", timeout=60, env=env)
    if r.returncode != 0 and "<no matches>" in r.stderr:
        return []
    assert r.returncode == 0, r.stderr
    return [ln for ln in r.stdout.splitlines() if ln.startswith("type=")]


def interpreted_line(raw_line, body):
    """What `ausearch -i` must print for one raw USER_CMD line of shauditd: the kernel's stamp
    (shauditd, root, no login) interpreted, then BODY (the interpreted message fields). The
    log is ENRICHED (see the fixture): -i drops the appended UID=/AUID= and leaves a space."""
    m = re.match(r"^type=USER_CMD msg=audit\((\d+)\.(\d{3}):(\d+)\): pid=(\d+) uid=0 "
                 r"auid=4294967295 ses=4294967295( subj=\S+)? msg='", raw_line)
    assert m, raw_line
    secs, ms, serial, pid, subj = m.groups()
    when = time.strftime("%m/%d/%y %H:%M:%S", time.gmtime(int(secs)))  # %x %T in the C locale
    return (f"type=USER_CMD msg=audit({when}.{ms}:{serial}) : pid={pid} uid=root auid=unset "
            f"ses=unset{subj or ''} msg='{body}' ")


def test_ausearch_i_shows_alerts_readable_and_ui_finds_them(auditd, daemon_factory, public_dir,
                                                           tmp_path):
    """An alert's message carries the acting user's uid (ausearch -ui finds it next to the
    command) and its rule name in a field auparse decodes (info=), so `ausearch -i` shows
    `info=Read shadow file` and `cmd=cat /etc/shadow`, not hex. Exact -i lines."""
    rules = tmp_path / "rules.yaml"
    rules.write_text(ALERT_RULES)
    d = public_daemon(daemon_factory, public_dir, rules=[str(rules)],
                      outputs=[{"name": "audit", "type": "auditd", "events": "records"}]).start()
    r, pid = emit(d.socket, "line", "cat /etc/shadow", as_nobody=True)
    assert r.returncode == 0, r.stderr
    recs = d.wait_for(lambda rs: any(x["type"] == "alert" for x in rs))
    lines = read_lines(d.log)
    cmd_i = next(i for i, x in enumerate(recs) if x["type"] == "command")
    alert_i = next(i for i, x in enumerate(recs) if x["type"] == "alert")
    cmd, alert = recs[cmd_i], recs[alert_i]
    cmd_id, alert_id = record_id(lines[cmd_i]), record_id(lines[alert_i])
    auditd.wait_ids([cmd_id, alert_id])

    raw = {parse_event(ln)[1]["shaudit_id"]: ln
           for ln in auditd.ausearch("-m", "USER_CMD", "--format", "raw")
           if "shaudit_id" in parse_event(ln)[1]}
    exe = text_value(parse_event(raw[alert_id])[1]["exe"]).decode()
    name = user_name(NOBODY_UID)

    def identity(rec):
        # uid=root, not the person's name: in an ENRICHED log auparse interprets every field
        # named uid from the UID= the kernel's stamp appended (shauditd's). The number is in the
        # raw message (ausearch -ui reads it, below); the name is user=.
        out = f"user=\"{name}\" uid=root"
        for k in ("loginuid", "audit_session"):
            if k in cmd:  # the alert carries the identity of the command it is about
                out += f" {k}={cmd[k]}"
        return out

    tail = f"exe={exe} hostname=? addr=? terminal=? res=success"
    want_cmd = interpreted_line(raw[cmd_id], (
        f"shaudit_type=command {identity(cmd)} pid={pid} seq={cmd['seq']} shaudit_id={cmd_id} "
        f"cmd=cat /etc/shadow {tail}"))
    want_alert = interpreted_line(raw[alert_id], (
        f"shaudit_type=alert {identity(alert)} pid={pid} seq={alert['seq']} "
        f"shaudit_id={alert_id} info=Read shadow file priority=Warning cmd=cat /etc/shadow {tail}"))
    shown = ausearch_i(auditd, "-m", "USER_CMD")
    assert want_alert in shown, "\n".join([want_alert] + shown)
    assert want_cmd in shown, "\n".join([want_cmd] + shown)
    # By the person's uid: exactly their command and the alert about it.
    assert ausearch_i(auditd, "-m", "USER_CMD", "-ui", NOBODY_UID) == [want_cmd, want_alert]
    assert alert["uid"] == cmd["uid"] == NOBODY_UID and alert["user"] == cmd["user"]
    assert d.stop() == 0
