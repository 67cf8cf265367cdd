# SPDX-License-Identifier: Apache-2.0
"""A private rsyslogd for output tests: plain TCP, UDP and TLS listeners on 127.0.0.1.

It runs in the foreground (-n) with its own configuration, pid file and work directory, never
touching the host's /etc/rsyslog.conf or its syslog service. Whatever arrives on the three
inputs is written, one JSON object per message, to `received` with the RFC 5424 parts rsyslog
parsed (pmrfc5424) and the raw message, plus the name of the input it came through.
"""
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
from pathlib import Path

RSYSLOGD = shutil.which("rsyslogd") or "/usr/sbin/rsyslogd"
OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"


def free_port(kind=socket.SOCK_STREAM):
    """A port on 127.0.0.1 nothing listens on right now (of this socket kind)."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def openssl(*args, cwd):
    subprocess.run([OPENSSL, *map(str, args)], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_ca(d: Path, name):
    """A self-signed CA: (cert path, key path)."""
    key, crt = d / f"{name}.key", d / f"{name}.crt"
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", crt,
            "-days", "2", "-subj", f"/CN={name}", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    return crt, key


def make_leaf(d: Path, name, ca_crt, ca_key, san="DNS:localhost,IP:127.0.0.1", usage="serverAuth"):
    """A certificate for CN=localhost with the given SAN, signed by the CA: (cert, key)."""
    key, csr, crt, ext = d / f"{name}.key", d / f"{name}.csr", d / f"{name}.crt", d / f"{name}.ext"
    ext.write_text(f"subjectAltName={san}\nextendedKeyUsage={usage}\n"
                   "basicConstraints=critical,CA:FALSE\n")
    openssl("req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr,
            "-subj", "/CN=localhost", cwd=d)
    openssl("x509", "-req", "-in", csr, "-CA", ca_crt, "-CAkey", ca_key, "-CAcreateserial",
            "-out", crt, "-days", "2", "-extfile", ext, cwd=d)
    return crt, key


# One JSON object per message; jsonf escapes quotes, backslashes and control characters.
_TEMPLATE = """
template(name="shaudit_test" type="list" option.jsonf="on") {
  property(outname="input" name="inputname" format="jsonf")
  property(outname="pri" name="pri" format="jsonf")
  property(outname="facility" name="syslogfacility" format="jsonf")
  property(outname="severity" name="syslogseverity" format="jsonf")
  property(outname="version" name="protocol-version" format="jsonf")
  property(outname="timestamp" name="timereported" dateFormat="rfc3339" format="jsonf")
  property(outname="hostname" name="hostname" format="jsonf")
  property(outname="app_name" name="app-name" format="jsonf")
  property(outname="procid" name="procid" format="jsonf")
  property(outname="msgid" name="msgid" format="jsonf")
  property(outname="sd" name="structured-data" format="jsonf")
  property(outname="msg" name="msg" format="jsonf")
  property(outname="raw" name="rawmsg" format="jsonf")
  property(outname="json_rc" name="$.json_rc" format="jsonf")
  property(outname="json" name="$!" format="jsonf")
}
"""


class Pki:
    """A test CA, a server certificate for localhost/127.0.0.1 and a client certificate."""

    def __init__(self, d: Path):
        d.mkdir(parents=True, exist_ok=True)
        self.ca_crt, self.ca_key = make_ca(d, "test-ca")
        self.server_crt, self.server_key = make_leaf(d, "server", self.ca_crt, self.ca_key)
        self.client_crt, self.client_key = make_leaf(d, "client", self.ca_crt, self.ca_key,
                                                     san="DNS:client.test", usage="clientAuth")


class Rsyslog:
    """rsyslogd -n -f CONF -i PIDFILE with imtcp (plain and TLS) and imudp on 127.0.0.1."""

    def __init__(self, d: Path, pki: Pki):
        self.dir = d
        self.dir.mkdir(parents=True, exist_ok=True)
        self.pki = pki
        self.work = d / "work"
        self.work.mkdir(exist_ok=True)
        self.conf = d / "rsyslog.conf"
        self.pidfile = d / "rsyslogd.pid"
        self.received = d / "received.jsonl"
        self.internal = d / "internal.log"
        self.stderr_path = d / "rsyslogd.stderr"
        self.proc = None
        self.tcp_port = free_port()
        self.tls_port = free_port()
        self.mtls_port = free_port()  # TLS that requires a client certificate from the CA
        self.udp_port = free_port(socket.SOCK_DGRAM)

    def config_text(self):
        return f"""
