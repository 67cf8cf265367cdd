# SPDX-License-Identifier: Apache-2.0
"""Never silent: programs reading a terminal in an audited session whose lines no interposer
captures exactly — a static shell (busybox), fish, tcsh, yash, `cat | sh`, `bash /dev/tty`, a
shell in a terminal mode its hook does not see — get a `capture` record naming them
(`capture: "none"`, the exe and why) and every line they read as a `command` record rebuilt
from the bytes the kernel handed them (`reconstructed: true`, the raw `keys`). shauditd runs
with `bpf: on`; real programs on real pseudo-terminals inside an audited bash."""
import os
import shutil
import subprocess
import time

import pytest

from conftest import built
from ptyshell import PtyShell
from test_capture import PRELOAD, SHELLS, shell_env
from test_crosscheck import bypasses, cc_daemon

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (eBPF)"),
    pytest.mark.skipif(not built(PRELOAD).exists(), reason="build the interposer first"),
]

BS, LEFT, UP = "\x7f", "\x1b[D", "\x1b[A"
CTRL_B, CTRL_E, CTRL_U, CTRL_W = "\x02", "\x05", "\x15", "\x17"
LONG = "x" * 900  # busybox's line editor keeps 1024 bytes a line


def of(recs, kind, pid=None):
    return [r for r in recs if r["type"] == kind and (pid is None or r.get("pid") == pid)]


def rebuilt(recs, pid=None):
    return [r for r in of(recs, "command", pid) if r.get("reconstructed")]


def type_keys(sh, keys, delay=0.003):
    """Types keys one byte at a time, reading what the program writes meanwhile (fish redraws
    the whole line at each key: a full terminal buffer would stop it)."""
    for b in keys.encode():
        os.write(sh.fd, bytes([b]))
        time.sleep(delay)
        sh._read(0)


def recall_key(name):
    return "\x10" if name == "yash" else UP  # (^P: yash knows the cursor keys only in keypad mode)


def rebuilt_recall(recs, pid, name):
    (r,) = [r for r in rebuilt(recs, pid) if r["keys"][:-1] == recall_key(name)]
    return r


def audited_bash(d, work):
    sh = PtyShell(SHELLS["bash"], env=shell_env(d), cwd=str(work))
    sh.wait_prompt()
    return sh


def child_pid(recs, parent, exe):
    """The pid of the exec record of exe started by parent (the kernel's)."""
    xs = [r for r in of(recs, "exec") if r["ppid"] == parent and r["path"] == exe]
    assert xs, (parent, exe)
    return xs[-1]["pid"]


# The lines typed, and the exact line each must be rebuilt as. The shells' own behaviour is
# checked too: each line writes a file whose content shows what the shell ran.
def typed_lines(name):
    lines = [
        ("echo typo" + BS * 4 + "fixed > f1.txt", "echo fixed > f1.txt", "f1.txt", "fixed"),
        # (yash knows the cursor keys only in keypad mode: ^B, backward-char, there)
        ("echo helo" + (CTRL_B if name == "yash" else LEFT) + "l" + CTRL_E + " > f2.txt",
         "echo hello > f2.txt", "f2.txt", "hello"),
        ("echo gone" + CTRL_U + "echo kept > f3.txt", "echo kept > f3.txt", "f3.txt", "kept"),
        ('echo "héllo wörld ✓" > f5.txt', 'echo "héllo wörld ✓" > f5.txt', "f5.txt", "héllo wörld ✓"),
        ("echo " + LONG + " > f6.txt", "echo " + LONG + " > f6.txt", "f6.txt", LONG),
    ]
    if name != "tcsh":  # (tcsh's ^W kills the region, not the word)
        lines.insert(3, ("echo one two" + CTRL_W + "three > f4.txt", "echo one three > f4.txt",
                         "f4.txt", "one three"))
    # A command over several lines: each physical line is rebuilt as it was typed.
    loop = {"fish": ["for i in a b", "echo $i >> f8.txt", "end"],
            "tcsh": ["foreach i (a b)", "echo $i >> f8.txt", "end"]}.get(
                name, ["for i in a b", "do echo $i >> f8.txt", "done"])
    for i, part in enumerate(loop):
        lines.append((part, part, "f8.txt" if i == len(loop) - 1 else None, "a\nb"))
    return lines


UNHOOKED = {
    # name: (command typed in bash, exe, the image carries the interposer)
    "busybox": ("busybox sh", "/usr/bin/busybox", False),
    "fish": ("fish --no-config", "/usr/bin/fish", True),
    "tcsh": ("tcsh -f", "/usr/bin/tcsh", True),
    "yash": ("yash", "/usr/bin/yash", True),
}


