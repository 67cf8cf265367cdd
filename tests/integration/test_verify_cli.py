# SPDX-License-Identifier: Apache-2.0
"""`shaudit verify` on logs written by a real shauditd, intact and tampered with.

Every tampering must fail with exit 1 and name the first offending seq."""
import json
import os
import signal

import pytest

from conftest import (Daemon, canonical_json, emit, line_hash, read_lines, run_cli)
import wire

# The sealed log every tampering test starts from (seal_every 4, no interval seals):
#   seq 1 start | 2-4 commands | 5 seal count | 6-9 commands | 10 seal count |
#   11 command | 12 seal close
TEXTS = ["cmd 1", "cmd 2", "cmd 3", "cmd 4", "cmd 5", "cmd 6", "cmd 7", "caf\u00e9 \u2603 \"q\""]
LAYOUT = ["start", "command", "command", "command", "seal", "command", "command", "command",
          "command", "seal", "command", "seal"]


@pytest.fixture(scope="module")
def sealed(tmp_path_factory):
    """(lines of the sealed log, Daemon) — the daemon is stopped."""
    d = Daemon(tmp_path_factory.mktemp("sealed"), seal_every=4, seal_interval_ms=60000)
    try:
        d.start()
        s = d.connect()
        for i, t in enumerate(TEXTS, start=1):
            s.send(wire.line(i, t))
        s.close()
        d.wait_for(lambda recs: sum(r["type"] == "command" for r in recs) == len(TEXTS))
        assert d.stop() == 0
    finally:
        if d.proc is not None:
            d.proc.kill()
            d.proc.wait()
    lines = read_lines(d.log)
    recs = [json.loads(l) for l in lines]
    assert [r["type"] for r in recs] == LAYOUT
    assert [r["reason"] for r in recs if r["type"] == "seal"] == ["count", "count", "close"]
    assert [r["text"] for r in recs if r["type"] == "command"] == TEXTS
    # The python canonical encoder reproduces the daemon's lines (used to forge below).
    assert [canonical_json(r) for r in recs] == lines
    return lines, d


def verify(tmp_path, lines, *extra, pub, raw=None, name="audit.jsonl"):
    path = tmp_path / name
    path.write_bytes(raw if raw is not None else b"".join(l + b"\n" for l in lines))
    return run_cli("verify", path, "--pubkey", pub, *extra), path


def assert_fails_at(res, seq, *phrases):
    assert res.returncode == 1, res.stdout + res.stderr
    failed = res.stdout.splitlines()[-1]  # notes, if any, come first
    assert failed.startswith(f"FAILED at seq {seq}: "), res.stdout
    assert all(l.startswith("note: ") for l in res.stdout.splitlines()[:-1]), res.stdout
    for p in phrases:
        assert p in failed, f"{p!r} not in {failed!r}"


def edit(line, **changes):
    r = json.loads(line)
    r.update(changes)
    return canonical_json(r)


def idx(seq):
    return seq - 1


# --------------------------------------------------------------------------------------

def test_intact_log_verifies(sealed, tmp_path):
    lines, d = sealed
    res, _ = verify(tmp_path, lines, pub=d.pub)
    assert res.returncode == 0, res.stdout
    assert res.stdout == "OK: 12 records, 3 seals; chain intact; ends with a closing seal\n"
    res = d.verify()  # the daemon's own file, in place
    assert res.returncode == 0 and res.stdout.startswith("OK: 12 records, 3 seals")


@pytest.mark.parametrize("seq", [2, 7, 11])
def test_edited_command_text(sealed, tmp_path, seq):
    lines, d = sealed
    bad = list(lines)
    bad[idx(seq)] = edit(bad[idx(seq)], text="rm -rf / # edited")
    res, path = verify(tmp_path, bad, pub=d.pub)
    assert_fails_at(res, seq, f"{path} line {seq}: seq {seq} was changed",
                    f"the prev of seq {seq + 1} does not match its hash")


def test_edited_start_record(sealed, tmp_path):
    lines, d = sealed
    bad = list(lines)
    bad[0] = edit(bad[0], host="elsewhere")
    res, _ = verify(tmp_path, bad, pub=d.pub)
    assert_fails_at(res, 1, "seq 1 was changed")


