# SPDX-License-Identifier: Apache-2.0
"""Host capture: real dash, bash, zsh, ksh93 and mksh on real pseudo-terminals with the interposer
preloaded, reporting to a real shauditd. Every typed line must arrive byte-exact, in order,
with the execs it caused linked to it and its exit status."""

import os
import time

import pytest

from conftest import PRELOAD, run_cli
from ptyshell import PS1, PS2, PtyShell

SHELLS = {
    "dash": ["/bin/dash", "-i"],
    "bash": ["/bin/bash", "--norc", "--noprofile", "-i"],
    "zsh": ["/bin/zsh", "-f", "-i"],
    # ksh93u+m: each command is taken from its history-file write (exact in every mode).
    "ksh-emacs": ["/usr/bin/ksh", "-o", "emacs", "-i"],
    "ksh-vi": ["/usr/bin/ksh", "-o", "vi", "-i"],
    # mksh: rebuilt from the keys its editor read (preload/lineedit.c); its prompts come from
    # $ENV (mksh does not take PS1 from the environment).
    "mksh-emacs": ["/usr/bin/mksh", "-o", "emacs", "-i"],
    "mksh-vi": ["/usr/bin/mksh", "-o", "vi", "-i"],
    # mksh without an editor: canonical lines, one byte a read (like its read builtin).
    "mksh-noedit": ["/usr/bin/mksh", "+o", "emacs", "+o", "vi", "-i"],
}
# The name the interposer reports for each (the executable's: /usr/bin/ksh -> ksh93).
SHELL_NAME = {"ksh-emacs": "ksh93", "ksh-vi": "ksh93", "mksh-emacs": "mksh", "mksh-vi": "mksh",
              "mksh-noedit": "mksh"}
# The terminal edits these shells' lines (canonical mode): no cursor keys, no recall, no
# completion.
NO_EDITOR = ("dash", "mksh-noedit")
UP, LEFT, BS, ESC = "\x1b[A", "\x1b[D", "\x7f", "\x1b"


def shell_env(daemon, **extra):
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
        "HOME": str(daemon.dir),
        "TERM": "xterm",
        "LANG": "C.UTF-8",
        "PS1": PS1,
        "PS2": PS2,
        "LD_PRELOAD": str(PRELOAD),
        "SHAUDIT_SOCKET": str(daemon.socket),
    }
    env.update(extra)
    return env


def start_shell(daemon, name, cwd, **extra):
    if name.startswith("mksh"):
        rc = cwd / ".mkshrc-test"
        rc.write_text(f"PS1='{PS1}'\nPS2='{PS2}'\n")
        extra.setdefault("ENV", str(rc))
    sh = PtyShell(SHELLS[name], env=shell_env(daemon, **extra), cwd=str(cwd))
    sh.wait_prompt()
    return sh


def type_keys(sh, keys, delay=0.003):
    """Types keys as a terminal sends them: each character's bytes in one write (ksh93u+m's
    emacs editor garbles a UTF-8 character whose bytes arrive in separate reads, with or
    without the interposer)."""
    for ch in keys:
        os.write(sh.fd, ch.encode())
        time.sleep(delay)


def commands_of(records, pid):
    return [r for r in records if r["type"] == "command" and r["pid"] == pid]


def wait_commands(daemon, pid, n, timeout=10):
    return commands_of(daemon.wait_for(lambda rs: len(commands_of(rs, pid)) >= n, timeout), pid)


