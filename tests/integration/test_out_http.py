# SPDX-License-Identifier: Apache-2.0
"""HTTP outputs (webhook, falcosidekick, Slack, Loki, OTLP) against a local receiver that checks
the documented payloads; at-least-once delivery through the disk spool (outage, restart,
Retry-After, refused batches, overflow)."""
import json
import signal
import socket
import subprocess
import time

import pytest

from conftest import SHAUDITD, emit, line_hash, outputs
from httprecv import Receiver
import wire

RULES = """
- rule: Read shadow
  condition: evt.type = command and cmd.text contains /etc/shadow
  output: "%user.name read shadow in session %session.id: %cmd.text"
  priority: WARNING
  tags: [credentials, test]
"""


@pytest.fixture
def recv():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def rules(tmp_path):
    p = tmp_path / "rules.yaml"
    p.write_text(RULES)
    return p


def test_webhook_gets_every_record_verbatim_with_ids_and_headers(daemon_factory, recv):
    d = daemon_factory(outputs=[{"name": "hook", "type": "webhook", "url": recv.url("/in"),
                                 "events": "records", "headers": {"Authorization": "Bearer t0k"},
                                 "batch_wait_ms": 0}]).start()
    cp, pid = emit(d.socket, "line", "echo hello world > example.txt")
    assert cp.returncode == 0, cp.stderr
    recv.wait(lambda rs: any(b"echo hello world" in b for _, _, b in rs))
    lines = {json.loads(l)["seq"]: l for l in d.lines()}
    items = [it for b in recv.bodies() for it in b]
    cmd = next(it for it in items if it["record"]["type"] == "command")
    assert cmd["record"]["text"] == "echo hello world > example.txt"
    assert cmd["record"]["pid"] == pid
    # The record exactly as signed in the log, and its stable id.
    line = lines[cmd["record"]["seq"]]
    assert json.dumps(cmd["record"], separators=(",", ":"), sort_keys=True, ensure_ascii=False) == line
    import hashlib
    assert cmd["id"] == hashlib.sha256(line.encode()).hexdigest()[:32]
    path, headers, _ = recv.requests[0]
    assert path == "/in"
    assert headers["authorization"] == "Bearer t0k"
    assert headers["content-type"] == "application/json"
    assert headers["user-agent"].startswith("shauditd/")
    first = recv.bodies()[0]
    assert headers["x-shaudit-ids"] == ",".join(it["id"] for it in first)
    # Seals are shipped too (the chain head anchored off the host).
    recv.wait(lambda rs: any(b'"type":"seal"' in b for _, _, b in rs))
    assert d.stop() == 0
    st_types = [it["record"]["type"] for b in recv.bodies() for it in b]
    assert st_types[0] == "start" and "seal" in st_types
    assert d.verify().returncode == 0


def test_falcosidekick_gets_falco_json_for_alerts_only(daemon_factory, recv, rules):
    d = daemon_factory(rules=[str(rules)],
                       outputs=[{"name": "fsk", "type": "falcosidekick", "url": recv.url("/"),
                                 "seals": False}]).start()
    emit(d.socket, "line", "ls /bin")
    emit(d.socket, "line", "cat /etc/shadow")
    reqs = recv.wait(lambda rs: len(rs) >= 1)
    time.sleep(0.5)
    assert len(recv.requests) == 1  # ls /bin matched nothing; one event per POST
    ev = recv.bodies()[0]
    assert set(ev) == {"time", "rule", "priority", "output", "output_fields", "source", "tags", "hostname",
                       "uuid"}
    assert ev["hostname"] == socket.gethostname()
    assert ev["rule"] == "Read shadow"
    assert ev["priority"] == "Warning"
    assert ev["source"] == "shaudit"
    assert ev["tags"] == ["credentials", "test"]
    assert ev["output_fields"] and ev["output_fields"]["cmd.text"] == "cat /etc/shadow"
    alert_line = next(l for l in d.lines() if json.loads(l)["type"] == "alert")
    alert = json.loads(alert_line)
    # The event's uuid is the alert record's id (the first 32 hex digits of its line's SHA-256).
    rid = line_hash(alert_line.encode())[:32]
    assert ev["uuid"] == f"{rid[:8]}-{rid[8:12]}-{rid[12:16]}-{rid[16:20]}-{rid[20:]}"
    # Falco prefixes its output with the event's time of day and the priority.
    assert ev["output"] == f"{alert['time'][11:29]}: Warning {alert['output']}"
    assert ev["time"] == alert["time"]
    assert reqs[0][1]["content-type"] == "application/json"
    assert d.stop() == 0