@pytest.mark.parametrize("name", list(UNHOOKED))
def test_a_shell_without_a_hook_is_named_and_its_lines_rebuilt(daemon_factory, work, name):
    start, exe, hooked = UNHOOKED[name]
    if not shutil.which(exe):
        pytest.skip(f"{exe} is not installed (Debian package {name if name != 'busybox' else 'busybox-static'})")
    d = cc_daemon(daemon_factory)
    sh = audited_bash(d, work)
    lines = typed_lines(name)
    try:
        sh.line(start, prompt=None)
        time.sleep(1.5)  # it starts, sets its terminal up, prints its prompt
        recs = d.wait_for(lambda rs: any(r["path"] == exe for r in of(rs, "exec")))
        pid = child_pid(recs, sh.pid, exe)
        for i, (keys, text, _, _) in enumerate(lines):
            type_keys(sh, keys + "\r")
            d.wait_for(lambda rs: len(rebuilt(rs, pid)) >= i + 1, timeout=10)
        sh.type("getconf PAGESIZE >> f7.txt\r")  # an external program (not a busybox applet)
        d.wait_for(lambda rs: len(rebuilt(rs, pid)) >= len(lines) + 1, timeout=10)
        type_keys(sh, recall_key(name) + "\r")  # runs getconf again
        d.wait_for(lambda rs: len(rebuilt(rs, pid)) >= len(lines) + 2, timeout=10)
        sh.type("exit\r")
        sh.wait_prompt()
        sh.line("true")
        recs = d.wait_for(lambda rs: len(rebuilt(rs, pid)) >= len(lines) + 3, timeout=10)
    finally:
        sh.kill()
    got = [r for r in rebuilt(recs, pid) if r is not rebuilt_recall(recs, pid, name)]
    assert [r["text"] for r in got] == [t for _, t, _, _ in lines] + [
        "getconf PAGESIZE >> f7.txt", "exit"]
    session = of(recs, "command", sh.pid)[0]["session"]
    for r in got:
        assert r["shell"] == os.path.basename(exe) and r["session"] == session
        assert r["raw_mode"] is True and r["uid"] == 0 and r["user"] == "root"
        assert r["keys"].rstrip("\r\n") == r["keys"][:-1]  # the keys as typed, Enter last
    assert got[0]["keys"][:-1] == lines[0][0]  # backspaces and all
    # What the shell ran is what the record says.
    for _, _, f, content in lines:
        if f:
            assert (work / f).read_text(encoding="utf-8") == content + "\n", f
    # History recall: the rebuild cannot know the recalled line; it says so, with the keys.
    recall = rebuilt_recall(recs, pid, name)
    assert recall["text"] == "" and recall["unknown_keys"] is True
    pages = (work / "f7.txt").read_text().split()  # (yash sets noclobber: appended)
    assert len(pages) == 2 and pages[0].isdigit() and pages[0] == pages[1]
    # One capture record, before its first line, naming it and why.
    caps = of(recs, "capture", pid)
    assert len(caps) == 1, caps
    c = caps[0]
    assert recs.index(c) < recs.index(got[0])
    assert c["capture"] == "none" and c["exe"] == exe and c["interposer"] is hooked
    assert c["session"] == session and c["tty"] == got[0]["tty"]
    bash_line = [r for r in of(recs, "command", sh.pid) if r["text"] == start][0]
    assert c["command"] == bash_line["command"]  # what it was started for
    # The external program a rebuilt line started names that line (the kernel's order).
    env = [r for r in of(recs, "exec") if r["argv"] == ["getconf", "PAGESIZE"]]
    assert [r["command"] for r in env] == [got[len(lines)]["command"], recall["command"]], env
    # A static shell started in the session is a bypass; a dynamically linked one, not.
    own = [b for b in bypasses(recs) if b["pid"] == pid]
    if hooked:
        assert own == []
    else:
        assert [(b["kind"], b["exe"], b["argv"]) for b in own] == [
            ("unhooked_process", exe, start.split())]
        assert own[0]["command"] == bash_line["command"]


def wait_rebuilt_text(d, text, timeout=10):
    return d.wait_for(lambda rs: any(r["text"] == text for r in rebuilt(rs)), timeout)


