# SPDX-License-Identifier: Apache-2.0
"""Secrets are redacted before a record is signed: typed lines, argv, and what the kernel saw."""
from test_capture import start_shell


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