def test_slack_message_is_readable(daemon_factory, recv, rules):
    d = daemon_factory(rules=[str(rules)],
                       outputs=[{"name": "slack", "type": "slack", "url": recv.url("/services/T/B/X")}]).start()
    emit(d.socket, "line", "cat /etc/shadow > /tmp/`x`.txt")
    recv.wait(lambda rs: len(rs) >= 1)
    time.sleep(0.3)
    assert len(recv.requests) == 1  # no seals to a chat channel by default
    msg = recv.bodies()[0]
    text = msg["text"]
    assert "Read shadow" in text and "Warning" in text
    alert = next(r for r in d.records() if r["type"] == "alert")
    assert "user.name" in alert["output_fields"] and "root" in text
    assert "```" in text and "cat /etc/shadow &gt; /tmp/" in text
    assert d.stop() == 0


def test_loki_push_is_gzipped_with_tenant_and_labels(daemon_factory, recv):
    d = daemon_factory(outputs=[{"name": "loki", "type": "loki", "url": recv.url("/loki/api/v1/push"),
                                 "events": "records", "tenant": "team-a", "labels": ["type", "user"]}]).start()
    emit(d.socket, "line", "mkdir /hellofalco")
    recv.wait(lambda rs: any(h.get("content-encoding") == "gzip" for _, h, _ in rs) and
              any(b'mkdir /hellofalco' in __import__("gzip").decompress(b) for _, _, b in rs))
    path, headers, _ = recv.requests[0]
    assert path == "/loki/api/v1/push"
    assert headers["x-scope-orgid"] == "team-a"
    assert headers["content-encoding"] == "gzip"
    lines = set(d.lines())
    found = False
    for body in recv.bodies():
        for stream in body["streams"]:
            assert stream["stream"]["job"] == "shaudit"
            for ts, line in stream["values"]:
                assert line in lines
                rec = json.loads(line)
                assert stream["stream"]["type"] == rec["type"]
                assert isinstance(ts, str) and int(ts) > 0
                assert stream["stream"]["host"] == socket.gethostname()  # on every stream
                if rec["type"] == "command" and rec["text"] == "mkdir /hellofalco":
                    found = True
                    assert stream["stream"]["user"] == rec["user"]
    assert found
    assert d.stop() == 0


def test_otlp_logs_json(daemon_factory, recv, rules):
    d = daemon_factory(rules=[str(rules)],
                       outputs=[{"name": "otel", "type": "otlp", "url": recv.url("/v1/logs"),
                                 "seals": False}]).start()
    emit(d.socket, "line", "cat /etc/shadow")
    recv.wait(lambda rs: len(rs) >= 1)
    body = recv.bodies()[0]
    rl = body["resourceLogs"][0]
    attrs = {a["key"]: a["value"] for a in rl["resource"]["attributes"]}
    assert attrs["service.name"] == {"stringValue": "shaudit"}
    rec = rl["scopeLogs"][0]["logRecords"][0]
    alert = next(r for r in d.records() if r["type"] == "alert")
    assert json.loads(rec["body"]["stringValue"]) == alert
    assert rec["severityText"] == "Warning"
    assert isinstance(rec["timeUnixNano"], str)
    rattrs = {a["key"]: a["value"] for a in rec["attributes"]}
    assert rattrs["shaudit.rule"] == {"stringValue": "Read shadow"}
    assert d.stop() == 0


def test_retry_after_is_honoured_and_4xx_is_not_retried(daemon_factory, recv):
    recv.plan = [(429, {"Retry-After": "2"})]
    d = daemon_factory(outputs=[{"name": "hook", "type": "webhook", "url": recv.url("/"),
                                 "events": "records", "seals": False, "batch_wait_ms": 0}]).start()
    t0 = time.monotonic()
    emit(d.socket, "line", "first")
    recv.wait(lambda rs: len(rs) >= 2, timeout=10)
    # The retry came after the pause the receiver asked for, not at the 100 ms back-off.
    gap = time.monotonic() - t0
    assert gap >= 1.9, gap
    s = outputs(d)["hook"]
    assert s["retries"] == 1 and s["failed"] == 0
    # A 400 is refused for good: not retried, logged as an output_error record.
    recv.plan = [(400, {})]
    n = len(recv.requests)
    emit(d.socket, "line", "second")
    recv.wait(lambda rs: len(rs) >= n + 1)
    errs = d.wait_for(lambda rs: any(r["type"] == "output_error" for r in rs))
    err = next(r for r in errs if r["type"] == "output_error")
    assert err["output_name"] == "hook"
    assert "HTTP 400" in err["error"]
    s = outputs(d)["hook"]
    assert s["failed"] >= 1 and "HTTP 400" in s["last_error"]
    assert d.stop() == 0


