# SPDX-License-Identifier: Apache-2.0
"""Outputs under failure (issue 16): a destination that refuses, throttles, errs or hangs.

An output's own state records (output_error, output_dropped, output_recovered) are never
offered back to it; it writes one record when it starts failing and one when it delivers again,
not one per batch; a batch a fix of the receiver or its configuration would let through (401,
403, 404, 5xx, ...) stays spooled and is delivered, in order and once, when it does; a batch
the receiver calls malformed (400, 422, ...) is dropped and its records named by id in the
signed log. Real shauditd processes, a scripted local receiver (httprecv)."""
import hashlib
import json
import socket
import threading
import time

import pytest

from conftest import outputs
from httprecv import Receiver
import wire

STATE_TYPES = ("output_error", "output_dropped", "output_recovered")


def rid(line):
    """The stable id of a log line: the first 32 hex digits of its SHA-256."""
    return hashlib.sha256(line.encode()).hexdigest()[:32]


def wanted_ids(d, name):
    """Ids, in log order, of the lines output `name` (events: records, seals: false) wants:
    every record but seals and its own state records."""
    out = []
    for line in d.lines():
        r = json.loads(line)
        if r["type"] == "seal" or (r["type"] in STATE_TYPES and r.get("output_name") == name):
            continue
        out.append(rid(line))
    return out


def state_records(d, name, type_=None):
    return [r for r in d.records()
            if r["type"] in STATE_TYPES and r.get("output_name") == name and (type_ is None or r["type"] == type_)]


def body_items(body, kind):
    """(id, record) of each record in one request body of a webhook or OTLP output."""
    doc = json.loads(body)
    if kind == "webhook":
        return [(it["id"], it["record"]) for it in doc]
    items = []
    for rl in doc["resourceLogs"]:
        for sl in rl["scopeLogs"]:
            for lr in sl["logRecords"]:
                attrs = {a["key"]: a["value"] for a in lr["attributes"]}
                items.append((attrs["shaudit.id"]["stringValue"], json.loads(lr["body"]["stringValue"])))
    return items


class Scripted(Receiver):
    """A receiver whose answer depends on time: `status` until `until` (time.monotonic()), 200
    after; remembers the status it gave each request."""

    def __init__(self, status, seconds=None):
        super().__init__()
        self.status = status
        self.until = None if seconds is None else time.monotonic() + seconds
        self.statuses = []
        self.answer = self._answer

    def _answer(self, path, headers, body):
        failing = self.until is None or time.monotonic() < self.until
        st = self.status if failing else 200
        self.statuses.append(st)
        return st, {}

    def delivered(self, kind="webhook"):
        """(id, record) of every record in a request answered 200, in arrival order."""
        with self.lock:
            reqs = [(b, st) for (_, _, b), st in zip(self.requests, self.statuses)]
        return [it for b, st in reqs if st == 200 for it in body_items(b, kind)]

    def sent(self, kind="webhook"):
        with self.lock:
            reqs = list(self.requests)
        return [it for _, _, b in reqs for it in body_items(b, kind)]


@pytest.fixture
def healthy():
    r = Receiver()
    yield r
    r.close()


def hook(url, **kw):
    o = {"name": "hook", "type": "webhook", "url": url, "events": "records", "seals": False,
         "batch_wait_ms": 0, "batch_max": 5}
    o.update(kw)
    return o


def other(url):
    return {"name": "other", "type": "webhook", "url": url, "events": "records", "seals": False,
            "batch_wait_ms": 0}


def send_lines(d, texts, gap=0.0, first_seq=1):
    c = d.connect()
    for i, t in enumerate(texts):
        c.send(wire.line(first_seq + i, t))
        if gap:
            time.sleep(gap)
    return c


def received_state(recv, name):
    """The state records about output `name` that a healthy webhook receiver got, as delivered
    (repeats included)."""
    return [rec for _, rec in (it for _, _, b in list(recv.requests) for it in body_items(b, "webhook"))
            if rec["type"] in STATE_TYPES and rec.get("output_name") == name]