# The seed's acceptance lines plus the cases the issue names. Each entry: what to type
# (keystrokes), the prompt to wait for after it, and the exact line the shell received.
def script(name, work):
    vi = name.endswith("-vi")
    # vi: ESC puts the cursor on the last character, `i` inserts before it, `k` recalls.
    left_edit = "echo helo" + (ESC + "i" if vi else LEFT) + "l" + "\r"
    edit = [(left_edit, PS1, "echo hello")] if name not in NO_EDITOR else []
    long_line = "echo " + "x" * 1500 + " > long.txt"
    # ksh93u+m's vi editor keeps 1013 bytes of a line and drops the rest (with a bell): the
    # shell runs the cut line, and that is what is recorded.
    long_ran = long_line[:1013] if name == "ksh-vi" else long_line
    steps = [
        ("ls /bin > /dev/null\r", PS1, "ls /bin > /dev/null"),
        ("mkdir " + str(work / "hellofalco") + "\r", PS1, "mkdir " + str(work / "hellofalco")),
        ('echo "hello world" > example.txt\r', PS1, 'echo "hello world" > example.txt'),
        # backspace and ^U are applied before the shell sees the line
        ("echo typo" + BS * 4 + "fixed\r", PS1, "echo fixed"),
        ("echo gone\x15echo kept\r", PS1, "echo kept"),
        *edit,
        ("false\r", PS1, "false"),
        ("printf 'b\\na\\n' | sort > sorted.txt 2>/dev/null\r", PS1,
         "printf 'b\\na\\n' | sort > sorted.txt 2>/dev/null"),
        ("for i in a b\r", PS2, "for i in a b"),
        ("do echo $i >> loop.txt\r", PS2, "do echo $i >> loop.txt"),
        ("done\r", PS1, "done"),
        ("cat <<EOF > heredoc.txt\r", PS2, "cat <<EOF > heredoc.txt"),
        ("line one\r", PS2, "line one"),
        ("EOF\r", PS1, "EOF"),
        ('echo "héllo wörld ✓" > utf8.txt\r', PS1, 'echo "héllo wörld ✓" > utf8.txt'),
    ]
    if name not in NO_EDITOR:
        recall = (ESC + "k" if vi else UP) + "\r"
        steps.append((recall, PS1, 'echo "héllo wörld ✓" > utf8.txt'))  # history recall
        steps.append(("cat heredo\t> tab.txt\r", PS1, "cat heredoc.txt > tab.txt"))  # completion
    steps.append((long_line + "\r", PS1, long_ran))
    return steps


@pytest.mark.parametrize("name", ["dash", "bash", "zsh", "ksh-emacs", "ksh-vi", "mksh-emacs",
                                  "mksh-vi", "mksh-noedit"])
def test_typed_lines_arrive_exactly(daemon, work, name):
    sh = start_shell(daemon, name, work)
    steps = script(name, work)
    try:
        for keys, prompt, _ in steps:
            type_keys(sh, keys)
            sh.wait_prompt(prompt)
    finally:
        sh.exit()
    expected = [text for _, _, text in steps] + ["exit"]
    cmds = wait_commands(daemon, sh.pid, len(expected))
    assert [c["text"] for c in cmds] == expected
    for c in cmds:
        assert c["shell"] == SHELL_NAME.get(name, name)
        assert c["user"] == "root" and c["uid"] == 0
        assert c["cwd"] == str(work)
        assert c["session"] == cmds[0]["session"]

    # The shell behaved exactly as without the interposer.
    assert (work / "hellofalco").is_dir()
    assert (work / "example.txt").read_text() == "hello world\n"
    assert (work / "sorted.txt").read_text() == "a\nb\n"
    assert (work / "loop.txt").read_text() == "a\nb\n"
    assert (work / "heredoc.txt").read_text() == "line one\n"
    assert (work / "utf8.txt").read_text(encoding="utf-8") == "héllo wörld ✓\n"
    if name not in NO_EDITOR:
        assert (work / "tab.txt").read_text() == "line one\n"
    if name != "ksh-vi":
        assert (work / "long.txt").read_text() == "x" * 1500 + "\n"

    recs = daemon.records()
    by_text = {}
    for c in cmds:
        by_text.setdefault(c["text"], c)
    # Execs are linked to the command that caused them.
    execs = [r for r in recs if r["type"] == "exec" and r.get("session") == cmds[0]["session"]]
    ls = [e for e in execs if e["argv"] == ["ls", "/bin"]]
    assert len(ls) == 1 and ls[0]["command"] == by_text["ls /bin > /dev/null"]["command"]
    mk = [e for e in execs if e["argv"][0] == "mkdir"]
    assert mk[0]["argv"] == ["mkdir", str(work / "hellofalco")]
    assert mk[0]["command"] == by_text["mkdir " + str(work / "hellofalco")]["command"]
    sort = [e for e in execs if e["argv"] == ["sort"]]
    assert sort and sort[0]["command"] == by_text["printf 'b\\na\\n' | sort > sorted.txt 2>/dev/null"]["command"]
    # echo is a builtin: its line is recorded, and it caused no exec.
    echo_cmd = by_text['echo "hello world" > example.txt']["command"]
    assert not [e for e in execs if e.get("command") == echo_cmd]

    # Continuation lines are grouped with the command they continue (bash, zsh and ksh93's
    # history say which lines continue a command; dash and mksh do not, so each of their
    # lines stands alone).
    if name == "dash" or name.startswith("mksh"):
        rc = daemon.stop()
        assert rc == 0 and daemon.verify().returncode == 0
        return
    loop = [c for c in cmds if c["text"] in ("for i in a b", "do echo $i >> loop.txt", "done")]
    assert len({c["command"] for c in loop}) == 1
    assert [c.get("line_index", 0) for c in loop] == [0, 1, 2]
    heredoc = [c for c in cmds if c["text"] in ("cat <<EOF > heredoc.txt", "line one", "EOF")]
    assert len({c["command"] for c in heredoc}) == 1

    # Exit statuses (bash and zsh expose them) reference their command.
    if name in ("bash", "zsh"):
        statuses = {r["command"]: r for r in recs if r["type"] == "command_status"}
        assert statuses[by_text["false"]["command"]]["exit_status"] == 1
        assert statuses[by_text["ls /bin > /dev/null"]["command"]]["exit_status"] == 0
        assert statuses[by_text["false"]["command"]]["duration_ns"] > 0

    rc = daemon.stop()
    assert rc == 0
    assert daemon.verify().returncode == 0