def test_outage_and_restart_lose_nothing(daemon_factory, recv, tmp_path):
    """The receiver is down while 1,000 commands are typed (into dash on a pty) and shauditd
    is restarted once (some lines typed while it is down); when the receiver comes back all
    1,000 arrive, in order, none twice after dedupe by id."""
    from test_capture import start_shell
    port = recv.port
    recv.close()  # down
    out = {"name": "hook", "type": "webhook", "url": f"http://127.0.0.1:{port}/", "events": "records",
           "seals": False, "retry_max_ms": 300, "batch_max": 50}
    d = daemon_factory(outputs=[out]).start()
    work = tmp_path / "w"
    work.mkdir()
    texts = [f": outage-cmd-{i:04d}" for i in range(1000)]
    sh = start_shell(d, "dash", work)
    try:
        for t in texts[:500]:
            sh.line(t, delay=0)
        d.wait_for(lambda rs: sum(r["type"] == "command" for r in rs) >= 500, timeout=30)
        assert d.stop() == 0
        # The receiver is down: every record but the seals (seals: false) and the output's own
        # state records (its output_error: never offered to itself) waits in the spool.
        spooled = spooled_lines(d, "hook")
        assert spooled == [l for l in d.lines() if json.loads(l)["type"] != "seal" and
                           json.loads(l).get("output_name") != "hook"]
        assert len(spooled) >= 500
        for t in texts[500:750]:  # shauditd is down: the interposer holds these
            sh.line(t, delay=0)
        d.start()
        for t in texts[750:]:
            sh.line(t, delay=0)
    finally:
        sh.exit()
    d.wait_for(lambda rs: sum(r["type"] == "command" and r["text"].startswith(": outage-cmd-")
                              for r in rs) >= 1000, timeout=30)
    recv2 = Receiver(port)  # back
    try:
        recv2.wait(lambda rs: sum(b.count(b": outage-cmd-") for _, _, b in rs) >= 1000, timeout=60)
        seen, got = set(), []
        for batch in recv2.bodies():
            for it in batch:
                if it["id"] in seen:
                    continue
                seen.add(it["id"])
                if it["record"]["type"] == "command" and it["record"]["text"] != "exit":
                    got.append(it["record"]["text"])
        assert got == texts
    finally:
        recv2.close()
    assert d.stop() == 0


def spooled_lines(d, name):
    """The lines in output `name`'s spool segments, in order."""
    segs = sorted((d.dir / "state" / "spool" / name).glob("*.jsonl"))
    return [line for s in segs for line in s.read_text().splitlines()]


def test_spool_overflow_is_an_alert(daemon_factory):
    d = daemon_factory(outputs=[{"name": "hook", "type": "webhook", "url": "http://127.0.0.1:9/",
                                 "events": "records", "seals": False, "spool_max_mib": 1}]).start()
    c = d.connect()
    for i in range(3000):
        c.send(wire.line(i + 1, f"fill-{i:05d} " + "x" * 400))
    recs = d.wait_for(lambda rs: any(r["type"] == "alert" and r["rule"] == "shaudit output spool overflow"
                                     for r in rs), timeout=30)
    a = next(r for r in recs if r["type"] == "alert")
    assert a["priority"] == "Critical" and a["output_name"] == "hook"
    s = outputs(d)["hook"]
    assert s["overflowed"] > 0 and s["pending_bytes"] <= 1 << 20
    # Every record is still in the log.
    assert sum(r["type"] == "command" for r in d.records()) == 3000
    assert d.stop() == 0


def test_bad_output_config_is_a_clear_error(daemon_factory):
    d = daemon_factory(outputs=[{"name": "x", "type": "webhook"}])
    d.keygen()
    d.write_config()
    p = subprocess.run([str(SHAUDITD), "--config", str(d.config_path)],
                       capture_output=True, text=True, timeout=10)
    assert p.returncode == 1
    assert "output 'x' (webhook) needs 'url'" in p.stderr
    d2 = daemon_factory(name="e", outputs=[{"type": "kafka", "url": "http://x/"}])
    d2.keygen()
    d2.write_config()
    p = subprocess.run([str(SHAUDITD), "--config", str(d2.config_path)],
                       capture_output=True, text=True, timeout=10)
    assert p.returncode == 1
    assert "unknown type 'kafka'" in p.stderr and "e.yaml:" in p.stderr


def test_sighup_reloads_outputs_and_rules_and_keeps_a_broken_config_out(daemon_factory, recv, rules):
    other = Receiver()
    try:
        d = daemon_factory(outputs=[{"name": "a", "type": "webhook", "url": recv.url("/a"),
                                     "events": "records", "seals": False, "batch_wait_ms": 0}]).start()
        emit(d.socket, "line", "before-reload")
        recv.wait(lambda rs: any(b"before-reload" in b for _, _, b in rs))
        # New config: the output points elsewhere, a rule set appears, the socket would move.
        d.config["outputs"] = json.dumps([{"name": "a", "type": "webhook", "url": other.url("/b"),
                                           "events": "records", "seals": False, "batch_wait_ms": 0}])
        d.config["rules"] = json.dumps([str(rules)])
        d.config["seal_every"] = "5000"
        d.write_config()
        d.proc.send_signal(signal.SIGHUP)
        loaded = d.wait_for(lambda rs: any(r["type"] == "config_loaded" for r in rs))
        rec = next(r for r in loaded if r["type"] == "config_loaded")
        assert rec["restart_needed"] == ["seal_every"]
        assert rec["outputs"] == 1
        d.wait_for(lambda rs: any(r["type"] == "rules_loaded" for r in rs))
        emit(d.socket, "line", "cat /etc/shadow # after-reload")
        got = other.wait(lambda rs: any(b"after-reload" in b and b'"type":"alert"' in b for _, _, b in rs))
        assert all(p == "/b" for p, _, _ in got)
        assert not any(b"after-reload" in b for _, _, b in recv.requests)
        # A broken file changes nothing: a config_error record, and the outputs keep working.
        d.config_path.write_text(d.config_path.read_text() + "outputs_typo: 1\n")
        d.proc.send_signal(signal.SIGHUP)
        errs = d.wait_for(lambda rs: any(r["type"] == "config_error" for r in rs))
        err = next(r for r in errs if r["type"] == "config_error")
        assert "unknown key 'outputs_typo'" in err["error"]
        emit(d.socket, "line", "after-broken-reload")
        other.wait(lambda rs: any(b"after-broken-reload" in b for _, _, b in rs))
        assert "configuration not reloaded" in d.stderr()
        assert d.stop() == 0
    finally:
        other.close()


