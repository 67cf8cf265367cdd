# SPDX-License-Identifier: Apache-2.0
"""The interposer (libshaudit_preload.so) under faults: a daemon that is not there yet, goes
away and comes back, or is away for longer than the backlog holds; lines longer than the
terminal or the message; invalid UTF-8; programs that close or replace the interposer's
socket descriptor; many threads exec'ing at once; vfork children; every member of the exec
family; setuid programs; forged claims from an unprivileged reporter; secrets typed where
they are not commands.

Real shells (dash, bash, zsh) run on real pseudo-terminals, real programs
(tests/interposer_probe.c) run with the interposer preloaded, and a real shauditd writes
the log every assertion reads. Every test asserts the exact outcome.
"""
import base64
import errno
import fcntl
import os
import select
import shutil
import stat
import struct
import subprocess
import time

import pytest

from conftest import AS_NOBODY, NOBODY_UID, PRELOAD, PROBE, public_daemon, stats
from ptyshell import PS1, PtyShell
import wire

PYTHON = "/usr/bin/python3"
SHELLS = {
    "dash": ["/bin/dash", "-i"],
    "bash": ["/bin/bash", "--norc", "--noprofile", "-i"],
    "zsh": ["/bin/zsh", "-f", "-i"],
}
EXE = {"dash": "/usr/bin/dash", "bash": "/usr/bin/bash", "zsh": "/usr/bin/zsh"}
BACKLOG = 64 * 1024  # bytes of reports the interposer holds while the daemon is away
RETRY_S = 1.1        # the interposer tries to reconnect at most once a second

# Wire constants not in wire.py (libshaudit/include/shaudit/wire.h).
SESSION_OPEN, SESSION_REPLY = 6, 8
F_CMD_NO, F_CMD_PID, F_LINE_FLAGS, F_HELLO_FLAGS = 9, 10, 11, 18
F_USER, F_UID, F_SERVICE, F_LINE_INDEX, F_PPID = 19, 20, 21, 24, 25
HELLO_SHELL, HELLO_INTERACTIVE = 0x1, 0x2


def u64(v):
    return struct.pack("<Q", v)


# ---------------------------------------------------------------------------------------
# helpers

def shell_env(sock_path, home, preload=True, **extra):
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
        "HOME": str(home),
        "TERM": "xterm",
        "LANG": "C.UTF-8",
        "PS1": PS1,
        "PS2": "CONT> ",
    }
    if preload:
        env["LD_PRELOAD"] = str(PRELOAD)
        env["SHAUDIT_SOCKET"] = str(sock_path)
    env.update(extra)
    return env


def start_shell(d, name, cwd, preload=True):
    sh = PtyShell(SHELLS[name], env=shell_env(d.socket, d.dir, preload), cwd=str(cwd))
    sh.wait_prompt()
    return sh


def probe_env(sock_path):
    return {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "LD_PRELOAD": str(PRELOAD),
            "SHAUDIT_SOCKET": str(sock_path)}


def run_probe(d, *args, timeout=120):
    """Runs interposer_probe with the interposer preloaded; returns (pid, stdout, rc)."""
    p = subprocess.Popen([str(PROBE), *map(str, args)], env=probe_env(d.socket),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = p.communicate(timeout=timeout)
    assert err == "", err
    return p.pid, out, p.returncode


def of(recs, rtype, pid=None):
    return [r for r in recs if r["type"] == rtype and (pid is None or r.get("pid") == pid)]


def texts(recs, pid):
    return [r["text"] for r in of(recs, "command", pid)]


def execs_with(recs, argv):
    return [r for r in of(recs, "exec") if r["argv"] == argv]


def assert_in_order(recs, pid):
    """No loss and nothing out of order for pid; its report numbers only grow."""
    mine = [r for r in recs if r.get("pid") == pid and "report_seq" in r]
    assert of(recs, "loss", pid) == []
    assert [r for r in mine if r.get("report_out_of_order")] == []
    seqs = [r["report_seq"] for r in mine]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs), seqs


def wait_texts(d, pid, n, timeout=15):
    return d.wait_for(lambda rs: len(of(rs, "command", pid)) >= n, timeout)


def paste_all(sh, data, timeout=60):
    """Writes data to the terminal as fast as it takes it, reading the echo meanwhile (a
    blocking write of 64 KiB would deadlock against the shell's blocked echo)."""
    flags = fcntl.fcntl(sh.fd, fcntl.F_GETFL)
    fcntl.fcntl(sh.fd, fcntl.F_SETFL, flags | os.O_NONBLOCK)
    view = memoryview(data)
    deadline = time.monotonic() + timeout
    try:
        while view:
            assert time.monotonic() < deadline, "paste did not finish"
            r, w, _ = select.select([sh.fd], [sh.fd], [], 1)
            if r:
                try:
                    sh.out += os.read(sh.fd, 65536)
                except BlockingIOError:
                    pass
            if w:
                try:
                    view = view[os.write(sh.fd, view[:4096]):]
                except BlockingIOError:
                    pass
    finally:
        fcntl.fcntl(sh.fd, fcntl.F_SETFL, flags)


