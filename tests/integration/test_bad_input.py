# SPDX-License-Identifier: Apache-2.0
"""Hostile and broken input to shauditd: malformed wire messages, passed descriptors, invalid
UTF-8, report-number gaps, idle and flooding clients, bad configuration, bad keys, damaged
or unwritable logs and a full disk.

Every case asserts the exact outcome (counters, error text, exit code, log records) and,
after each abuse, that the daemon is still up, that a following good report is recorded and
that the log verifies after a clean stop.
"""
import base64
import contextlib
import errno
import json
import os
import re
import resource
import select
import socket
import subprocess
import time
from pathlib import Path

import pytest

from conftest import SHAUDITD, read_records, run_cli, stats
import wire

HERE = Path(__file__).resolve().parent
PYTHON = "/usr/bin/python3"


# ---------------------------------------------------------------------------------------------
# helpers (local to this file)

def commands(recs, pid=None):
    return [r for r in recs if r["type"] == "command" and (pid is None or r["pid"] == pid)]


def texts(recs, pid=None):
    return [r["text"] for r in commands(recs, pid)]


def assert_alive(d):
    assert d.proc is not None and d.proc.poll() is None, f"shauditd died: {d.stderr()}"


def wait_recorded(d, text, timeout=10, pid=None):
    """Waits until a command record with this text is in the log; returns it."""
    pid = os.getpid() if pid is None else pid
    recs = d.wait_for(lambda rs: any(r["type"] == "command" and r.get("text") == text
                                     and r["pid"] == pid for r in rs), timeout=timeout)
    return next(r for r in recs if r["type"] == "command" and r.get("text") == text)


def report(d, seq, text, sock=None):
    """Sends a good typed-line report and waits until it is recorded."""
    own = sock is None
    s = d.connect() if own else sock
    try:
        s.send(wire.line(seq, text))
        return wait_recorded(d, text)
    finally:
        if own:
            s.close()


def stop_and_verify(d):
    """Clean stop (exit 0), then `shaudit verify` must pass; returns the records."""
    assert_alive(d)
    rc = d.stop()
    assert rc == 0, f"shauditd exited {rc}: {d.stderr()}"
    v = d.verify()
    assert v.returncode == 0, f"verify failed: {v.stdout}{v.stderr}"
    assert v.stdout.startswith("OK: "), v.stdout
    recs = d.records()
    assert recs[-1]["type"] == "seal" and recs[-1]["reason"] == "close"
    return recs


def wait_stats(d, pred, timeout=10):
    deadline = time.monotonic() + timeout
    st = stats(d)
    while not pred(st):
        if time.monotonic() > deadline:
            raise AssertionError(f"stats condition not met: {st}")
        time.sleep(0.02)
        st = stats(d)
    return st


def open_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def run_daemon_expect_failure(d, timeout=10):
    """Starts shauditd without waiting for readiness; it must exit non-zero on its own."""
    d.start(wait=False)
    try:
        d.proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"shauditd kept running: {d.stderr()}")
    rc = d.stop()
    return rc, d.stderr()


def run_shauditd(config_path, timeout=10):
    r = subprocess.run([str(SHAUDITD), "--config", str(config_path)], capture_output=True,
                       text=True, timeout=timeout)
    return r.returncode, r.stderr


def base_config(d, **extra):
    cfg = dict(d.config)
    cfg.update(extra)
    return cfg


def assert_whole_lines(path):
    """The log holds only complete, parseable lines."""
    data = Path(path).read_bytes()
    assert data.endswith(b"\n"), f"partial last line: {data[-200:]!r}"
    for ln in data.splitlines():
        json.loads(ln)


# ---------------------------------------------------------------------------------------------
# wire format abuse

MARK = "BAD-PAYLOAD-MARKER"


def _hdr(magic=wire.MAGIC, version=wire.VERSION, mtype=wire.LINE, flags=0, length=None,
         seq=7, body=b""):
    total = wire.HEADER.size + len(body)
    return wire.HEADER.pack(magic, version, mtype, flags, total if length is None else length, 0,
                            seq, time.time_ns()) + body


_FIELDS = wire.field(wire.F_SHELL, "bash") + wire.field(wire.F_TEXT, MARK)