def test_https_verifies_the_certificate_by_default(daemon_factory, tmp_path):
    """TLS verification is on: a server whose certificate is not trusted gets nothing (the
    records stay spooled, the error is in stats); with its CA as ca_file they are delivered."""
    ca_key, ca, key, csr, cert = (tmp_path / n for n in ("ca.key", "ca.pem", "srv.key", "srv.csr", "srv.pem"))
    ossl = ["openssl"]
    subprocess.run(ossl + ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca,
                           "-days", "2", "-subj", "/CN=shaudit test CA"], check=True, capture_output=True)
    subprocess.run(ossl + ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr,
                           "-subj", "/CN=127.0.0.1"], check=True, capture_output=True)
    ext = tmp_path / "ext.cnf"
    ext.write_text("subjectAltName=IP:127.0.0.1\n")
    subprocess.run(ossl + ["x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
                           "-out", cert, "-days", "2", "-extfile", ext], check=True, capture_output=True)
    srv = Receiver(tls=(str(cert), str(key)))
    try:
        base = {"type": "webhook", "url": srv.url("/"), "events": "records", "seals": False,
                "batch_wait_ms": 0, "retry_max_ms": 200}
        d = daemon_factory(outputs=[dict(base, name="untrusted"), dict(base, name="trusted", ca_file=str(ca))]).start()
        emit(d.socket, "line", "over-tls")
        srv.wait(lambda rs: any(b"over-tls" in b for _, _, b in rs))
        time.sleep(0.5)
        s = outputs(d)
        assert s["trusted"]["delivered"] >= 1 and s["trusted"]["pending"] == 0
        assert s["untrusted"]["delivered"] == 0 and s["untrusted"]["pending"] >= 1
        assert "SSL" in s["untrusted"]["last_error"] or "certificate" in s["untrusted"]["last_error"]
        # Only the trusted output's requests arrived.
        assert sum(b.count(b"over-tls") for _, _, b in srv.requests) == 1
        assert d.stop() == 0
    finally:
        srv.close()


def test_minimum_priority_and_enabled_per_output(daemon_factory, recv, rules):
    other = Receiver()
    try:
        base = {"type": "webhook", "seals": False, "batch_wait_ms": 0}
        d = daemon_factory(rules=[str(rules)], outputs=[
            dict(base, name="warn", url=recv.url("/warn"), minimum_priority="warning"),
            dict(base, name="crit", url=other.url("/crit"), minimum_priority="critical"),
            dict(base, name="off", url=other.url("/off"), enabled=False),
            # Every record at Informational or above: commands yes, seals/start (Debug) no.
            dict(base, name="info", url=other.url("/info"), events="records", minimum_priority="informational"),
        ]).start()
        emit(d.socket, "line", "cat /etc/shadow")  # fires the Warning rule
        recv.wait(lambda rs: len(rs) >= 1)
        other.wait(lambda rs: any(p == "/info" and b"cat /etc/shadow" in b and b'"type":"alert"' in b
                                  for p, _, b in rs))
        time.sleep(0.5)
        assert [json.loads(b)[0]["record"]["rule"] for _, _, b in recv.requests] == ["Read shadow"]
        paths = {p for p, _, _ in other.requests}
        assert paths == {"/info"}  # nothing for "crit" (Warning < Critical) or the disabled one
        types = [it["record"]["type"] for _, _, b in other.requests for it in json.loads(b)]
        assert "command" in types and "alert" in types
        assert "start" not in types and "seal" not in types
        assert set(outputs(d)) == {"warn", "crit", "info"}
        assert d.stop() == 0
    finally:
        other.close()