def assert_held_then_delivered(d, recv, healthy, texts, status):
    # Everything the output wants is delivered once the receiver takes it again: exactly
    # once, in the log's order.
    d.wait_for(lambda rs: sum(r["type"] == "command" for r in rs) == len(texts), timeout=20)
    d.wait_for(lambda rs: any(r["type"] == "output_recovered" and r["output_name"] == "hook" for r in rs),
               timeout=30)
    want = wanted_ids(d, "hook")
    got = [i for i, _ in recv.delivered()]
    assert got == want
    assert [r["text"] for _, r in recv.delivered() if r["type"] == "command"] == texts
    # One record when it started failing, one when it recovered; nothing dropped.
    errs = state_records(d, "hook", "output_error")
    assert len(errs) == 1, errs
    e = errs[0]
    assert e["state"] == "failing" and e["action"] == "retrying" and e["status"] == status
    assert f"HTTP {status}" in e["error"]
    assert e["first_id"] == want[0]  # the start record: the first thing it was sent
    assert state_records(d, "hook", "output_dropped") == []
    rec = state_records(d, "hook", "output_recovered")
    assert len(rec) == 1, rec
    r = rec[0]
    refused = sum(st != 200 for st in recv.statuses)
    assert r["state"] == "recovered" and r["failed_attempts"] == refused
    assert r["records_dropped"] == 0 and r["batches_dropped"] == 0
    assert f"HTTP {status}" in r["error"]
    # Its own state records never went to it; the healthy output got each exactly once.
    assert not [rec for _, rec in recv.sent() if rec["type"] in STATE_TYPES]
    healthy.wait(lambda rs: len(received_state(healthy, "hook")) >= 2)
    time.sleep(0.3)
    assert [x["type"] for x in received_state(healthy, "hook")] == ["output_error", "output_recovered"]
    s = outputs(d)["hook"]
    assert s["pending"] == 0 and s["failed"] == 0 and s["retries"] == refused
    return r


def test_an_expired_token_is_held_and_everything_is_delivered_once_after_the_fix(daemon_factory, healthy):
    """The receiver answers 401 for 10 s (an expired token), then 200: nothing is dropped, every
    record arrives exactly once and in order, and the log has one failing and one recovered
    record for the output (before: every refused batch was dropped with an output_error record,
    which the output wanted and had refused again, and so on)."""
    recv = Scripted(401, seconds=10)
    try:
        d = daemon_factory(outputs=[hook(recv.url("/"), retry_max_ms=1000), other(healthy.url("/"))]).start()
        texts = [f"token-{i:02d}" for i in range(30)]
        c = send_lines(d, texts, gap=0.2)
        r = assert_held_then_delivered(d, recv, healthy, texts, 401)
        assert 9000 <= r["duration_ms"] <= 13000, r
        c.close()
        assert d.stop() == 0
        assert d.verify().returncode == 0
    finally:
        recv.close()


@pytest.mark.parametrize("status", [403, 404, 407, 410, 429, 500, 503])
def test_a_status_a_fix_cures_is_held_not_dropped(daemon_factory, healthy, status):
    recv = Scripted(status, seconds=3)
    try:
        d = daemon_factory(outputs=[hook(recv.url("/"), retry_max_ms=500), other(healthy.url("/"))]).start()
        texts = [f"held-{status}-{i:02d}" for i in range(12)]
        c = send_lines(d, texts, gap=0.1)
        assert_held_then_delivered(d, recv, healthy, texts, status)
        c.close()
        assert d.stop() == 0
    finally:
        recv.close()


@pytest.mark.parametrize("kind,status", [("webhook", 400), ("webhook", 422), ("otlp", 401), ("otlp", 500)])
def test_a_refused_payload_is_dropped_once_named_by_id_and_no_loop(daemon_factory, healthy, kind, status):
    """The receiver refuses every batch with a status no retry cures (OTLP: every status but
    429, 502, 503, 504, as its specification says): each record is sent once, dropped, and named
    by id in output_dropped records; one output_error for the whole outage, never an
    output_error per batch fed back into the output (before: 505 records in 27 s)."""
    recv = Scripted(status)
    try:
        out = hook(recv.url("/v1/logs" if kind == "otlp" else "/"), type=kind)
        d = daemon_factory(outputs=[out, other(healthy.url("/"))]).start()
        texts = [f"refused-{i:02d}" for i in range(20)]
        c = send_lines(d, texts)
        d.wait_for(lambda rs: sum(r["type"] == "command" for r in rs) == 20)

        def named(rs):
            return [i for r in rs if r["type"] == "output_dropped" and r["output_name"] == "hook"
                    for i in r["ids"]]
        d.wait_for(lambda rs: len(named(rs)) >= 21, timeout=20)  # the start record and 20 lines
        time.sleep(3)  # no loop: nothing more is sent, refused or written
        want = wanted_ids(d, "hook")
        assert len(want) == 21
        assert [i for i, _ in recv.sent(kind)] == want  # each sent once, never retried
        recs = d.records()
        assert named(recs) == want
        errs = state_records(d, "hook", "output_error")
        assert len(errs) == 1, errs
        assert errs[0]["action"] == "dropped" and errs[0]["status"] == status
        assert errs[0]["first_id"] == want[0]
        drops = state_records(d, "hook", "output_dropped")
        assert sum(x["records"] for x in drops) == 21
        assert all(f"HTTP {status}" in x["error"] and x["first_id"] == x["ids"][0] and
                   x["last_id"] == x["ids"][-1] and x["records"] == len(x["ids"]) for x in drops)
        assert state_records(d, "hook", "output_recovered") == []
        # The healthy output got each of them exactly once, the refusing one none.
        healthy.wait(lambda rs: len(received_state(healthy, "hook")) == 1 + len(drops))
        time.sleep(0.3)
        assert [x["type"] for x in received_state(healthy, "hook")] == ["output_error"] + ["output_dropped"] * len(drops)
        assert not [rec for _, rec in recv.sent(kind) if rec["type"] in STATE_TYPES]
        s = outputs(d)["hook"]
        assert s["failed"] == 21 and s["delivered"] == 0 and s["pending"] == 0
        c.close()
        assert d.stop() == 0
    finally:
        recv.close()


