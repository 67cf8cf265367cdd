# SPDX-License-Identifier: Apache-2.0
"""The syslog output (RFC 5424 over TCP, UDP and TLS) against a real rsyslogd, and its TCP
framing, reconnection and retries against a raw socket that shows the exact bytes."""
import hashlib
import json
import os
import socket
import ssl
import threading
import time

import pytest

from conftest import emit, outputs, read_lines, wait_output
from rsyslog_fixture import RSYSLOGD, Pki, Rsyslog, make_ca


# A rule so that an alert (Critical: syslog severity 2, with the rule as SD-PARAM) is sent too.
RULES = ("- rule: syslog test marker\n  condition: cmd.text = syslog-marker\n"
         "  output: marker typed by %user.name\n  priority: CRITICAL\n  tags: [test]\n")
# A typed command with a newline, a tab, quotes, a backslash, ']' and non-ASCII text: one
# record, one syslog message (octet counting), the JSON line unchanged.
TRICKY = "printf '%s\\n' \"a]b\" 'c\\d'\nsecond line\twith tab: é ü 日本"

SEVERITY = {"emergency": 0, "alert": 1, "critical": 2, "error": 3, "warning": 4, "notice": 5,
            "informational": 6, "debug": 7}
# RFC 5424 6.4: MSG-UTF8 starts with the byte order mark; rsyslog keeps it at the start of msg.
BOM = "\ufeff"
INFORMATIONAL = {"command", "exec", "session_start", "session_end", "command_status", "noncmd_input"}


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return Pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def rsyslog(tmp_path_factory, pki):
    """One private rsyslogd for the module (each test tells its messages by APP-NAME)."""
    if not os.access(RSYSLOGD, os.X_OK):
        pytest.skip(f"{RSYSLOGD} is missing: install rsyslog and rsyslog-openssl "
                    "(installer/deps.sh --test)")
    r = Rsyslog(tmp_path_factory.mktemp("rsyslog"), pki)
    try:
        yield r.start()
    finally:
        r.stop()


# ---- what shauditd must send --------------------------------------------------------------

def severity(rec):
    t = rec["type"]
    if t == "alert":
        return SEVERITY[rec["priority"].lower()]
    if t in INFORMATIONAL:
        return 6
    if t in ("loss", "log_error", "rules_error") or t.startswith("output_"):
        return 3
    return 7  # start, seal, rules_loaded, ...


def token(text, limit):
    out = "".join(chr(b) if 33 <= b <= 126 else "_" for b in text.encode()[:limit])
    return out or "-"


def sd_value(v):
    return v.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def sd_params(rec, line):
    """The SD-PARAMs of [shaudit@32473] for a record, in order."""
    p = [("id", hashlib.sha256(line).hexdigest()[:32]), ("type", rec["type"]),
         ("seq", str(rec["seq"]))]
    fields = rec.get("output_fields", {})
    for name, key, fallback in (("session", "session", "session.id"), ("user", "user", "user.name"),
                                ("uid", "uid", "user.uid")):
        v = rec.get(key, fields.get(fallback))
        if v is not None:
            p.append((name, str(v)))
    if rec["type"] == "alert":
        p.append(("rule", rec["rule"]))
    return p


def structured_data(rec, line):
    return ("[shaudit@32473" + "".join(f' {k}="{sd_value(v)}"' for k, v in sd_params(rec, line))
            + "]")


def expected_message(line, app, facility):
    """The RFC 5424 message (without framing) for one log line (bytes): a str."""
    rec = json.loads(line)
    pri = facility * 8 + severity(rec)
    ts = rec["time"][:26] + "Z"  # microseconds, UTC
    sd = structured_data(rec, line)
    procid = str(rec["pid"]) if "pid" in rec else "-"
    return (f"<{pri}>1 {ts} {token(socket.gethostname(), 255)} {token(app, 48)} {procid} "
            f"{token(rec['type'], 32)} {sd} {BOM}{line.decode()}")