def test_a_destination_that_never_answers_times_out_and_is_retried(daemon_factory):
    lst = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lst.bind(("127.0.0.1", 0))
    lst.listen(16)  # accepts (the kernel does) but never answers
    port = lst.getsockname()[1]
    try:
        d = daemon_factory(outputs=[{"name": "slow", "type": "webhook", "url": f"http://127.0.0.1:{port}/",
                                     "events": "records", "seals": False, "timeout_ms": 300,
                                     "batch_wait_ms": 0}]).start()
        t0 = time.monotonic()
        emit(d.socket, "line", "nobody-answers")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            s = outputs(d)["slow"]
            if s["retries"] >= 2:
                break
            time.sleep(0.05)
        assert s["retries"] >= 2 and s["delivered"] == 0 and s["pending"] >= 1
        assert "Timeout was reached" in s["last_error"] or "timed out" in s["last_error"], s["last_error"]
        assert time.monotonic() - t0 < 5
        # A stop does not hang on it: the drain is bounded.
        t1 = time.monotonic()
        assert d.stop() == 0
        assert time.monotonic() - t1 < 5
    finally:
        lst.close()


def test_after_a_crash_the_spool_catches_up_from_the_log(daemon_factory, recv):
    """A crash between a log write and the spool append (simulated: shauditd killed, the last
    two lines cut from the spool) loses nothing for the output: at the next start the log's
    last lines the spool lacks are spooled again."""
    port = recv.port
    recv.close()
    out = {"name": "hook", "type": "webhook", "url": f"http://127.0.0.1:{port}/", "events": "records",
           "seals": False, "retry_max_ms": 200}
    d = daemon_factory(outputs=[out]).start()
    for t in ("crash-one", "crash-two", "crash-three"):
        emit(d.socket, "line", t)
    d.wait_for(lambda rs: sum(r["type"] == "command" for r in rs) == 3)
    d.proc.send_signal(signal.SIGKILL)
    d.proc.wait()
    seg = sorted((d.dir / "state" / "spool" / "hook").glob("*.jsonl"))[-1]
    lines = seg.read_bytes().splitlines(keepends=True)
    assert b"crash-three" in lines[-1] and b"crash-two" in lines[-2]
    seg.write_bytes(b"".join(lines[:-2]))  # as if the crash came before these were spooled
    d.start()
    assert "2 record(s) at the end of the log were missing from its spool" in d.stderr()
    back = Receiver(port)
    try:
        back.wait(lambda rs: sum(b.count(b'"text":"crash-') for _, _, b in rs) >= 3)
        texts = [it["record"]["text"] for b in back.bodies() for it in b
                 if it["record"]["type"] == "command"]
        assert texts == ["crash-one", "crash-two", "crash-three"]
    finally:
        back.close()
    assert d.stop() == 0
    # A clean stop ends with a closing seal: the next start catches nothing up.
    d.start()
    assert d.stderr().count("missing from its spool") == 1
    assert d.stop() == 0


# ---------------------------------------------------------------------------------------------
# Retrying: Retry-After in the past or huge, recovery after an outage, OTLP's retry policy.

PAST = "Mon, 01 Jan 2024 00:00:00 GMT"


def test_a_retry_after_in_the_past_is_no_busy_loop(daemon_factory, recv):
    """A Retry-After date already past (or a skewed clock) asks for no pause: the back-off
    (100 ms doubling) applies, never a loop of immediate retries."""
    recv.plan = [(429, {"Retry-After": PAST})] * 5
    d = daemon_factory(outputs=[{"name": "hook", "type": "webhook", "url": recv.url("/"),
                                 "events": "records", "seals": False, "batch_wait_ms": 0}]).start()
    emit(d.socket, "line", "first")
    recv.wait(lambda rs: len(rs) >= 6, timeout=15)
    gaps = [b - a for a, b in zip(recv.times, recv.times[1:6])]
    # 100, 200, 400, 800, 1600 ms: each retry waits at least the back-off step.
    for i, g in enumerate(gaps):
        assert g >= 0.1 * 2 ** i * 0.9, gaps
    s = outputs(d)["hook"]
    assert s["retries"] == 5 and s["failed"] == 0 and s["delivered"] >= 1
    assert d.stop() == 0


def test_a_huge_retry_after_is_capped_by_retry_max_ms(daemon_factory, recv):
    recv.plan = [(503, {"Retry-After": "86400"})]
    d = daemon_factory(outputs=[{"name": "hook", "type": "webhook", "url": recv.url("/"),
                                 "events": "records", "seals": False, "batch_wait_ms": 0,
                                 "retry_max_ms": 500}]).start()
    emit(d.socket, "line", "first")
    recv.wait(lambda rs: len(rs) >= 2, timeout=10)
    assert 0.45 <= recv.times[1] - recv.times[0] < 3.0, recv.times
    assert d.stop() == 0