def test_a_refusal_then_recovery_names_the_dropped_records_and_counts(daemon_factory, healthy):
    """400 for 3 s, then 200: what was refused is named, what came after is delivered, and the
    recovered record counts the drops."""
    recv = Scripted(400, seconds=3)
    try:
        d = daemon_factory(outputs=[hook(recv.url("/")), other(healthy.url("/"))]).start()
        texts = [f"mixed-{i:02d}" for i in range(10)]
        c = send_lines(d, texts[:5])
        d.wait_for(lambda rs: sum(r["type"] == "command" for r in rs) == 5)
        recv.wait(lambda rs: sum(b.count(b"mixed-") for _, _, b in rs) == 5)
        while time.monotonic() < recv.until + 0.2:
            time.sleep(0.05)
        for i, t in enumerate(texts[5:]):
            c.send(wire.line(6 + i, t))
        d.wait_for(lambda rs: any(r["type"] == "output_recovered" and r["output_name"] == "hook" for r in rs),
                   timeout=15)
        want = wanted_ids(d, "hook")
        dropped = [i for r in state_records(d, "hook", "output_dropped") for i in r["ids"]]
        delivered = [i for i, _ in recv.delivered()]
        assert dropped + delivered == want  # every record either named as dropped or delivered, once
        assert [r["text"] for _, r in recv.delivered() if r["type"] == "command"] == texts[5:]
        assert len(dropped) == 6  # the start record and the first five lines
        (e,) = state_records(d, "hook", "output_error")
        (r,) = state_records(d, "hook", "output_recovered")
        assert e["action"] == "dropped" and r["records_dropped"] == 6
        assert r["batches_dropped"] == sum(st == 400 for st in recv.statuses) == r["failed_attempts"]
        # The dropped records were named before the recovery was.
        types = [x["type"] for x in state_records(d, "hook")]
        assert types[0] == "output_error" and types[-1] == "output_recovered"
        assert set(types[1:-1]) == {"output_dropped"}
        c.close()
        assert d.stop() == 0
    finally:
        recv.close()


def test_a_destination_that_hangs_times_out_and_blocks_nothing_else(daemon_factory, healthy):
    """A receiver that accepts the connection and never answers: each request times out, the
    output counts it as a failure (one output_error, its records kept spooled), while the other
    output and the log go on at full speed and the daemon stops promptly."""
    lst = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lst.bind(("127.0.0.1", 0))
    lst.listen(64)
    accepted = []
    stop = threading.Event()

    def accept():  # takes each connection and reads nothing, answers nothing
        lst.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(lst.accept()[0])
            except OSError:
                pass
    t = threading.Thread(target=accept, daemon=True)
    t.start()
    try:
        out = hook(f"http://127.0.0.1:{lst.getsockname()[1]}/", timeout_ms=400, retry_max_ms=300)
        d = daemon_factory(outputs=[out, other(healthy.url("/"))]).start()
        t0 = time.monotonic()
        texts = [f"while-hanging-{i:02d}" for i in range(20)]
        c = send_lines(d, texts)
        # The healthy output and the log are not held up by the hanging one.
        healthy.wait(lambda rs: sum(b.count(b"while-hanging-") for _, _, b in rs) == 20, timeout=5)
        assert time.monotonic() - t0 < 2.0
        d.wait_for(lambda rs: any(r["type"] == "output_error" and r["output_name"] == "hook" for r in rs),
                   timeout=10)
        time.sleep(3)
        (e,) = state_records(d, "hook")
        assert e["type"] == "output_error" and e["action"] == "retrying" and "status" not in e
        assert "Timeout was reached" in e["error"] or "timed out" in e["error"], e
        s = outputs(d)["hook"]
        assert s["delivered"] == 0 and s["failed"] == 0 and s["retries"] >= 4
        assert s["pending"] == len(wanted_ids(d, "hook"))
        assert [x["type"] for x in received_state(healthy, "hook")] == ["output_error"]
        c.close()
        t1 = time.monotonic()
        assert d.stop() == 0
        assert time.monotonic() - t1 < 5
    finally:
        stop.set()
        t.join()
        for a in accepted:
            a.close()
        lst.close()