def come_back(d, sh):
    """Starts shauditd again, waits until the interposer retries, then types `echo back`."""
    d.start()
    time.sleep(RETRY_S)
    sh.line("echo back")


def stop_and_verify(d):
    assert d.stop() == 0, d.stderr()
    v = d.verify()
    assert v.returncode == 0, v.stdout + v.stderr


# Sizes of the interposer's messages (wire.h: 32-byte header, 8-byte field headers, no
# padding; numbers are 8 bytes). Every message starts with the sender's ppid.
HEADER, FIELD, NUM = 32, 8, 16


def hello_size(exe, tty):
    return HEADER + NUM + (FIELD + len(exe)) + NUM + (FIELD + len(tty))


def line_size(shell, cwd, tty, text):
    # ppid, shell, cmd_no, line_index, line_flags, cwd, tty, text
    return HEADER + NUM + (FIELD + len(shell)) + 3 * NUM + (FIELD + len(cwd)) + (FIELD + len(tty)) \
        + (FIELD + len(text))


STATUS_SIZE = HEADER + NUM + 3 * NUM  # ppid, cmd_no, status, duration


# ---------------------------------------------------------------------------------------
# 1. the daemon is not there, goes away, or is away too long

AWAY_LINES = ["echo away-1", "mkdir sub", "cd sub", "pwd", "printf '%s\\n' b a > list.txt",
              "/bin/echo external"]


def type_away_lines(sh):
    for line in AWAY_LINES:
        sh.line(line)


@pytest.mark.parametrize("name", ["dash", "bash"])
def test_daemon_started_after_the_shell_gets_the_held_lines(daemon_factory, work, name):
    # What the shell prints without the interposer, for the same keystrokes, in the same
    # directory.
    d = daemon_factory()  # configured, not running: no socket exists
    ref = start_shell(d, name, work, preload=False)
    type_away_lines(ref)
    ref_out = ref.out
    ref.kill()
    shutil.rmtree(work / "sub")

    assert not d.socket.exists()
    sh = start_shell(d, name, work)
    try:
        type_away_lines(sh)
        # The shell behaved normally and printed nothing extra.
        assert sh.out == ref_out
        assert (work / "sub" / "list.txt").read_text() == "b\na\n"
        come_back(d, sh)
        recs = wait_texts(d, sh.pid, len(AWAY_LINES) + 1)
    finally:
        sh.kill()
    assert texts(recs, sh.pid) == AWAY_LINES + ["echo back"]
    # The backlog began with a hello: an implicit session was opened for the shell before
    # its held lines, and every line belongs to it.
    starts = of(recs, "session_start")
    assert len(starts) == 1
    s = starts[0]
    assert (s["pid"], s["service"], s["exe"], s["uid"], s["user"]) == \
        (sh.pid, "implicit", EXE[name], 0, "root")
    cmds = of(recs, "command", sh.pid)
    assert all(c["session"] == s["session"] and c["seq"] > s["seq"] for c in cmds)
    assert [c["cwd"] for c in cmds] == [str(work)] * 3 + [str(work / "sub")] * 4
    assert [c["command"] for c in cmds] == [f"{sh.pid}.{i}" for i in range(1, 8)]
    # Report 1 was the hello; the lines follow it (bash: each with its exit status).
    step = 2 if name == "bash" else 1
    assert [c["report_seq"] for c in cmds] == [2 + step * i for i in range(7)]
    assert_in_order(recs, sh.pid)
    stop_and_verify(d)


