# SPDX-License-Identifier: Apache-2.0
"""Forward-secure sealing against a real shauditd: what an attacker who is root at key epoch N
can do with everything shaudit keeps on disk (the key state, the key file), and what it cannot:
rewrite a record of an earlier epoch and have `shaudit verify` accept it."""
import base64
import hashlib
import json
import struct
import subprocess

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from conftest import SHAUDITD, canonical_json, emit, line_hash, read_lines, run_cli

MARKER = b"# shaudit: signing key moved"


def parse_key_state(data):
    """The key state file as documented in key_state.h: the valid slots as
    [(epoch, private key)], and the epoch-0 public key."""
    assert len(data) == 256 and data[:8] == b"SHAKST01", data[:8]
    root = data[8:40]
    keys = []
    for off in (64, 160):
        slot = data[off:off + 96]
        epoch, = struct.unpack("<Q", slot[:8])
        seed, pub, check = slot[8:40], slot[40:72], slot[72:88]
        want = hashlib.sha256(b"shaudit-key-state-v1\n" + root + slot[:8] + seed + pub).digest()[:16]
        if check != want:
            continue
        key = Ed25519PrivateKey.from_private_bytes(seed)
        assert key.public_key().public_bytes(serialization.Encoding.Raw,
                                             serialization.PublicFormat.Raw) == pub
        keys.append((epoch, key))
    return keys, root


def seal_message(rec):
    r = dict(rec)
    r.pop("sig", None)
    return b"shaudit-seal-v1\n" + canonical_json(r)


def reseal(lines, start, key, claim=None):
    """Re-chains every line after index `start` and signs every seal after it again with
    `key` (claiming epoch `claim` if given): what an attacker with that key does."""
    out = list(lines)
    for i in range(start + 1, len(out)):
        r = json.loads(out[i])
        r["prev"] = line_hash(out[i - 1])
        if r["type"] == "seal":
            if claim is not None:
                r["epoch"] = claim
            r["sig"] = base64.b64encode(key.sign(seal_message(r))).decode()
        out[i] = canonical_json(r)
    return out


def sealed_epochs(d, texts):
    """Sends each text as a typed line and waits until a seal covers it, so that each is in
    an epoch of its own (seal_epoch_s: 0 ends an epoch at every seal)."""
    for t in texts:
        emit(d.socket, "line", t)
        d.wait_for(lambda recs: any(r.get("text") == t for r in recs) and
                   recs[-1]["type"] == "seal" and
                   recs[-1]["seq"] > next(r["seq"] for r in recs if r.get("text") == t))


def verify_fails(d, path, seq, message):
    res = run_cli("verify", path, "--pubkey", d.pub)
    assert res.returncode == 1, res.stdout
    assert res.stdout.splitlines()[-1] == f"FAILED at seq {seq}: {message}", res.stdout
    return res