WIRE_CASES = {
    # name: (message bytes, rejection reason)
    "empty-message": (b"", "short"),
    "one-byte": (b"\x41", "short"),
    "31-bytes": (_hdr(body=_FIELDS)[:31], "short"),
    "bad-magic": (_hdr(magic=0x1234, body=_FIELDS), "bad_magic"),
    "wrong-version-2": (_hdr(version=2, body=_FIELDS), "bad_version"),
    "wrong-version-0": (_hdr(version=0, body=_FIELDS), "bad_version"),
    "length-too-big": (_hdr(length=wire.HEADER.size + len(_FIELDS) + 1, body=_FIELDS),
                       "bad_length"),
    "length-too-small": (_hdr(length=wire.HEADER.size, body=_FIELDS), "bad_length"),
    "type-0": (_hdr(mtype=0, body=_FIELDS), "bad_type"),
    "type-99": (_hdr(mtype=99, body=_FIELDS), "bad_type"),
    "field-overruns-message": (
        _hdr(body=wire.field(wire.F_SHELL, "bash") + wire.FIELD.pack(wire.F_TEXT, 0, 100) +
             MARK.encode()), "bad_field"),
    "field-length-huge": (
        _hdr(body=wire.FIELD.pack(wire.F_TEXT, 0, 0xFFFFFFFF) + MARK.encode()), "bad_field"),
    "truncated-field-header": (_hdr(body=_FIELDS + b"\x01\x00\x00\x00\x05"), "bad_field"),
    "report-seq-0": (_hdr(seq=0, body=_FIELDS), "bad_field"),
    "line-without-text": (_hdr(body=wire.field(wire.F_SHELL, "bash") +
                               wire.field(wire.F_CWD, MARK)), "missing_field"),
    "exec-without-argv-or-path": (_hdr(mtype=wire.EXEC, body=wire.field(wire.F_CWD, MARK)),
                                  "missing_field"),
}


@pytest.mark.parametrize("case", list(WIRE_CASES))
def test_malformed_wire_message(daemon_factory, case):
    msg, reason = WIRE_CASES[case]
    d = daemon_factory().start()
    s = d.connect()
    report(d, 1, "before", sock=s)
    assert s.send(msg) == len(msg)
    # The same connection stays usable, and the rejected message used up no report number.
    report(d, 2, "after", sock=s)
    assert_alive(d)
    st = stats(d)
    assert st["rejected_by_reason"] == {reason: 1}, st
    assert st["rejected"] == 1
    assert st["accepted"] == 2
    assert st["loss_records"] == 0 and st["reports_lost"] == 0
    assert st["connections_open"] == 1
    s.close()
    recs = stop_and_verify(d)
    assert texts(recs) == ["before", "after"]
    assert not [r for r in recs if r["type"] in ("loss", "exec")]
    assert MARK.encode() not in d.log.read_bytes()


def test_oversize_message(daemon_factory):
    d = daemon_factory().start()
    s = d.connect()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    report(d, 1, "before", sock=s)
    big = wire.message(wire.LINE, 2, [wire.field(wire.F_SHELL, "bash"),
                                      wire.field(wire.F_TEXT, MARK + "x" * wire.MAX_MESSAGE)])
    assert len(big) > wire.MAX_MESSAGE
    try:
        sent = s.send(big)
    except OSError as e:
        assert e.errno == errno.EMSGSIZE, e
        sent = None
    if sent is not None:
        assert sent == len(big)
    report(d, 2, "after", sock=s)
    st = stats(d)
    if sent is None:  # the kernel refused it: the daemon never saw it
        assert st["rejected_by_reason"] == {}, st
    else:
        assert st["rejected_by_reason"] == {"oversize": 1}, st
    assert st["accepted"] == 2 and st["loss_records"] == 0
    # A message of exactly the limit is still accepted.
    text = "L" * (wire.MAX_MESSAGE - wire.HEADER.size - 2 * wire.FIELD.size - len("bash"))
    exact = wire.line(3, text)
    assert len(exact) == wire.MAX_MESSAGE
    assert s.send(exact) == len(exact)
    rec = wait_recorded(d, text)
    assert rec["report_seq"] == 3 and "truncated" not in rec
    s.close()
    recs = stop_and_verify(d)
    assert texts(recs) == ["before", "after", text]
    assert MARK.encode() not in d.log.read_bytes()


@pytest.mark.parametrize("nfds", [1, 40])
def test_passed_descriptors_are_rejected_and_closed(daemon_factory, nfds):
    d = daemon_factory().start()
    s = d.connect()
    report(d, 1, "before", sock=s)
    baseline = open_fds(d.proc.pid)
    for round_ in range(5):
        r, w = os.pipe()
        extra = [os.open("/dev/null", os.O_RDONLY) for _ in range(nfds - 1)]
        msg = wire.line(2, MARK)  # otherwise a good report
        assert socket.send_fds(s, [msg], [w] + extra) == len(msg)
        os.close(w)
        for fd in extra:
            os.close(fd)
        # The daemon closed the write end it was handed: the pipe reads end-of-file.
        ready, _, _ = select.select([r], [], [], 5)
        assert ready, "the daemon kept a passed descriptor open"
        assert os.read(r, 1) == b""
        os.close(r)
    report(d, 2, "after", sock=s)
    assert open_fds(d.proc.pid) == baseline
    st = stats(d)
    assert st["rejected_by_reason"] == {"fd_passed": 5}, st
    assert st["accepted"] == 2 and st["loss_records"] == 0
    s.close()
    recs = stop_and_verify(d)
    assert texts(recs) == ["before", "after"]
    assert MARK.encode() not in d.log.read_bytes()