@pytest.mark.parametrize("name", ["dash", "bash"])
def test_daemon_restarted_mid_session_gets_the_lines_typed_meanwhile(daemon_factory, work, name):
    d = daemon_factory().start()
    sh = start_shell(d, name, work)
    try:
        sh.line("echo before")
        wait_texts(d, sh.pid, 1)
        assert d.stop() == 0
        type_away_lines(sh)
        come_back(d, sh)  # the same socket and log
        recs = wait_texts(d, sh.pid, len(AWAY_LINES) + 2)
    finally:
        sh.kill()
    assert texts(recs, sh.pid) == ["echo before"] + AWAY_LINES + ["echo back"]
    run_starts = [r["seq"] for r in recs if r["type"] == "start"]
    assert len(run_starts) == 2
    starts = of(recs, "session_start")
    assert [s["pid"] for s in starts] == [sh.pid, sh.pid]
    assert starts[0]["session"] != starts[1]["session"]
    assert starts[0]["seq"] < run_starts[1] < starts[1]["seq"]
    cmds = of(recs, "command", sh.pid)
    assert cmds[0]["session"] == starts[0]["session"]
    # The second run learnt the shell from the backlog's fresh hello, then got every held
    # line, in order, in the shell's new implicit session.
    assert all(c["session"] == starts[1]["session"] and c["seq"] > starts[1]["seq"] for c in cmds[1:])
    last_before = max(r["report_seq"] for r in recs
                      if r.get("pid") == sh.pid and "report_seq" in r and r["seq"] < run_starts[1])
    # hello = last_before + 1, then the first held line.
    assert cmds[1]["report_seq"] == last_before + 2
    assert_in_order(recs, sh.pid)
    stop_and_verify(d)


@pytest.mark.parametrize("name", ["dash", "bash"])
def test_backlog_overflow_is_one_exact_loss_range(daemon_factory, work, name):
    d = daemon_factory().start()
    sh = start_shell(d, name, work)
    lines = [f": {i:04d} " + "x" * 1000 for i in range(70)]
    try:
        sh.line("echo before")
        first = wait_texts(d, sh.pid, 1)
        assert d.stop() == 0
        for line in lines:
            paste_all(sh, (line + "\r").encode())
            sh.wait_prompt()
        come_back(d, sh)
        recs = d.wait_for(lambda rs: "echo back" in texts(rs, sh.pid))
    finally:
        sh.kill()

    # What the backlog can hold: a fresh hello, then whole reports in order until one does
    # not fit; nothing after that one (the held reports stay a prefix).
    before = of(first, "command", sh.pid)[0]
    tty, cwd = before["tty"], before["cwd"]
    msgs = []  # (size, text or None) of every report made while the daemon was away
    for line in lines:
        msgs.append((line_size(name, cwd, tty, line), line))
        if name == "bash":
            msgs.append((STATUS_SIZE, None))  # the exit status, at the next prompt
    assert sum(size for size, _ in msgs) > BACKLOG
    used, held = hello_size(EXE[name], tty), 0
    for size, _ in msgs:
        if used + size > BACKLOG:
            break
        used += size
        held += 1
    assert 0 < held < len(msgs)
    held_lines = [t for _, t in msgs[:held] if t is not None]

    second_run = [r["seq"] for r in recs if r["type"] == "start"][1]
    last_before = max(r["report_seq"] for r in recs
                      if r.get("pid") == sh.pid and "report_seq" in r and r["seq"] < second_run)
    hello_seq = last_before + 1
    loss = of(recs, "loss", sh.pid)
    assert len(loss) == 1
    new_session = of(recs, "session_start")[-1]["session"]
    assert {k: loss[0][k] for k in ("cause", "first_missing", "last_missing", "missing", "uid",
                                    "session")} == {
        "cause": "report_gap",
        "first_missing": hello_seq + held + 1,
        "last_missing": hello_seq + len(msgs),
        "missing": len(msgs) - held,
        "uid": 0,
        "session": new_session,
    }
    assert texts(recs, sh.pid) == ["echo before"] + held_lines + ["echo back"]
    back = of(recs, "command", sh.pid)[-1]
    assert back["report_seq"] == hello_seq + len(msgs) + 1
    assert back["seq"] > loss[0]["seq"]
    assert [r for r in recs if r.get("report_out_of_order")] == []
    stop_and_verify(d)


# ---------------------------------------------------------------------------------------
# 2. a 64 KiB line

ALNUM = "abcdefghijklmnopqrstuvwxyz0123456789"


@pytest.mark.parametrize("name", ["bash", "dash"])
def test_64k_line(daemon, work, name):
    prefix = ">big.txt echo "
    word = (ALNUM * 2000)[:65536 - len(prefix)]
    line = prefix + word
    assert len(line) == 65536
    sh = start_shell(daemon, name, work)
    try:
        paste_all(sh, (line + "\r").encode())
        sh.wait_prompt(timeout=60)
        sh.line("echo after")
        recs = wait_texts(daemon, sh.pid, 2)
    finally:
        sh.kill()
    big, after = of(recs, "command", sh.pid)
    assert after["text"] == "echo after"
    got = (work / "big.txt").read_text()
    if name == "bash":
        # readline is not limited by the terminal: the whole line arrives, in one record.
        assert got == word + "\n"
        assert big["text"] == line
        assert "truncated" not in big and "truncated_by" not in big and "text_b64" not in big
    else:
        # Canonical mode: the terminal holds 4095 bytes of a line plus its newline; every
        # further byte replaces the last slot until the newline takes it. dash read exactly
        # the first 4095 bytes and a newline: so it echoed those minus the redirection.
        assert got == line[len(prefix):4095] + "\n"
        assert big["text"] == line[:4095]
        assert big["truncated"] is True and big["truncated_by"] == "terminal"
        assert "text_b64" not in big
    assert_in_order(recs, sh.pid)


