# SPDX-License-Identifier: Apache-2.0
"""The image-level path into containers: the base layer (installer/container/build-layer.sh)
extracted over a container's root, and shauditd reaching in by itself: it finds the container
in the runtime's state directory, binds /run/shaudit/shaudit.sock inside it, and a shell typed
into with `runc exec -t` (what `kubectl exec -it` ends in) is recorded with its container, pod,
namespace and image. A container that cannot take the socket gets a signed record saying so,
and a hostile image cannot make shauditd write outside its root."""
import json
import os
import secrets
import shutil
import subprocess
import tarfile
import time
from pathlib import Path

import pytest

import rootfs as rf
from conftest import NEEDS_REAL_ROOT, PRELOAD, kill_pids, read_records
from ptyshell import PS1, PtyShell

SRC = Path(__file__).resolve().parents[2]
LAYER = SRC / "installer/container/build-layer.sh"

pytestmark = [
    NEEDS_REAL_ROOT,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (runc containers)"),
    pytest.mark.skipif(not os.path.exists(rf.RUNC) or rf.BUSYBOX is None,
                       reason="needs runc and busybox-static (installer/deps.sh --test installs them)"),
]


@pytest.fixture
def runc(tmp_path):
    r = rf.Runc(tmp_path / "runc-state")
    yield r
    r.delete_all()


