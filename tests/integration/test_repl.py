# SPDX-License-Identifier: Apache-2.0
"""Readline and libedit programs inside an audited bash session, on real pseudo-terminals:
python3, sqlite3, bc, gdb (GNU readline, both its interfaces) and sftp (libedit's el_gets).
Each line such a program accepts is a `command` record of that program (`shell` its name,
`kind` "repl"), byte-exact after editing and history recall, and the execs it causes link to
it; input typed with the terminal's echo off (passwords) never appears in a record."""

import os
import shutil

import pytest

from ptyshell import PS1
from conftest import run_cli
from test_capture import LEFT, UP, start_shell

PYTHON = "/usr/bin/python3"  # Debian's: its readline module links libreadline.so.8


def needs(*paths):
    missing = [p for p in paths if not shutil.which(p)]
    if missing:
        pytest.skip(f"not installed: {', '.join(missing)}")


def repl_commands(records, shell):
    return [r for r in records if r["type"] == "command" and r.get("shell") == shell]


def run_repl(daemon, work, start, prompt, steps, end_keys, expected):
    """In an audited bash, types `start` (a program's command line), waits for its prompt,
    types each step's keys (waiting for the prompt after each), then end_keys, and waits for
    bash's prompt; returns (all records, bash's command records, the program's command
    records)."""
    sh = start_shell(daemon, "bash", work)
    try:
        sh.type(start + "\r")
        sh.expect(prompt)
        for keys in steps:
            sh.type(keys)
            sh.expect(prompt)
        sh.type(end_keys)
        sh.wait_prompt(PS1)
    finally:
        sh.exit()
    name = start.split()[0].rsplit("/", 1)[-1]
    recs = daemon.wait_for(lambda rs: len(repl_commands(rs, name)) >= len(expected)
                           and any(r["type"] == "session_end" for r in rs))
    bash = [r for r in recs if r["type"] == "command" and r.get("shell") == "bash"]
    return recs, bash, repl_commands(recs, name)


def check_repl_records(bash, cmds, expected, name):
    assert [c["text"] for c in cmds] == expected
    session = bash[0]["session"]
    for c in cmds:
        assert c["shell"] == name and c["kind"] == "repl"
        assert c["session"] == session
        assert c["command"].startswith(f"{c['pid']}.")
    assert len({c["command"] for c in cmds}) == len(cmds)  # one command per accepted line
    # bash's own lines are not of that kind.
    assert all("kind" not in b for b in bash)


@pytest.mark.parametrize("bpf", ["off", "on"])
def test_python3_lines_and_the_execs_they_cause(daemon_factory, work, bpf):
    if bpf == "on" and os.geteuid() != 0:
        pytest.skip("the eBPF collector needs root")
    # With the collector the kernel's exec events are the exec records (`source: "bpf"`).
    daemon = daemon_factory(bpf=bpf).start()
    steps = [
        "import os\r",
        'os.system("id -u > out.txt")\r',
        'x = "helo"' + LEFT + LEFT + "l\r",  # edited: cursor left twice, a letter inserted
        UP + "\r",  # history recall
        "\r",  # an empty line is not recorded
        'print("done" + x)\r',
    ]
    expected = ["import os", 'os.system("id -u > out.txt")', 'x = "hello"', 'x = "hello"',
                'print("done" + x)', "exit()"]
    recs, bash, cmds = run_repl(daemon, work, f"{PYTHON} -q", ">>> ", steps, "exit()\r",
                                expected)
    check_repl_records(bash, cmds, expected, "python3")
    assert (work / "out.txt").read_text() == "0\n"
    assert bash[0]["text"] == f"{PYTHON} -q"
    by_text = {c["text"]: c for c in cmds}
    system_cmd = by_text['os.system("id -u > out.txt")']["command"]
    execs = [r for r in recs if r["type"] == "exec"]
    ids = [e for e in execs if e["argv"] == ["id", "-u"]]
    assert len(ids) == 1 and ids[0]["command"] == system_cmd
    shells = [e for e in execs if e["argv"] == ["sh", "-c", "id -u > out.txt"]]
    assert len(shells) == 1 and shells[0]["command"] == system_cmd
    # python3 itself runs for bash's line.
    py = [e for e in execs if e["argv"] == [PYTHON, "-q"]]
    assert len(py) == 1 and py[0]["command"] == bash[0]["command"]
    assert all(e["source"] == ("bpf" if bpf == "on" else "report") for e in ids + shells + py)
    assert not [r for r in recs if r["type"] == "bypass"]
    # No line of it owes a status (it is not a shell): none is derived or reported.
    assert not [r for r in recs if r["type"] == "command_status"
                and r["command"] in {c["command"] for c in cmds}]
    assert daemon.stop() == 0 and daemon.verify().returncode == 0
    if bpf == "on":
        return  # (the tree leaves the kernel's exec records out: a bypass line says them)
    # The session's tree shows its lines after the program's name, with the execs they caused.
    tree = run_cli("show", daemon.log, "--session", bash[0]["session"], "--tree")
    assert tree.returncode == 0, tree.stderr
    lines = tree.stdout.splitlines()
    at = lines.index('├─ python3> os.system("id -u > out.txt")')
    assert lines[at + 1:at + 3] == [f"│    └─ [{shells[0]['pid']}] sh -c 'id -u > out.txt'",
                                    f"│    └─ [{ids[0]['pid']}] id -u"]
    assert "├─ python3> import os" in lines
    assert [l for l in lines if l.startswith(f"├─ $ {PYTHON} -q  => exit 0 in ")]


