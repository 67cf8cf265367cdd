# SPDX-License-Identifier: Apache-2.0
"""`shaudit verify --remote-seals`: a real shauditd ships its seals to a file output (the
anchor); a log cut short after a shipped seal verifies on its own but not against the anchor."""
import json

import pytest

from conftest import emit, read_lines, run_cli


def records(lines):
    return [json.loads(l) for l in lines]


def seals_in(path):
    return [r for r in records(read_lines(path)) if r["type"] == "seal"]


def emit_lines(d, texts):
    for t in texts:
        res, _ = emit(d.socket, "line", t)
        assert res.returncode == 0, res.stderr


@pytest.fixture
def anchored(daemon_factory, tmp_path):
    """(Daemon, anchor path) after two runs of one daemon on one log, stopped cleanly:
    run 1: start, commands, interval seal(s), closing seal; run 2 the same. The anchor (a file
    output with events: records) holds every record, seals included, as in the log."""
    anchor = tmp_path / "anchor.jsonl"
    d = daemon_factory(outputs=[{"name": "anchor", "type": "file", "path": str(anchor),
                                 "events": "records"}])
    for run in (1, 2):
        d.start()
        texts = [f"run {run} line {i}" for i in range(3)]
        emit_lines(d, texts)
        # Wait until the last command is sealed (seal_interval_ms: 100) and that seal shipped.
        recs = d.wait_for(lambda rs: any(r.get("text") == texts[-1] for r in rs) and
                          rs[-1]["type"] == "seal")
        last_seal = recs[-1]["seq"]
        d.wait_for(lambda rs: anchor.exists() and
                   any(s["seq"] == last_seal for s in seals_in(anchor)))
        assert d.stop() == 0, d.stderr()
    return d, anchor


def test_log_matches_its_remote_seals(anchored, tmp_path):
    d, anchor = anchored
    log_lines = read_lines(d.log)
    log_seals = [l for l in log_lines if json.loads(l)["type"] == "seal"]
    anchor_lines = read_lines(anchor)
    anchor_seals = [l for l in anchor_lines if json.loads(l)["type"] == "seal"]
    # The file output writes the log lines as they are, in order; a clean stop delivers all.
    assert anchor_lines == log_lines
    assert len(anchor_seals) >= 4  # at least an interval and a closing seal per run

    res = run_cli("verify", d.log, "--pubkey", d.pub, "--remote-seals", anchor)
    assert res.returncode == 0, res.stdout + res.stderr
    latest = json.loads(anchor_seals[-1])
    ignored = len(anchor_lines) - len(anchor_seals)
    assert res.stdout == (
        f"note: {ignored} record(s) in the remote seal files are not seals and were ignored\n"
        f"OK: {len(log_lines)} records, {len(log_seals)} seals; chain intact; ends with a "
        "closing seal\n"
        f"{len(anchor_seals)} remote seal(s) match the log "
        f"(latest: seq {latest['seq']} at {latest['time']})\n")

    # The same seals as webhook items, and as one webhook batch (repeatable option).
    items = tmp_path / "items.jsonl"
    batch = tmp_path / "batch.jsonl"
    item_objs = [{"id": "0" * 32, "record": json.loads(l)} for l in anchor_seals]
    items.write_text("".join(json.dumps(o) + "\n" for o in item_objs))
    batch.write_text(json.dumps(item_objs) + "\n")
    res = run_cli("verify", d.log, "--pubkey", d.pub, "--remote-seals", items,
                  "--remote-seals", batch)
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.splitlines()[-1] == (f"{len(anchor_seals)} remote seal(s) match the log "
                                           f"(latest: seq {latest['seq']} at {latest['time']})")


def test_log_cut_short_after_a_shipped_seal(anchored):
    d, anchor = anchored
    log_lines = read_lines(d.log)
    recs = records(log_lines)
    # Cut the log back to the first run's closing seal.
    cut = next(i for i, r in enumerate(recs) if r["type"] == "seal" and r["reason"] == "close")
    assert cut + 1 < len(recs)
    d.log.write_bytes(b"".join(l + b"\n" for l in log_lines[:cut + 1]))
    m = recs[cut]["seq"]

    # On its own the shortened log verifies: it ends with a closing seal.
    alone = d.verify()
    assert alone.returncode == 0, alone.stdout
    assert alone.stdout.startswith(f"OK: {m} records, ")

    # Against the seals shipped before it was cut, it does not.
    first_missing = min((s for s in seals_in(anchor) if s["seq"] > m), key=lambda s: s["seq"])
    res = run_cli("verify", d.log, "--pubkey", d.pub, "--remote-seals", anchor)
    assert res.returncode == 1, res.stdout + res.stderr
    assert res.stdout.splitlines()[-1] == (
        f"FAILED at seq {m + 1}: log cut short: remote seal seq {first_missing['seq']} "
        f"(time {first_missing['time']}) is not in the log (the log ends at seq {m})")


def test_forged_and_garbled_anchor(anchored, tmp_path):
    d, anchor = anchored
    seals = seals_in(anchor)
    forged = dict(seals[0], records=seals[0]["records"] + 1)
    bad = tmp_path / "forged.jsonl"
    bad.write_text(json.dumps(seals[1]) + "\n" + json.dumps(forged) + "\n")
    res = run_cli("verify", d.log, "--pubkey", d.pub, "--remote-seals", bad)
    assert res.returncode == 1, res.stdout + res.stderr
    assert res.stdout.splitlines()[-1].startswith(
        f"FAILED at seq {seals[0]['seq']}: {bad}:2: remote seal seq {seals[0]['seq']}: "
        "bad signature")

    garbled = tmp_path / "garbled.jsonl"
    garbled.write_bytes(read_lines(anchor)[0] + b"\n" + read_lines(anchor)[1][:40] + b"\n")
    res = run_cli("verify", d.log, "--pubkey", d.pub, "--remote-seals", garbled)
    assert res.returncode == 1, res.stdout + res.stderr
    assert res.stdout.startswith(f"FAILED: {garbled}:2: not a JSON value"), res.stdout
