# SPDX-License-Identifier: Apache-2.0
"""shauditd's life cycle against real processes: start, report, stop, restart, rotation,
seals, the control socket, configuration, and `shaudit show`."""
import json
import os
import select
import shutil
import signal
import socket
import stat
import struct
import subprocess
import time

import pytest

import wire
from conftest import (AS_NOBODY, BUILD, CLIENT_FORK, Daemon, NOBODY_UID, PUBLIC_SHAUDIT, PUBLIC_SHAUDITD,
                      RECORD_TIME_RE, SHAUDIT, SHAUDITD, emit, line_hash, public_daemon, read_lines,
                      read_records, record_time_ns, run_cli)

HEX64 = r"^[0-9a-f]{64}$"
GENESIS = "0" * 64
HEADER_LINE = "TIME"  # first column title of `shaudit show`'s table


# --------------------------------------------------------------------------------------
# helpers

def commands(recs, shell=None):
    return [r for r in recs if r["type"] == "command" and (shell is None or r["shell"] == shell)]


def with_text(recs, text):
    found = [r for r in recs if r.get("text") == text]
    assert len(found) == 1, f"expected one record with text {text!r}, found {found}"
    return found[0]


def wait_texts(d, *texts, timeout=10):
    return d.wait_for(lambda recs: all(any(r.get("text") == t for r in recs) for t in texts),
                      timeout=timeout)


def seals(recs, reason=None):
    return [r for r in recs if r["type"] == "seal" and (reason is None or r["reason"] == reason)]


def assert_chain(path, first_prev=GENESIS):
    """Every line of one log file: canonical record, seq 1..N, RFC 3339 time, prev = hash of
    the line before (first_prev for the first line). Returns the records."""
    lines = read_lines(path)
    recs = [json.loads(l) for l in lines]
    prev = first_prev
    for i, (raw, r) in enumerate(zip(lines, recs), start=1):
        assert r["seq"] == i, f"line {i}: {r}"
        assert isinstance(r["type"], str) and r["type"], r
        assert RECORD_TIME_RE.match(r["time"]), r["time"]
        assert r["prev"] == prev, f"seq {i}: prev {r['prev']} != hash of previous line {prev}"
        prev = line_hash(raw)
    return recs


def read_until(proc, pred, timeout=10):
    """Reads proc's stdout (a pipe) until pred(text so far) holds; returns the text."""
    fd = proc.stdout.fileno()
    buf = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r, _, _ = select.select([fd], [], [], 0.1)
        if r:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            buf += chunk
            if pred(buf.decode(errors="replace")):
                return buf.decode(errors="replace")
    raise AssertionError(f"output never matched; got: {buf.decode(errors='replace')!r}")


def kill_proc(p):
    if p.poll() is None:
        p.kill()
    p.wait(timeout=10)


def send_lines(sock, texts, first_seq=1, shell="pytest"):
    for i, t in enumerate(texts):
        sock.send(wire.line(first_seq + i, t, shell=shell))


# --------------------------------------------------------------------------------------
# start, report, stop

def test_sigterm_clean_stop_records_and_verify(daemon_factory):
    d = daemon_factory().start()
    text = "echo 'hello world' | tr a-z A-Z  # trailing  spaces kept  "
    argv = ["/usr/bin/env", "A=b c", "", "--flag=x", "h\u00e9llo \u2603"]
    res_line, line_pid = emit(d.socket, "line", text, "--shell", "bash")
    assert res_line.returncode == 0, res_line.stderr
    res_exec, exec_pid = emit(d.socket, "exec", *argv)
    assert res_exec.returncode == 0, res_exec.stderr
    wait_texts(d, text)
    d.wait_for(lambda recs: any(r["type"] == "exec" for r in recs))

    rc = d.stop(signal.SIGTERM)
    assert rc == 0, d.stderr()
    assert not d.socket.exists(), "the socket must be removed at a clean stop"
    assert not d.control.exists(), "the control socket must be removed at a clean stop"
    assert "stopped on signal 15" in d.stderr()

    recs = assert_chain(d.log)
    assert [r["type"] for r in recs][0] == "start"
    assert recs[0]["previous_run"] == "none"
    assert recs[-1]["type"] == "seal" and recs[-1]["reason"] == "close"
    assert recs[-1]["first_seq"] <= recs[-1]["seq"]

    cmd = with_text(recs, text)
    assert cmd["type"] == "command"
    assert cmd["text"] == text
    assert type(cmd["pid"]) is int and cmd["pid"] == line_pid
    assert cmd["shell"] == "bash"
    assert cmd["uid"] == 0 and cmd["user"] == "root"
    assert "session" not in cmd  # no PAM session registered this process

    ex = [r for r in recs if r["type"] == "exec"]
    assert len(ex) == 1
    assert ex[0]["argv"] == argv
    assert type(ex[0]["pid"]) is int and ex[0]["pid"] == exec_pid
    assert ex[0]["uid"] == 0 and ex[0]["user"] == "root"

    res = d.verify()
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.startswith(f"OK: {len(recs)} records, {len(seals(recs))} seals; chain intact")


def test_sigint_also_stops_cleanly(daemon_factory):
    d = daemon_factory().start()
    res, _ = emit(d.socket, "line", "stopped by SIGINT")
    assert res.returncode == 0, res.stderr
    wait_texts(d, "stopped by SIGINT")
    rc = d.stop(signal.SIGINT)
    assert rc == 0, d.stderr()
    assert "stopped on signal 2" in d.stderr()
    assert not d.socket.exists()
    recs = assert_chain(d.log)
    assert recs[-1]["type"] == "seal" and recs[-1]["reason"] == "close"
    assert with_text(recs, "stopped by SIGINT")["type"] == "command"
    res = d.verify()
    assert res.returncode == 0 and res.stdout.startswith(f"OK: {len(recs)} records"), res.stdout