# ---------------------------------------------------------------------------------------
# 3. invalid UTF-8

@pytest.mark.parametrize("name", ["dash", "bash"])
def test_invalid_utf8_is_kept_exactly(daemon, work, name):
    typed = b"printf '%s\\n' \xff\xfe-x a\x80b \xc3\xa9t\xc3\xa9 > inv.txt"
    sh = start_shell(daemon, name, work)
    try:
        sh.type(typed + b"\r")
        sh.wait_prompt()
        recs = wait_texts(daemon, sh.pid, 1)
    finally:
        sh.kill()
    # The shell received the bytes as typed (printf wrote them back).
    assert (work / "inv.txt").read_bytes() == b"\xff\xfe-x\na\x80b\n\xc3\xa9t\xc3\xa9\n"
    (cmd,) = of(recs, "command", sh.pid)
    assert cmd["text"] == "printf '%s\\n' \ufffd\ufffd-x a\ufffdb \u00e9t\u00e9 > inv.txt"
    assert base64.b64decode(cmd["text_b64"], validate=True) == typed


def test_bash_record_is_what_readline_delivered(daemon, work):
    # A lone lead byte makes readline wait for the rest of a character and rearrange (or
    # drop) bytes: the record holds what bash received and ran (printf shows it), not the
    # keystrokes.
    typed = b"printf '%s\\n' caf\xe9 \xff\xfe-x ok > inv.txt"
    sh = start_shell(daemon, "bash", work)
    try:
        sh.type(typed + b"\r")
        sh.wait_prompt()
        recs = wait_texts(daemon, sh.pid, 1)
    finally:
        sh.kill()
    (cmd,) = of(recs, "command", sh.pid)
    raw = base64.b64decode(cmd["text_b64"], validate=True) if "text_b64" in cmd else cmd["text"].encode()
    head, tail = b"printf '%s\\n' ", b" > inv.txt"
    assert raw.startswith(head) and raw.endswith(tail), raw
    args = raw[len(head):-len(tail)].split()
    assert b"".join(a + b"\n" for a in args) == (work / "inv.txt").read_bytes()
    assert cmd["text"] == raw.decode("utf-8", "replace")


# ---------------------------------------------------------------------------------------
# 4. the program closes or replaces the interposer's descriptor

# What the probe's `fds` run prints with the interposer.
FDS_OUTPUT = [
    # A program says nothing before its first report (no hello): no socket yet.
    "start fd987=closed",
    "after-closefrom fd987=closed",
    "reconnected fd987=socket",
    "after-close-loop fd987=closed",
    "reconnected fd987=socket",
    # its own socket on 987; the interposer reconnected on the lowest fd above it
    "after-dup2 fd987=socket fd988=socket",
    # the program's fd 987 got exactly what it wrote: no report, not closed
    "fd987-read-back=12:program-data",
]


def test_program_closing_or_replacing_the_socket_fd(daemon):
    pid, out, rc = run_probe(daemon, "fds")
    assert rc == 0
    assert out.splitlines() == FDS_OUTPUT
    markers = ["fds-1-start", "fds-2-after-closefrom", "fds-3-after-close-loop",
               "fds-4-after-dup2", "fds-5-end"]
    recs = daemon.wait_for(lambda rs: len(of(rs, "exec", pid)) >= len(markers))
    execs = of(recs, "exec", pid)
    assert [e["argv"] for e in execs] == [["/bin/true", m] for m in markers]
    assert [e["report_seq"] for e in execs] == [1, 2, 3, 4, 5]
    assert all(e["path"] == "/bin/true" for e in execs)
    assert_in_order(recs, pid)