global(workDirectory="{self.work}" maxMessageSize="256k"
       parser.escapeControlCharactersOnReceive="off"
       net.enableDNS="off"
       defaultNetstreamDriverCAFile="{self.pki.ca_crt}"
       defaultNetstreamDriverCertFile="{self.pki.server_crt}"
       defaultNetstreamDriverKeyFile="{self.pki.server_key}")
module(load="imtcp")
module(load="imudp")
{_TEMPLATE}
ruleset(name="shaudit_in") {{
  # The JSON line of the log, as a collector parses it: past the UTF-8 BOM that starts MSG
  # (rsyslog keeps the BOM in msg; mmjsonparse cookie="" fails on it, parse_json does not).
  if $msg startswith "\\xEF\\xBB\\xBF" then {{
    set $.json_rc = parse_json(substring($msg, 3, 1000000), "\\$!");
  }} else {{
    set $.json_rc = "no BOM";
  }}
  action(type="omfile" file="{self.received}" template="shaudit_test")
}}
input(type="imtcp" address="127.0.0.1" port="{self.tcp_port}" name="tcp" ruleset="shaudit_in")
input(type="imudp" address="127.0.0.1" port="{self.udp_port}" name="udp" ruleset="shaudit_in")
input(type="imtcp" address="127.0.0.1" port="{self.tls_port}" name="tls" ruleset="shaudit_in"
      streamDriver.name="ossl" streamDriver.mode="1" streamDriver.authMode="anon")
input(type="imtcp" address="127.0.0.1" port="{self.mtls_port}" name="mtls" ruleset="shaudit_in"
      streamDriver.name="ossl" streamDriver.mode="1" streamDriver.authMode="x509/certvalid")
action(type="omfile" file="{self.internal}")
"""

    def start(self, timeout=15):
        self.conf.write_text(self.config_text())
        check = subprocess.run([RSYSLOGD, "-N1", "-f", str(self.conf)], capture_output=True,
                               text=True, timeout=60)
        assert check.returncode == 0, f"rsyslogd -N1: {check.stdout}{check.stderr}"
        self.stderr_file = open(self.stderr_path, "ab")
        self.proc = subprocess.Popen([RSYSLOGD, "-n", "-f", str(self.conf), "-i", str(self.pidfile)],
                                     stdin=subprocess.DEVNULL, stdout=self.stderr_file,
                                     stderr=self.stderr_file)
        deadline = time.monotonic() + timeout
        # Ready when each listener accepts (the TLS ones: a whole handshake with our CA).
        tls = ssl.create_default_context(cafile=str(self.pki.ca_crt))
        tls.load_cert_chain(str(self.pki.client_crt), str(self.pki.client_key))
        pending = {self.tcp_port: None, self.tls_port: tls, self.mtls_port: tls}
        while pending:
            if self.proc.poll() is not None:
                raise AssertionError(f"rsyslogd exited {self.proc.returncode}: {self.stderr()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"rsyslogd does not listen on {sorted(pending)}: {self.stderr()}")
            for port, ctx in list(pending.items()):
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                        if ctx:
                            ctx.wrap_socket(s, server_hostname="localhost").close()
                    del pending[port]
                except OSError:
                    pass
            time.sleep(0.05)
        # UDP has no handshake: wait until the socket is bound (ss lists it).
        while not self._udp_bound():
            if time.monotonic() > deadline:
                raise AssertionError(f"rsyslogd does not listen on udp {self.udp_port}: {self.stderr()}")
            time.sleep(0.05)
        return self

    def _udp_bound(self):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                s.bind(("127.0.0.1", self.udp_port))
                return False  # still free: rsyslogd has not bound it yet
            except OSError:
                return True

    def stderr(self):
        text = ""
        for p in (self.stderr_path, self.internal):
            try:
                text += p.read_text(errors="replace")
            except FileNotFoundError:
                pass
        return text

    def messages(self):
        """What rsyslogd wrote so far, one dict per message."""
        try:
            data = self.received.read_bytes()
        except FileNotFoundError:
            return []
        return [json.loads(l) for l in data.splitlines() if l.strip()]

    def wait_for(self, pred, timeout=15):
        """Waits until pred(messages) is true; returns the messages."""
        deadline = time.monotonic() + timeout
        msgs = []
        while time.monotonic() < deadline:
            try:
                msgs = self.messages()
            except ValueError:  # a line being written
                msgs = []
            if pred(msgs):
                return msgs
            time.sleep(0.05)
        raise AssertionError(f"rsyslog did not receive what was expected; got {msgs[-5:]}\n{self.stderr()}")

    def stop(self):
        """Stops this rsyslogd (by its pid) and waits for it."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.stderr_file.close()
        self.proc = None