def test_edited_pid_uid_user(sealed, tmp_path):
    lines, d = sealed
    for field, value in [("pid", 1), ("uid", 1000), ("user", "alice")]:
        bad = list(lines)
        bad[idx(6)] = edit(bad[idx(6)], **{field: value})
        res, _ = verify(tmp_path, bad, pub=d.pub)
        assert_fails_at(res, 6, "seq 6 was changed")


def test_edited_closing_seal(sealed, tmp_path):
    lines, d = sealed
    bad = list(lines)
    bad[-1] = edit(bad[-1], records=5)
    res, path = verify(tmp_path, bad, pub=d.pub)
    assert_fails_at(res, 12, f"{path} line 12: seal seq 12 has an invalid signature")


def test_edited_seal_signature(sealed, tmp_path):
    lines, d = sealed
    bad = list(lines)
    seal = json.loads(bad[idx(5)])
    sig = seal["sig"]
    seal["sig"] = ("B" if sig[0] != "B" else "C") + sig[1:]
    bad[idx(5)] = canonical_json(seal)
    res, _ = verify(tmp_path, bad, pub=d.pub)
    assert_fails_at(res, 5, "seal seq 5 has an invalid signature")


def test_edit_with_rebuilt_chain_is_caught_by_the_seal(sealed, tmp_path):
    """An editor who recomputes every later prev still cannot re-sign the next seal."""
    lines, d = sealed
    bad = list(lines)
    bad[idx(7)] = edit(bad[idx(7)], text="innocent")
    for i in range(idx(8), len(bad)):
        bad[i] = edit(bad[i], prev=line_hash(bad[i - 1]))
    res, _ = verify(tmp_path, bad, pub=d.pub)
    assert_fails_at(res, 10, "seal seq 10 has an invalid signature: the records it covers "
                             "were rewritten")


@pytest.mark.parametrize("seq", [3, 5, 7, 11])
def test_deleted_record(sealed, tmp_path, seq):
    lines, d = sealed
    bad = [l for i, l in enumerate(lines) if i != idx(seq)]
    res, _ = verify(tmp_path, bad, pub=d.pub)
    assert_fails_at(res, seq, f"seq {seq} is missing (seq {seq + 1} follows seq {seq - 1})",
                    "records were removed or reordered")


def test_deleted_first_record(sealed, tmp_path):
    lines, d = sealed
    res, _ = verify(tmp_path, lines[1:], pub=d.pub)
    # The first offending seq is the first one removed: seq 1.
    assert_fails_at(res, 1, "the log begins with seq 2 (command), which neither starts a chain "
                            "nor follows a rotation: records before it were removed")


@pytest.mark.parametrize("seq", [7, 10])
def test_duplicated_line(sealed, tmp_path, seq):
    lines, d = sealed
    bad = list(lines)
    bad.insert(idx(seq) + 1, lines[idx(seq)])
    res, _ = verify(tmp_path, bad, pub=d.pub)
    assert_fails_at(res, seq, f"seq {seq} appears again or out of order after seq {seq}",
                    "records were inserted or reordered")


def test_duplicated_line_elsewhere(sealed, tmp_path):
    lines, d = sealed
    bad = list(lines)
    bad.insert(idx(9) + 1, lines[idx(3)])  # an old record replayed later
    res, _ = verify(tmp_path, bad, pub=d.pub)
    assert_fails_at(res, 3, "seq 3 appears again or out of order after seq 9")


def test_inserted_forged_record_linked_to_its_predecessor(sealed, tmp_path):
    lines, d = sealed
    forged = json.loads(lines[idx(7)])
    forged.update(seq=8, text="forged", prev=line_hash(lines[idx(7)]))
    bad = list(lines)
    bad.insert(idx(8), canonical_json(forged))
    res, _ = verify(tmp_path, bad, pub=d.pub)
    assert_fails_at(res, 8, "seq 8 appears again or out of order after seq 8")


