# SPDX-License-Identifier: Apache-2.0
"""A local HTTP receiver for the output tests: records every request (path, headers, body) and
answers from a plan (status, extra headers) or 200. Stands in for Slack, Loki, a webhook,
falcosidekick and an OTLP collector, none of which runs here."""
import gzip
import http.server
import json
import threading
import time


class Receiver:
    def __init__(self, port=0, tls=None):
        """tls: (certfile, keyfile) to serve HTTPS."""
        self.requests = []  # (path, {lower-case header: value}, body bytes as sent)
        self.plan = []  # answers for the next requests: (status, {header: value})
        self.times = []  # when each request arrived (time.monotonic())
        # When the plan is empty: a function (path, headers, body) -> (status, {header: value})
        # deciding each answer (called under the lock, in arrival order); None answers 200.
        self.answer = None
        self.lock = threading.Lock()
        recv = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                headers = {k.lower(): v for k, v in self.headers.items()}
                with recv.lock:
                    recv.requests.append((self.path, headers, body))
                    recv.times.append(time.monotonic())
                    if recv.plan:
                        status, extra = recv.plan.pop(0)
                    elif recv.answer:
                        status, extra = recv.answer(self.path, headers, body)
                    else:
                        status, extra = 200, {}
                reply = b"{}" if status < 300 else b'{"error":"planned"}'
                self.send_response(status)
                for k, v in extra.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *a):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]
        self.scheme = "http"
        if tls:
            import ssl
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*tls)
            self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
            self.scheme = "https"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path="/"):
        return f"{self.scheme}://127.0.0.1:{self.port}{path}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def bodies(self):
        with self.lock:
            out = []
            for path, headers, body in self.requests:
                if headers.get("content-encoding") == "gzip":
                    body = gzip.decompress(body)
                out.append(json.loads(body))
            return out

    def wait(self, pred, timeout=15):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                reqs = list(self.requests)
            if pred(reqs):
                return reqs
            time.sleep(0.02)
        raise AssertionError(f"receiver: condition not met in {timeout}s; got {len(reqs)} request(s): "
                             f"{[(p, b[:300]) for p, _, b in reqs[-5:]]}")