def test_root_at_epoch_n_cannot_rewrite_a_record_of_epoch_n_minus_2(daemon_factory, tmp_path):
    d = daemon_factory(seal_epoch_s=0, seal_interval_ms=20)
    d.start()
    texts = [f"rm -rf /srv/data/{i}" for i in range(6)]
    sealed_epochs(d, texts)
    # Root now: it takes the key state and the key file from the running shauditd.
    stolen_state = (d.dir / "state" / "key-state").read_bytes()
    key_file = d.key.read_bytes()
    keys, root = parse_key_state(stolen_state)
    # The key of epoch N, and of N+1 when it was taken while a seal was ending epoch N.
    assert len(keys) in (1, 2), keys
    n, stolen = min(keys, key=lambda k: k[0])
    assert n >= 4, n
    assert d.stop() == 0
    # The key file holds no private key: only the note naming the key state.
    assert key_file.startswith(MARKER) and b"PRIVATE KEY" not in key_file, key_file
    lines = read_lines(d.log)
    recs = [json.loads(l) for l in lines]
    res = run_cli("verify", d.log, "--pubkey", d.pub)
    assert res.returncode == 0, res.stdout
    assert res.stderr == f"key chain: epochs 0 to {recs[-1]['epoch']}, each key certified by the " \
                         "one before it\n"
    # A record sealed in epoch N-2: its seal is the first after it.
    target = next(i for i, r in enumerate(recs)
                  if r.get("text", "").startswith("rm -rf") and
                  next(s for s in recs[i:] if s["type"] == "seal")["epoch"] == n - 2)
    seal_i = next(i for i in range(target, len(recs)) if recs[i]["type"] == "seal")
    first = recs[seal_i]["first_seq"]
    forged = list(lines)
    forged[target] = canonical_json({**recs[target], "text": "ls /srv/data"})
    out = tmp_path / "forged.jsonl"

    # Re-sealed with the stolen key, each seal keeping its epoch.
    out.write_bytes(b"".join(l + b"\n" for l in reseal(forged, target, stolen)))
    res = verify_fails(d, out, seal_i + 1,
                       f"{out} line {seal_i + 1}: seal seq {seal_i + 1} has an invalid signature: "
                       f"the records it covers were rewritten (seq {first} to {seal_i}, key epoch "
                       f"{n - 2}), or it was signed by a key other than epoch {n - 2}'s")
    assert first <= target + 1 <= seal_i
    assert res.stderr == f"key epoch of the failure: {n - 2}\n"

    # ... or with the key of epoch N+1 if it was there.
    for _, other in keys:
        out.write_bytes(b"".join(l + b"\n" for l in reseal(forged, target, other)))
        assert run_cli("verify", out, "--pubkey", d.pub).returncode == 1

    # Re-sealed with the stolen key, claiming its epoch.
    out.write_bytes(b"".join(l + b"\n" for l in reseal(forged, target, stolen, claim=n)))
    key_id = recs[0]["key_id"]
    verify_fails(d, out, seal_i + 1,
                 f"{out} line {seal_i + 1}: seal seq {seal_i + 1} claims key epoch {n}, but key "
                 f"{key_id}'s chain is at epoch {n - 3} (epoch {n - 2} was certified by seal seq "
                 f"{next(r['seq'] for r in reversed(recs[:target]) if r['type'] == 'seal')}): its "
                 "key was not certified by the seal before it (a forged seal, a log cut and "
                 "sealed again, or a piece of another log); it covers seq "
                 f"{first} to {seal_i}")
    # The untouched log still verifies.
    assert run_cli("verify", d.log, "--pubkey", d.pub).returncode == 0


def test_the_signing_key_moves_into_the_key_state_at_first_start(daemon_factory):
    d = daemon_factory()
    d.keygen()
    pub = d.pub.read_bytes()
    assert b"PRIVATE KEY" in d.key.read_bytes()
    d.start()
    state = d.dir / "state" / "key-state"
    assert state.stat().st_mode & 0o7777 == 0o600 and state.stat().st_size == 256
    note = d.key.read_text()
    key_id = d.records()[0]["key_id"]
    assert note == (f"# shaudit: signing key moved into the forward-secure key state {state}\n"
                    f"# epoch-0 key id {key_id} (KEY.pub verifies the log); shauditd erased the "
                    "private key here.\n"
                    "# A new key: move this file and its .pub aside (keep the .pub: it verifies "
                    f"the log so far), then run shaudit keygen --out {d.key}\n")
    assert d.pub.read_bytes() == pub
    assert d.stop() == 0
    # Restarts continue from the key state; --check-config accepts the note.
    d.start()
    assert d.stop() == 0
    assert d.verify().returncode == 0, d.verify().stdout
    res = subprocess.run([str(SHAUDITD), "--config", str(d.config_path), "--check-config"],
                         capture_output=True, text=True)
    assert (res.returncode, res.stdout) == (0, "shauditd: configuration OK\n"), res.stderr
    # Without its key state the chain cannot go on: a clear start-up error, exit 1.
    state.unlink()
    res = subprocess.run([str(SHAUDITD), "--config", str(d.config_path)], capture_output=True,
                         text=True, timeout=20)
    assert res.returncode == 1
    assert res.stderr == (
        f"shauditd: signing key {d.key} was moved into the key state {state}, which is missing: "
        f"the log's key chain cannot continue. Restore {state}, or move {d.key} and {d.key}.pub "
        "aside (keep the .pub: it verifies the log so far) and create a new key with "
        f"`shaudit keygen --out {d.key}`\n")


