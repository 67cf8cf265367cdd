# SPDX-License-Identifier: Apache-2.0
"""Secrets are redacted before a record is signed: typed lines, argv, and what the kernel saw."""
import shutil
import time

import pytest

from ptyshell import PS2
from test_capture import start_shell
from test_crosscheck import cc_daemon
from test_never_silent import audited_bash, child_pid, of, rebuilt, type_keys


def test_secrets_never_reach_the_log(daemon_factory, tmp_path):
    d = daemon_factory(redact_patterns="['pin=([0-9]+)']", bpf="on").start()
    work = tmp_path / "w"
    work.mkdir()
    sh = start_shell(d, "bash", work)
    try:
        sh.line("env GITHUB_TOKEN=ghp_Zx81secret /bin/true")
        sh.line("mysql -u root -pS3cretPw db 2>/dev/null")
        sh.line("mkdir -p keep-this-dir")
        sh.line("echo pin=975318642")
        sh.line("env -u LD_PRELOAD /bin/sh -c 'true --password=Hidden99'")
    finally:
        sh.exit()
    recs = d.wait_for(lambda rs: any(r["type"] == "bypass" for r in rs), timeout=15)
    raw = d.log.read_bytes()
    for secret in (b"ghp_Zx81secret", b"S3cretPw", b"975318642", b"Hidden99"):
        assert secret not in raw, secret
    cmds = {r["text"]: r for r in recs if r["type"] == "command"}
    tok = cmds["env GITHUB_TOKEN=*** /bin/true"]
    assert tok["redacted"] == [{"field": "text", "kind": "secret_variable", "offset": 17}]
    assert cmds["mysql -u root -p*** db 2>/dev/null"]["redacted"][0]["kind"] == "mysql_password"
    assert "redacted" not in cmds["mkdir -p keep-this-dir"]
    assert cmds["echo pin=***"]["redacted"] == [{"field": "text", "kind": "custom", "offset": 9}]
    env_exec = next(r for r in recs if r["type"] == "exec" and r["argv"][0] == "env"
                    and r["argv"][1].startswith("GITHUB_TOKEN"))
    assert env_exec["argv"] == ["env", "GITHUB_TOKEN=***", "/bin/true"]
    assert env_exec["redacted"] == [{"element": 1, "field": "argv", "kind": "secret_variable",
                                     "offset": 13}]
    # The kernel's view of an unhooked process is redacted too.
    kernel = next(r for r in recs if r["type"] == "exec" and r["source"] == "bpf"
                  and r["argv"][0] == "/bin/sh")
    assert kernel["argv"] == ["/bin/sh", "-c", "true --password=***"]
    assert kernel["redacted"][0]["kind"] == "password_option"
    assert d.stop() == 0
    assert d.verify().returncode == 0


