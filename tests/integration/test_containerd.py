# SPDX-License-Identifier: Apache-2.0
"""shaudit-oci-runtime under a real containerd (Debian's 1.6, with its runc v2 shim).

A private containerd (containerd_fixture.py: its own config, root, state and sockets under
/tmp, in a mount namespace of its own) runs a container from a root filesystem built here
(busybox-static, bash, dash and their glibc libraries) with `ctr run --rootfs`, the wrapper as
the shim's runc binary (`--runc-binary`) and CRI annotations as the kubelet's containerd would
write them (`--annotation`). containerd's environment names the wrapper's settings
($SHAUDIT_OCI_CONFIG), which name the real runc; the shim runs the wrapper for every runc
command. shauditd runs with eBPF on and containerd's runc state directory (`--runc-root`) in
`container_state_dirs`. `ctr task exec --tty` (what `kubectl exec -it` ends in: the shim's
`runc exec --process FILE`) drives bash in the container on a real pseudo-terminal.

Two things only this test shows: the shim's exec process is made from containerd's copy of the
spec, so the environment the wrapper gave the container reaches it only because the wrapper
adds it to the process file (shauditd's socket here is not named shaudit.sock, the interposer's
default: without $SHAUDIT_SOCKET nothing would be recorded); and the runc state directory's
name does not say containerd (/tmp/shaudit-ctrd-*/runc), so shauditd must know containerd by
the shim's bundle (STATE/io.containerd.runtime.v2.task/NAMESPACE/ID).

Everything is ended by pid or id and removed, whatever happens.
"""
import json
import os
import shutil
import time

import pytest

import rootfs as rf
from conftest import BUILD, NEEDS_REAL_ROOT, PRELOAD, public_daemon
from containerd_fixture import PrivateContainerd, missing_tools
from ptyshell import PS1, PtyShell

WRAPPER = BUILD / "oci_runtime" / "shaudit-oci-runtime"
IN_CONTAINER = "/usr/lib/shaudit/libshaudit_preload.so"
TASK_DIR = "io.containerd.runtime.v2.task"  # the runc v2 shim's bundles: STATE/TASK_DIR/NS/ID

_missing = " ".join(filter(None, [missing_tools(), "" if shutil.which("runc") else "runc",
                                  "" if rf.BUSYBOX else "busybox-static"]))
pytestmark = [
    NEEDS_REAL_ROOT,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (containerd)"),
    pytest.mark.skipif(bool(_missing), reason=f"not installed: {_missing} (installer/deps.sh --test "
                       "installs them)"),
]