def test_every_accepted_report_is_flushed_before_the_closing_seal(daemon_factory):
    d = daemon_factory(seal_interval_ms=60000).start()
    s = d.connect()
    texts = [f"burst {i}" for i in range(300)]
    send_lines(s, texts)
    s.close()
    # Once the daemon has taken every report off the socket, SIGTERM at once: what it
    # accepted but may not have written yet must still land before the closing seal.
    deadline = time.monotonic() + 10
    while json.loads(run_cli("stats", "--control", d.control, "--json").stdout)["accepted"] < 300:
        assert time.monotonic() < deadline, "reports not accepted"
        time.sleep(0.01)
    assert d.stop() == 0, d.stderr()
    recs = assert_chain(d.log)
    assert [r["text"] for r in commands(recs)] == texts
    assert recs[-1]["type"] == "seal" and recs[-1]["reason"] == "close"


# --------------------------------------------------------------------------------------
# identity comes from the kernel, per message

def test_forked_child_on_shared_client_is_recorded_as_itself(daemon_factory):
    d = daemon_factory().start()
    res = subprocess.run([str(CLIENT_FORK), str(d.socket)], capture_output=True, text=True,
                         timeout=30)
    assert res.returncode == 0, res.stderr
    pids = dict(line.split() for line in res.stdout.splitlines())
    parent, child = int(pids["parent"]), int(pids["child"])
    assert parent != child
    wait_texts(d, "parent-before-fork", "child-after-fork", "parent-after-wait")
    assert d.stop() == 0
    recs = d.records()
    got = [(r["text"], r["pid"], r["report_seq"]) for r in commands(recs, shell="client_fork")]
    assert got == [("parent-before-fork", parent, 1),
                   ("child-after-fork", child, 1),
                   ("parent-after-wait", parent, 2)]
    # Each process numbers its own reports: no report looks lost.
    assert [r for r in recs if r["type"] == "loss"] == []
    assert d.verify().returncode == 0


def test_python_child_on_inherited_socket_is_recorded_as_itself(daemon_factory):
    d = daemon_factory().start()
    s = d.connect()
    s.send(wire.line(1, "py parent first"))
    child = os.fork()
    if child == 0:  # the child: report through the inherited connection, then leave at once
        code = 1
        try:
            s.send(wire.line(1, "py child"))
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    s.send(wire.line(2, "py parent second"))
    s.close()
    recs = wait_texts(d, "py parent first", "py child", "py parent second")
    assert with_text(recs, "py parent first")["pid"] == os.getpid()
    assert with_text(recs, "py child")["pid"] == child
    assert with_text(recs, "py parent second")["pid"] == os.getpid()
    assert d.stop() == 0


def test_wire_carries_no_pid_and_the_daemon_uses_the_senders_credentials(tmp_path, daemon_factory):
    # Capture what the C API really sends, on a socket of our own.
    path = tmp_path / "capture.sock"
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
    srv.bind(str(path))
    srv.listen(4)
    try:
        res, emitter_pid = emit(path, "line", "capture me")
        assert res.returncode == 0, res.stderr
        srv.settimeout(10)
        conn, _ = srv.accept()
        conn.settimeout(10)
        msg, anc, flags, _ = conn.recvmsg(wire.MAX_MESSAGE, socket.CMSG_SPACE(12))
        conn.close()
    finally:
        srv.close()
    creds = [struct.unpack("iII", data[:12]) for level, kind, data in anc
             if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS]
    assert creds == [(emitter_pid, 0, 0)], "the kernel attaches the sender's pid/uid/gid"

    # Every byte of the message is accounted for, and none of it is a pid.
    magic, version, mtype, mflags, length, reserved, report_seq, sent_ns = \
        wire.HEADER.unpack_from(msg)
    assert (magic, version, mtype, mflags) == (wire.MAGIC, wire.VERSION, wire.LINE, 0)
    assert length == len(msg) and reserved == 0 and report_seq == 1
    assert abs(sent_ns - time.time_ns()) < 60 * 10**9
    fields, off = [], wire.HEADER.size
    while off < len(msg):
        tag, fflags, flen = wire.FIELD.unpack_from(msg, off)
        off += wire.FIELD.size
        fields.append((tag, fflags, msg[off:off + flen]))
        off += flen
    assert off == len(msg)
    assert fields == [(wire.F_SHELL, 0, b"shaudit-emit"), (wire.F_TEXT, 0, b"capture me")]
    assert str(emitter_pid).encode() not in msg

    # Replayed by another process, the same bytes are recorded under the real sender.
    d = daemon_factory().start()
    s = d.connect()
    s.send(msg)
    s.close()
    rec = with_text(wait_texts(d, "capture me"), "capture me")
    assert rec["pid"] == os.getpid() != emitter_pid
    assert rec["uid"] == 0 and rec["shell"] == "shaudit-emit"
    assert d.stop() == 0


def test_non_root_reporter_is_recorded_with_its_kernel_uid(daemon_factory, public_dir):
    d = public_daemon(daemon_factory, public_dir).start()
    assert stat.S_IMODE(os.stat(d.socket).st_mode) == 0o666
    res, pid = emit(d.socket, "line", "typed by nobody", as_nobody=True)
    assert res.returncode == 0, res.stderr
    rec = with_text(wait_texts(d, "typed by nobody"), "typed by nobody")
    assert rec["pid"] == pid
    assert rec["uid"] == NOBODY_UID and rec["gid"] == NOBODY_UID
    assert rec["user"] == "nobody"
    assert d.stop() == 0


# --------------------------------------------------------------------------------------
# restarts