# ---------------------------------------------------------------------------------------------
# record content

def test_invalid_utf8_line_is_kept_losslessly(daemon_factory):
    d = daemon_factory().start()
    raw = b"printf '\xff\xfe' caf\xe9 \xc3( ok"
    s = d.connect()
    s.send(wire.message(wire.LINE, 1, [wire.field(wire.F_SHELL, "bash"),
                                       wire.field(wire.F_TEXT, raw)]))
    expected_text = "printf '\ufffd\ufffd' caf\ufffd \ufffd( ok"  # one U+FFFD per invalid byte
    rec = wait_recorded(d, expected_text)
    assert base64.b64decode(rec["text_b64"], validate=True) == raw
    report(d, 2, "after", sock=s)
    s.close()
    recs = stop_and_verify(d)
    cmds = commands(recs)
    assert [c["text"] for c in cmds] == [expected_text, "after"]
    assert base64.b64decode(cmds[0]["text_b64"]) == raw
    assert cmds[0]["shell"] == "bash" and cmds[0]["pid"] == os.getpid()
    assert "text_b64" not in cmds[1]  # valid UTF-8 never gets a _b64 twin
    r = run_cli("show", d.log, "--json")
    assert r.returncode == 0


def test_report_number_gap_makes_loss_record(daemon_factory):
    d = daemon_factory().start()
    s = d.connect()
    for seq in (1, 2, 5):
        s.send(wire.line(seq, f"line {seq}"))
    wait_recorded(d, "line 5")
    st = stats(d)
    assert st["loss_records"] == 1 and st["reports_lost"] == 2, st
    # A late report fills part of the gap: recorded, flagged, and no new loss.
    s.send(wire.line(3, "line 3 late"))
    s.send(wire.line(6, "line 6"))
    wait_recorded(d, "line 6")
    st = stats(d)
    assert st["loss_records"] == 1 and st["reports_lost"] == 2, st
    assert st["rejected"] == 0
    s.close()
    recs = stop_and_verify(d)
    losses = [r for r in recs if r["type"] == "loss"]
    assert len(losses) == 1
    loss = losses[0]
    assert loss["cause"] == "report_gap"
    assert loss["pid"] == os.getpid() and loss["uid"] == os.getuid()
    assert (loss["first_missing"], loss["last_missing"], loss["missing"]) == (3, 4, 2)
    body = [r for r in recs if r["type"] in ("command", "loss")]
    assert [(r["type"], r.get("report_seq")) for r in body] == [
        ("command", 1), ("command", 2), ("loss", None), ("command", 5), ("command", 3),
        ("command", 6)]
    late = next(r for r in body if r.get("report_seq") == 3)
    assert late["report_out_of_order"] is True
    assert all("report_out_of_order" not in r for r in body if r.get("report_seq") != 3)


# ---------------------------------------------------------------------------------------------
# idle, many and flooding clients

def test_idle_client_does_not_block_others(daemon_factory):
    d = daemon_factory().start()
    idle = d.connect()  # connects and never sends
    s = d.connect()
    t0 = time.monotonic()
    s.send(wire.line(1, "while another client idles"))
    d.wait_for(lambda rs: "while another client idles" in texts(rs), timeout=5)
    assert time.monotonic() - t0 < 1.0
    assert_alive(d)
    assert stats(d)["connections_open"] == 2
    s.close()
    idle.close()
    recs = stop_and_verify(d)
    assert texts(recs) == ["while another client idles"]


def test_many_idle_connections(daemon_factory):
    d = daemon_factory().start()
    idle = [d.connect() for _ in range(200)]
    try:
        wait_stats(d, lambda st: st["connections_open"] == 200)
        t0 = time.monotonic()
        report(d, 1, "with 200 idle connections")
        assert time.monotonic() - t0 < 1.0
        assert_alive(d)
        st = stats(d)
        assert st["connections_refused"] == 0 and st["rejected"] == 0
    finally:
        for s in idle:
            s.close()
    wait_stats(d, lambda st: st["connections_open"] == 0)
    report(d, 2, "after the idle ones left")
    recs = stop_and_verify(d)
    assert texts(recs) == ["with 200 idle connections", "after the idle ones left"]