def test_bash_in_a_containerd_container_is_recorded(tmp_path, daemon_factory, public_dir):
    settings = tmp_path / "oci-runtime.yaml"
    ctrd = PrivateContainerd(env={"SHAUDIT_OCI_CONFIG": str(settings)})
    try:
        d = public_daemon(daemon_factory, public_dir, bpf="on", crosscheck_window_ms=300,
                          container_state_dirs=[str(ctrd.runc_root)]).start()
        # The interposer the daemon knows as genuine (the eBPF collector's file): the very copy
        # bind-mounted into the container.
        settings.write_text(f"runtime: {rf.RUNC}\nsocket: {d.socket}\npreload: {PRELOAD}\n"
                            f"state_dir: {tmp_path / 'oci-state'}\n")
        ctrd.start()
        root = rf.make_rootfs(tmp_path / "rootfs")
        cid = rf.container_id()
        annotations = rf.cri_annotations("web-0", "shop", "app", "registry.example/shop/app:1.4")
        ctrd.remember(cid)
        ctrd.run_ctr("run", "--detach", "--null-io", "--runc-binary", WRAPPER, "--runc-root", ctrd.runc_root,
                     "--cgroup", ctrd.cgroup(cid), "--env", "PATH=/bin:/usr/bin", "--env", f"PS1={PS1}",
                     "--env", "TERM=dumb",
                     *[a for k, v in annotations.items() for a in ("--annotation", f"{k}={v}")],
                     "--rootfs", root, cid, "/bin/sleep", "3600")
        assert "RUNNING" in ctrd.run_ctr("task", "ls").stdout

        # The shim ran the wrapper on its bundle: the interposer, the generated preload list and
        # shauditd's socket directory are mounted, and the annotations say so.
        bundle = ctrd.state / TASK_DIR / ctrd.namespace / cid
        cfg = json.loads((bundle / "config.json").read_text())
        assert cfg["annotations"] == {**annotations, "shaudit.io/interposer": "glibc"}
        assert [(m["destination"], m["source"]) for m in cfg["mounts"][-3:]] == [
            (IN_CONTAINER, str(PRELOAD)), ("/etc/ld.so.preload", str(tmp_path / "oci-state" / "ld.so.preload")),
            ("/run/shaudit", str(public_dir))]
        # containerd's runc state: ROOT/NAMESPACE/ID, which shauditd reads.
        assert (ctrd.runc_root / ctrd.namespace / cid / "state.json").is_file()

        # The shell is typed into on a real terminal. Its environment is containerd's copy of
        # the spec (no $SHAUDIT_SOCKET, no $LD_PRELOAD) until the wrapper completes the shim's
        # process file; the root filesystem's programs but bash and dash are busybox applets
        # (static: no interposer), so `ls`, `env`, `true` and busybox itself are bypasses of
        # this session, and dash (dynamic) is not.
        lines = ['echo "hello world" > /tmp/example.txt', "ls /", 'echo "$SHAUDIT_SOCKET:$LD_PRELOAD"',
                 "/bin/dash -c 'echo in-dash'", "env -u LD_PRELOAD /bin/true", "/bin/busybox cat /etc/group"]
        sh = PtyShell(ctrd.ctr("task", "exec", "--tty", "--exec-id", "shell-1", "--fifo-dir", ctrd.fifos,
                               cid, "/bin/bash", "--norc", "--noprofile", "-i"))
        assert sh.session(lines, timeout=30) == 0, sh.out[-400:]
        assert (root / "tmp" / "example.txt").read_text() == "hello world\n"
        # (Lines end in "\r\r\n": the shim's terminal, then ctr's.)
        assert b"\nbin\r" in sh.out.replace(b" ", b"\r"), sh.out  # `ls /`
        assert f"\n/run/shaudit/{d.socket.name}:{IN_CONTAINER}\r".encode() in sh.out, sh.out
        assert b"\nin-dash\r" in sh.out, sh.out

        expected_bypasses = [("ls /", "/bin/ls", ["ls", "/"]),
                             ("env -u LD_PRELOAD /bin/true", "/bin/env", ["env", "-u", "LD_PRELOAD", "/bin/true"]),
                             ("env -u LD_PRELOAD /bin/true", "/bin/true", ["/bin/true"]),
                             ("/bin/busybox cat /etc/group", "/bin/busybox", ["/bin/busybox", "cat", "/etc/group"])]

        def bypasses_by_command(recs):
            text = {r["command"]: r["text"] for r in recs if r["type"] == "command"}
            return sorted((text.get(r.get("command")), r.get("exe"), r.get("argv"))
                          for r in recs if r["type"] == "bypass")

        d.wait_for(lambda rs: any(r["type"] == "session_end" for r in rs)
                   and len(bypasses_by_command(rs)) >= len(expected_bypasses), timeout=20)
        time.sleep(0.7)  # two cross-check windows more: nothing else may come
        recs = d.records()
        starts = [r for r in recs if r["type"] == "session_start"]
        assert len(starts) == 1, starts
        start = starts[0]
        assert start["service"] == "implicit" and start["exe"] == "/bin/bash"
        assert start["container"] == {
            "id": cid, "runtime": "containerd", "pod": "web-0", "namespace": "shop", "name": "app",
            "image": "registry.example/shop/app:1.4", "interposer": "glibc"}
        cmds = [r for r in recs if r["type"] == "command"]
        assert [c["text"] for c in cmds] == lines + ["exit"], [(r["type"], r.get("text")) for r in recs]
        assert all(c["session"] == start["session"] and c["shell"] == "bash" and c["uid"] == 0 for c in cmds)
        bypasses = [r for r in recs if r["type"] == "bypass"]
        assert bypasses_by_command(recs) == sorted(expected_bypasses), bypasses
        assert all(b["kind"] == "unhooked_process" and b["session"] == start["session"] for b in bypasses)
        # dash carries the interposer: followed by the kernel, not a bypass.
        execs = [r["argv"] for r in recs if r["type"] == "exec" and r.get("session") == start["session"]]
        assert ["/bin/dash", "-c", "echo in-dash"] in execs, execs

        assert d.stop() == 0
        v = d.verify()
        assert v.returncode == 0, v.stdout + v.stderr
    finally:
        ctrd.stop()