def test_sessions_and_tree_views(daemon, work):
    sh = start_shell(daemon, "bash", work)
    try:
        sh.line("ls /bin > /dev/null")
        sh.line("false")
        sh.line("for i in 1 2", prompt=PS2)
        sh.line("do /bin/true $i", prompt=PS2)
        sh.line("done")
    finally:
        sh.exit()
    recs = daemon.wait_for(lambda rs: any(r["type"] == "session_end" for r in rs))
    start = next(r for r in recs if r["type"] == "session_start")
    end = next(r for r in recs if r["type"] == "session_end")
    sid = start["session"]
    assert start["service"] == "implicit" and start["user"] == "root" and start["pid"] == sh.pid
    assert start["tty"].startswith("/dev/pts/")
    assert end["session"] == sid and end["reason"] == "entry_exit"
    assert end["commands"] == 4 and end["failed_commands"] == 1
    execs = {tuple(r["argv"]): r for r in recs if r["type"] == "exec"}

    res = run_cli("sessions", daemon.log)
    assert res.returncode == 0
    row = [l for l in res.stdout.splitlines() if l.startswith(sid)]
    assert len(row) == 1
    cols = row[0].split()
    assert cols[1:4] == ["root", "implicit", start["tty"]]
    assert cols[-3:] == ["4", "0x2", "1x1"]

    res = run_cli("show", daemon.log, "--session", sid, "--tree")
    assert res.returncode == 0, res.stderr
    out = res.stdout.splitlines()
    assert out[0].startswith(f"session {sid}  root (uid 0)  implicit")
    assert out[1].startswith("├─ $ ls /bin > /dev/null  => exit 0 in ")
    assert out[2] == f"│    └─ [{execs[('ls', '/bin')]['pid']}] ls /bin"
    assert out[3].startswith("├─ $ false  => exit 1 in ")
    assert out[4] == "├─ $ for i in 1 2"
    assert out[5] == "│  > do /bin/true $i"
    assert out[6].startswith("│  > done  => exit 0 in ")
    assert out[7] == f"│    └─ [{execs[('/bin/true', '1')]['pid']}] /bin/true 1"
    assert out[8] == f"│    └─ [{execs[('/bin/true', '2')]['pid']}] /bin/true 2"
    assert out[9] == "├─ $ exit"
    assert out[10].startswith("└─ ended (entry_exit) after ") and out[10].endswith(": 4 commands, 1 failed")