def check_received(m, line, app, facility, proto):
    """One message as rsyslog parsed it against the log line it must carry."""
    rec = json.loads(line)
    sev = severity(rec)
    assert m["input"] == proto
    assert (m["pri"], m["facility"], m["severity"]) == (str(facility * 8 + sev), str(facility), str(sev))
    assert m["version"] == "1"
    assert m["timestamp"] == rec["time"][:26] + "Z"
    assert m["hostname"] == token(socket.gethostname(), 255)
    assert m["app_name"] == app
    assert m["procid"] == (str(rec["pid"]) if "pid" in rec else "-")
    assert m["msgid"] == rec["type"]
    assert m["sd"] == structured_data(rec, line)
    assert m["msg"] == BOM + line.decode()  # the exact JSON line of the log, after the BOM
    # The JSON as rsyslog's own parser reads it (parse_json past the BOM, see rsyslog_fixture).
    assert m["json_rc"] == "0", m
    assert json.loads(m["json"]) == rec
    assert m["raw"] == expected_message(line, app, facility)


# ---- shauditd side helpers ----------------------------------------------------------------

def syslog_output(name, proto, port, app, facility=16, **extra):
    o = {"name": name, "type": "syslog", "protocol": proto, "address": f"127.0.0.1:{port}",
         "facility": facility, "app_name": app, "events": "records", "timeout_ms": 2000,
         "retry_max_ms": 500}
    o.update(extra)
    return o


def emit_ok(d, text):
    cp, _ = emit(d.socket, "line", text)
    assert cp.returncode == 0, cp.stderr


def sealed_lines(d, pred):
    """The log's lines once pred(records) holds and a seal follows the last record it needs."""
    def ready(recs):
        if not pred(recs):
            return False
        return recs[-1]["type"] == "seal"
    d.wait_for(ready)
    return read_lines(d.log)


def for_app(msgs, app):
    return [m for m in msgs if m["app_name"] == app]


# ---- against rsyslogd ---------------------------------------------------------------------

@pytest.mark.parametrize("proto,facility", [("tcp", 16), ("udp", 17), ("tls", 10)])
def test_records_arrive_as_exact_rfc5424(rsyslog, pki, daemon_factory, tmp_path, proto, facility):
    app = f"sa-{proto}"
    port = {"tcp": rsyslog.tcp_port, "udp": rsyslog.udp_port, "tls": rsyslog.tls_port}[proto]
    extra = {"ca_file": str(pki.ca_crt)} if proto == "tls" else {}
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    d = daemon_factory(rules=[str(rules)],
                       outputs=[syslog_output("sl", proto, port, app, facility, **extra)]).start()
    emit_ok(d, "syslog-marker")
    emit_ok(d, TRICKY)
    lines = sealed_lines(d, lambda rs: any(r["type"] == "alert" for r in rs)
                         and any(r.get("text") == TRICKY for r in rs))
    recs = [json.loads(l) for l in lines]
    assert {"start", "rules_loaded", "command", "alert", "seal"} <= {r["type"] for r in recs}
    want = {BOM + l.decode() for l in lines}
    msgs = for_app(rsyslog.wait_for(lambda ms: want <= {m["msg"] for m in for_app(ms, app)}), app)
    for line in lines:
        got = [m for m in msgs if m["msg"] == BOM + line.decode()]
        assert len(got) == 1, (line, got)
        check_received(got[0], line, app, facility, proto)
    # Nothing else arrived: no fragment of a record split at its newline, no duplicate.
    assert len(msgs) == len(lines)
    alert = next(r for r in recs if r["type"] == "alert")
    assert alert["priority"] == "Critical"
    st = outputs(d)["sl"]
    assert st["last_error"] == "" and st["retries"] == 0 and st["failed"] == 0
    assert d.stop() == 0