def test_python3_input_typed_with_echo_off_is_never_recorded(daemon, work):
    secret, pw = "hidden-s3cret", "g3tpass-s3cret"
    steps = [
        "import os, getpass\r",
        # input() reads through readline while the terminal does not echo
        'os.system("stty -echo"); s = input(); os.system("stty echo")\r' + secret + "\r",
        'p = getpass.getpass("pw: ")\r' + pw + "\r",
        "print(len(s), len(p))\r",
    ]
    expected = ["import os, getpass", 'os.system("stty -echo"); s = input(); os.system("stty echo")',
                'p = getpass.getpass("pw: ")', "print(len(s), len(p))", "exit()"]
    recs, bash, cmds = run_repl(daemon, work, f"{PYTHON} -q", ">>> ", steps, "exit()\r",
                                expected)
    check_repl_records(bash, cmds, expected, "python3")
    log = daemon.log.read_bytes()
    assert secret.encode() not in log and pw.encode() not in log
    hidden = [r for r in recs if r["type"] == "noncmd_input" and r["pid"] == cmds[0]["pid"]]
    assert [(r["kind"], r["length"]) for r in hidden] == [("echo_off", len(secret))]


def test_sqlite3_lines_and_its_shell_escape(daemon, work):
    needs("sqlite3")
    steps = ["select 1+2;\r", ".shell echo hi > hi.txt\r",
             "select 4;" + LEFT + LEFT + "2\r", UP + UP + "\r"]  # edited; recalled
    expected = ["select 1+2;", ".shell echo hi > hi.txt", "select 24;", ".shell echo hi > hi.txt",
                ".quit"]
    recs, bash, cmds = run_repl(daemon, work, "sqlite3", "sqlite> ", steps, ".quit\r", expected)
    check_repl_records(bash, cmds, expected, "sqlite3")
    assert (work / "hi.txt").read_text() == "hi\n"
    shell = [r for r in recs if r["type"] == "exec" and r["argv"] == ["sh", "-c", "echo hi > hi.txt"]]
    assert [e["command"] for e in shell] == [cmds[1]["command"], cmds[3]["command"]]


def test_bc_lines(daemon, work):
    needs("bc")
    sh = start_shell(daemon, "bash", work)
    try:
        sh.type("bc -q\r")
        sh.type("1+2\r")
        sh.expect("\r3\r\n")
        sh.type("76" + LEFT + "*\r")  # edited: 7*6
        sh.expect("\r42\r\n")
        sh.type("quit\r")
        sh.wait_prompt(PS1)
    finally:
        sh.exit()
    recs = daemon.wait_for(lambda rs: len(repl_commands(rs, "bc")) >= 3
                           and any(r["type"] == "session_end" for r in rs))
    bash = [r for r in recs if r["type"] == "command" and r.get("shell") == "bash"]
    check_repl_records(bash, repl_commands(recs, "bc"), ["1+2", "7*6", "quit"], "bc")


def test_gdb_shell_command_links_to_its_line(daemon, work):
    needs("gdb")
    steps = ["shell id -u > gdb.txt\r", "echo hi" + LEFT * 2 + "\\n" + "\x05" + "\\n\r"]  # ^E: end of line
    expected = ["shell id -u > gdb.txt", "echo \\nhi\\n", "quit"]
    recs, bash, cmds = run_repl(daemon, work, "gdb -q -nx", "(gdb) ", steps, "quit\r", expected)
    check_repl_records(bash, cmds, expected, "gdb")
    assert (work / "gdb.txt").read_text() == "0\n"
    execs = [r for r in recs if r["type"] == "exec"]
    ids = [e for e in execs if e["argv"] == ["id", "-u"]]
    assert len(ids) == 1 and ids[0]["command"] == cmds[0]["command"]


def test_sftp_libedit_lines(daemon, work):
    needs("sftp", "/usr/lib/openssh/sftp-server")
    steps = ["lpwd\r", "!id -u > sftp.txt\r"]
    expected = ["lpwd", "!id -u > sftp.txt", "bye"]
    recs, bash, cmds = run_repl(daemon, work, "sftp -D /usr/lib/openssh/sftp-server", "sftp> ",
                                steps, "bye\r", expected)
    check_repl_records(bash, cmds, expected, "sftp")
    assert (work / "sftp.txt").read_text() == "0\n"
    ids = [r for r in recs if r["type"] == "exec" and r["argv"] == ["id", "-u"]]
    assert len(ids) == 1 and ids[0]["command"] == cmds[1]["command"]


def test_psql_password_prompt_is_never_recorded(daemon, work):
    needs("psql")
    pw = "pg-s3cret-pw"
    sh = start_shell(daemon, "bash", work)
    try:
        # -W asks for the password before connecting; nothing listens on port 9.
        sh.type("psql -W -h 127.0.0.1 -p 9 -U nobody postgres\r")
        sh.expect("Password")
        sh.type(pw + "\r")
        sh.wait_prompt(PS1)
    finally:
        sh.exit()
    daemon.wait_for(lambda rs: any(r["type"] == "session_end" for r in rs))
    assert pw.encode() not in daemon.log.read_bytes()
