# SPDX-License-Identifier: Apache-2.0
"""`shaudit rules check` on rule files: the count on success, file:line:col on errors."""
from conftest import run_cli

GOOD = """- list: shells
  items: [bash, sh, zsh]
- macro: interactive
  condition: cmd.shell in (shells)
- rule: read shadow
  condition: interactive and cmd.text contains /etc/shadow
  output: "%user.name read shadow: %cmd.text"
  priority: WARNING
"""


def test_rules_check_accepts_a_good_file(tmp_path):
    f = tmp_path / "good.yaml"
    f.write_text(GOOD)
    res = run_cli("rules", "check", f)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "OK: 1 rules, 1 macros, 1 lists"


def test_rules_check_names_file_line_and_column_of_an_unknown_field(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text(GOOD + "- rule: bogus\n  condition: proc.bogus = 1\n  output: x\n  priority: NOTICE\n")
    res = run_cli("rules", "check", f)
    assert res.returncode == 1
    assert f"{f}:10:14: unknown field 'proc.bogus' in condition of rule 'bogus' at column 1" in \
        res.stdout + res.stderr