def test_a_rolled_back_key_state_is_a_chain_break(daemon_factory):
    d = daemon_factory(seal_epoch_s=0, seal_interval_ms=20)
    d.start()
    sealed_epochs(d, ["one", "two"])
    state = d.dir / "state" / "key-state"
    snapshot = state.read_bytes()
    # (Taken while a seal was ending an epoch, it holds two keys: the older one is the current.)
    keys, _root = parse_key_state(snapshot)
    old_epoch = min(e for e, _ in keys)
    sealed_epochs(d, ["three", "four"])
    assert d.stop() == 0
    recs = d.records()
    last_seal = recs[-1]
    state.write_bytes(snapshot)  # root puts the older key state back
    d.start()
    emit(d.socket, "line", "after")
    d.wait_for(lambda rs: any(r.get("text") == "after" for r in rs))
    assert d.stop() == 0
    breaks = [r for r in d.records() if r["type"] == "chain_break"]
    assert len(breaks) == 1, breaks
    cb = breaks[0]
    assert (cb["found"], cb["found_epoch"], cb["expected_epoch"], cb["seal_seq"]) == \
        ("key_state", old_epoch, last_seal["epoch"] + 1, last_seal["seq"])
    res = d.verify()
    assert res.returncode == 1
    assert res.stdout.splitlines()[-1] == (
        f"FAILED at seq {cb['seq']}: {d.log} line {cb['seq']}: seq {cb['seq']} is a chain_break "
        f"record: when shauditd started, its key state {state} was at key epoch {old_epoch}, but "
        f"the log's last seal (seq {last_seal['seq']}) left the key chain at epoch "
        f"{last_seal['epoch'] + 1}: the key state was replaced or rolled back")


def test_forward_secure_off_signs_with_the_key_file_as_before(daemon_factory):
    d = daemon_factory(forward_secure="false")
    d.keygen()
    key = d.key.read_bytes()
    d.start()
    emit(d.socket, "line", "plain")
    d.wait_for(lambda rs: any(r.get("text") == "plain" for r in rs))
    assert d.stop() == 0
    assert d.key.read_bytes() == key
    assert not (d.dir / "state" / "key-state").exists()
    seal_recs = [r for r in d.records() if r["type"] == "seal"]
    assert seal_recs and all("epoch" not in r and "next_pub_b64" not in r for r in seal_recs)
    res = d.verify()
    assert (res.returncode, res.stderr) == (0, ""), res.stdout
    # What forward-secure sealing prevents: without it, root at any later time re-signs a
    # rewritten history with the key file, and verify accepts it.
    lines = read_lines(d.log)
    i = next(k for k, l in enumerate(lines) if json.loads(l).get("text") == "plain")
    lines[i] = canonical_json({**json.loads(lines[i]), "text": "edited"})
    pem = serialization.load_pem_private_key(key, password=None)
    d.log.write_bytes(b"".join(l + b"\n" for l in reseal(lines, i, pem)))
    res = d.verify()
    assert res.returncode == 0 and res.stdout.startswith("OK: "), res.stdout


def test_a_read_only_key_file_is_kept_and_said_so(daemon_factory):
    """A key file shauditd cannot erase (a read-only mount, as a Kubernetes Secret is): it
    keeps running with the key state, and the start record and stderr say the key is kept."""
    d = daemon_factory()
    keydir = d.dir / "key"
    keydir.mkdir(mode=0o700)
    d.key, d.pub = keydir / "signing.key", keydir / "signing.key.pub"
    d.config["signing_key"] = str(d.key)
    d.keygen()
    key = d.key.read_bytes()
    ro = 'mount --bind "$0" "$0" && mount -o remount,ro,bind "$0" "$0" && exec "$@"'
    d.start(wrapper=["unshare", "-m", "--propagation", "private", "sh", "-c", ro, str(keydir)])
    emit(d.socket, "line", "on a node")
    d.wait_for(lambda rs: any(r.get("text") == "on a node" for r in rs))
    assert d.stop() == 0
    assert d.key.read_bytes() == key
    start = d.records()[0]
    assert start["signing_key_kept"] == \
        f"signing key {d.key}: cannot erase it: Read-only file system", start
    assert (f"shauditd: notice: signing key {d.key}: cannot erase it: Read-only file system: "
            "the epoch-0 private key stays readable there") in d.stderr()
    res = d.verify()
    assert res.returncode == 0, res.stdout