def test_delivery_resumes_within_5_s_of_recovery(daemon_factory, recv):
    """The destination is down for 14 s (connections refused) with the default retry_max_ms:
    the back-off stops growing at 4 s, so the first delivery comes within 5 s of its return
    (at a 60 s ceiling it came ~11 s after), and a down destination got one try per 4 s."""
    port = recv.port
    recv.close()
    d = daemon_factory(outputs=[{"name": "hook", "type": "webhook",
                                 "url": f"http://127.0.0.1:{port}/", "events": "records",
                                 "seals": False, "batch_wait_ms": 0}]).start()
    emit(d.socket, "line", "during the outage")
    time.sleep(14)
    tries = outputs(d)["hook"]["retries"]
    assert 5 <= tries <= 12, tries  # 0.1, 0.2, ... 3.2, then every 4 s
    back = Receiver(port=port)
    try:
        t0 = time.monotonic()
        back.wait(lambda rs: any(b"during the outage" in b for _, _, b in rs), timeout=10)
        assert back.times[0] - t0 < 5.0, back.times[0] - t0
    finally:
        back.close()
    assert d.stop() == 0


@pytest.mark.parametrize("status,retried", [(500, False), (400, False), (429, True), (502, True),
                                            (503, True), (504, True)])
def test_otlp_retries_only_what_its_specification_allows(daemon_factory, recv, rules, status,
                                                         retried):
    recv.plan = [(status, {})]
    d = daemon_factory(rules=[str(rules)],
                       outputs=[{"name": "otel", "type": "otlp", "url": recv.url("/v1/logs"),
                                 "seals": False, "retry_max_ms": 200}]).start()
    emit(d.socket, "line", "cat /etc/shadow")
    recv.wait(lambda rs: len(rs) >= 1)
    if retried:
        recv.wait(lambda rs: len(rs) >= 2)
        s = outputs(d)["otel"]
        assert s["retries"] == 1 and s["failed"] == 0
    else:
        errs = d.wait_for(lambda rs: any(r["type"] == "output_error" for r in rs))
        err = next(r for r in errs if r["type"] == "output_error")
        assert err["output_name"] == "otel" and f"HTTP {status}" in err["error"]
        time.sleep(0.5)
        assert len(recv.requests) == 1  # not retried
    assert d.stop() == 0


def test_loki_default_labels_are_low_cardinality_and_name_the_host(daemon_factory, recv):
    """Several hosts must never merge into one stream: every stream carries host and job, whatever
    the record type (records name their host only in `start`); by default no user or session
    label (they are in the line)."""
    d = daemon_factory(outputs=[{"name": "loki", "type": "loki", "url": recv.url("/loki/api/v1/push"),
                                 "events": "records", "gzip": False}]).start()
    emit(d.socket, "line", "id")
    recv.wait(lambda rs: any(json.loads(line).get("text") == "id" for body in recv.bodies()
                             for st in body["streams"] for _, line in st["values"]))
    types = set()
    for body in recv.bodies():
        for stream in body["streams"]:
            labels = stream["stream"]
            rec_types = {json.loads(line)["type"] for _, line in stream["values"]}
            assert set(labels) == {"job", "host", "type"}, labels
            assert labels["job"] == "shaudit" and labels["host"] == socket.gethostname()
            assert rec_types == {labels["type"]}
            types |= rec_types
    assert {"start", "command"} <= types
    assert d.stop() == 0


def test_falcosidekick_uuid_is_the_record_id_and_no_seals_by_default(daemon_factory, recv):
    """Every event's uuid is the id of the log record it was made from (not only alerts'), so
    falcosidekick's destinations can tell a redelivery; seals are not posted unless asked (they
    would be forwarded to every destination)."""
    d = daemon_factory(outputs=[{"name": "fsk", "type": "falcosidekick", "url": recv.url("/"),
                                 "events": "records", "batch_wait_ms": 0}]).start()
    emit(d.socket, "line", "ls /bin")
    recv.wait(lambda rs: any(b"ls /bin" in b for _, _, b in rs))
    time.sleep(0.5)  # seals would have been written by now (seal_interval_ms 100)
    by_seq = {json.loads(l)["seq"]: l for l in d.lines()}
    assert any(json.loads(l)["type"] == "seal" for l in by_seq.values())
    events = recv.bodies()
    assert events and not [e for e in events if e["rule"] == "shaudit seal"]
    for ev in events:
        line = by_seq[ev["output_fields"]["shaudit.seq"]]
        rid = line_hash(line.encode())[:32]
        assert ev["uuid"] == f"{rid[:8]}-{rid[8:12]}-{rid[12:16]}-{rid[16:20]}-{rid[20:]}", ev
    assert d.stop() == 0


# ---- payloads against what their consumers accept (issue 16) ------------------------------

ZWSP = "\u200b"
# Slack's markup in a typed line: bold, italics, a channel mention, a link, entities, a fence.
SLACK_TYPED = "echo *bold* _it_ <!channel> <http://evil.example|click> a&b > c ```x``` channel"
SLACK_RULES = """
- rule: Slack marker
  condition: evt.type = command and cmd.text contains channel
  output: "%user.name typed %cmd.text"
  priority: CRITICAL
  tags: [test]
"""


def slack_escape(s):
    """Slack's escaping (& < >) plus a zero-width space after each backtick (no fence)."""
    return (s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace("`", "`" + ZWSP))


