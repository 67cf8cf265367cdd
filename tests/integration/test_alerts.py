# SPDX-License-Identifier: Apache-2.0
"""shauditd applies rules: a signed alert record right after the record it matched, rules
over the joined logical command and over the line as the shell sees it (quotes, escapes and
the session's variables resolved), SIGHUP reload that keeps the old set when a file is bad."""
import signal
from pathlib import Path

from ptyshell import PS2
from test_capture import start_shell

DEFAULT_RULES = Path(__file__).resolve().parents[2] / "daemon" / "rules" / "default.yaml"


def alerts(recs):
    return [r for r in recs if r["type"] == "alert"]


def test_alert_follows_the_matched_command(daemon_factory, tmp_path):
    d = daemon_factory(rules=f"[{DEFAULT_RULES}]").start()
    work = tmp_path / "w"
    work.mkdir()
    sh = start_shell(d, "bash", work)
    try:
        sh.line("cat /etc/shadow > /dev/null")
        sh.line("curl http://127.0.0.1:1/i.sh \\", prompt=PS2)
        sh.line("| sh")
        sh.line("echo harmless")
    finally:
        sh.exit()
    recs = d.wait_for(lambda rs: len(alerts(rs)) >= 2)
    loaded = next(r for r in recs if r["type"] == "rules_loaded")
    assert loaded["rules"] == 13 and loaded["files"] == [str(DEFAULT_RULES)]
    by_seq = {r["seq"]: r for r in recs}
    shadow = next(a for a in alerts(recs) if a["rule"] == "Read shadow or private keys")
    cmd = by_seq[shadow["ref_seq"]]
    assert cmd["type"] == "command" and cmd["text"] == "cat /etc/shadow > /dev/null"
    assert shadow["seq"] == cmd["seq"] + 1  # written right after it
    assert shadow["priority"] == "Warning" and shadow["tags"] == ["credentials"]
    assert shadow["output"] == f"root read credentials (session {cmd['session']}): " \
                               "cat /etc/shadow > /dev/null"
    assert shadow["session"] == cmd["session"] and shadow["ref_type"] == "command"
    pipe = next(a for a in alerts(recs) if a["rule"] == "Download piped into a shell")
    assert by_seq[pipe["ref_seq"]]["text"] == "| sh"  # matched as the joined logical command
    assert pipe["priority"] == "Critical"
    assert not [a for a in alerts(recs) if by_seq[a["ref_seq"]].get("text") == "echo harmless"]
    assert d.stop() == 0
    assert d.verify().returncode == 0


def test_quoted_and_variable_split_lines_fire_the_default_rules(daemon_factory, tmp_path):
    d = daemon_factory(rules=f"[{DEFAULT_RULES}]").start()
    work = tmp_path / "w"
    work.mkdir()
    sh = start_shell(d, "bash", work)
    try:
        sh.line('echo x >"/etc/shaudit-no-such-dir/x" 2>/dev/null')
        sh.line("a=ba")  # a later command of the session uses it
        sh.line('curl -s http://127.0.0.1:1/i.sh 2>/dev/null | $a"sh"')
        sh.line('echo "history -c is only words here"')
    finally:
        sh.exit()
    recs = d.wait_for(lambda rs: any(r["type"] == "session_end" for r in rs))
    by_seq = {r["seq"]: r for r in recs}
    got = sorted((by_seq[a["ref_seq"]]["text"], a["rule"]) for a in alerts(recs))
    assert got == sorted([
        ('echo x >"/etc/shaudit-no-such-dir/x" 2>/dev/null', "Write below etc by redirection"),
        ('curl -s http://127.0.0.1:1/i.sh 2>/dev/null | $a"sh"', "Download piped into a shell"),
        ('curl -s http://127.0.0.1:1/i.sh 2>/dev/null | $a"sh"',
         "Command name obfuscated by quoting or expansion"),
    ])
    pipe = next(a for a in alerts(recs) if a["rule"] == "Download piped into a shell")
    assert pipe["output"] == (f"root piped a download into a shell (session {pipe['session']}): "
                              'curl -s http://127.0.0.1:1/i.sh 2>/dev/null | $a"sh"')  # as typed
    obf = next(a for a in alerts(recs) if a["rule"].startswith("Command name obfuscated"))
    assert obf["output_fields"]["cmd.obfuscated"] == "bash"
    assert d.stop() == 0
    assert d.verify().returncode == 0


def test_sighup_reload_keeps_the_old_set_when_a_file_is_bad(daemon_factory, tmp_path):
    rules = tmp_path / "r.yaml"
    rules.write_text("- rule: marker\n  condition: cmd.text = marker-one\n  output: one\n"
                     "  priority: NOTICE\n")
    d = daemon_factory(rules=f"[{rules}]").start()
    s = d.connect()
    import wire
    s.send(wire.line(1, "marker-one"))
    d.wait_for(lambda rs: len(alerts(rs)) == 1)
    rules.write_text("- rule: marker\n  condition: cmd.nope = 1\n  output: one\n  priority: NOTICE\n")
    d.proc.send_signal(signal.SIGHUP)
    recs = d.wait_for(lambda rs: any(r["type"] == "rules_error" for r in rs))
    err = next(r for r in recs if r["type"] == "rules_error")
    assert err["error"].startswith(f"{rules}:2:14: unknown field 'cmd.nope'")
    s.send(wire.line(2, "marker-one"))  # the old set still runs
    d.wait_for(lambda rs: len(alerts(rs)) == 2)
    assert "rules not reloaded, the previous set stays" in d.stderr()
    assert d.stop() == 0
    assert d.verify().returncode == 0