def test_tls_with_the_wrong_ca_or_name_delivers_nothing(rsyslog, pki, daemon_factory, tmp_path):
    other_ca, _ = make_ca(tmp_path, "other-ca")
    port = rsyslog.tls_port
    d = daemon_factory(outputs=[
        syslog_output("wrongca", "tls", port, "sa-wrongca", ca_file=str(other_ca)),
        syslog_output("wrongname", "tls", port, "sa-wrongname", ca_file=str(pki.ca_crt),
                      server_name="not-localhost.test"),
        # Without verification the same wrong CA is accepted.
        syslog_output("noverify", "tls", port, "sa-noverify", ca_file=str(other_ca), tls_verify=False),
        # A host name: resolved, sent as SNI and checked against the certificate's DNS name.
        dict(syslog_output("byname", "tls", port, "sa-byname", ca_file=str(pki.ca_crt)),
             address=f"localhost:{port}"),
    ]).start()
    emit_ok(d, "echo over tls")
    lines = sealed_lines(d, lambda rs: any(r["type"] == "command" for r in rs))
    want = {BOM + l.decode() for l in lines}
    rsyslog.wait_for(lambda ms: want <= {m["msg"] for m in for_app(ms, "sa-noverify")}
                     and want <= {m["msg"] for m in for_app(ms, "sa-byname")})
    bad = wait_output(d, "wrongca", lambda s: s["retries"] >= 2)
    assert bad["last_error"].startswith(
        f"syslog tls 127.0.0.1:{port}: TLS handshake: certificate verification failed for '127.0.0.1': ")
    assert bad["last_error"].endswith(("self-signed certificate in certificate chain",
                                       "unable to get local issuer certificate")), bad["last_error"]
    assert bad["pending"] >= len(lines) and bad["delivered"] == 0
    name = wait_output(d, "wrongname", lambda s: s["retries"] >= 2)
    assert name["last_error"] == (f"syslog tls 127.0.0.1:{port}: TLS handshake: certificate "
                                  "verification failed for 'not-localhost.test': hostname mismatch")
    assert name["pending"] >= len(lines) and name["delivered"] == 0
    msgs = rsyslog.messages()
    assert for_app(msgs, "sa-wrongca") == [] and for_app(msgs, "sa-wrongname") == []
    assert d.stop() == 0


def test_tls_client_certificate(rsyslog, pki, daemon_factory):
    port = rsyslog.mtls_port  # rsyslog requires a client certificate from its CA here
    d = daemon_factory(outputs=[
        syslog_output("mtls", "tls", port, "sa-mtls", facility=4, ca_file=str(pki.ca_crt),
                      cert_file=str(pki.client_crt), key_file=str(pki.client_key)),
        syslog_output("nocert", "tls", port, "sa-nocert", ca_file=str(pki.ca_crt)),
    ]).start()
    emit_ok(d, "echo with a client certificate")
    lines = sealed_lines(d, lambda rs: any(r["type"] == "command" for r in rs))
    want = {BOM + l.decode() for l in lines}
    msgs = for_app(rsyslog.wait_for(lambda ms: want <= {m["msg"] for m in for_app(ms, "sa-mtls")}),
                   "sa-mtls")
    for line in lines:
        check_received(next(m for m in msgs if m["msg"] == BOM + line.decode()), line, "sa-mtls", 4, "mtls")
    # TLS 1.3: the refusal comes after the client's handshake; it must still not count as sent.
    st = wait_output(d, "nocert", lambda s: s["retries"] >= 2)
    assert "the collector ended the TLS session after the handshake" in st["last_error"]
    assert "certificate required" in st["last_error"], st["last_error"]
    assert st["pending"] >= len(lines) and st["delivered"] == 0
    assert for_app(rsyslog.messages(), "sa-nocert") == []
    assert d.stop() == 0


def test_udp_cuts_a_long_message_tcp_does_not(rsyslog, daemon_factory):
    d = daemon_factory(outputs=[
        syslog_output("udp", "udp", rsyslog.udp_port, "sa-long-udp"),
        syslog_output("tcp", "tcp", rsyslog.tcp_port, "sa-long-tcp"),
    ]).start()
    text = "echo " + "é" * 35000  # a JSON line of about 70,000 bytes
    emit_ok(d, text)
    lines = sealed_lines(d, lambda rs: any(r.get("text") == text for r in rs))
    line = next(l for l in lines if json.loads(l).get("text") == text)
    full = expected_message(line, "sa-long-tcp", 16).encode()
    assert len(full) > 65000
    # TCP: the whole record.
    msgs = rsyslog.wait_for(lambda ms: any(m["msg"] == BOM + line.decode()
                                           for m in for_app(ms, "sa-long-tcp")))
    check_received(next(m for m in for_app(msgs, "sa-long-tcp") if m["msg"] == BOM + line.decode()),
                   line, "sa-long-tcp", 16, "tcp")
    # UDP: cut to 65,000 bytes, not inside a UTF-8 character.
    want = expected_message(line, "sa-long-udp", 16).encode()
    cut = 65000
    while want[cut] & 0xC0 == 0x80:
        cut -= 1
    msgs = rsyslog.wait_for(lambda ms: any(m["procid"] == str(json.loads(line)["pid"])
                                           for m in for_app(ms, "sa-long-udp")))
    got = next(m for m in for_app(msgs, "sa-long-udp") if m["msgid"] == "command")
    assert got["raw"].encode() == want[:cut]
    assert d.stop() == 0