def test_a_terminal_mode_the_hook_does_not_see_is_a_bypass_within_a_second(daemon_factory, work):
    """bash without its line editor in non-canonical mode reads a key per read(): the
    interposer reports nothing, the kernel's bytes give the line and an uncaptured_input
    bypass, within 1 s of its Enter. A builtin with a redirection: no exec at all."""
    d = cc_daemon(daemon_factory)
    sh = audited_bash(d, work)
    try:
        sh.line("set +o emacs; stty -icanon")
        sh.line("echo hidden > hidden.txt")
        entered = time.monotonic()
        recs = d.wait_for(lambda rs: bypasses(rs, "uncaptured_input"), timeout=5)
        took = time.monotonic() - entered
        sh.line("stty icanon; set -o emacs")
        sh.line("true")
        recs = wait_rebuilt_text(d, "stty icanon; set -o emacs")
    finally:
        sh.kill()
    assert took < 1.0, took
    assert (work / "hidden.txt").read_text() == "hidden\n"
    got = rebuilt(recs, sh.pid)
    assert [r["text"] for r in got] == ["echo hidden > hidden.txt", "stty icanon; set -o emacs"]
    assert got[0]["raw_mode"] is True and got[0]["shell"] == "bash"
    b = bypasses(recs, "uncaptured_input")
    assert [(x["pid"], x["severity"], x["command"]) for x in b] == [
        (sh.pid, "high", got[0]["command"]), (sh.pid, "high", got[1]["command"])]
    assert recs.index(got[0]) < recs.index(b[0])
    # The lines the interposer did report are not doubled from the kernel's bytes.
    reported = [r["text"] for r in of(recs, "command", sh.pid) if not r.get("reconstructed")]
    assert reported == ["set +o emacs; stty -icanon", "true"]
    assert of(recs, "capture") == []


@pytest.mark.parametrize("how", ["cat | sh", "bash /dev/tty"])
def test_commands_fed_to_a_shell_from_the_terminal_are_recorded(daemon_factory, work, how):
    """`cat | sh`: the typed text reaches sh through a pipe, read from the terminal by cat;
    `bash /dev/tty`: bash reads its script from the terminal. Either way the typed lines are
    recorded (rebuilt from what the terminal gave the reader, which the capture record names)."""
    d = cc_daemon(daemon_factory)
    sh = audited_bash(d, work)
    reader = "cat" if how.startswith("cat") else "bash"
    try:
        sh.line(how, prompt=None)
        time.sleep(0.5)
        sh.type("echo fed > fed.txt\r")
        recs = wait_rebuilt_text(d, "echo fed > fed.txt")
        sh.type("\x04")
        sh.wait_prompt()
    finally:
        sh.kill()
    assert (work / "fed.txt").read_text() == "fed\n"
    (r,) = rebuilt(recs)
    assert r["shell"] == reader and r["keys"] == "echo fed > fed.txt\n" and "raw_mode" not in r
    (c,) = of(recs, "capture")
    assert c["pid"] == r["pid"] and c["capture"] == "none" and c["interposer"] is True
    assert c["exe"] == shutil.which(reader)
    assert ("not as an interactive shell" in c["reason"]) == (reader == "bash")
    assert bypasses(recs) == []


SECRET = "Kq4-s3cret-Zp2"


def test_a_programs_password_prompt_stays_out(daemon_factory, work):
    """What a program reads in canonical mode with echo off (a password prompt) is not rebuilt;
    the shell's own lines around it are captured exactly, so nothing is rebuilt at all."""
    d = cc_daemon(daemon_factory)
    sh = audited_bash(d, work)
    try:
        sh.line("stty -echo; head -n1 > /dev/null; stty echo", prompt=None)
        time.sleep(0.5)
        sh.line(SECRET)
        sh.line("echo after")
        recs = d.wait_for(lambda rs: any(r.get("text") == "echo after" for r in of(rs, "command")))
        time.sleep(0.6)  # past the cross-check window
        recs = d.records()
    finally:
        sh.kill()
    assert SECRET.encode() not in d.log.read_bytes()
    assert rebuilt(recs) == [] and of(recs, "capture") == []