def test_restart_continues_the_chain_and_reports_previous_run(daemon_factory):
    d = daemon_factory().start()
    emit(d.socket, "line", "first run")
    wait_texts(d, "first run")
    assert d.stop() == 0
    first_lines = read_lines(d.log)

    d.start()
    recs = d.wait_for(lambda recs: len(recs) > len(first_lines))
    start2 = recs[len(first_lines)]
    assert start2["type"] == "start"
    assert start2["seq"] == len(first_lines) + 1
    assert start2["previous_run"] == "clean"
    assert start2["prev"] == line_hash(first_lines[-1])
    assert start2["pid"] == d.proc.pid
    emit(d.socket, "line", "second run")
    wait_texts(d, "second run")
    assert d.stop(signal.SIGKILL) == -signal.SIGKILL
    assert stat.S_ISSOCK(os.lstat(d.socket).st_mode), "SIGKILL leaves the socket file behind"
    killed_lines = read_lines(d.log)

    d.start()  # replaces the stale socket
    recs = d.wait_for(lambda recs: len(recs) > len(killed_lines))
    start3 = recs[len(killed_lines)]
    assert start3["type"] == "start" and start3["previous_run"] == "unclean"
    assert start3["seq"] == len(killed_lines) + 1
    assert start3["prev"] == line_hash(killed_lines[-1])
    emit(d.socket, "line", "third run")
    wait_texts(d, "third run")
    assert d.stop() == 0

    recs = assert_chain(d.log)
    assert [r["previous_run"] for r in recs if r["type"] == "start"] == ["none", "clean", "unclean"]
    assert [r["text"] for r in commands(recs)] == ["first run", "second run", "third run"]
    res = d.verify()
    assert res.returncode == 0, res.stdout
    assert res.stdout.startswith(f"OK: {len(recs)} records")


# --------------------------------------------------------------------------------------
# rotation

def test_sighup_rotation(daemon_factory):
    d = daemon_factory().start()
    emit(d.socket, "line", "before rotation")
    wait_texts(d, "before rotation")
    old = d.log.with_name(d.log.name + ".1")
    os.rename(d.log, old)
    d.proc.send_signal(signal.SIGHUP)
    d.wait_for(lambda recs: len(recs) >= 1 and recs[0]["type"] == "rotate")
    emit(d.socket, "line", "after rotation")
    wait_texts(d, "after rotation")
    assert d.stop() == 0

    old_recs = assert_chain(old)
    assert old_recs[-1]["type"] == "seal" and old_recs[-1]["reason"] == "rotate"
    assert with_text(old_recs, "before rotation")
    assert not [r for r in old_recs if r.get("text") == "after rotation"]

    new_recs = assert_chain(d.log, first_prev=line_hash(read_lines(old)[-1]))
    assert new_recs[0]["type"] == "rotate" and new_recs[0]["seq"] == 1
    assert new_recs[0]["prev_seq"] == old_recs[-1]["seq"]
    assert with_text(new_recs, "after rotation")
    assert new_recs[-1]["type"] == "seal" and new_recs[-1]["reason"] == "close"

    both = run_cli("verify", old, d.log, "--pubkey", d.pub)
    assert both.returncode == 0, both.stdout
    assert both.stdout.startswith(f"OK: {len(old_recs) + len(new_recs)} records")

    # Without the older file, which shauditd's retention did not remove: records are missing.
    newest = d.verify()
    assert newest.returncode == 1, newest.stdout
    assert newest.stdout.startswith(
        f"FAILED at seq 1: {d.log} begins at a rotation after seq {old_recs[-1]['seq']} "), \
        newest.stdout

    oldest = run_cli("verify", old, "--pubkey", d.pub)
    assert oldest.returncode == 1, oldest.stdout
    assert f"FAILED at seq {old_recs[-1]['seq'] + 1}:" in oldest.stdout
    assert "the newer file of the rotated set is missing" in oldest.stdout


# --------------------------------------------------------------------------------------
# seals

def test_interval_seals_follow_every_record_within_100ms(daemon_factory):
    d = daemon_factory(seal_interval_ms=100).start()
    s = d.connect()
    n = 0
    t_end = time.monotonic() + 1.0
    while time.monotonic() < t_end:
        n += 1
        s.send(wire.line(n, f"flow {n}"))
        time.sleep(0.01)
    s.close()
    d.wait_for(lambda recs: len(commands(recs)) == n and recs[-1]["type"] == "seal")
    assert d.stop() == 0
    recs = d.records()
    assert len(commands(recs)) == n
    interval = seals(recs, "interval")
    assert len(interval) >= 8, f"about one seal per 100 ms over 1 s, got {len(interval)}"
    slack_ns = 60_000_000
    worst = 0
    for i, r in enumerate(recs):
        if r["type"] == "seal":
            continue
        nxt = next(x for x in recs[i + 1:] if x["type"] == "seal")
        delay = record_time_ns(nxt["time"]) - record_time_ns(r["time"])
        worst = max(worst, delay)
        assert 0 <= delay <= 100_000_000 + slack_ns, \
            f"seq {r['seq']} waited {delay / 1e6:.1f} ms for seal seq {nxt['seq']}"
    # Each interval seal covers exactly the records since the previous seal.
    last_seal_seq = 0
    for r in seals(recs):
        assert r["first_seq"] == last_seal_seq + 1 or r["records"] == 0
        assert r["records"] == r["seq"] - last_seal_seq - 1
        last_seal_seq = r["seq"]
    assert d.verify().returncode == 0


def test_seal_every_count(daemon_factory):
    d = daemon_factory(seal_every=10, seal_interval_ms=60000).start()
    s = d.connect()
    send_lines(s, [f"counted {i}" for i in range(35)])
    s.close()
    d.wait_for(lambda recs: len(commands(recs)) == 35)
    assert d.stop() == 0
    recs = assert_chain(d.log)
    count_seals = seals(recs, "count")
    # start + 35 commands = 36 records: sealed by count after 10, 20 and 30 of them.
    assert [(r["seq"], r["first_seq"], r["records"]) for r in count_seals] == \
        [(11, 1, 10), (22, 12, 10), (33, 23, 10)]
    assert seals(recs, "interval") == []
    assert recs[-1]["reason"] == "close" and recs[-1]["records"] == 6
    assert d.verify().stdout.startswith(f"OK: {len(recs)} records, 4 seals")


# --------------------------------------------------------------------------------------
# the control socket