def test_slack_keeps_what_a_person_typed_in_the_code_block(daemon_factory, recv, tmp_path):
    """With events: records, a command's text (and the user, host and session) is inside the
    code block, escaped, as it is for an alert: Slack's *bold*, <!channel> and <url|links> in a
    typed line are shown, never applied. Exact payloads."""
    rules = tmp_path / "slack-rules.yaml"
    rules.write_text(SLACK_RULES)
    d = daemon_factory(rules=[str(rules)],
                       outputs=[{"name": "slack", "type": "slack", "url": recv.url("/services/T/B/X"),
                                 "events": "records", "minimum_priority": "informational"}]).start()
    cp, _ = emit(d.socket, "line", SLACK_TYPED)
    assert cp.returncode == 0, cp.stderr
    recv.wait(lambda rs: sum(b"channel" in b for _, _, b in rs) >= 2)
    assert d.stop() == 0
    recs = d.records()
    cmd = next(r for r in recs if r["type"] == "command" and r["text"] == SLACK_TYPED)
    alert = next(r for r in recs if r["type"] == "alert")
    texts = [b["text"] for b in recv.bodies()]

    def block(rec, command):
        host = rec.get("host") or socket.gethostname()
        user = rec.get("user") or rec.get("output_fields", {}).get("user.name")
        who = "  ".join(f"{k}: {v}" for k, v in (("user", user), ("host", host),
                                                  ("session", rec.get("session"))) if v)
        return "\n```\n" + slack_escape(who + "\n" + command) + "\n```"

    assert cmd.get("user")
    assert f"*command* (Informational){block(cmd, SLACK_TYPED)}" in texts, texts
    assert f"*Slack marker* (Critical){block(alert, SLACK_TYPED)}" in texts, texts
    for t in texts:  # whatever the record: one code block, nothing after it
        assert t.count("```") in (0, 2) and (t.count("```") == 0 or t.endswith("\n```")), t
        assert "<" not in t and ">" not in t, t


@pytest.fixture(scope="module")
def otlp_proto(tmp_path_factory):
    """opentelemetry-proto's classes, compiled by protoc from the vendored .proto files."""
    import importlib
    import importlib.util
    import shutil
    import sys
    from pathlib import Path
    protoc = shutil.which("protoc")
    if importlib.util.find_spec("google.protobuf") is None:
        pytest.skip("python3-protobuf is not installed (installer/deps.sh --test)")
    if not protoc:
        pytest.skip("protoc is not installed: apt-get install protobuf-compiler "
                    "(installer/deps.sh --test)")
    src = Path(__file__).resolve().parent.parent / "third_party" / "opentelemetry-proto"
    out = tmp_path_factory.mktemp("otlp-proto")
    protos = [str(p.relative_to(src)) for p in sorted(src.rglob("*.proto"))]
    subprocess.run([protoc, f"-I{src}", f"--python_out={out}", *protos], check=True)
    sys.path.insert(0, str(out))
    try:
        mod = importlib.import_module("opentelemetry.proto.collector.logs.v1.logs_service_pb2")
        yield mod
    finally:
        sys.path.remove(str(out))
        for name in [m for m in sys.modules if m.startswith("opentelemetry.proto")]:
            del sys.modules[name]