def test_exactly_captured_programs_get_no_capture_record(daemon_factory, work):
    """bash (readline: edits, recall, completion), dash, zsh and python3's REPL: their lines
    are reported exactly; the kernel's bytes add nothing (no capture record, no rebuilt line,
    no bypass)."""
    d = cc_daemon(daemon_factory)
    sh = audited_bash(d, work)
    try:
        sh.line("echo helo" + LEFT + "l" + CTRL_E + " > a.txt")
        sh.line("\x1b[A")  # recall
        sh.line("cat a.t\t")  # completion
        for inner, argv in (("dash", "dash -i"), ("zsh", "zsh -f -i")):
            sh.line(argv)
            sh.line(f"echo in {inner}")
            sh.line("exit")
        sh.line("/usr/bin/python3 -q", prompt=">>> ")
        sh.line("x = 1 + 2", prompt=">>> ")
        sh.line("exit()")
        sh.line("echo last")
        recs = d.wait_for(lambda rs: any(r.get("text") == "echo last" for r in of(rs, "command")))
        time.sleep(0.8)  # past the cross-check window
        recs = d.records()
    finally:
        sh.kill()
    texts = [r["text"] for r in of(recs, "command")]
    for t in ("echo hello > a.txt", "cat a.txt ", "echo in dash", "echo in zsh", "x = 1 + 2",
              "echo last"):
        assert t in texts, (t, texts)
    assert rebuilt(recs) == [] and of(recs, "capture") == []
    assert bypasses(recs) == []


MUX = {
    # name: (start a detached pane running an audited bash, type a line into it, stop it)
    "tmux": ("tmux -S {w}/mux.sock new-session -d -s t -x 80 -y 24 'bash --norc --noprofile -i'",
             "tmux -S {w}/mux.sock send-keys -t t 'echo in-pane > pane.txt' Enter",
             "tmux -S {w}/mux.sock kill-server"),
    "screen": ("screen -dmS shaudit-test-{p} bash --norc --noprofile -i",
               "screen -S shaudit-test-{p} -X stuff 'echo in-pane > pane.txt\\n'",
               "screen -S shaudit-test-{p} -X quit"),
}


@pytest.mark.parametrize("mux", list(MUX))
def test_a_multiplexer_pane_opened_in_a_session_is_in_that_session(daemon_factory, work, mux):
    """The multiplexer's server is forked from the session, so the kernel follows it and the
    shells in its panes: their lines are that session's (same session id, not a new implicit
    one), whoever later types into the pane."""
    if not shutil.which(mux):
        pytest.skip(f"{mux} is not installed")
    d = cc_daemon(daemon_factory)
    sh = audited_bash(d, work)
    start, send, stop = (c.format(w=work, p=os.getpid()) for c in MUX[mux])
    try:
        sh.line(start)
        time.sleep(1.0)  # the pane's shell starts
        sh.line(send)
        recs = d.wait_for(lambda rs: any(r.get("text") == "echo in-pane > pane.txt"
                                         for r in of(rs, "command")))
        sh.line(stop)
    finally:
        sh.kill()
    assert (work / "pane.txt").read_text() == "in-pane\n"
    outer = of(recs, "command", sh.pid)[0]
    (pane,) = [r for r in of(recs, "command") if r["text"] == "echo in-pane > pane.txt"]
    assert pane["pid"] != sh.pid and pane["shell"] == "bash"
    assert pane["session"] == outer["session"]
    assert [r["session"] for r in of(recs, "session_start")] == [outer["session"]]
    assert rebuilt(recs) == [] and bypasses(recs) == []


def test_a_pane_of_a_server_started_elsewhere_is_not_the_attachers(daemon_factory, work):
    """A tmux server started outside the audited session (here by the test, as a user's
    systemd service would): its pane's shell opens an implicit session of its own, and what is
    typed into that pane from the audited session (send-keys, as an attached client types) is
    recorded there, not in the session of whoever attached."""
    d = cc_daemon(daemon_factory)
    sockp = work / "outside.sock"
    env = shell_env(d)
    subprocess.run(["tmux", "-S", str(sockp), "new-session", "-d", "-s", "o", "-x", "80", "-y", "24",
                    "bash --norc --noprofile -i"], env=env, cwd=str(work), check=True)
    sh = audited_bash(d, work)
    try:
        time.sleep(1.0)
        sh.line(f"tmux -S {sockp} send-keys -t o 'echo outside > out.txt' Enter")
        recs = d.wait_for(lambda rs: any(r.get("text") == "echo outside > out.txt"
                                         for r in of(rs, "command")))
    finally:
        sh.kill()
        subprocess.run(["tmux", "-S", str(sockp), "kill-server"], check=False)
    outer = of(recs, "command", sh.pid)[0]
    (pane,) = [r for r in of(recs, "command") if r["text"] == "echo outside > out.txt"]
    assert pane["session"] != outer["session"]
    starts = {r["session"]: r for r in of(recs, "session_start")}
    assert starts[pane["session"]]["service"] == "implicit"
    assert starts[pane["session"]]["pid"] == pane["pid"]