def test_what_people_type_is_redacted_everywhere_in_the_log(daemon_factory, tmp_path):
    """Issue 16's forms through a real bash: quoted -p values, a -pS on a continuation line
    (its command word on the line before), an open quote across lines, PGPASSWORD= and curl -u,
    sudo -n mysql, an API key variable and an X-Api-Key header. The log holds the exact
    redacted lines, and no byte of any secret."""
    d = daemon_factory(bpf="on").start()
    work = tmp_path / "w"
    work.mkdir()
    sh = start_shell(d, "bash", work)
    try:
        sh.line("mysql -u root \\", prompt=PS2)
        sh.line("  -pCont1nuedPw db 2>/dev/null")
        sh.line("mysql -u root -p'Op3nQ", prompt=PS2)
        sh.line("Quo7eX' db 2>/dev/null")
        sh.line("mysql -u root -p'Sq1 uoteD' 2>/dev/null")
        sh.line("PGPASSWORD=Pg23pwZ psql -h 127.0.0.1 -U app 2>/dev/null")
        sh.line("curl -s -u bob:Cu54rlPw http://127.0.0.1:9/")
        sh.line("sudo -n mysql -pSu10doX 2>/dev/null")
        sh.line("export API_KEY=Ak26eyZZ")
        sh.line("curl -s -H 'X-Api-Key: Xa63keyQ' http://127.0.0.1:9/")
        sh.line("mkdir -p keep-this-dir && ssh -p 2222 -V 2>/dev/null")
    finally:
        sh.exit()
    recs = d.wait_for(lambda rs: any(r["type"] == "session_end" for r in rs), timeout=15)
    raw = d.log.read_bytes()
    for secret in (b"Cont1nuedPw", b"Op3nQ", b"Quo7eX", b"Sq1 uoteD", b"Pg23pwZ", b"Cu54rlPw",
                   b"Su10doX", b"Ak26eyZZ", b"Xa63keyQ"):
        assert secret not in raw, secret
    cmds = [r for r in recs if r["type"] == "command" and r["pid"] == sh.pid]
    got = [(c["text"], c.get("continuation", False), c.get("redacted")) for c in cmds]

    def red(kind, offset):
        return [{"field": "text", "kind": kind, "offset": offset}]
    assert got == [
        ("mysql -u root \\", False, None),
        ("  -p*** db 2>/dev/null", True, red("mysql_password", 4)),
        ("mysql -u root -p***", False, red("mysql_password", 16)),
        ("*** db 2>/dev/null", True, red("mysql_password", 0)),
        ("mysql -u root -p*** 2>/dev/null", False, red("mysql_password", 16)),
        ("PGPASSWORD=*** psql -h 127.0.0.1 -U app 2>/dev/null", False,
         red("secret_variable", 11)),
        ("curl -s -u bob:*** http://127.0.0.1:9/", False, red("basic_auth", 15)),
        ("sudo -n mysql -p*** 2>/dev/null", False, red("mysql_password", 16)),
        ("export API_KEY=***", False, red("secret_variable", 15)),
        ("curl -s -H 'X-Api-Key: ***' http://127.0.0.1:9/", False, red("secret_header", 23)),
        ("mkdir -p keep-this-dir && ssh -p 2222 -V 2>/dev/null", False, None),
        ("exit", False, None),
    ]
    # What curl was run with: its argv is redacted too.
    curl = [r["argv"] for r in recs if r["type"] == "exec" and r["argv"][0] == "curl"]
    assert ["curl", "-s", "-u", "bob:***", "http://127.0.0.1:9/"] in curl
    assert ["curl", "-s", "-H", "X-Api-Key: ***", "http://127.0.0.1:9/"] in curl
    assert d.stop() == 0
    assert d.verify().returncode == 0


def test_a_rebuilt_continuation_line_is_redacted_in_its_command(daemon_factory, work):
    """A shell without a hook (busybox sh): its lines are rebuilt from the kernel, and no shell
    marks a continuation. A -pS on the line after `mysql -u root \\`, and the rest of a
    quoted password after an open quote, are redacted all the same."""
    if not shutil.which("/usr/bin/busybox"):
        pytest.skip("/usr/bin/busybox is not installed (Debian package busybox-static)")
    d = cc_daemon(daemon_factory)
    sh = audited_bash(d, work)
    lines = ["mysql -u root \\", "-pK3rnelPw db 2>/dev/null", "mysql -p'Rb1",
             "Rb2' db 2>/dev/null", "mkdir -p kept-dir", "exit"]
    try:
        sh.line("busybox sh", prompt=None)
        time.sleep(1.5)  # it starts, sets its terminal up, prints its prompt
        recs = d.wait_for(lambda rs: any(r["path"] == "/usr/bin/busybox" for r in of(rs, "exec")))
        pid = child_pid(recs, sh.pid, "/usr/bin/busybox")
        for i, text in enumerate(lines):
            type_keys(sh, text + "\r")
            d.wait_for(lambda rs: len(rebuilt(rs, pid)) >= i + 1, timeout=10)
        sh.wait_prompt()
        sh.line("true")
    finally:
        sh.kill()
    recs = d.wait_for(lambda rs: len(rebuilt(rs, pid)) >= len(lines))
    raw = d.log.read_bytes()
    for secret in (b"K3rnelPw", b"Rb1", b"Rb2"):
        assert secret not in raw, secret
    got = [(r["text"], r.get("redacted")) for r in rebuilt(recs, pid)]

    def red(kind, offset):
        return [{"field": "text", "kind": kind, "offset": offset}]
    assert got == [
        ("mysql -u root \\", None),
        ("-p*** db 2>/dev/null", red("mysql_password", 2)),
        ("mysql -p***", red("mysql_password", 8)),
        ("*** db 2>/dev/null", red("mysql_password", 0)),
        ("mkdir -p kept-dir", None),
        ("exit", None),
    ]
    # The raw keys go only with a line the redaction left alone.
    assert [("keys" in r) for r in rebuilt(recs, pid)] == [True, False, False, False, True, True]