def rfc3339_ns(t):
    """'2026-12-06T00:50:00.123456789Z' -> integer nanoseconds since the epoch."""
    import calendar
    import re
    m = re.fullmatch(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?Z", t)
    assert m, t
    secs = calendar.timegm(tuple(int(x) for x in m.groups()[:6]))
    return secs * 10**9 + int((m.group(7) or "0").ljust(9, "0"))


def test_otlp_payload_parses_as_export_logs_service_request(daemon_factory, recv, rules,
                                                           otlp_proto):
    """Every OTLP body is an ExportLogsServiceRequest in the protobuf JSON mapping, parsed by
    the protobuf classes of opentelemetry-proto (json_format.Parse: an unknown or mistyped
    field is an error): severity, body, attributes, timestamps and resource as documented."""
    from google.protobuf import json_format
    d = daemon_factory(rules=[str(rules)],
                       outputs=[{"name": "otel", "type": "otlp", "url": recv.url("/v1/logs"),
                                 "events": "records"}]).start()
    emit(d.socket, "line", "cat /etc/shadow")
    recv.wait(lambda rs: any(b'"Read shadow"' in b for _, _, b in rs))
    assert d.stop() == 0
    by_line = {}
    for _, _, body in recv.requests:
        req = json_format.Parse(body.decode(), otlp_proto.ExportLogsServiceRequest())
        assert len(req.resource_logs) == 1
        rl = req.resource_logs[0]
        res = {a.key: a.value.string_value for a in rl.resource.attributes}
        assert res == {"service.name": "shaudit", "host.name": socket.gethostname()}
        assert [sl.scope.name for sl in rl.scope_logs] == ["shaudit"]
        for lr in rl.scope_logs[0].log_records:
            by_line[lr.body.string_value] = lr
    lines = d.lines()
    severities = {"alert": (13, "Warning"), "command": (9, "Informational"),
                  "start": (5, "Debug"), "seal": (5, "Debug")}
    seen = set()
    for line in lines:
        rec = json.loads(line)
        if rec["type"] not in severities or line not in by_line:
            continue
        lr = by_line[line]
        seen.add(rec["type"])
        assert (lr.severity_number, lr.severity_text) == severities[rec["type"]], line
        assert lr.time_unix_nano == lr.observed_time_unix_nano == rfc3339_ns(rec["time"])
        attrs = {a.key: a.value for a in lr.attributes}
        assert attrs["shaudit.type"].string_value == rec["type"]
        assert attrs["shaudit.seq"].int_value == rec["seq"]
        assert attrs["shaudit.id"].string_value == line_hash(line.encode())[:32]
        if rec["type"] == "alert":
            assert attrs["shaudit.rule"].string_value == "Read shadow"
            assert attrs["user.name"].string_value == "root"
            assert ("session.id" in attrs) == ("session" in rec)
    assert {"alert", "command", "start"} <= seen, seen


# falcosidekick's FalcoPayload (types/types.go) and what its handler needs of it (handlers.go:
# Check(), and k8s.ns.name / k8s.pod.name asserted to be strings): name -> (JSON types,
# required). Go's encoding/json rejects a value of another type for a typed field.
FALCO_PAYLOAD = {
    "uuid": ((str,), False),
    "output": ((str,), True),
    "priority": ((str,), True),
    "rule": ((str,), True),
    "time": ((str,), True),
    "output_fields": ((dict,), True),
    "source": ((str,), True),
    "tags": ((list,), False),
    "hostname": ((str,), False),
}
FALCO_PRIORITIES = {"emergency", "alert", "critical", "error", "warning", "notice",
                    "informational", "info", "debug"}
RFC3339_NANO = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}(Z|[+-]\d\d:\d\d)"


def check_falco_payload(ev):
    """Raises AssertionError naming what falcosidekick would refuse or misread in one event."""
    import re
    assert isinstance(ev, dict), ev
    assert set(ev) <= set(FALCO_PAYLOAD), f"unknown keys {set(ev) - set(FALCO_PAYLOAD)}"
    for key, (types, required) in FALCO_PAYLOAD.items():
        if key not in ev:
            assert not required, f"{key} missing: {ev}"
            continue
        assert isinstance(ev[key], types) and not isinstance(ev[key], bool), (key, ev[key])
    assert ev["priority"].lower() in FALCO_PRIORITIES, ev["priority"]
    assert ev["rule"], ev
    assert re.fullmatch(RFC3339_NANO, ev["time"]), ev["time"]
    assert ev["output_fields"], ev  # Check(): an event without output fields is refused
    for k, v in ev["output_fields"].items():
        assert isinstance(k, str) and k
        assert v is None or isinstance(v, (str, int, float, bool)), (k, v)
        if k in ("k8s.ns.name", "k8s.pod.name"):
            assert v is None or isinstance(v, str), (k, v)
    assert all(isinstance(t, str) for t in ev.get("tags", [])), ev["tags"]
    if "uuid" in ev:
        assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
                            ev["uuid"]), ev["uuid"]


def test_every_falcosidekick_event_is_a_falco_payload(daemon_factory, recv, rules):
    """Every event shauditd posts (alerts, commands, start, seals) passes a strict checker of
    falcosidekick's FalcoPayload: known keys only, types, required fields, RFC 3339 time with
    nanoseconds, non-empty output_fields."""
    d = daemon_factory(rules=[str(rules)],
                       outputs=[{"name": "fsk", "type": "falcosidekick", "url": recv.url("/"),
                                 "events": "records", "seals": True, "batch_wait_ms": 0}]).start()
    emit(d.socket, "line", "cat /etc/shadow")
    emit(d.socket, "line", "echo 'quotes' \"and\" \\ é")
    recv.wait(lambda rs: any(b'"Read shadow"' in b for _, _, b in rs)
              and any(b'shaudit seal' in b for _, _, b in rs))
    assert d.stop() == 0
    events = recv.bodies()
    rules_seen = set()
    for ev in events:
        check_falco_payload(ev)
        rules_seen.add(ev["rule"])
        # falcosidekick overwrites uuid with a random one (newFalcoPayload): the record's id
        # reaches its destinations only as an output field.
        assert ev["output_fields"]["shaudit.id"] == ev["uuid"].replace("-", ""), ev
    assert {"Read shadow", "shaudit command", "shaudit start", "shaudit seal"} <= rules_seen
    alert = next(r for r in d.records() if r["type"] == "alert")
    ev = next(e for e in events if e["rule"] == "Read shadow")
    assert ev["time"] == alert["time"] and ev["priority"] == "Warning"
    assert ev["output_fields"]["cmd.text"] == "cat /etc/shadow"