@pytest.mark.parametrize("extra", [(), ("--allow-open",)])
def test_record_appended_after_the_closing_seal(sealed, tmp_path, extra):
    # A closing seal ends a run: only the next run's start record may follow it, so a record
    # appended after it (numbered and chained like a real one) is an insertion, also in a log
    # checked as live.
    lines, d = sealed
    forged = json.loads(lines[idx(11)])
    forged.update(seq=13, text="appended", prev=line_hash(lines[idx(12)]))
    res, path = verify(tmp_path, lines + [canonical_json(forged)], *extra, pub=d.pub)
    assert_fails_at(res, 13, f"{path} line 13: seq 13 (command) follows the closing seal at "
                             "seq 12: a closing seal ends a run and only the start record of "
                             "the next run may follow it: records were appended after it")


@pytest.mark.parametrize("a,b", [(7, 8), (3, 9), (4, 5)])
def test_swapped_lines(sealed, tmp_path, a, b):
    lines, d = sealed
    bad = list(lines)
    bad[idx(a)], bad[idx(b)] = bad[idx(b)], bad[idx(a)]
    res, _ = verify(tmp_path, bad, pub=d.pub)
    assert_fails_at(res, a, f"seq {a} is missing (seq {b} follows seq {a - 1})")


@pytest.mark.parametrize("drop,last_seq,last_type", [(1, 11, "command"), (2, 10, "seal"),
                                                    (3, 9, "command")])
def test_cut_short(sealed, tmp_path, drop, last_seq, last_type):
    lines, d = sealed
    res, path = verify(tmp_path, lines[:-drop], pub=d.pub)
    assert_fails_at(res, last_seq + 1,
                    f"{path} does not end with a closing seal (last record: seq {last_seq}, "
                    f"type {last_type})", f"the log was cut short after seq {last_seq}")