@pytest.mark.parametrize("argv", [
    ["/bin/bash", "--norc", "--noprofile", "-o", "vi"],
    ["/bin/bash", "--rcfile", "RC", "+o", "emacs", "-O", "extglob"],
    ["/bin/bash", "--init-file", "RC", "-o", "emacs"],
    ["/bin/zsh", "-o", "vi", "-f"],
    ["/bin/dash", "-o", "vi"],
], ids=lambda a: " ".join(a[1:]))
def test_a_shell_started_with_option_values_is_interactive(daemon, work, argv):
    """`bash -o vi`, `zsh -o vi`: the option's value is no script name. Before, such a shell
    opened no session and its lines went unrecorded."""
    rc = work / "rc"
    rc.write_text(f"PS1='{PS1}'\n")
    argv = [str(rc) if a == "RC" else a for a in argv]
    sh = PtyShell(argv, env=shell_env(daemon), cwd=str(work))
    try:
        sh.wait_prompt()
        sh.line("echo typed > typed.txt")
    finally:
        sh.exit()
    recs = daemon.wait_for(lambda rs: any(r["type"] == "session_end" for r in rs))
    start, = [r for r in recs if r["type"] == "session_start"]
    assert (start["service"], start["pid"]) == ("implicit", sh.pid)
    assert [r["text"] for r in recs if r["type"] == "command"] == ["echo typed > typed.txt", "exit"]
    assert (work / "typed.txt").read_text() == "typed\n"


@pytest.mark.parametrize("name,extra,read_recorded", [
    ("ksh-emacs", {}, False),
    ("ksh-vi", {}, False),
    # ksh93 with its history on /dev/null: still written to, still exact.
    ("ksh-emacs", {"HISTFILE": "/dev/null"}, False),
    # ksh93 with no history file at all: the lines come from the emulation of its editor, which
    # also reads the read builtin's input (raw, like a command line): that input is recorded as
    # a line (flagged SHAUDIT_LINE_EDITOR | SHAUDIT_LINE_EDITOR_UNSURE on the wire).
    ("ksh-emacs", {"HISTFILE": "/nonexistent/dir/history"}, True),
    ("mksh-emacs", {}, False),
    ("mksh-vi", {}, False),
    ("mksh-noedit", {}, False),
], ids=["ksh-emacs", "ksh-vi", "ksh-histfile-devnull", "ksh-no-histfile", "mksh-emacs",
        "mksh-vi", "mksh-noedit"])
def test_ksh_and_mksh_read_builtin_input_is_no_command(daemon, work, name, extra, read_recorded):
    """ksh93: the read builtin's input goes through the line editor too, but never into the
    history file; mksh: its read builtin reads in canonical mode, one byte at a time, as its
    command lines do without an editor (told apart by the window-size question before each
    prompt)."""
    sh = start_shell(daemon, name, work, **extra)
    try:
        type_keys(sh, "read x\r")
        sh.expect("read x")
        time.sleep(0.3)
        type_keys(sh, "secret words\r")
        sh.wait_prompt()
        type_keys(sh, "echo $x > got.txt\r")
        sh.wait_prompt()
    finally:
        sh.exit()
    expected = ["read x"] + (["secret words"] if read_recorded else []) + [
        "echo $x > got.txt", "exit"]
    cmds = wait_commands(daemon, sh.pid, len(expected))
    assert [c["text"] for c in cmds] == expected
    assert (work / "got.txt").read_text() == "secret words\n"


def test_mksh_noedit_echo_off_lines_are_still_commands(daemon, work):
    """As dash's: mksh's own command lines read with echo off (`stty -echo`) are commands,
    marked echo_off; its read builtin's input read so (a password) stays out."""
    sh = start_shell(daemon, "mksh-noedit", work)
    try:
        sh.line("stty -echo")
        sh.line(": blind line")       # read with echo off
        sh.line("read pw", prompt=None)  # the read builtin, echo still off
        time.sleep(0.3)
        sh.line("hunter2")
        sh.line("stty echo")
        sh.line('echo "${#pw}" > pwlen.txt')
    finally:
        sh.exit()
    expected = ["stty -echo", ": blind line", "read pw", "stty echo", 'echo "${#pw}" > pwlen.txt',
                "exit"]
    cmds = wait_commands(daemon, sh.pid, len(expected))
    assert [c["text"] for c in cmds] == expected
    assert [c["text"] for c in cmds if c.get("echo_off")] == [": blind line", "read pw",
                                                              "stty echo"]
    assert (work / "pwlen.txt").read_text() == "7\n"
    assert not any("hunter2" in line for line in daemon.log.read_text().splitlines())