def test_bash_user_descriptors_never_get_reports(daemon, work):
    sh = start_shell(daemon, "bash", work)
    lines = [
        "exec 3>fd3.txt",
        "/bin/true fd3",
        "echo typed",
        "exec 987>fd987.txt",  # over the interposer's socket
        "/bin/true fd987",
        "echo user-data >&987",
        # a child never inherits the shell's socket (env drops the interposer for ls)
        "env -u LD_PRELOAD ls -l /proc/self/fd > lsfd.txt",
    ]
    final = "exec env -u LD_PRELOAD ls -l /proc/self/fd > lsexec.txt"
    try:
        for line in lines:
            sh.line(line)
        sh.type(final + "\r", 0.003)
        assert sh.wait() == 0
    finally:
        sh.kill()
    assert (work / "fd3.txt").read_bytes() == b""
    # bash's own fd 987 is the file it opened, and holds only what bash wrote to it.
    assert (work / "fd987.txt").read_bytes() == b"user-data\n"
    for listing in ("lsfd.txt", "lsexec.txt"):
        fds = (work / listing).read_text()
        assert "/proc/" in fds and "socket:" not in fds, fds
    env_ls = ["env", "-u", "LD_PRELOAD", "ls", "-l", "/proc/self/fd"]
    recs = daemon.wait_for(lambda rs: len(execs_with(rs, env_ls)) == 2)
    assert texts(recs, sh.pid) == lines + [final]
    for arg in ("fd3", "fd987"):
        (e,) = execs_with(recs, ["/bin/true", arg])
        assert e["pid"] != sh.pid and e["ppid"] == sh.pid
    forked, replaced = execs_with(recs, env_ls)
    assert forked["ppid"] == sh.pid
    assert replaced["pid"] == sh.pid  # the exec builtin replaced the shell itself
    # (after which env, a new image in the same process, numbers its reports from 1)
    assert of(recs, "loss") == []
    assert [r for r in recs if r.get("report_out_of_order")] == []


# ---------------------------------------------------------------------------------------
# 5. threads exec'ing at once

@pytest.mark.parametrize("how", ["fork", "spawn"])
def test_threads_exec_concurrently(daemon, how):
    pid, out, rc = run_probe(daemon, f"threads-{how}", 8, 50)
    assert (rc, out) == (0, "ok 400\n")
    recs = daemon.wait_for(lambda rs: len(execs_with(rs, ["/bin/true"])) >= 400, timeout=30)
    time.sleep(0.3)  # nothing more may arrive
    recs = daemon.records()
    execs = execs_with(recs, ["/bin/true"])
    assert len(execs) == 400
    assert of(recs, "loss") == []
    assert [r for r in recs if r.get("report_out_of_order")] == []
    if how == "fork":
        # Each child reported its own exec, as itself, with its own first report number.
        assert len({e["pid"] for e in execs}) == 400
        assert all(e["pid"] != pid and e["ppid"] == pid and e["report_seq"] == 1 for e in execs)
    else:
        # posix_spawn reports in the caller (the child runs no hook): one process, 400
        # consecutive report numbers (a program that is not a shell says no hello).
        assert {e["pid"] for e in execs} == {pid}
        assert sorted(e["report_seq"] for e in execs) == list(range(1, 401))
    assert all(e["path"] == "/bin/true" for e in execs)


# ---------------------------------------------------------------------------------------
# 6. vfork children

def test_vfork_children_report_as_themselves(daemon):
    n = 20
    pid, out, rc = run_probe(daemon, "vfork", n)
    assert rc == 0
    rows = [line.split() for line in out.splitlines()]
    assert rows[-1] == ["parent", str(pid)]
    children = {row[2]: int(row[1]) for row in rows[:-1]}
    assert list(children) == [f"vfork-{i}" for i in range(n)]
    recs = daemon.wait_for(lambda rs: len(of(rs, "exec")) >= n + 1)
    for marker, child in children.items():
        (e,) = execs_with(recs, ["/bin/true", marker])
        assert (e["pid"], e["ppid"], e["report_seq"]) == (child, pid, 1)
    # The parent's numbering did not move: its own exec is its first report.
    (p,) = of(recs, "exec", pid)
    assert (p["argv"], p["report_seq"]) == (["/bin/true", "parent-after-vfork"], 1)
    assert of(recs, "loss") == []
    assert [r for r in recs if r.get("report_out_of_order")] == []
    assert len(children) == len(set(children.values())) and pid not in children.values()


# ---------------------------------------------------------------------------------------
# 7. the exec family, and errno across a failing call

# The probe's `execfamily` calls: these exec in a child, the rest are reported by the caller.
IN_CHILD = ["execl", "execlp", "execle", "execv", "execvp", "execvpe", "execve", "fexecve",
            "execveat"]