@pytest.fixture
def layer(tmp_path):
    out = tmp_path / "shaudit-layer.tar"
    r = subprocess.run(["bash", str(LAYER), str(out), str(PRELOAD)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    with tarfile.open(out) as t:
        assert sorted(t.getnames()) == ["./etc/ld.so.preload", "./run/shaudit", "./usr/lib/shaudit",
                                        "./usr/lib/shaudit/libshaudit_preload.so"]
        assert t.extractfile("./etc/ld.so.preload").read() == b"/usr/lib/shaudit/libshaudit_preload.so\n"
    return out


def container(tmp_path, runc, layer, cid, annotations, readonly=False, tweak=None):
    bundle = tmp_path / f"bundle-{cid[:8]}"
    (bundle / "rootfs").mkdir(parents=True)
    rf.make_rootfs(bundle / "rootfs")
    subprocess.run(["tar", "-C", str(bundle / "rootfs"), "-xf", str(layer)], check=True)
    if tweak:
        tweak(bundle / "rootfs")
    rf.make_bundle(bundle, cid, annotations, readonly=readonly)
    runc.run_detached(cid, bundle)
    return bundle


def wait_for(pred, timeout=15, what=""):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def audited_container(tmp_path, daemon_factory, runc, layer, annotations, **config):
    """shauditd with eBPF reaching into a base-layer container it found: (daemon, id, bundle)."""
    d = daemon_factory(container_state_dirs=[str(runc.root)], bpf="on", crosscheck_window_ms=300, **config).start()
    cid = rf.container_id()
    bundle = container(tmp_path, runc, layer, cid, annotations)
    wait_for((bundle / "rootfs/run/shaudit/shaudit.sock").is_socket, what="no socket inside")
    return d, cid, bundle


def bash_in(runc, cid):
    """`runc exec -t` of an interactive bash in the container, on a pty."""
    return PtyShell(runc.argv("exec", "-t", "--env", f"PS1={PS1}", "--env", "TERM=dumb", cid,
                              "/bin/bash", "--norc", "--noprofile", "-i"))


def test_shauditd_reaches_into_a_container_with_the_base_layer(tmp_path, daemon_factory, runc, layer):
    d = daemon_factory(container_state_dirs=[str(runc.root)]).start()
    cid = rf.container_id()
    bundle = container(tmp_path, runc, layer, cid,
                       rf.cri_annotations("nginx-pod", "web", "nginx", "docker.io/library/nginx:1.25"))
    # No socket was bound in by anyone: shauditd puts its own there (within a second).
    sock = bundle / "rootfs/run/shaudit/shaudit.sock"
    wait_for(sock.is_socket, what="shauditd did not bind its socket inside the container")
    assert sock.stat().st_mode & 0o777 == 0o666
    sh = bash_in(runc, cid)
    assert sh.session(['echo "hello world" > /tmp/example.txt', "cat /tmp/example.txt"]) == 0
    assert (bundle / "rootfs/tmp/example.txt").read_text() == "hello world\n"
    recs = wait_for(lambda: (rs := read_records(d.log)) and any(r["type"] == "session_end" for r in rs) and rs,
                    what="no session_end")
    start, = [r for r in recs if r["type"] == "session_start"]
    assert start["service"] == "implicit"
    assert start["container"] == {"id": cid, "runtime": "runc", "pod": "nginx-pod", "namespace": "web",
                                  "name": "nginx", "image": "docker.io/library/nginx:1.25"}
    texts = [r["text"] for r in recs if r["type"] == "command" and r["session"] == start["session"]]
    assert texts == ['echo "hello world" > /tmp/example.txt', "cat /tmp/example.txt", "exit"]
    assert d.stop() == 0
    assert d.verify().returncode == 0


def test_a_container_that_cannot_take_the_socket_is_named_in_a_signed_record(tmp_path, daemon_factory,
                                                                            runc, layer):
    d = daemon_factory(container_state_dirs=[str(runc.root)]).start()
    cid = rf.container_id()
    container(tmp_path, runc, layer, cid, rf.cri_annotations("ro-pod", "ops", "app", "app:1"), readonly=True)
    recs = wait_for(lambda: [r for r in read_records(d.log) if r["type"] == "container_unreachable"],
                    what="no container_unreachable record")
    r, = recs
    assert r["container"] == {"id": cid, "runtime": "runc", "pod": "ro-pod", "namespace": "ops", "name": "app",
                              "image": "app:1"}
    assert r["reason"] == "cannot bind /run/shaudit/shaudit.sock: Read-only file system"
    assert d.stop() == 0
    assert d.verify().returncode == 0


def test_a_hostile_image_cannot_make_shauditd_write_outside_it(tmp_path, daemon_factory, runc, layer):
    """/run/shaudit in the image is a symlink to an absolute host path: resolved inside the
    container's root (openat2 RESOLVE_IN_ROOT), never on the host."""
    escape = Path(f"/tmp/shaudit-escape-{secrets.token_hex(4)}")
    escape.mkdir()
    try:
        def plant(root):
            shutil.rmtree(root / "run/shaudit")
            (root / "run/shaudit").symlink_to(str(escape))
            (root / escape.relative_to("/")).mkdir(parents=True)

        d = daemon_factory(container_state_dirs=[str(runc.root)]).start()
        cid = rf.container_id()
        bundle = container(tmp_path, runc, layer, cid, {}, tweak=plant)
        inside = bundle / "rootfs" / escape.relative_to("/") / "shaudit.sock"
        wait_for(inside.is_socket, what="no socket in the container's own directory")
        assert list(escape.iterdir()) == []  # nothing on the host
        assert d.stop() == 0
    finally:
        shutil.rmtree(escape, ignore_errors=True)


def test_the_kernel_cross_check_inside_a_container(tmp_path, daemon_factory, runc, layer):
    """eBPF on: the image's own copy of the interposer counts as genuine (same bytes as the
    configured file), so the container's bash and what it runs are not bypasses; a static
    binary (busybox) that the session runs is one, attributed to the container's session, with
    host and container pids."""
    d, cid, bundle = audited_container(tmp_path, daemon_factory, runc, layer, rf.cri_annotations("p", "n", "c", "i:1"))
    sh = bash_in(runc, cid)
    assert sh.session(["/bin/dash -c 'echo in-dash $$'", "/bin/busybox cat /etc/group"]) == 0
    recs = wait_for(lambda: (rs := read_records(d.log)) and any(r["type"] == "bypass" for r in rs)
                    and any(r["type"] == "session_end" for r in rs) and rs, what="no bypass / session_end")
    time.sleep(0.6)  # two cross-check windows: nothing more may come
    recs = read_records(d.log)
    start, = [r for r in recs if r["type"] == "session_start"]
    assert start["container"]["id"] == cid
    execs = [r["argv"] for r in recs if r["type"] == "exec" and r.get("session") == start["session"]]
    assert ["/bin/dash", "-c", "echo in-dash $$"] in execs and ["/bin/busybox", "cat", "/etc/group"] in execs
    bypasses = [(r["kind"], r.get("exe")) for r in recs if r["type"] == "bypass"]
    assert bypasses == [("unhooked_process", "/bin/busybox")], bypasses
    b, = [r for r in recs if r["type"] == "bypass"]
    assert b["session"] == start["session"]
    assert d.stop() == 0
    assert d.verify().returncode == 0


def test_what_the_runtime_starts_without_a_terminal_is_a_session(tmp_path, daemon_factory, runc, layer):
    """`kubectl exec POD -- sh -c '...'` ends in `runc exec` without -t: the kernel follows the
    process from its exec (its parent, runc, is outside the container's pid namespace), so the
    session opens before its first command runs however fast it is, named by the kernel's argv
    and its container; what it runs is recorded from the kernel with the container's pids
    beside the host's, and a static binary it runs is a bypass of that session."""
    rules = tmp_path / "rules.yaml"
    rules.write_text("- rule: busybox in a pod\n"
                     "  condition: evt.type = exec and k8s.ns.name = shop and proc.exe = /bin/busybox\n"
                     "  output: busybox in %k8s.ns.name/%k8s.pod.name\n  priority: NOTICE\n")
    d, cid, bundle = audited_container(tmp_path, daemon_factory, runc, layer,
                                       rf.cri_annotations("web-0", "shop", "app", "app:1.0"), rules=[str(rules)])
    reader = "read x < /tmp/example.txt; echo $x"
    script = f"echo hello > /tmp/example.txt; /bin/bash -c '{reader}'; /bin/busybox true"
    r = subprocess.run(runc.argv("exec", cid, "/bin/dash", "-c", script), stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=60)
    assert (r.returncode, r.stdout) == (0, b"hello\n"), r.stderr
    r = subprocess.run(runc.argv("exec", cid, "/bin/bash", "-c", "test -e /tmp/example.txt"),
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr

    def done():
        rs = read_records(d.log)
        return len([x for x in rs if x["type"] == "session_end"]) == 2 and any(x["type"] == "bypass" for x in rs)
    try:
        wait_for(done, what="no two session_end / bypass")
    except AssertionError:
        print("\n".join(json.dumps(x) for x in read_records(d.log)))
        raise
    time.sleep(0.6)  # two cross-check windows: nothing more may come
    recs = read_records(d.log)
    starts = [x for x in recs if x["type"] == "session_start"]
    assert [(s["reason"], s["argv"], s["exe"]) for s in starts] == [
        ("started in a container by its runtime", ["/bin/dash", "-c", script], "/bin/dash"),
        ("started in a container by its runtime", ["/bin/bash", "-c", "test -e /tmp/example.txt"], "/bin/bash")]
    first = starts[0]
    assert first["service"] == "implicit" and "tty" not in first and 1 < first["vpid"] < first["pid"]
    assert first["container"] == {"id": cid, "runtime": "runc", "pod": "web-0", "namespace": "shop",
                                  "name": "app", "image": "app:1.0"}
    execs = [x for x in recs if x["type"] == "exec" and x.get("session") == first["session"]]
    assert [x["argv"] for x in execs] == [["/bin/dash", "-c", script], ["/bin/bash", "-c", reader],
                                          ["/bin/busybox", "true"]]
    # Host pids and the container's own (its pid namespace counts from 1: none of these is 1).
    assert all(x["source"] == "bpf" and 1 < x["vpid"] < x["pid"] for x in execs), execs
    assert execs[0]["pid"] == first["pid"] and execs[0]["vpid"] == first["vpid"]
    bypasses = [x for x in recs if x["type"] == "bypass"]
    assert [(x["kind"], x["exe"], x["session"]) for x in bypasses] == [
        ("unhooked_process", "/bin/busybox", first["session"])], bypasses
    b = bypasses[0]
    assert (b["pid"], b["vpid"]) == (execs[2]["pid"], execs[2]["vpid"])
    # Rules see the session's container; the alert carries it (for its readers and for
    # outputs' labels, e.g. Loki's container.namespace and container.pod).
    alert, = [x for x in recs if x["type"] == "alert"]
    assert (alert["output"], alert["session"], alert["container"]) == (
        "busybox in shop/web-0", first["session"], first["container"])
    ends = [x for x in recs if x["type"] == "session_end"]
    assert [(e["session"], e["reason"]) for e in ends] == [(s["session"], "entry_exit") for s in starts]
    # Each session's records come between its start and its end.
    for s, e in zip(starts, ends):
        inside = [x for x in recs if x.get("session") == s["session"] and x["type"] in ("exec", "command")]
        assert all(s["seq"] < x["seq"] < e["seq"] for x in inside), (s, inside, e)
    assert d.stop() == 0
    assert d.verify().returncode == 0


def test_entering_a_pid_namespace_that_is_no_container_is_not_followed(tmp_path, daemon_factory, runc):
    """Only containers the runtimes' state directories name are followed from a runtime exec:
    `nsenter -p` into a pid namespace unshare made (no container, as another runtime's or a
    user's own namespaces) opens no session, and nothing it runs is decided."""
    d = daemon_factory(container_state_dirs=[str(runc.root)], bpf="on", crosscheck_window_ms=300).start()
    holder = subprocess.Popen(["unshare", "--pid", "--fork", "--", "/bin/sleep", "60"], stdin=subprocess.DEVNULL)
    try:
        inner = wait_for(lambda: [int(p) for p in (Path(f"/proc/{holder.pid}/task/{holder.pid}/children")
                                                   .read_text().split())], what="no process in the namespace")[0]
        r = subprocess.run(["nsenter", "-t", str(inner), "-p", "--", "/bin/sh", "-c", "/bin/echo entered"],
                           capture_output=True, timeout=30)
        assert r.stdout == b"entered\n", r.stderr
        time.sleep(1)  # three cross-check windows
    finally:
        kill_pids([holder.pid])
        holder.wait()
    assert d.stop() == 0
    assert [r["type"] for r in read_records(d.log) if r["type"] not in ("start", "seal", "stop")] == []


def test_without_ebpf_a_shell_the_runtime_starts_opens_its_session_from_its_hello(tmp_path, daemon_factory, runc,
                                                                                  layer):
    d = daemon_factory(container_state_dirs=[str(runc.root)], bpf="off").start()
    cid = rf.container_id()
    bundle = container(tmp_path, runc, layer, cid, rf.cri_annotations("web-0", "shop", "app", "app:1.0"))
    wait_for((bundle / "rootfs/run/shaudit/shaudit.sock").is_socket, what="no socket inside")
    r = subprocess.run(runc.argv("exec", cid, "/bin/dash", "-c", "sleep 0.3; /bin/bash -c 'echo $((6*7))'"),
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
    assert (r.returncode, r.stdout) == (0, b"42\n"), r.stderr
    recs = wait_for(lambda: (rs := read_records(d.log)) and any(x["type"] == "session_end" for x in rs) and rs,
                    what="no session")
    start, = [x for x in recs if x["type"] == "session_start"]
    assert (start["reason"], start["argv"], start["container"]["pod"]) == (
        "shell started in a container by its runtime", ["/bin/dash", "-c", "sleep 0.3; /bin/bash -c 'echo $((6*7))'"],
        "web-0")
    execs = [x["argv"] for x in recs if x["type"] == "exec" and x.get("session") == start["session"]]
    assert ["/bin/bash", "-c", "echo $((6*7))"] in execs, recs
    assert d.stop() == 0