def test_last_line_truncated_midway(sealed, tmp_path):
    lines, d = sealed
    raw = b"".join(l + b"\n" for l in lines[:-1]) + lines[-1][: len(lines[-1]) // 2]
    res, path = verify(tmp_path, None, pub=d.pub, raw=raw)
    assert_fails_at(res, 12, f"{path}: line 12 is cut short (no newline at the end of the file): "
                             "the record after seq 11 is incomplete")


def test_final_newline_missing(sealed, tmp_path):
    lines, d = sealed
    raw = b"".join(l + b"\n" for l in lines).rstrip(b"\n")
    res, _ = verify(tmp_path, None, pub=d.pub, raw=raw)
    assert_fails_at(res, 12, "line 12 is cut short")


def test_middle_line_truncated(sealed, tmp_path):
    lines, d = sealed
    bad = list(lines)
    bad[idx(7)] = bad[idx(7)][:40]
    res, path = verify(tmp_path, bad, pub=d.pub)
    assert_fails_at(res, 7, f"{path} line 7: seq 7 (expected here) is not a valid record")


@pytest.mark.parametrize("how", ["spaces", "indent", "trailing space", "ascii escapes",
                                 "key order"])
def test_non_canonical_reencoding(sealed, tmp_path, how):
    lines, d = sealed
    seq = 11  # the command with non-ASCII text
    r = json.loads(lines[idx(seq)])
    enc = {
        "spaces": lambda: json.dumps(r, sort_keys=True, ensure_ascii=False).encode(),
        "indent": lambda: json.dumps(r, sort_keys=True, ensure_ascii=False,
                                     separators=(",", ": ")).encode(),
        "trailing space": lambda: lines[idx(seq)] + b" ",
        "ascii escapes": lambda: json.dumps(r, sort_keys=True, separators=(",", ":")).encode(),
        "key order": lambda: json.dumps(dict(reversed(list(r.items()))), ensure_ascii=False,
                                        separators=(",", ":")).encode(),
    }[how]()
    assert enc != lines[idx(seq)] and json.loads(enc) == r  # same record, other bytes
    bad = list(lines)
    bad[idx(seq)] = enc
    res, path = verify(tmp_path, bad, pub=d.pub)
    assert_fails_at(res, seq, f"{path} line {seq}: seq {seq} is not in canonical form: it was "
                              "edited")


def test_empty_file(sealed, tmp_path):
    _, d = sealed
    res, path = verify(tmp_path, None, pub=d.pub, raw=b"")
    assert res.returncode == 1
    assert res.stdout == f"FAILED: {path}: the file is empty\n"


def test_wrong_public_key(sealed, tmp_path):
    lines, d = sealed
    other = tmp_path / "other.key"
    run_cli("keygen", "--out", other, check=True)
    key_id = json.loads(lines[idx(5)])["key_id"]
    res, path = verify(tmp_path, lines, pub=f"{other}.pub")
    assert_fails_at(res, 5, f"{path} line 5: seal seq 5 is signed by key {key_id}, which is not "
                            "among the given public keys")
    # Given both keys (old and new), the log verifies.
    res = run_cli("verify", path, "--pubkey", f"{other}.pub", "--pubkey", d.pub)
    assert res.returncode == 0 and res.stdout.startswith("OK: 12 records"), res.stdout


def test_unreadable_public_key_is_a_usage_error(sealed, tmp_path):
    lines, d = sealed
    res, _ = verify(tmp_path, lines, pub=tmp_path / "missing.pub")
    assert res.returncode == 2
    assert "missing.pub" in res.stderr


def test_missing_log_file(sealed, tmp_path):
    _, d = sealed
    res = run_cli("verify", tmp_path / "nope.jsonl", "--pubkey", d.pub)
    assert res.returncode == 1
    assert res.stdout == f"FAILED: {tmp_path / 'nope.jsonl'}: No such file or directory\n"


# --------------------------------------------------------------------------------------
# rotated sets

@pytest.fixture
def rotated_set(daemon_factory):
    """Three files from two rotations: log.2 (oldest), log.1, log (newest)."""
    d = daemon_factory().start()
    log1 = d.log.with_name("audit.jsonl.1")
    log2 = d.log.with_name("audit.jsonl.2")
    for text, moves in [("in the oldest file", [(d.log, log1)]),
                        ("in the middle file", [(log1, log2), (d.log, log1)]),
                        ("in the newest file", [])]:
        res, _ = emit(d.socket, "line", text)
        assert res.returncode == 0, res.stderr
        d.wait_for(lambda recs: any(r.get("text") == text for r in recs))
        if moves:
            for a, b in moves:
                os.rename(a, b)
            d.proc.send_signal(signal.SIGHUP)
            d.wait_for(lambda recs: len(recs) >= 1 and recs[0]["type"] == "rotate")
    assert d.stop() == 0
    files = [log2, log1, d.log]
    for f, text in zip(files, ["oldest", "middle", "newest"]):
        assert f"in the {text} file".encode() in f.read_bytes()
    return d, files


def test_rotated_set_verifies_oldest_first(rotated_set):
    d, (log2, log1, log) = rotated_set
    total = sum(len(read_lines(f)) for f in (log2, log1, log))
    res = run_cli("verify", log2, log1, log, "--pubkey", d.pub)
    assert res.returncode == 0, res.stdout
    assert res.stdout.startswith(f"OK: {total} records")
    assert "note:" not in res.stdout


def test_rotated_set_with_the_middle_file_missing(rotated_set):
    d, (log2, log1, log) = rotated_set
    res = run_cli("verify", log2, log, "--pubkey", d.pub)
    assert_fails_at(res, 1, f"{log} does not continue {log2} (first record seq 1, type rotate): "
                            "a file of the rotated set is missing or out of order")


def test_rotated_set_out_of_order(rotated_set):
    d, (log2, log1, log) = rotated_set
    res = run_cli("verify", log1, log2, log, "--pubkey", d.pub)
    assert_fails_at(res, 1, f"{log2} does not continue {log1}")


def test_rotated_set_without_the_newest_file(rotated_set):
    d, (log2, log1, log) = rotated_set
    n = len(read_lines(log1))
    res = run_cli("verify", log2, log1, "--pubkey", d.pub)
    assert_fails_at(res, n + 1, f"{log1} ends with a rotation seal at seq {n}: the newer file of "
                                "the rotated set is missing")


def test_rotated_set_without_the_oldest_file(rotated_set):
    # Deleted by someone else than shauditd's retention: no retention record names it.
    d, (log2, log1, log) = rotated_set
    n = len(read_lines(log2))
    res = run_cli("verify", log1, log, "--pubkey", d.pub)
    assert_fails_at(res, 1, f"{log1} begins at a rotation after seq {n} (chain hash "
                            f"{line_hash(read_lines(log2)[-1])}) of an older file that was not "
                            "given, and no retention record says shauditd removed it: the "
                            "records up to that seq are missing (give the older files, oldest "
                            "first)")
    # Also against remote seals: the deleted file's seal is a failure, not "not checked".
    remote = d.dir / "remote.jsonl"
    remote.write_bytes(b"".join(l + b"\n" for f in (log2, log1, log) for l in read_lines(f)
                                if json.loads(l)["type"] == "seal"))
    res = run_cli("verify", log1, log, "--pubkey", d.pub, "--remote-seals", remote)
    assert_fails_at(res, 1, f"{log1} begins at a rotation after seq {n}")


def test_retention_by_shauditd_is_told_apart(daemon_factory):
    # shauditd removes the oldest rotated file beyond max_total_mib and says so in a retention
    # record: the remaining files verify, also against remote seals of the removed one.
    d = daemon_factory(retention={"max_total_mib": 1}, seal_interval_ms=60000).start()
    big = "x" * 120000
    for i in range(9):  # about 1.1 MiB in the file that is rotated away
        res, _ = emit(d.socket, "line", f"{i} {big}")
        assert res.returncode == 0, res.stderr
    d.wait_for(lambda recs: sum(r["type"] == "command" for r in recs) == 9)
    old = d.log.with_name("audit.jsonl.1")
    os.rename(d.log, old)
    old_size = old.stat().st_size
    d.proc.send_signal(signal.SIGHUP)
    recs = d.wait_for(lambda recs: any(r["type"] == "retention" for r in recs))
    assert d.stop() == 0
    assert not old.exists()
    recs = d.records()
    # (the config_loaded record of the SIGHUP lands in either file)
    assert [r["type"] for r in recs if r["type"] != "config_loaded"] == [
        "rotate", "retention", "seal"]
    removed = recs[1]["removed"]
    assert len(removed) == 1
    assert removed[0]["file"] == str(old) and removed[0]["size"] > old_size
    assert (removed[0]["first_seq"], removed[0]["last_seq"]) == (1, recs[0]["prev_seq"])
    assert removed[0]["last_hash"] == recs[0]["prev"]
    assert removed[0]["reason"] == "max_total_mib"
    res = d.verify()
    assert res.returncode == 0, res.stdout
    assert res.stdout.splitlines() == [
        f"note: {d.log} begins at a rotation: the older files, up to seq {recs[0]['prev_seq']}, "
        "were removed by shauditd's retention (retention record seq 2)",
        f"note: the key chain is taken up at epoch {recs[0]['epoch']} from the rotate record of "
        f"{d.log}: the seals that certified that epoch's key were in the removed files, so "
        "KEY.pub does not vouch for it (compare it with a remote seal to be sure)",
        f"OK: {len(recs)} records, 1 seals; chain intact; ends with a closing seal"]
    # (The rotation seal ended an epoch: the newer file begins with the next one.)
    assert recs[0]["epoch"] >= 1 and recs[-1]["epoch"] == recs[0]["epoch"]


def test_rotated_file_edited_in_the_middle_file(rotated_set):
    d, (log2, log1, log) = rotated_set
    lines = read_lines(log1)
    k = next(i for i, l in enumerate(lines) if b"in the middle file" in l)
    lines[k] = edit(lines[k], text="in the middle file, edited")
    log1.write_bytes(b"".join(l + b"\n" for l in lines))
    res = run_cli("verify", log2, log1, log, "--pubkey", d.pub)
    assert_fails_at(res, k + 1, f"{log1} line {k + 1}: seq {k + 1} was changed")


# --------------------------------------------------------------------------------------
# live logs

def test_allow_open_on_a_running_daemon(daemon_factory, tmp_path):
    d = daemon_factory(seal_interval_ms=60000).start()
    try:
        for i in range(3):
            res, _ = emit(d.socket, "line", f"live {i}")
            assert res.returncode == 0
        d.wait_for(lambda recs: len(recs) == 4)
        res = d.verify("--allow-open")
        assert res.returncode == 0, res.stdout
        assert res.stdout == ("OK: 4 records, 0 seals; chain intact; 4 records after the last "
                              "seal are not yet sealed\n")
        res = d.verify()
        assert_fails_at(res, 5, "does not end with a closing seal (last record: seq 4, type "
                                "command)", "--allow-open accepts a live log")
        # --allow-open still checks the unsealed tail.
        lines = read_lines(d.log)
        lines[1] = edit(lines[1], text="live 0 edited")
        res, _ = verify(tmp_path, lines, "--allow-open", pub=d.pub, name="copy.jsonl")
        assert_fails_at(res, 2, "seq 2 was changed")
    finally:
        assert d.stop() == 0
    res = d.verify()
    assert res.returncode == 0 and res.stdout.startswith("OK: 5 records, 1 seals"), res.stdout


def test_allow_open_after_an_interval_seal(daemon_factory):
    d = daemon_factory(seal_interval_ms=100).start()
    try:
        res, _ = emit(d.socket, "line", "sealed soon")
        assert res.returncode == 0
        d.wait_for(lambda recs: len(recs) >= 3 and recs[-1]["type"] == "seal")
        res = d.verify("--allow-open")
        assert res.returncode == 0, res.stdout
        assert res.stdout == "OK: 3 records, 1 seals; chain intact; all records sealed\n"
    finally:
        assert d.stop() == 0


# ---------------------------------------------------------------------------------------------
# What an admin's terminal receives: every string the CLI prints from a record is visible-safe.

HOSTILE = {
    "c0": "\x1b[2J\x1b]0;owned\x07",
    "c1": "\u009b2J",
    "bidi": "rm -rf \u202e/ ~\u202c",
    "zero_width": "su\u200bdo",
}


def test_show_and_sessions_print_no_terminal_controls(tmp_path):
    """A log whose records carry escape sequences, C1 controls, bidi overrides and zero-width
    characters (typed text, a reporter-claimed tty, an alert's output): `shaudit show`,
    `shaudit sessions` and the session tree print each of them as a visible escape."""
    log = tmp_path / "hostile.jsonl"
    t = "2026-12-05T12:00:00.000000000Z"
    recs = [
        {"type": "session_start", "session": "s1", "user": "eve", "uid": 1000,
         "service": "implicit", "tty": "/dev/pts/1" + HOSTILE["c0"], "time": t, "seq": 1},
        {"type": "command", "session": "s1", "user": "eve", "pid": 7, "command": "7.1",
         "shell": "bash", "text": " ".join(HOSTILE.values()), "time": t, "seq": 2},
        {"type": "alert", "session": "s1", "user": "eve", "rule": "r" + HOSTILE["c1"],
         "output": "typed " + HOSTILE["bidi"] + HOSTILE["c0"], "time": t, "seq": 3},
    ]
    log.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in recs),
                   encoding="utf-8")
    outs = [run_cli("show", log), run_cli("sessions", log),
            run_cli("show", log, "--session", "s1", "--tree")]
    for r in outs:
        assert r.returncode == 0, r.stderr
        out = r.stdout
        for bad in ("\x1b", "\x07", "\u009b", "\u202e", "\u202c", "\u200b"):
            assert bad not in out, (bad, out)
    show, sessions, tree = (r.stdout for r in outs)
    assert "\\x1b[2J\\x1b]0;owned\\x07 \\u{009B}2J rm -rf \\u{202E}/ ~\\u{202C} su\\u{200B}do" in show
    assert "[r\\u{009B}2J] typed rm -rf \\u{202E}/ ~\\u{202C}\\x1b[2J" in show
    assert "/dev/pts/1\\x1b[2J\\x1b]0;owned\\x07" in sessions
    assert "su\\u{200B}do" in tree
    # --json prints the lines unchanged (for machines; JSON escapes what it must).
    assert run_cli("show", log, "--json").stdout == log.read_text(encoding="utf-8")