def test_max_clients_refuses_the_extra_connection(daemon_factory):
    d = daemon_factory(max_clients=5).start()
    wait_stats(d, lambda st: st["connections_open"] == 0)  # the readiness probe is gone
    five = [d.connect() for _ in range(5)]
    wait_stats(d, lambda st: st["connections_open"] == 5)
    sixth = d.connect()  # the kernel completes it; the daemon accepts and closes it
    sixth.settimeout(5)
    assert sixth.recv(1) == b"", "the 6th connection was not closed by the daemon"
    with pytest.raises(OSError) as e:
        sixth.send(wire.line(1, "from the refused connection"))
    assert e.value.errno in (errno.EPIPE, errno.ECONNRESET, errno.ENOTCONN)
    sixth.close()
    st = stats(d)
    assert st["connections_refused"] == 1 and st["connections_open"] == 5, st
    assert_alive(d)
    report(d, 1, "on an admitted connection", sock=five[0])
    # A freed slot is usable again.
    five.pop().close()
    wait_stats(d, lambda st: st["connections_open"] == 4)
    report(d, 2, "in a freed slot")
    st = stats(d)
    assert st["connections_refused"] == 1, st
    for s in five:
        s.close()
    recs = stop_and_verify(d)
    assert texts(recs) == ["on an admitted connection", "in a freed slot"]
    assert "from the refused connection" not in texts(recs)