def check_exec_family(recs, pid, fexecve_path):
    """One exec record per call of the probe's `execfamily` run (pid): each exec in a child,
    with the path it named (fexecve: the file behind the descriptor), then the caller's own
    reports in call order; nothing else, nothing lost."""
    paths = {"execl": "/bin/echo", "execlp": "/usr/bin/echo", "execle": "/bin/echo",
             "execv": "/bin/echo", "execvp": "/usr/bin/echo", "execvpe": "/usr/bin/echo",
             "execve": "/bin/echo", "fexecve": fexecve_path, "execveat": "/bin/echo"}
    for n in IN_CHILD:
        (e,) = execs_with(recs, ["echo", f"via-{n}"])
        assert e["path"] == paths[n] and e["pid"] != pid and e["ppid"] == pid, (n, e)
    many = ["many"] + [f"a{i}" for i in range(1, 300)]
    # Reported by the caller, in call order after its hello.
    in_caller = [
        (["sh", "-c", "echo via-system"], "/bin/sh"),
        (["sh", "-c", "echo via-popen"], "/bin/sh"),
        (["echo", "via-posix_spawn"], "/bin/echo"),
        (["echo", "via-posix_spawnp"], "/usr/bin/echo"),
        (["shaudit-fail"], "/nonexistent/shaudit-no-such-file"),
        (["shaudit-fail"], "shaudit-no-such-command"),
        (["shaudit-fail"], "/etc/passwd"),
        (["shaudit-fail"], None),  # fexecve(-1): no path to name
        (many, "/nonexistent/shaudit-many-args"),
    ]
    mine = of(recs, "exec", pid)
    assert [(e["argv"], e.get("path")) for e in mine] == in_caller
    assert [e["report_seq"] for e in mine] == list(range(1, 1 + len(in_caller)))
    # One record per call: sh -c ran echo as a builtin (glibc), or the libc's system, popen,
    # execvp and posix_spawnp called its own execve internally (musl).
    assert len(of(recs, "exec")) == len(IN_CHILD) + len(in_caller)
    assert of(recs, "loss") == []


def test_exec_family_reports_exact_argv_and_keeps_errno(daemon):
    pid, out, rc = run_probe(daemon, "execfamily")
    assert rc == 0
    assert out.splitlines() == [f"via-{n}" for n in IN_CHILD] + [
        "via-system",
        "popen-read via-popen",
        "via-posix_spawn",
        "via-posix_spawnp",
        f"execve={errno.ENOENT}",
        f"execvp={errno.ENOENT}",
        f"execv-noexec={errno.EACCES}",
        f"fexecve-badfd={errno.EINVAL}",
        f"execl-300={errno.ENOENT}",
    ]
    daemon.wait_for(lambda rs: len(of(rs, "exec")) >= 18)
    time.sleep(0.3)  # nothing more may arrive
    check_exec_family(daemon.records(), pid, "/usr/bin/echo")


# ---------------------------------------------------------------------------------------
# 8. setuid programs