def test_a_bad_ca_file_stops_shauditd_at_start(daemon_factory, tmp_path):
    missing = tmp_path / "no-such-ca.pem"
    d = daemon_factory(outputs=[syslog_output("tlsbad", "tls", 6514, "x", ca_file=str(missing))])
    d.start(wait=False)
    assert d.proc.wait(timeout=20) == 1
    d.stop()
    assert f"output 'tlsbad': cannot load ca_file {missing}" in d.stderr()


# ---- framing, reconnection and retries on a raw TCP socket --------------------------------

class RawCollector:
    """A TCP listener on 127.0.0.1 keeping the bytes of each accepted connection."""

    def __init__(self, port=0, tls=None):
        self.tls = tls  # a server ssl.SSLContext: the bytes kept are the decrypted stream
        self.sni = []  # the server name each TLS client sent (None: none)
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", port))
        self.lsock.listen(8)
        self.lsock.settimeout(0.1)
        self.port = self.lsock.getsockname()[1]
        self.lock = threading.Lock()
        self.conns = []  # [socket, bytearray]
        self.stopping = False
        self.threads = [threading.Thread(target=self._accept, daemon=True)]
        self.threads[0].start()

    def _accept(self):
        while not self.stopping:
            try:
                c, _ = self.lsock.accept()
            except (socket.timeout, OSError):
                continue
            entry = [c, bytearray()]
            with self.lock:
                self.conns.append(entry)
            t = threading.Thread(target=self._read, args=(entry,), daemon=True)
            self.threads.append(t)
            t.start()

    def _read(self, entry):
        c, buf = entry
        if self.tls:
            try:
                c.settimeout(10)
                c = self.tls.wrap_socket(c, server_side=True)
                c.settimeout(None)
            except OSError:
                return
            with self.lock:
                entry[0] = c
        while True:
            try:
                b = c.recv(65536)
            except OSError:
                return
            if not b:
                return
            with self.lock:
                buf.extend(b)

    def data(self):
        with self.lock:
            return [bytes(b) for _, b in self.conns]

    def drop_connections(self):
        with self.lock:
            for c, _ in self.conns:
                try:
                    c.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                c.close()

    def close(self):
        self.stopping = True
        self.drop_connections()
        self.threads[0].join()
        self.lsock.close()


def octet_counted(buf):
    """Splits RFC 6587 octet-counted frames; every byte must belong to a frame."""
    frames, i = [], 0
    while i < len(buf):
        sp = buf.index(b" ", i)
        length = buf[i:sp]
        assert length.isdigit() and not length.startswith(b"0"), buf[i:i + 40]
        n = int(length)
        frames.append(buf[sp + 1:sp + 1 + n])
        assert len(frames[-1]) == n, "truncated frame"
        i = sp + 1 + n
    return frames


@pytest.fixture
def raw_collector():
    made = []

    def make(port=0, tls=None):
        c = RawCollector(port, tls)
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