def cpu_ticks(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return int(f[11]) + int(f[12])  # utime + stime


def test_idle_connections_beyond_descriptor_limit(daemon_factory):
    """More idle connections than the daemon has descriptors: the excess is refused (each
    counted once), the daemon does not spin, still answers stats, and serves reporters as
    soon as descriptors are free again."""
    d = daemon_factory().start()
    wait_stats(d, lambda st: st["connections_open"] == 0)
    resource.prlimit(d.proc.pid, resource.RLIMIT_NOFILE, (64, 64))
    slots = 64 - open_fds(d.proc.pid)
    assert slots > 10
    conns = [d.connect() for _ in range(slots + 20)]
    try:
        wait_stats(d, lambda st: st["connections_open"] == slots
                   and st["connections_refused"] == 20)
        conns[-1].settimeout(5)
        assert conns[-1].recv(1) == b""  # a refused one was closed
        before = cpu_ticks(d.proc.pid)
        time.sleep(1)
        assert cpu_ticks(d.proc.pid) - before < 20, "shauditd spins at the descriptor limit"
        assert stats(d)["connections_refused"] == 20
        assert_alive(d)
        for s in conns[:5]:
            s.close()
        wait_stats(d, lambda st: st["connections_open"] == slots - 5)
        report(d, 1, "after descriptors were freed")
    finally:
        for s in conns:
            s.close()
    recs = stop_and_verify(d)
    assert texts(recs) == ["after descriptors were freed"]


FLOOD_CLIENT = r"""
import json, os, socket, sys, time
sys.path.insert(0, sys.argv[1])
import wire
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.connect(sys.argv[2])
duration = float(sys.argv[3])
s.setblocking(False)
seq = sent = eagain = 0
print("started", flush=True)
end = time.monotonic() + duration
while time.monotonic() < end:
    seq += 1
    try:
        s.send(wire.line(seq, "flood %d" % seq))
        sent += 1
    except BlockingIOError:
        eagain += 1  # the reporter's own loss: this report number is gone
s.setblocking(True)
seq += 1
s.send(wire.line(seq, "flood final"))
print(json.dumps({"pid": os.getpid(), "sent": sent, "eagain": eagain, "final_seq": seq}),
      flush=True)
s.close()
"""


def test_flooding_client(daemon_factory):
    d = daemon_factory(queue_capacity=64).start()
    flood = subprocess.Popen([PYTHON, "-c", FLOOD_CLIENT, str(HERE), str(d.socket), "2"],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert flood.stdout.readline().strip() == "started"
        time.sleep(0.3)  # well into the flood
        s = d.connect()
        t0 = time.monotonic()
        s.send(wire.line(1, "quiet client during the flood"))
        wait_recorded(d, "quiet client during the flood", timeout=10)
        quiet_latency = time.monotonic() - t0
        out, _ = flood.communicate(timeout=60)
    finally:
        if flood.poll() is None:
            flood.kill()
            flood.wait()
    assert flood.returncode == 0
    res = json.loads(out.strip().splitlines()[-1])
    fpid = res["pid"]
    assert res["eagain"] > 0, f"the flood never hit backpressure: {res}"
    assert res["sent"] > 0
    wait_recorded(d, "flood final", pid=fpid, timeout=60)
    assert_alive(d)
    st = stats(d)
    assert st["accepted"] == res["sent"] + 2, (st, res)
    assert st["rejected"] == 0
    assert st["queue_high_water"] <= 64
    s.close()
    recs = stop_and_verify(d)
    cmds = commands(recs)
    assert len(cmds) == st["accepted"]  # everything accepted was written
    assert texts(recs, os.getpid()) == ["quiet client during the flood"]
    fl = commands(recs, fpid)
    seqs = [r["report_seq"] for r in fl]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs) == res["sent"] + 1
    assert seqs[-1] == res["final_seq"] and fl[-1]["text"] == "flood final"
    assert all(r["text"] == f"flood {r['report_seq']}" for r in fl[:-1])
    # Every report the flooder could not send shows up as a loss, exactly.
    losses = [r for r in recs if r["type"] == "loss"]
    assert losses, "no loss record for the flooder's unsent reports"
    assert all(r["pid"] == fpid and r["cause"] == "report_gap" for r in losses)
    assert sum(r["missing"] for r in losses) == res["eagain"]
    covered = set(seqs)
    for r in losses:
        assert r["missing"] == r["last_missing"] - r["first_missing"] + 1
        gap = set(range(r["first_missing"], r["last_missing"] + 1))
        assert not gap & covered
        covered |= gap
    assert covered == set(range(1, res["final_seq"] + 1))
    assert st["reports_lost"] == res["eagain"] and st["loss_records"] == len(losses)
    print(f"flood: sent {res['sent']}, EAGAIN {res['eagain']}, quiet line after "
          f"{quiet_latency:.3f}s")


# ---------------------------------------------------------------------------------------------
# configuration

def write_yaml(path, lines):
    Path(path).write_text("".join(line + "\n" for line in lines))


def config_lines(d, **override):
    return [f"{k}: {v}" for k, v in base_config(d, **override).items()]


def test_config_unknown_key(daemon_factory):
    d = daemon_factory()
    d.keygen()
    lines = config_lines(d)
    lines.insert(3, "bogus: 1")  # line 4, column 1
    write_yaml(d.config_path, lines)
    rc, err = run_shauditd(d.config_path)
    assert rc == 1, err
    assert "unknown key 'bogus'" in err
    assert f"{d.config_path}:4:1" in err
    assert not d.socket.exists() and not d.log.exists()


@pytest.mark.parametrize("key,value,fragments", [
    ("seal_every", "abc", ["key 'seal_every'", "expected a whole number", "'abc'"]),
    ("socket", "[a, b]", ["key 'socket'", "needs a single value, not a list"]),
    ("bpf", "maybe", ["key 'bpf'", "expected on, off or auto", "'maybe'"]),
    ("queue_capacity", "0", ["key 'queue_capacity'", "out of range"]),
    ("log", "relative/audit.jsonl", ["key 'log'", "absolute path"]),
])
def test_config_bad_value(daemon_factory, key, value, fragments):
    d = daemon_factory()
    d.keygen()
    cfg = base_config(d)
    cfg.pop(key, None)
    lines = [f"{k}: {v}" for k, v in cfg.items()]
    lines.insert(2, f"{key}: {value}")  # line 3
    write_yaml(d.config_path, lines)
    rc, err = run_shauditd(d.config_path)
    assert rc == 1, err
    for f in fragments:
        assert f in err, (f, err)
    assert f"{d.config_path}:3:" in err
    assert not d.socket.exists() and not d.log.exists()


def test_config_missing_file(tmp_path):
    path = tmp_path / "no" / "such.yaml"
    rc, err = run_shauditd(path)
    assert rc == 1
    assert str(path) in err and "cannot open" in err and "No such file" in err


def test_config_yaml_syntax_error(daemon_factory):
    d = daemon_factory()
    d.keygen()
    lines = config_lines(d)
    lines.insert(2, "seal_every: [1, 2")  # unclosed flow sequence
    write_yaml(d.config_path, lines)
    rc, err = run_shauditd(d.config_path)
    assert rc == 1, err
    assert re.search(re.escape(str(d.config_path)) + r":\d+:\d+: ", err), err
    assert "end of sequence flow not found" in err
    assert not d.socket.exists() and not d.log.exists()


# ---------------------------------------------------------------------------------------------
# signing keys

def test_key_missing(daemon_factory, tmp_path):
    d = daemon_factory()
    d.keygen()  # so the fixture does not create one at the configured path
    missing = tmp_path / "nokey" / "signing.key"
    d.config["signing_key"] = str(missing)
    rc, err = run_daemon_expect_failure(d)
    assert rc == 1, err
    assert f"signing key {missing}" in err and "No such file" in err
    assert not d.socket.exists() and not d.log.exists()


def test_key_malformed(daemon_factory):
    d = daemon_factory()
    d.key.write_text("-----BEGIN PRIVATE KEY-----\nnot a key at all\n-----END PRIVATE KEY-----\n")
    os.chmod(d.key, 0o600)
    rc, err = run_daemon_expect_failure(d)
    assert rc == 1, err
    assert f"signing key {d.key}" in err and "not a PEM private key" in err
    assert not d.socket.exists() and not d.log.exists()


def test_key_group_readable(daemon_factory):
    d = daemon_factory()
    d.keygen()
    os.chmod(d.key, 0o640)
    rc, err = run_daemon_expect_failure(d)
    assert rc != 0, err
    assert str(d.key) in err and "chmod 600" in err and "0640" in err
    assert not d.socket.exists() and not d.log.exists()
    # Fixing the mode as told makes it start.
    os.chmod(d.key, 0o600)
    d.start()
    report(d, 1, "after chmod 600")
    stop_and_verify(d)


# ---------------------------------------------------------------------------------------------
# damaged or unwritable logs

def test_log_truncated_last_line(daemon_factory):
    d = daemon_factory().start()
    report(d, 1, "first run")
    stop_and_verify(d)
    good = d.log.read_bytes()
    last = good.splitlines()[-1]
    partial = last[: len(last) // 2]
    with open(d.log, "ab") as f:
        f.write(partial)
    d.start()
    report(d, 1, "second run")
    recs = stop_and_verify(d)  # verify passes over the whole file
    starts = [r for r in recs if r["type"] == "start"]
    assert len(starts) == 2
    tail = starts[1]["truncated_tail"]
    assert tail["length"] == len(partial)
    assert base64.b64decode(tail["bytes_b64"]) == partial
    assert tail["offset"] == len(good)
    assert starts[1]["previous_run"] == "clean"
    assert d.log.read_bytes().startswith(good)  # the intact part is untouched
    assert texts(recs) == ["first run", "second run"]


def test_log_garbage_last_line_refused(daemon_factory):
    d = daemon_factory().start()
    report(d, 1, "first run")
    stop_and_verify(d)
    with open(d.log, "ab") as f:
        f.write(b"this is not a record\n")
    before = d.log.read_bytes()
    rc, err = run_daemon_expect_failure(d)
    assert rc == 1, err
    assert f"log {d.log}" in err and "not a shaudit record" in err
    assert d.log.read_bytes() == before  # not touched
    assert not d.socket.exists()


def test_log_path_under_a_file(daemon_factory, tmp_path):
    d = daemon_factory()
    (tmp_path / "plainfile").write_text("x")
    bad = tmp_path / "plainfile" / "audit.jsonl"
    d.config["log"] = str(bad)
    rc, err = run_daemon_expect_failure(d)
    assert rc == 1, err
    assert str(bad) in err and "Not a directory" in err
    assert not d.socket.exists()


def test_log_path_in_proc(daemon_factory):
    d = daemon_factory()
    bad = "/proc/shaudit-no-such-dir/audit.jsonl"
    d.config["log"] = bad
    rc, err = run_daemon_expect_failure(d)
    assert rc == 1, err
    assert bad in err and "cannot open log" in err
    assert not d.socket.exists()


# ---------------------------------------------------------------------------------------------
# full disk

PAGE = 4096


@contextlib.contextmanager
def small_tmpfs(path, size="256k"):
    path.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=True)


def kill_if_running(d):
    if d.proc is not None and d.proc.poll() is None:
        d.proc.kill()
        d.proc.wait()


def disk_daemon(daemon_factory, tmp_path, **config):
    fs = tmp_path / "fs"
    d = daemon_factory(log=fs / "log" / "audit.jsonl", **config)
    d.log = fs / "log" / "audit.jsonl"
    return fs, d


def fill_until_write_errors(d, sock, first_seq=1, limit=20000):
    """Reports lines until the writer reports a write error; returns (texts sent, next seq)."""
    sent = []
    seq = first_seq
    while len(sent) < limit:
        text = f"fill {seq} " + "x" * 200
        sock.send(wire.line(seq, text))
        sent.append(text)
        seq += 1
        if len(sent) % 10 == 0:
            time.sleep(0.005)
            if stats(d)["write_errors"] > 0:
                return sent, seq
    raise AssertionError(f"writes never failed: {stats(d)}")


def take_all_space(filler):
    """Grows filler until the file system is full."""
    chunk = b"\0" * PAGE
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        while True:
            try:
                if os.write(fd, chunk) < len(chunk):
                    break
            except OSError as e:
                assert e.errno == errno.ENOSPC, e
                break
    finally:
        os.close(fd)
    assert os.statvfs(filler).f_bfree == 0


def full_disk_at(d, fs, sock, fail):
    """Runs d (seal_every: 1) on the tmpfs and fills it so that the next record line fits
    but its seal does not (fail="seal"), or the next record line itself does not fit
    (fail="record"). Sends that report (report_seq 2); returns (texts sent, next seq)."""
    t0 = 100
    first = "c" * t0
    report(d, 1, first, sock=sock)
    d.wait_for(lambda rs: rs[-1]["type"] == "seal" and rs[-2].get("text") == first)
    line = next(ln for ln in d.log.read_bytes().splitlines(keepends=True)
                if first.encode() in ln)
    base = len(line) - t0  # a record line's length without its text
    filler = fs / "filler"
    take_all_space(filler)
    room = (-d.log.stat().st_size) % PAGE  # what is left in the log's last page
    if room < base + 400:  # give the log exactly one more page
        pages = (filler.stat().st_size + PAGE - 1) // PAGE
        os.truncate(filler, (pages - 1) * PAGE)
        assert os.statvfs(filler).f_bfree == 1
        room += PAGE
    size_before = d.log.stat().st_size
    # A seal line is ~300 bytes; 40 bytes of slack absorb digit-count changes.
    text_len = room - base - 40 if fail == "seal" else room - base + 60
    text = "s" * text_len
    sock.send(wire.line(2, text))
    wait_stats(d, lambda st: st["write_errors"] > 0)
    time.sleep(0.1)
    assert_whole_lines(d.log)
    recs = d.records()
    if fail == "seal":
        assert recs[-1].get("text") == text, "the record should be in, only its seal missing"
    else:
        assert recs[-1]["type"] == "seal" and d.log.stat().st_size == size_before
    return [first, text], 3


def test_full_disk_then_recovery(daemon_factory, tmp_path):
    fs, d = disk_daemon(daemon_factory, tmp_path)
    with small_tmpfs(fs):
        try:
            filler = fs / "filler"
            filler.write_bytes(b"\0" * (96 * 1024))
            d.start()
            s = d.connect()
            sent, seq = fill_until_write_errors(d, s)
            # More reports while the disk is full: accepted and held, not lost.
            for _ in range(20):
                text = f"while full {seq}"
                s.send(wire.line(seq, text))
                sent.append(text)
                seq += 1
            st = wait_stats(d, lambda st: st["accepted"] == len(sent))
            assert st["write_errors"] > 0
            assert "No space" in st["last_error"], st
            assert str(d.log) in st["last_error"]
            assert len(commands(d.records())) < len(sent)
            assert_alive(d)
            assert_whole_lines(d.log)
            filler.unlink()  # free space: the daemon must catch up by itself
            recs = d.wait_for(lambda rs: len(commands(rs)) >= len(sent)
                              and any(r["type"] == "log_error" for r in rs), timeout=20)
            errs = [r for r in recs if r["type"] == "log_error"]
            assert len(errs) == 1
            assert "No space" in errs[0]["error"] and str(d.log) in errs[0]["error"]
            assert errs[0]["since"] <= errs[0]["until"]
            report(d, seq, "after recovery", sock=s)
            st = stats(d)
            assert st["accepted"] == len(sent) + 1 and st["queue_depth"] == 0
            assert st["rejected"] == 0 and st["loss_records"] == 0
            s.close()
            recs = stop_and_verify(d)
            # Every accepted report exactly once, in order; nothing lost, nothing doubled.
            assert texts(recs) == sent + ["after recovery"]
            assert [r["report_seq"] for r in commands(recs)] == list(range(1, seq + 1))
            assert len([r for r in recs if r["type"] == "log_error"]) == 1
            err = d.stderr()
            assert "No space left on device (holding records and retrying)" in err
            assert "log writable again" in err
        finally:
            kill_if_running(d)


@pytest.mark.parametrize("fail", ["record", "seal"])
def test_full_disk_exact_boundary(daemon_factory, tmp_path, fail):
    """With seal_every: 1 each record is followed by its seal; whichever of the two lines
    hits the full disk first, the record ends up in the log exactly once."""
    fs, d = disk_daemon(daemon_factory, tmp_path, seal_every=1)
    with small_tmpfs(fs):
        try:
            d.start()
            s = d.connect()
            sent, seq = full_disk_at(d, fs, s, fail)
            for _ in range(3):
                s.send(wire.line(seq, f"while full {seq}"))
                sent.append(f"while full {seq}")
                seq += 1
            st = wait_stats(d, lambda st: st["accepted"] == len(sent))
            assert "No space" in st["last_error"]
            assert_alive(d)
            (fs / "filler").unlink()
            d.wait_for(lambda rs: len(commands(rs)) >= len(sent)
                       and any(r["type"] == "log_error" for r in rs), timeout=20)
            report(d, seq, "after recovery", sock=s)
            s.close()
            recs = stop_and_verify(d)
            assert texts(recs) == sent + ["after recovery"]
            assert [r["report_seq"] for r in commands(recs)] == list(range(1, seq + 1))
            assert len([r for r in recs if r["type"] == "log_error"]) == 1
            # seal_every: 1 -- every record is sealed right after it (log_error included).
            body = [r for r in recs if r["type"] not in ("start",)]
            for r, nxt in zip(body, body[1:]):
                if r["type"] != "seal":
                    assert nxt["type"] == "seal", (r, nxt)
        finally:
            kill_if_running(d)


def check_unclean_exit(d, sent, err, elapsed):
    assert elapsed < 5, elapsed
    m = re.search(r"exiting with (\d+) accepted record\(s\) not written and no closing "
                  r"seal: (.*)", err)
    assert m, err
    assert "No space" in m.group(2)
    assert_whole_lines(d.log)  # no partial line
    recs = read_records(d.log)
    written = len(commands(recs))
    assert texts(recs) == sent[:written]
    assert not (recs[-1]["type"] == "seal" and recs[-1]["reason"] == "close")
    assert not d.socket.exists() and not d.control.exists()
    v = d.verify()
    assert v.returncode != 0 and "closing seal" in v.stdout, v.stdout
    v = d.verify("--allow-open")
    assert v.returncode == 0, v.stdout + v.stderr
    return int(m.group(1)), written


def restart_after_unclean_exit(d, fs):
    (fs / "filler").unlink()
    d.start()
    report(d, 1, "next run")
    recs = stop_and_verify(d)
    assert [r for r in recs if r["type"] == "start"][-1]["previous_run"] == "unclean"
    assert texts(recs)[-1] == "next run"


def test_sigterm_while_disk_full(daemon_factory, tmp_path):
    fs, d = disk_daemon(daemon_factory, tmp_path, shutdown_timeout_ms=500)
    with small_tmpfs(fs):
        try:
            (fs / "filler").write_bytes(b"\0" * (96 * 1024))
            d.start()
            s = d.connect()
            sent, seq = fill_until_write_errors(d, s)
            for _ in range(5):
                s.send(wire.line(seq, f"while full {seq}"))
                sent.append(f"while full {seq}")
                seq += 1
            st = wait_stats(d, lambda st: st["accepted"] == len(sent))
            assert st["write_errors"] > 0 and "No space" in st["last_error"]
            t0 = time.monotonic()
            rc = d.stop()
            elapsed = time.monotonic() - t0
            s.close()
            err = d.stderr()
            assert rc == 1, err
            unwritten, written = check_unclean_exit(d, sent, err, elapsed)
            assert written < len(sent)
            assert unwritten == len(sent) - written
            restart_after_unclean_exit(d, fs)
        finally:
            kill_if_running(d)


def test_sigterm_while_disk_full_seal_missing(daemon_factory, tmp_path):
    """The last record is in the file but its seal is not: it is not counted as unwritten."""
    fs, d = disk_daemon(daemon_factory, tmp_path, seal_every=1, shutdown_timeout_ms=500)
    with small_tmpfs(fs):
        try:
            d.start()
            s = d.connect()
            sent, seq = full_disk_at(d, fs, s, "seal")
            s.send(wire.line(seq, "while full"))
            sent.append("while full")
            wait_stats(d, lambda st: st["accepted"] == len(sent))
            t0 = time.monotonic()
            rc = d.stop()
            elapsed = time.monotonic() - t0
            s.close()
            err = d.stderr()
            assert rc == 1, err
            unwritten, written = check_unclean_exit(d, sent, err, elapsed)
            assert written == 2 and unwritten == 1
            restart_after_unclean_exit(d, fs)
        finally:
            kill_if_running(d)


def test_sigterm_while_disk_full_and_queue_full(daemon_factory, tmp_path):
    """The writer is stuck and the queue is full, so the receiver waits to queue: SIGTERM
    still ends the daemon within shutdown_timeout_ms."""
    fs, d = disk_daemon(daemon_factory, tmp_path, shutdown_timeout_ms=500, queue_capacity=16)
    with small_tmpfs(fs):
        try:
            (fs / "filler").write_bytes(b"\0" * (96 * 1024))
            d.start()
            s = d.connect()
            sent, seq = fill_until_write_errors(d, s)
            s.setblocking(False)
            for _ in range(100):  # far more than the queue holds
                try:
                    s.send(wire.line(seq, f"while full {seq}"))
                except BlockingIOError:
                    break
                sent.append(f"while full {seq}")
                seq += 1
            time.sleep(0.3)
            assert_alive(d)
            t0 = time.monotonic()
            rc = d.stop()
            elapsed = time.monotonic() - t0
            s.close()
            err = d.stderr()
            assert rc == 1, err
            unwritten, written = check_unclean_exit(d, sent, err, elapsed)
            # At least the full queue was accepted and not written.
            assert 16 <= unwritten <= len(sent) - written
            restart_after_unclean_exit(d, fs)
        finally:
            kill_if_running(d)