def test_setuid_program_gets_no_interposer(daemon_factory, public_dir):
    if os.statvfs(public_dir).f_flag & os.ST_NOSUID:
        pytest.skip(f"{public_dir} is on a nosuid filesystem")
    d = public_daemon(daemon_factory, public_dir).start()
    setuid_copy = public_dir / "setuid_probe"
    plain_copy = public_dir / "plain_probe"
    for copy, mode in ((setuid_copy, 0o4755), (plain_copy, 0o755)):
        shutil.copyfile(PROBE, copy)
        os.chown(copy, 0, 0)
        os.chmod(copy, mode)
    assert os.stat(setuid_copy).st_mode & stat.S_ISUID

    def run(copy):
        # setpriv and env run without the interposer; env hands it to the probe alone.
        cmd = AS_NOBODY + ["/usr/bin/env", f"LD_PRELOAD={PRELOAD}", f"SHAUDIT_SOCKET={d.socket}",
                           str(copy), "whoami"]
        p = subprocess.Popen(cmd, env={"PATH": "/usr/bin:/bin"}, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        out, err = p.communicate(timeout=30)
        assert (p.returncode, err) == (0, "")
        return p.pid, out

    try:
        hellos = stats(d)["hellos"]
        suid_pid, suid_out = run(setuid_copy)
        # Secure-execution mode: the loader dropped LD_PRELOAD (and the library); the
        # program ran normally, as root.
        assert suid_out == (f"uid={NOBODY_UID} euid=0 preload=absent ld_preload_env=unset "
                            "shaudit_socket_env=set\n")
        plain_pid, plain_out = run(plain_copy)
        assert plain_out == (f"uid={NOBODY_UID} euid={NOBODY_UID} preload=mapped "
                             "ld_preload_env=set shaudit_socket_env=set\n")
        marker = ["/bin/true", "setuid-probe-marker"]
        recs = d.wait_for(lambda rs: execs_with(rs, marker))
        time.sleep(0.3)
        recs = d.records()
        (e,) = execs_with(recs, marker)  # the plain copy's only
        assert (e["pid"], e["uid"]) == (plain_pid, NOBODY_UID)
        assert [r for r in recs if r.get("pid") == suid_pid] == []
        # Programs that are not shells say no hello (the kernel knows they carry the
        # interposer): neither copy did; the plain one reported its exec, the setuid one nothing.
        assert stats(d)["hellos"] == hellos
    finally:
        setuid_copy.unlink(missing_ok=True)
        plain_copy.unlink(missing_ok=True)
    stop_and_verify(d)


# ---------------------------------------------------------------------------------------
# 9. an unprivileged reporter's claims

OPENER = r"""
import socket, sys
try:  # a kernel audit session of its own (when audit is on), apart from the reporters'
    with open("/proc/self/loginuid", "w") as f:
        f.write("0")
except OSError:
    pass
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.connect(sys.argv[1])
s.send(bytes.fromhex(sys.argv[2]))
print(s.recv(65536).hex(), flush=True)
sys.stdin.read()
"""

SENDER = r"""
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.connect(sys.argv[1])
for m in sys.argv[2:]:
    s.send(bytes.fromhex(m))
print("sent", flush=True)
sys.stdin.read()
"""


def parse_fields(msg):
    fields, off = {}, wire.HEADER.size
    while off < len(msg):
        tag, _, n = wire.FIELD.unpack_from(msg, off)
        off += wire.FIELD.size
        fields[tag] = msg[off:off + n]
        off += n
    return fields


def test_unprivileged_claims_are_not_identity(daemon_factory, public_dir):
    d = public_daemon(daemon_factory, public_dir).start()
    env = {"PATH": "/usr/bin:/bin"}
    # A root session (as PAM opens it) in a process of its own, not an ancestor of the
    # reporters below.
    open_msg = wire.message(SESSION_OPEN, 1, [
        wire.field(F_USER, "root"), wire.field(F_UID, u64(0)),
        wire.field(F_SERVICE, "faults"), wire.field(wire.F_TTY, "/dev/pts/99")])
    opener = subprocess.Popen([PYTHON, "-c", OPENER, str(d.socket), open_msg.hex()], env=env,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    procs = [opener]
    try:
        reply = bytes.fromhex(opener.stdout.readline().strip())
        assert wire.HEADER.unpack_from(reply)[2] == SESSION_REPLY
        token = parse_fields(reply)[wire.F_SESSION].decode()

        def sender(*msgs):
            p = subprocess.Popen(AS_NOBODY + [PYTHON, "-c", SENDER, str(d.socket),
                                              *(m.hex() for m in msgs)],
                                 env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            procs.append(p)
            assert p.stdout.readline() == "sent\n"
            return p

        # A: a line that claims the root session, the opener as its parent and as the
        # shell whose command it is.
        claims = [wire.field(wire.F_SESSION, token), wire.field(F_PPID, u64(opener.pid)),
                  wire.field(F_CMD_PID, u64(opener.pid))]
        a = sender(wire.message(wire.LINE, 1, [
            *claims, wire.field(wire.F_SHELL, "bash"), wire.field(F_CMD_NO, u64(7)),
            wire.field(F_LINE_INDEX, u64(0)), wire.field(F_LINE_FLAGS, u64(0)),
            wire.field(wire.F_TEXT, "claimed line A")]))
        # B: an interactive shell's hello and a line, both claiming the root session.
        b = sender(
            wire.message(wire.HELLO, 1, [
                wire.field(wire.F_EXE, "/usr/bin/bash"), wire.field(wire.F_SESSION, token),
                wire.field(F_HELLO_FLAGS, u64(HELLO_SHELL | HELLO_INTERACTIVE)),
                wire.field(F_PPID, u64(opener.pid)), wire.field(wire.F_TTY, "/dev/pts/99")]),
            wire.message(wire.LINE, 2, [
                *claims, wire.field(wire.F_SHELL, "bash"), wire.field(F_CMD_NO, u64(1)),
                wire.field(wire.F_TEXT, "claimed line B")]))
        d.wait_for(lambda rs: {"claimed line A", "claimed line B"}
                   <= {r.get("text") for r in of(rs, "command")})
    finally:
        for p in procs:
            p.stdin.close()
            p.wait(timeout=10)
    # The opener exited: its session ended.
    recs = d.wait_for(lambda rs: any(r["type"] == "session_end" and r["session"] == token
                                     for r in rs))

    (root_start,) = [r for r in of(recs, "session_start") if r["session"] == token]
    assert (root_start["pid"], root_start["service"], root_start["uid"]) == (opener.pid, "faults", 0)
    (ra,) = [r for r in of(recs, "command") if r["text"] == "claimed line A"]
    (rb,) = [r for r in of(recs, "command") if r["text"] == "claimed line B"]
    # Identity is the kernel's: the sender's pid, uid and gid, its real parent (this test,
    # which setpriv exec'd python for), its own command number.
    me = os.getpid()
    assert {k: ra.get(k) for k in ("pid", "uid", "gid", "user", "ppid", "command")} == {
        "pid": a.pid, "uid": NOBODY_UID, "gid": NOBODY_UID, "user": "nobody", "ppid": me,
        "command": f"{a.pid}.7"}
    assert "ppid_reported" not in ra
    assert "session" not in ra  # in no session: the claimed token is not one
    # B opened a session of its own (an interactive shell outside any session); the
    # claimed token was never used.
    (b_start,) = [r for r in of(recs, "session_start") if r["pid"] == b.pid]
    assert (b_start["uid"], b_start["service"], b_start["ppid"]) == (NOBODY_UID, "implicit", me)
    assert b_start["session"] != token
    assert (rb["pid"], rb["uid"], rb["session"]) == (b.pid, NOBODY_UID, b_start["session"])
    # Nothing but the opener's own records carries the root session.
    assert [r["type"] for r in recs if r.get("session") == token] == ["session_start", "session_end"]
    stop_and_verify(d)


# ---------------------------------------------------------------------------------------
# 10. input that is not a command

SECRET = "Zq7-s3cret-Xw9"


def assert_secret_absent(d, *secrets):
    raw = d.log.read_bytes()
    for s in secrets:
        for form in (s.encode(), base64.b64encode(s.encode())):
            assert form not in raw


def noncmd(recs, pid):
    return [(r["kind"], r["length"]) for r in of(recs, "noncmd_input", pid)]


def test_bash_read_e_and_read_s_are_not_commands(daemon, work):
    sh = start_shell(daemon, "bash", work)
    try:
        # Quoted so that the echo of the command line does not contain the prompt.
        sh.line("read -e -p 'R''E> ' X", prompt="RE> ")
        sh.line(SECRET + "-e")
        sh.line("read -s -p 'R''S> ' Y", prompt="RS> ")
        sh.line(SECRET + "-s")
        sh.line('echo "${#X} ${#Y}"')
        recs = wait_texts(daemon, sh.pid, 3)
    finally:
        sh.kill()
    n = len(SECRET) + 2
    assert sh.out.count(f"{n} {n}\r\n".encode()) == 1  # bash got both, whole
    assert texts(recs, sh.pid) == ["read -e -p 'R''E> ' X", "read -s -p 'R''S> ' Y",
                                   'echo "${#X} ${#Y}"']
    assert noncmd(recs, sh.pid) == [("read_e", n), ("echo_off", n)]
    for r in of(recs, "noncmd_input", sh.pid):
        assert len(r["hash"]) == 16 and "text" not in r
    assert_secret_absent(daemon, SECRET)


def test_dash_echo_off_lines_are_still_commands(daemon, work):
    """`stty -echo` hides what is typed from the screen, not from the audit: the shell's own
    command lines read with echo off are commands (marked echo_off); a program's password
    prompt read with echo off (head here) stays out."""
    sh = start_shell(daemon, "dash", work)
    blind = ": " + SECRET
    try:
        sh.line("stty -echo")
        sh.line(blind)        # the shell reads this line with echo off
        sh.line("stty echo")  # so this one too
        # A program (not the shell) reading the terminal with echo off: not captured.
        sh.line("stty -echo; head -n1 > /dev/null; stty echo", prompt=None)
        time.sleep(0.5)  # head is reading
        sh.line(SECRET + "-head")
        sh.line("echo after")
        recs = daemon.wait_for(lambda rs: "echo after" in texts(rs, sh.pid))
    finally:
        sh.kill()
    assert texts(recs, sh.pid) == ["stty -echo", blind, "stty echo",
                                   "stty -echo; head -n1 > /dev/null; stty echo", "echo after"]
    echo_off = [c["text"] for c in of(recs, "command", sh.pid) if c.get("echo_off")]
    assert echo_off == [blind, "stty echo"]
    assert noncmd(recs, sh.pid) == []
    assert_secret_absent(daemon, SECRET + "-head")
    # The blind "stty echo" still ran.
    assert [e["argv"] for e in of(recs, "exec") if e["argv"][0] in ("stty", "head")] == [
        ["stty", "-echo"], ["stty", "echo"], ["stty", "-echo"], ["head", "-n1"], ["stty", "echo"]]


def test_zsh_vared_is_not_a_command(daemon, work):
    sh = start_shell(daemon, "zsh", work)
    try:
        sh.line("X=; vared -p 'V''A> ' X", prompt="VA> ")
        sh.line(SECRET)
        sh.line('echo "${#X}"')
        recs = wait_texts(daemon, sh.pid, 2)
    finally:
        sh.kill()
    assert f"\r\n{len(SECRET)}\r\n".encode() in sh.out
    assert texts(recs, sh.pid) == ["X=; vared -p 'V''A> ' X", 'echo "${#X}"']
    assert noncmd(recs, sh.pid) == [("vared", len(SECRET))]
    assert_secret_absent(daemon, SECRET)