def tls_server_context(pki, collector):
    """A TLS server context with the test CA's server certificate, noting each client's SNI."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(pki.server_crt), str(pki.server_key))

    def on_sni(sock, name, _ctx):
        with collector_lock:
            collector.append(name)
    collector_lock = threading.Lock()
    ctx.sni_callback = on_sni
    return ctx


def wait_frames(col, pred, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        conns = [octet_counted(b) for b in col.data()]
        if pred(conns):
            return conns
        time.sleep(0.05)
    raise AssertionError(f"frames never matched: {col.data()}")


def test_tcp_octet_counting_reconnect_and_retry(raw_collector, daemon_factory):
    col = raw_collector()
    d = daemon_factory(outputs=[syslog_output("raw", "tcp", col.port, "sa-raw", facility=1)]).start()
    emit_ok(d, "first\nsecond line")
    lines = sealed_lines(d, lambda rs: any(r.get("text") == "first\nsecond line" for r in rs))
    want = [expected_message(l, "sa-raw", 1).encode() for l in lines]
    conns = wait_frames(col, lambda cs: sum(len(f) for f in cs) >= len(want))
    # One connection, every record once, in log order, framed as LEN SP MSG with nothing else.
    assert conns == [want]

    # The collector closes the connection: the next batch goes through a new one, nothing lost.
    col.drop_connections()
    time.sleep(0.2)
    emit_ok(d, "after the close")
    lines2 = sealed_lines(d, lambda rs: any(r.get("text") == "after the close" for r in rs))
    want2 = [expected_message(l, "sa-raw", 1).encode() for l in lines2[len(lines):]]
    conns = wait_frames(col, lambda cs: len(cs) == 2 and len(cs[1]) >= len(want2))
    assert conns == [want, want2]

    # The collector is gone: records wait in the spool, last_error says why; back, they arrive.
    port = col.port
    col.close()
    emit_ok(d, "while it is down")
    lines3 = sealed_lines(d, lambda rs: any(r.get("text") == "while it is down" for r in rs))
    st = wait_output(d, "raw", lambda s: s["retries"] >= 1 and s["pending"] >= 2)
    assert st["last_error"] == f"syslog tcp 127.0.0.1:{port}: connect to 127.0.0.1: Connection refused"
    col2 = raw_collector(port)
    want3 = [expected_message(l, "sa-raw", 1).encode() for l in lines3[len(lines2):]]
    conns = wait_frames(col2, lambda cs: cs and len(cs[0]) >= len(want3))
    assert conns[0][:len(want3)] == want3
    wait_output(d, "raw", lambda s: s["pending"] == 0)
    assert d.stop() == 0


def test_tls_framing_and_server_name(pki, raw_collector, daemon_factory):
    sni = []
    ctx = tls_server_context(pki, sni)
    by_name, by_ip = raw_collector(tls=ctx), raw_collector(tls=ctx)
    d = daemon_factory(outputs=[
        dict(syslog_output("byname", "tls", by_name.port, "sa-tlsraw", ca_file=str(pki.ca_crt)),
             address=f"localhost:{by_name.port}"),
        syslog_output("byip", "tls", by_ip.port, "sa-tlsraw", ca_file=str(pki.ca_crt)),
    ]).start()
    emit_ok(d, "over\ntls")
    lines = sealed_lines(d, lambda rs: any(r.get("text") == "over\ntls" for r in rs))
    want = [expected_message(l, "sa-tlsraw", 16).encode() for l in lines]
    for col in (by_name, by_ip):
        assert wait_frames(col, lambda cs: sum(len(f) for f in cs) >= len(want)) == [want]
    # SNI carries the host name; an IP address is never sent as SNI (RFC 6066).
    assert sorted(sni, key=str) == sorted(["localhost", None], key=str)
    assert d.stop() == 0


def test_msg_is_utf8_with_the_bom_on_the_wire(raw_collector, daemon_factory):
    """RFC 5424 6.4: MSG in UTF-8 begins with the BOM (EF BB BF). The exact bytes of each
    frame: header, structured data, a space, the BOM, then the log line byte for byte."""
    col = raw_collector()
    d = daemon_factory(outputs=[syslog_output("bom", "tcp", col.port, "sa-bom")]).start()
    text = "printf 'caf\u00e9 \u65e5\u672c \U0001f600'"
    emit_ok(d, text)
    lines = sealed_lines(d, lambda rs: any(r.get("text") == text for r in rs))
    frames = wait_frames(col, lambda cs: sum(len(f) for f in cs) >= len(lines))[0]
    assert len(frames) == len(lines)
    for frame, line in zip(frames, lines):
        head, sep, msg = frame.partition(b"] \xef\xbb\xbf")
        assert sep and msg == line, frame
        assert head.startswith(b"<") and b"[shaudit@32473 " in head and b"\xef\xbb\xbf" not in head
    cmd = next(f for f in frames if b'"type":"command"' in f)
    assert "caf\u00e9 \u65e5\u672c \U0001f600".encode() in cmd
    assert d.stop() == 0