def test_a_batch_too_large_is_split_not_dropped(daemon_factory):
    """413 for a batch of more than two records: the output halves its batches until they pass;
    nothing is dropped, every record arrives once and in order."""
    recv = Receiver()
    statuses = []

    def answer(path, headers, body):
        st = 413 if len(json.loads(body)) > 2 else 200
        statuses.append(st)
        return st, {}
    recv.answer = answer
    try:
        d = daemon_factory(outputs=[hook(recv.url("/"), batch_max=8, batch_wait_ms=200)]).start()
        texts = [f"big-{i:02d}" for i in range(24)]
        c = send_lines(d, texts)
        recv.wait(lambda rs: sum(b.count(b'"text":"big-') for _, _, b in rs) >= 24)
        time.sleep(0.5)
        got = [it for (_, _, b), st in zip(list(recv.requests), statuses) if st == 200
               for it in body_items(b, "webhook")]
        assert [i for i, _ in got] == wanted_ids(d, "hook")
        assert [r["text"] for _, r in got if r["type"] == "command"] == texts
        assert state_records(d, "hook", "output_dropped") == []
        assert 413 in statuses
        c.close()
        assert d.stop() == 0
    finally:
        recv.close()


def test_two_outputs_that_refuse_everything_do_not_feed_each_other(daemon_factory):
    """Both destinations answer 400 to everything: each names the records it dropped, but the
    other's state records, refused in turn, start no new output_dropped of their own (they stay
    at the head of its spool until 256 wait, it recovers, or the next run sends them again), so
    the two do not keep naming each other's records (one record per 2 s each, for ever)."""
    ra, rb = Scripted(400), Scripted(400)
    try:
        d = daemon_factory(outputs=[hook(ra.url("/"), name="a"), hook(rb.url("/"), name="b")]).start()
        c = send_lines(d, [f"both-refuse-{i}" for i in range(5)])

        def named(rs, name):
            return [i for r in rs if r["type"] == "output_dropped" and r["output_name"] == name for i in r["ids"]]

        def real_ids(name):  # what `name` wants, less the other output's state records
            other_name = "b" if name == "a" else "a"
            return [rid(line) for line in d.lines()
                    if json.loads(line)["type"] != "seal" and json.loads(line).get("output_name") not in (name, other_name)]
        d.wait_for(lambda rs: len(named(rs, "a")) >= 6 and len(named(rs, "b")) >= 6, timeout=15)
        time.sleep(2.5)
        before = [line for line in d.lines() if json.loads(line)["type"] != "seal"]
        time.sleep(6)
        after = [line for line in d.lines() if json.loads(line)["type"] != "seal"]
        assert after == before  # nothing more: no ping-pong
        recs = d.records()
        total_held = 0
        for name, recv in (("a", ra), ("b", rb)):
            want = wanted_ids(d, name)
            assert [i for i, _ in recv.sent()] == want  # each sent once, in order
            assert len(state_records(d, name, "output_error")) == 1
            # Named: every record it dropped but the other's state records refused last (named
            # when refused in a batch with other records); those stay held in its spool.
            n = named(recs, name)
            held = want[len(n):]
            assert n == want[:len(n)] and set(real_ids(name)) <= set(n)
            theirs = {rid(line) for line in d.lines() if json.loads(line).get("output_name") not in (None, name)}
            assert set(held) <= theirs
            assert outputs(d)[name]["pending"] == len(held)
            total_held += len(held)
        assert total_held >= 1  # the last output_dropped written went to the other, held there
        c.close()
        assert d.stop() == 0
    finally:
        ra.close()
        rb.close()