def test_stats_counts_accepted_reports(daemon_factory):
    d = daemon_factory().start()
    for i in range(3):
        res, _ = emit(d.socket, "line", f"counted line {i}")
        assert res.returncode == 0
    wait_texts(d, "counted line 2")
    res = run_cli("stats", "--control", d.control)
    assert res.returncode == 0, res.stderr
    lines = {l.split(":", 1)[0]: l.split(":", 1)[1].strip() for l in res.stdout.splitlines()}
    assert lines["accepted"] == "3"
    assert lines["rejected"] == "0"
    assert lines["log"] == str(d.log)
    assert lines["pid"] == str(d.proc.pid)

    res = run_cli("stats", "--control", d.control, "--json")
    assert res.returncode == 0, res.stderr
    st = json.loads(res.stdout)
    assert st["accepted"] == 3
    assert st["connections_total"] >= 3
    assert st["records_written"] >= 4  # start + 3 commands (+ seals)
    assert st["bpf"] == "off"
    assert st["pid"] == d.proc.pid
    assert RECORD_TIME_RE.match(st["started"])
    assert d.stop() == 0


def test_stats_refuses_non_root(daemon_factory, public_dir):
    d = public_daemon(daemon_factory, public_dir).start()
    assert stat.S_IMODE(os.stat(d.control).st_mode) == 0o600
    cmd = AS_NOBODY + [str(PUBLIC_SHAUDIT), "stats", "--control", str(d.control)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    assert res.returncode == 1
    assert f"cannot reach shauditd at {d.control}: Permission denied" in res.stderr
    # Even when the file mode lets it connect, the daemon checks the peer itself.
    os.chmod(d.control, 0o666)
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    assert res.returncode == 1
    assert "the control socket answers root only" in res.stderr
    assert res.stdout == ""
    assert d.stop() == 0


# --------------------------------------------------------------------------------------
# bpf modes

@pytest.mark.parametrize("mode", ["on", "auto"])
def test_bpf_on_and_auto_load_the_collector_as_root(daemon_factory, mode):
    d = daemon_factory(bpf=mode).start()
    recs = d.wait_for(lambda recs: len(recs) >= 1)
    assert recs[0]["type"] == "start"
    assert recs[0]["bpf"] == "on" and recs[0]["cross_check"] is True
    assert "bpf_error" not in recs[0]
    st = json.loads(run_cli("stats", "--control", d.control, "--json").stdout)
    assert st["bpf"] == "on" and st["bpf_dropped"] == 0
    assert d.stop() == 0


def _unprivileged_daemon(public_dir, mode):
    """A daemon that cannot load eBPF programs: it runs as uid 65534 (the copy of shauditd in
    PUBLIC_BUILD, with the interposer copy there as its `interposer`)."""
    d = Daemon(public_dir, f"np{mode}", bpf=mode)
    d.log = public_dir / f"log-{mode}" / "audit.jsonl"
    d.config["log"] = str(d.log)
    d.keygen()
    os.chown(d.key, NOBODY_UID, NOBODY_UID)
    os.chown(public_dir, NOBODY_UID, NOBODY_UID)
    d.write_config()
    return d, subprocess.run([*AS_NOBODY, str(PUBLIC_SHAUDITD), "--config", str(d.config_path),
                              "--check-config"], capture_output=True, text=True, timeout=30)


def test_bpf_on_fails_clearly_when_the_kernel_refuses(public_dir):
    d, chk = _unprivileged_daemon(public_dir, "on")
    assert chk.returncode == 0, chk.stderr
    res = subprocess.run([*AS_NOBODY, str(PUBLIC_SHAUDITD), "--config", str(d.config_path)],
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 1
    assert "shauditd: bpf: on, but the eBPF collector cannot start: eBPF " in res.stderr
    assert not d.socket.exists() and not d.log.exists()


def test_bpf_auto_runs_without_the_collector_and_says_so(public_dir):
    d, _ = _unprivileged_daemon(public_dir, "auto")
    p = subprocess.Popen([*AS_NOBODY, str(PUBLIC_SHAUDITD), "--config", str(d.config_path)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        d.proc = p
        d.stderr_file = open(os.devnull, "w")
        d.wait_ready()
        recs = d.wait_for(lambda recs: len(recs) >= 1)
        assert recs[0]["bpf"] == "off" and recs[0]["cross_check"] is False
        assert recs[0]["bpf_error"].startswith("eBPF ")
        assert d.stop() == 0
        assert "shauditd: notice: bpf: auto: kernel cross-checking is off (eBPF " in p.stderr.read()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_bpf_off_starts_without_the_collector(daemon_factory):
    d = daemon_factory(bpf="off").start()
    recs = d.wait_for(lambda recs: len(recs) >= 1)
    assert recs[0]["bpf"] == "off" and recs[0]["cross_check"] is False
    assert "bpf_error" not in recs[0]
    res, _ = emit(d.socket, "line", "bpf off")
    assert res.returncode == 0
    wait_texts(d, "bpf off")
    assert d.stop() == 0


# --------------------------------------------------------------------------------------
# sockets

def test_stale_socket_from_killed_daemon_is_replaced(daemon_factory):
    d = daemon_factory().start()
    assert d.stop(signal.SIGKILL) == -signal.SIGKILL
    assert stat.S_ISSOCK(os.lstat(d.socket).st_mode)
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    with pytest.raises(ConnectionRefusedError):
        probe.connect(str(d.socket))
    probe.close()
    d.start()
    res, pid = emit(d.socket, "line", "after a stale socket")
    assert res.returncode == 0, res.stderr
    assert with_text(wait_texts(d, "after a stale socket"), "after a stale socket")["pid"] == pid
    assert d.stop() == 0
    assert not d.socket.exists()
    assert d.verify().returncode == 0


def test_non_socket_file_at_socket_path_is_not_replaced(daemon_factory):
    d = daemon_factory()
    d.socket.write_text("not a socket\n")
    d.start(wait=False)
    rc = d.proc.wait(timeout=20)
    assert rc == 1
    assert f"{d.socket} exists and is not a socket" in d.stderr()
    assert d.socket.read_text() == "not a socket\n"
    d.stop()


def test_second_daemon_on_a_live_socket_is_refused(daemon_factory):
    d = daemon_factory().start()
    emit(d.socket, "line", "first daemon")
    wait_texts(d, "first daemon")
    before = d.log.read_bytes()
    # The same configuration twice (same socket, control socket and log).
    res = subprocess.run([str(SHAUDITD), "--config", str(d.config_path)], capture_output=True,
                         text=True, timeout=30)
    assert res.returncode == 1
    assert f"another shauditd is listening on {d.socket}" in res.stderr
    # Another control socket and log, same report socket.
    d2 = daemon_factory("d2")
    d2.config["socket"] = str(d.socket)
    d2.config["log"] = str(d.dir / "log2" / "audit.jsonl")
    d2.keygen()
    d2.write_config()
    res = subprocess.run([str(SHAUDITD), "--config", str(d2.config_path)], capture_output=True,
                         text=True, timeout=30)
    assert res.returncode == 1
    assert f"another shauditd is listening on {d.socket}" in res.stderr
    # The refused daemons touched neither the running one's socket nor its log.
    assert d.log.read_bytes().startswith(before)
    assert not [r for r in d.records()[1:] if r["type"] == "start"]
    res, _ = emit(d.socket, "line", "still served")
    assert res.returncode == 0, res.stderr
    wait_texts(d, "still served")
    assert d.stop() == 0
    v = d.verify()
    assert v.returncode == 0, v.stdout


# --------------------------------------------------------------------------------------
# configuration

def parse_flat_yaml(text):
    try:
        import yaml
    except ImportError:  # python3-yaml is optional: the default config is a flat mapping
        out = {}
        for line in text.splitlines():
            line = line.split(" #", 1)[0].rstrip()
            if not line or line.startswith("#"):
                continue
            k, sep, v = line.partition(":")
            assert sep and k.strip() == k, f"not a flat YAML mapping line: {line!r}"
            v = v.strip()
            if len(v) >= 2 and v[0] == v[-1] and v[0] in "\"'":
                v = v[1:-1]
            elif v.isdigit():
                v = int(v)
            out[k] = v
        return out
    return yaml.safe_load(text)


def test_print_default_config_and_check_config(tmp_path, daemon_factory):
    res = subprocess.run([str(SHAUDITD), "--print-default-config"], capture_output=True,
                         text=True, timeout=30)
    assert res.returncode == 0
    cfg = parse_flat_yaml(res.stdout)
    assert cfg["socket"] == "/run/shaudit/shaudit.sock"
    assert cfg["log"] == "/var/log/shaudit/audit.jsonl"
    assert cfg["signing_key"] == "/etc/shaudit/signing.key"
    assert cfg["bpf"] == "auto"

    d = daemon_factory()
    d.keygen()
    d.write_config()
    res = subprocess.run([str(SHAUDITD), "--config", str(d.config_path), "--check-config"],
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, res.stderr
    assert res.stdout == "shauditd: configuration OK\n"
    assert not d.socket.exists() and not d.log.exists()

    bad = tmp_path / "bad.yaml"
    bad.write_text(d.config_path.read_text() + "seal_intervall_ms: 5\n")
    res = subprocess.run([str(SHAUDITD), "--config", str(bad), "--check-config"],
                         capture_output=True, text=True, timeout=30)
    assert res.returncode != 0
    assert "seal_intervall_ms" in res.stderr

    res = subprocess.run([str(SHAUDITD), "--config", str(tmp_path / "missing.yaml"),
                          "--check-config"], capture_output=True, text=True, timeout=30)
    assert res.returncode != 0
    assert "missing.yaml" in res.stderr


NO_CONFIG_SCRIPT = r"""
set -u
T="$1"; SHAUDIT="$2"; SHAUDITD="$3"; PRELOAD="$4"; DEFAULT_PRELOAD="$5"
mount -t overlay overlay -o "lowerdir=/etc,upperdir=$T/etc-up,workdir=$T/etc-work" /etc || exit 90
# The interposer where the default configuration expects it (the collector probes that file).
mkdir -p "$T/libdir" && cp "$PRELOAD" "$T/libdir/" || exit 90
D=$(dirname "$DEFAULT_PRELOAD")
# A directory the host lacks (nothing installed under /usr/local yet) is made in a tmpfs over
# its nearest existing ancestor below /usr/local, in this namespace only.
if [ ! -d "$D" ]; then
  A=$D
  while [ ! -d "$A" ]; do A=$(dirname "$A"); done
  case "$A" in /usr/local/?*) ;; *) echo "no mount point for $D" >&2; exit 90 ;; esac
  mount -t tmpfs tmpfs "$A" && mkdir -p "$D" || exit 90
fi
mount --bind "$T/libdir" "$D" || exit 90
mount -t tmpfs tmpfs /run || exit 90
mount -t tmpfs tmpfs /var/log || exit 90
# The default state_dir (/var/lib/shaudit, where the log's state file is kept), private too.
mount -t tmpfs tmpfs /var/lib || exit 90
mkdir -p /etc/shaudit
rm -f /etc/shaudit/signing.key /etc/shaudit/signing.key.pub  # only in the overlay: the host keeps its own
"$SHAUDIT" keygen --out /etc/shaudit/signing.key >/dev/null || exit 91
"$SHAUDITD" --check-config > "$T/check.out" 2>&1; echo $? > "$T/check.rc"
unset SHAUDIT_SOCKET
"$SHAUDITD" 2> "$T/daemon.err" &
pid=$!
trap 'kill -9 $pid 2>/dev/null' EXIT
ready=0
for i in $(seq 500); do
  if /usr/bin/python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX,socket.SOCK_SEQPACKET); s.connect("/run/shaudit/shaudit.sock")' 2>/dev/null; then ready=1; break; fi
  sleep 0.02
done
[ $ready = 1 ] || exit 92
"$SHAUDIT" emit line "reported to the default socket" || exit 93
"$SHAUDIT" stats --json > "$T/stats.json" || exit 94
for i in $(seq 500); do grep -q 'reported to the default socket' /var/log/shaudit/audit.jsonl && break; sleep 0.02; done
kill -TERM $pid
rc=0; wait $pid || rc=$?
trap - EXIT
echo $rc > "$T/daemon.rc"
[ -e /run/shaudit/shaudit.sock ] && echo present > "$T/socket.after" || echo absent > "$T/socket.after"
stat -c %a /var/log/shaudit/audit.jsonl > "$T/log.mode"
cp /var/log/shaudit/audit.jsonl "$T/audit.jsonl"
cp /etc/shaudit/signing.key.pub "$T/signing.key.pub"
exit 0
"""


def default_interposer():
    """The `interposer` path of the compiled-in default configuration."""
    out = subprocess.run([str(SHAUDITD), "--print-default-config"], capture_output=True, text=True,
                         check=True).stdout
    return next(l.split(":", 1)[1].strip() for l in out.splitlines() if l.startswith("interposer:"))


def test_no_config_runs_on_the_compiled_in_default(tmp_path):
    """Runs shauditd without --config in a private mount namespace where /run, /var/log and
    /etc are private copies, so the default paths are used without touching the host's."""
    (tmp_path / "etc-up").mkdir()
    (tmp_path / "etc-work").mkdir()
    host_state = [os.path.exists(p) for p in ("/etc/shaudit", "/run/shaudit", "/var/log/shaudit")]
    p = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "bash", "-c",
                          NO_CONFIG_SCRIPT, "script", str(tmp_path), str(SHAUDIT), str(SHAUDITD),
                          str(BUILD / "preload" / "libshaudit_preload.so"), default_interposer()],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         start_new_session=True)
    try:
        out, err = p.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)  # the script, and the daemon it started
        p.wait()
        raise
    res = subprocess.CompletedProcess(p.args, p.returncode, out, err)
    if res.returncode == 90 or "unshare failed" in res.stderr:
        pytest.skip(f"no private mount namespace here: {res.stderr.strip()}")
    assert res.returncode == 0, f"rc {res.returncode}: {res.stderr}"
    assert (tmp_path / "check.rc").read_text().strip() == "0"
    assert (tmp_path / "check.out").read_text() == "shauditd: configuration OK\n"
    assert (tmp_path / "daemon.rc").read_text().strip() == "0", \
        (tmp_path / "daemon.err").read_text()
    assert "listening on /run/shaudit/shaudit.sock, writing /var/log/shaudit/audit.jsonl" in \
        (tmp_path / "daemon.err").read_text()
    assert (tmp_path / "socket.after").read_text().strip() == "absent"
    assert (tmp_path / "log.mode").read_text().strip() == "600"
    st = json.loads((tmp_path / "stats.json").read_text())
    assert st["log"] == "/var/log/shaudit/audit.jsonl" and st["accepted"] == 1
    recs = read_records(tmp_path / "audit.jsonl")
    assert recs[0]["type"] == "start" and recs[0]["bpf"] == "on"  # the default is auto
    assert with_text(recs, "reported to the default socket")["shell"] == "shaudit-emit"
    assert recs[-1]["type"] == "seal" and recs[-1]["reason"] == "close"
    v = run_cli("verify", tmp_path / "audit.jsonl", "--pubkey", tmp_path / "signing.key.pub")
    assert v.returncode == 0, v.stdout
    # The host's own default paths were not touched.
    assert [os.path.exists(p) for p in ("/etc/shaudit", "/run/shaudit", "/var/log/shaudit")] \
        == host_state


# --------------------------------------------------------------------------------------
# shaudit show

@pytest.fixture
def shown_log(daemon_factory, public_dir):
    """A stopped daemon's log with root and nobody commands, an exec, and seals."""
    d = public_daemon(daemon_factory, public_dir).start()
    emit(d.socket, "line", "ls -la /tmp")
    emit(d.socket, "exec", "/bin/ls", "-la", "/tmp dir")
    _, nobody_pid = emit(d.socket, "line", "whoami", as_nobody=True)
    emit(d.socket, "line", "second root line")
    wait_texts(d, "ls -la /tmp", "whoami", "second root line")
    assert d.stop() == 0
    d.nobody_pid = nobody_pid
    return d


def show(*args):
    res = run_cli("show", *args)
    assert res.returncode == 0, res.stderr
    return res.stdout


def table_rows(out):
    lines = out.splitlines()
    assert lines[0].split() == ["TIME", "SESSION", "USER[PID]", "TYPE", "TEXT", "/", "ARGV"]
    return lines[1:]


def test_show_table_and_type_filter(shown_log):
    d = shown_log
    recs = d.records()
    rows = table_rows(show(d.log))
    assert len(rows) == len(recs)
    cmd = with_text(recs, "ls -la /tmp")
    row = next(r for r in rows if r.startswith(cmd["time"]))
    assert row.split(None, 4)[1:] == ["-", f"root[{cmd['pid']}]", "command", "ls -la /tmp"]
    ex = next(r for r in recs if r["type"] == "exec")
    row = next(r for r in rows if r.startswith(ex["time"]))
    assert row.split(None, 4)[1:] == ["-", f"root[{ex['pid']}]", "exec", "/bin/ls -la '/tmp dir'"]
    assert any(f"nobody[{d.nobody_pid}]" in r and r.endswith("whoami") for r in rows)

    rows = table_rows(show(d.log, "--type", "command"))
    assert [r.split(None, 4)[4] for r in rows] == ["ls -la /tmp", "whoami", "second root line"]
    assert all(r.split()[3] == "command" for r in rows)
    rows = table_rows(show(d.log, "--type", "exec,start"))
    assert [r.split()[3] for r in rows] == ["start", "exec"]


def test_show_json_passes_exact_lines(shown_log):
    d = shown_log
    lines = d.log.read_text().splitlines()
    assert show(d.log, "--json").splitlines() == lines
    want = [l for l in lines if json.loads(l)["type"] == "command"]
    assert show(d.log, "--json", "--type", "command").splitlines() == want


def test_show_user_and_session_filters(shown_log, tmp_path):
    d = shown_log
    lines = d.log.read_text().splitlines()
    nobody = [l for l in lines if json.loads(l).get("user") == "nobody"]
    assert len(nobody) == 1 and json.loads(nobody[0])["text"] == "whoami"
    assert show(d.log, "--json", "--user", "nobody").splitlines() == nobody
    root = [l for l in lines if json.loads(l).get("user") == "root"]
    assert len(root) == 3
    assert show(d.log, "--json", "--user", "root").splitlines() == root
    assert show(d.log, "--json", "--user", "no-such-user") == ""
    # No record of this log belongs to a session.
    assert show(d.log, "--json", "--session", "s-1") == ""
    assert table_rows(show(d.log, "--session", "s-1")) == []
    # A log whose records carry sessions (show reads, it does not verify).
    tagged = []
    for i, l in enumerate(lines):
        r = json.loads(l)
        if r["type"] == "command":
            r["session"] = "s-1" if r["text"] != "second root line" else "s-2"
        tagged.append(json.dumps(r, separators=(",", ":"), sort_keys=True))
    sess = tmp_path / "sessions.jsonl"
    sess.write_text("".join(l + "\n" for l in tagged))
    got = [json.loads(l)["text"] for l in show(sess, "--json", "--session", "s-1").splitlines()]
    assert got == ["ls -la /tmp", "whoami"]
    got = [json.loads(l)["text"] for l in
           show(sess, "--json", "--session", "s-1", "--user", "root").splitlines()]
    assert got == ["ls -la /tmp"]
    rows = table_rows(show(sess, "--session", "s-2"))
    assert len(rows) == 1 and rows[0].split(None, 4)[1] == "s-2"


def test_show_since_and_until(shown_log):
    d = shown_log
    lines = d.log.read_text().splitlines()
    assert show(d.log, "--json", "--since", "2200-01-01T00:00:00Z") == ""
    assert table_rows(show(d.log, "--since", "2200-01-01")) == []
    recs = [json.loads(l) for l in lines]
    mid = with_text(recs, "whoami")
    later = [l for l, r in zip(lines, recs)
             if record_time_ns(r["time"]) >= record_time_ns(mid["time"])]
    assert show(d.log, "--json", "--since", mid["time"]).splitlines() == later
    earlier = [l for l, r in zip(lines, recs)
               if record_time_ns(r["time"]) <= record_time_ns(mid["time"])]
    assert show(d.log, "--json", "--until", mid["time"]).splitlines() == earlier
    res = run_cli("show", d.log, "--since", "yesterday")
    assert res.returncode == 2 and "invalid time 'yesterday'" in res.stderr


def test_show_follow_prints_later_records_across_rotation(daemon_factory):
    d = daemon_factory().start()
    d.wait_for(lambda recs: len(recs) >= 1)
    p = subprocess.Popen([str(SHAUDIT), "show", "--follow", "--json", "--type", "command",
                          str(d.log)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        time.sleep(0.3)  # let it reach the end of the file
        res, pid = emit(d.socket, "line", "arrives later")
        assert res.returncode == 0
        out = read_until(p, lambda t: "arrives later" in t and t.endswith("\n"))
        assert len(out.splitlines()) == 1
        rec = json.loads(out)
        assert rec["text"] == "arrives later" and rec["pid"] == pid
        # Rotation: the follower finishes the old file and continues in the new one.
        os.rename(d.log, d.log.with_name("audit.jsonl.1"))
        d.proc.send_signal(signal.SIGHUP)
        d.wait_for(lambda recs: len(recs) >= 1 and recs[0]["type"] == "rotate")
        emit(d.socket, "line", "after rotation, followed")
        out = read_until(p, lambda t: "after rotation, followed" in t and t.endswith("\n"))
        assert [json.loads(l)["text"] for l in out.splitlines()] == ["after rotation, followed"]
        assert p.poll() is None, "--follow keeps running"
    finally:
        kill_proc(p)
    assert d.stop() == 0


# --------------------------------------------------------------------------------------
# a log that is not the one shauditd left (issue 17): the state file and chain_break

def run_and_stop(d, *texts):
    """Starts d, records texts as typed lines, stops it cleanly; returns the log's lines."""
    d.start()
    for t in texts:
        emit(d.socket, "line", t)
    wait_texts(d, *texts)
    assert d.stop() == 0
    return read_lines(d.log)


def chain_break_of(d):
    breaks = [r for r in d.records() if r["type"] == "chain_break"]
    assert len(breaks) == 1, breaks
    return breaks[0]


def assert_verify_fails(d, seq, message):
    for extra in [(), ("--allow-open",)]:
        res = d.verify(*extra)
        assert res.returncode == 1, res.stdout
        assert res.stdout.splitlines()[-1] == f"FAILED at seq {seq}: {message}", res.stdout


def test_log_cut_while_stopped_is_a_chain_break(daemon_factory):
    d = daemon_factory()
    lines = run_and_stop(d, "one", "two", "three", "four", "five", "six")
    n = len(lines)
    head = line_hash(lines[-1])
    # A root attacker cuts the last 5 records (the closing seal among them) while shauditd is
    # stopped; every remaining line is intact.
    d.log.write_bytes(b"".join(l + b"\n" for l in lines[:-5]))
    run_and_stop(d, "after the cut")
    cb = chain_break_of(d)
    assert cb["seq"] == n - 5 + 2  # after the next run's start record
    assert {k: cb[k] for k in ("found", "found_seq", "found_hash", "expected_seq",
                               "expected_hash", "file", "state_file")} == {
        "found": "shorter", "found_seq": n - 5, "found_hash": line_hash(lines[-6]),
        "expected_seq": n, "expected_hash": head, "file": str(d.log),
        "state_file": str(d.dir / "state" / "log-state.json")}
    assert_verify_fails(d, n - 3, f"{d.log} line {n - 3}: seq {n - 3} is a chain_break record: "
                                  f"when shauditd started, the log ended at seq {n - 5}, but it "
                                  f"had written up to seq {n} (chain hash {head}): records were "
                                  "cut off while shauditd was stopped")


def test_log_deleted_while_stopped_is_a_chain_break(daemon_factory):
    d = daemon_factory()
    lines = run_and_stop(d, "before")
    d.log.unlink()
    run_and_stop(d, "after")
    cb = chain_break_of(d)
    assert (cb["seq"], cb["found"], cb["expected_seq"]) == (2, "missing", len(lines))
    assert "found_seq" not in cb
    assert_verify_fails(d, 2, f"{d.log} line 2: seq 2 is a chain_break record: when shauditd "
                              f"started, the log it had written up to seq {len(lines)} (chain "
                              f"hash {line_hash(lines[-1])}) was missing: it was deleted or moved "
                              "while shauditd was stopped")


def test_log_replaced_while_stopped_is_a_chain_break(daemon_factory):
    d = daemon_factory(seal_interval_ms=60000)
    lines = run_and_stop(d, "the real log")
    # Another run with the same key (a copy of the key state, as root could take), elsewhere.
    (d.dir / "other-state").mkdir(mode=0o700)
    shutil.copy2(d.dir / "state" / "key-state", d.dir / "other-state" / "key-state")
    other = daemon_factory("other", seal_interval_ms=60000, state_dir=str(d.dir / "other-state"),
                           log=str(d.dir / "other" / "audit.jsonl"))
    other.log = d.dir / "other" / "audit.jsonl"
    other_lines = run_and_stop(other, "a substitute")
    assert len(other_lines) == len(lines)
    d.log.write_bytes(other.log.read_bytes())
    run_and_stop(d, "after")
    cb, kb = [r for r in d.records() if r["type"] == "chain_break"]
    n = len(lines)
    assert (cb["found"], cb["found_seq"], cb["expected_seq"]) == ("different", n, n)
    # The substitute's closing seal certified a key of its own copy of the key state, not the
    # one this key state went on with.
    assert (kb["found"], kb["seal_seq"], kb["expected_epoch"], kb["found_epoch"]) == \
        ("key_state", n, 2, 1)
    # verify fails before that: the substitute's first seal was signed by a key (epoch 1) that
    # no seal of this log certified.
    key_id = d.records()[0]["key_id"]
    assert_verify_fails(d, n, f"{d.log} line {n}: seal seq {n} claims key epoch 1, but key "
                              f"{key_id}'s chain is at epoch 0: its key was not certified by the "
                              "seal before it (a forged seal, a log cut and sealed again, or a "
                              f"piece of another log); it covers seq 1 to {n - 1}")


def test_state_file_deleted_is_a_chain_break(daemon_factory):
    d = daemon_factory()
    lines = run_and_stop(d, "before")
    state = d.dir / "state" / "log-state.json"
    assert json.loads(state.read_text()) == {
        "dev": os.stat(d.log).st_dev, "hash": line_hash(lines[-1]), "ino": os.stat(d.log).st_ino,
        "path": str(d.log), "seq": len(lines)}
    state.unlink()
    run_and_stop(d, "after")
    n = len(lines)
    assert chain_break_of(d)["found"] == "no_state"
    assert_verify_fails(d, n + 2, f"{d.log} line {n + 2}: seq {n + 2} is a chain_break record: "
                                  f"when shauditd started, its state file {state} was missing or "
                                  "unreadable while the log existed: the log cannot be told "
                                  "unchanged")


def test_crash_and_restarts_leave_no_chain_break(daemon_factory):
    # Unsealed records after a SIGKILL are longer than the state (updated at seals): that is
    # the log shauditd left, not a break.
    d = daemon_factory(seal_interval_ms=60000)
    run_and_stop(d, "clean run")
    d.start()
    emit(d.socket, "line", "unsealed")
    wait_texts(d, "unsealed")
    assert d.stop(signal.SIGKILL) == -signal.SIGKILL
    run_and_stop(d, "after the crash")
    assert not [r for r in d.records() if r["type"] == "chain_break"]
    res = d.verify()
    assert res.returncode == 0, res.stdout


def test_live_tail_cut_after_a_kill_is_a_chain_break(daemon_factory):
    # shauditd killed (no closing seal), the newest file's tail cut back past its last seal,
    # shauditd started again: --allow-open accepted that before the state file.
    d = daemon_factory(seal_interval_ms=50)
    d.start()
    for t in ("one", "two", "three"):
        emit(d.socket, "line", t)
    wait_texts(d, "one", "two", "three")
    recs = d.wait_for(lambda recs: recs[-1]["type"] == "seal")
    # The state file names that seal once its seal's fdatasync is done (killed before that, the
    # chain head it left is the one before: then the cut below ends at it and is no break).
    state = d.dir / "state" / "log-state.json"
    deadline = time.monotonic() + 10
    while json.loads(state.read_text())["seq"] != recs[-1]["seq"] and time.monotonic() < deadline:
        time.sleep(0.01)
    assert d.stop(signal.SIGKILL) == -signal.SIGKILL
    lines = read_lines(d.log)
    n = len(lines)
    d.log.write_bytes(b"".join(l + b"\n" for l in lines[:-3]))
    d.start()
    d.wait_for(lambda recs: any(r["type"] == "chain_break" for r in recs))
    try:
        cb = chain_break_of(d)
        assert (cb["found"], cb["found_seq"], cb["expected_seq"]) == ("shorter", n - 3, n)
        res = d.verify("--allow-open")
        assert res.returncode == 1, res.stdout
        assert res.stdout.startswith(f"FAILED at seq {n - 1}: {d.log} line {n - 1}: seq {n - 1} "
                                     "is a chain_break record"), res.stdout
    finally:
        assert d.stop() == 0
