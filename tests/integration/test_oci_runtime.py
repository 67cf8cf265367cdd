# SPDX-License-Identifier: Apache-2.0
"""shaudit-oci-runtime, the OCI runtime wrapper, in front of real runc.

Containers run from small root filesystems built here: busybox (static) with its applets,
plus bash, dash, their libraries and glibc's loader for a glibc image; busybox alone for a
static one. A real shauditd (eBPF off) listens on a socket in a directory of its own, which
the wrapper mounts into each container; `runc exec -t` drives bash in a container on a real
pseudo-terminal. Where only the command line matters, a fake runtime records the argv and
working directory it was run with.

Every container is killed and deleted by its id, and every bundle removed, whatever happens.
"""
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from conftest import BUILD, NEEDS_REAL_ROOT, public_daemon
from ptyshell import PS1, PtyShell

RUNC = shutil.which("runc")
WRAPPER = BUILD / "oci_runtime" / "shaudit-oci-runtime"
PRELOAD = BUILD / "preload" / "libshaudit_preload.so"
BUSYBOX = Path("/bin/busybox")
PREFIX = "shaudit-oci-runtime: "
OPTIONS = ["rbind", "ro", "nosuid", "nodev"]
IN_CONTAINER = "/usr/lib/shaudit/libshaudit_preload.so"

if not RUNC:
    print("test_oci_runtime: skipped: runc is not installed (apt-get install runc; "
          "installer/deps.sh --test installs it)", file=sys.stderr)
pytestmark = [NEEDS_REAL_ROOT, pytest.mark.skipif(
    not RUNC, reason="runc is not installed (apt-get install runc; installer/deps.sh --test installs it)")]


# ---------------------------------------------------------------------------------------
# images, bundles, containers

def copy_program_with_libraries(root, program):
    """Copies program to root/bin and every library ldd lists (the loader too) to the same
    path under root."""
    shutil.copy2(program, root / "bin" / Path(program).name)
    out = subprocess.run(["ldd", program], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        path = next((w for w in line.split() if w.startswith("/")), None)
        if path:
            dest = root / path.lstrip("/")
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, dest)


def make_rootfs(root, glibc=True):
    """busybox and its applets; with glibc, bash and dash with their libraries and loader."""
    for d in ("bin", "etc", "run", "tmp", "proc", "dev", "sys"):
        (root / d).mkdir(parents=True, exist_ok=True)
    assert BUSYBOX.exists(), "no /bin/busybox (apt-get install busybox-static)"
    shutil.copy2(BUSYBOX, root / "bin" / "busybox")
    applets = subprocess.run([str(BUSYBOX), "--list"], capture_output=True, text=True,
                             check=True).stdout.split()
    for a in applets:
        if a != "busybox":
            (root / "bin" / a).symlink_to("busybox")
    if glibc:
        for prog in ("/bin/bash", "/bin/dash"):
            (root / "bin" / Path(prog).name).unlink(missing_ok=True)
            copy_program_with_libraries(root, prog)
    return root


def make_bundle(path, glibc=True, annotations=None, mode=0o644):
    """A bundle as containerd would hand it over: rootfs/ and the config.json `runc spec`
    writes, made to run `sleep 3600` detached, with CRI annotations."""
    path.mkdir(parents=True)
    make_rootfs(path / "rootfs", glibc)
    subprocess.run([RUNC, "spec"], cwd=path, check=True)
    cfg = json.loads((path / "config.json").read_text())
    cfg["process"]["terminal"] = False
    cfg["process"]["args"] = ["sleep", "3600"]
    cfg["root"]["readonly"] = False
    cfg["hostname"] = "audited"
    cfg["annotations"] = {
        "io.kubernetes.cri.sandbox-name": "web-0",
        "io.kubernetes.cri.sandbox-namespace": "shop",
        "io.kubernetes.cri.container-name": "app",
        "io.kubernetes.cri.image-name": "registry.example/app:1.0",
        **(annotations or {}),
    }
    write_config(path, cfg, mode)
    return path


def write_config(bundle, cfg, mode=0o644):
    p = bundle / "config.json"
    p.write_text(json.dumps(cfg, indent="\t"))
    p.chmod(mode)


def config(bundle):
    return json.loads((bundle / "config.json").read_text())


def our_mounts(cfg):
    return [m for m in cfg.get("mounts", [])
            if m["destination"] in (IN_CONTAINER, "/etc/ld.so.preload", "/run/shaudit")]


class Env:
    """One test's settings, runc state directory and containers."""

    def __init__(self, tmp, runc_root):
        self.tmp = tmp
        self.runc_root = runc_root
        self.ids = []
        self.bundles = []
        self.settings_path = tmp / "oci-runtime.yaml"
        self.state = tmp / "state"

    def settings(self, socket, **extra):
        s = {"runtime": RUNC, "socket": str(socket), "preload": str(PRELOAD),
             "state_dir": str(self.state), **extra}
        self.settings_path.write_text("".join(f"{k}: {v}\n" for k, v in s.items()))
        return s

    def bundle(self, name, **kw):
        b = make_bundle(self.tmp / name, **kw)
        self.bundles.append(b)
        return b

    def new_id(self):
        cid = f"shaudit-it-{uuid.uuid4().hex[:12]}"
        self.ids.append(cid)
        return cid

    def wrapper(self, *args, cwd=None, settings=None):
        """Runs the wrapper with runc's --root first; its stdio are files (a detached
        container keeps them open). Returns (exit code, stdout, stderr)."""
        return self.raw_wrapper("--root", self.runc_root, *args, cwd=cwd, settings=settings)

    def raw_wrapper(self, *args, cwd=None, settings=None):
        env = dict(os.environ, SHAUDIT_OCI_CONFIG=str(settings or self.settings_path))
        out, err = self.tmp / "wrapper.out", self.tmp / "wrapper.err"
        with open(out, "wb") as o, open(err, "wb") as e:
            rc = subprocess.run([str(WRAPPER), *map(str, args)], stdin=subprocess.DEVNULL,
                                stdout=o, stderr=e, cwd=cwd, env=env, timeout=120).returncode
        return rc, out.read_text(errors="replace"), err.read_text(errors="replace")

    def runc(self, *args, check=True):
        return subprocess.run([RUNC, "--root", str(self.runc_root), *map(str, args)],
                              stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              check=check, timeout=60)

    def status(self, cid):
        r = self.runc("state", cid, check=False)
        return json.loads(r.stdout)["status"] if r.returncode == 0 else None

    def cleanup(self):
        for cid in self.ids:
            self.runc("kill", cid, "KILL", check=False)
            self.runc("delete", "-f", cid, check=False)
        for b in self.bundles:
            shutil.rmtree(b, ignore_errors=True)


@pytest.fixture
def env(tmp_path):
    runc_root = tmp_path / "runc"
    runc_root.mkdir()
    e = Env(tmp_path, runc_root)
    try:
        yield e
    finally:
        e.cleanup()


@pytest.fixture
def fake_runtime(tmp_path):
    """A runtime that appends {"argv", "cwd"} of each run to a file; returns (path, calls())."""
    log = tmp_path / "fake-runtime.jsonl"
    script = tmp_path / "fake-runtime"
    script.write_text("#!/usr/bin/python3\nimport json, os, sys\n"
                      f"with open({str(log)!r}, 'a') as f:\n"
                      "    f.write(json.dumps({'argv': sys.argv, 'cwd': os.getcwd()}) + '\\n')\n")
    script.chmod(0o755)

    def calls():
        if not log.exists():
            return []
        return [json.loads(l) for l in log.read_text().splitlines()]
    return script, calls


def wrapper_lines(err):
    return [l for l in err.splitlines() if l.startswith(PREFIX)]


# ---------------------------------------------------------------------------------------
# a glibc image: preloaded, reporting to shauditd


def starts_unchanged(env, b):
    """Runs the wrapper on bundle b: the container starts and its config.json stays byte for
    byte. Returns the container id and the wrapper's stderr lines."""
    before = (b / "config.json").read_bytes()
    cid = env.new_id()
    rc, _, err = env.wrapper("run", "-d", "--bundle", b, cid)
    assert rc == 0, err
    assert env.status(cid) == "running"
    assert (b / "config.json").read_bytes() == before
    return cid, wrapper_lines(err)


def test_interactive_bash_in_a_container_is_recorded(env, daemon_factory, public_dir):
    d = public_daemon(daemon_factory, public_dir).start()
    env.settings(d.socket)
    b = env.bundle("b", mode=0o600)
    cid = env.new_id()
    rc, _, err = env.wrapper("run", "-d", "--bundle", b, cid)
    assert rc == 0, err
    assert wrapper_lines(err) == []
    assert env.status(cid) == "running"

    cfg = config(b)
    assert (b / "config.json").stat().st_mode & 0o777 == 0o600  # replaced, mode kept
    assert cfg["annotations"]["shaudit.io/interposer"] == "glibc"
    assert "shaudit.io/reason" not in cfg["annotations"]
    assert cfg["annotations"]["io.kubernetes.cri.container-name"] == "app"
    assert our_mounts(cfg) == [
        {"destination": IN_CONTAINER, "type": "bind", "source": str(PRELOAD), "options": OPTIONS},
        {"destination": "/etc/ld.so.preload", "type": "bind",
         "source": str(env.state / "ld.so.preload"), "options": OPTIONS},
        {"destination": "/run/shaudit", "type": "bind", "source": str(public_dir), "options": OPTIONS},
    ]
    assert cfg["process"]["env"][-2:] == [f"SHAUDIT_SOCKET=/run/shaudit/{d.socket.name}",
                                          f"LD_PRELOAD={IN_CONTAINER}"]
    assert (env.state / "ld.so.preload").read_text() == IN_CONTAINER + "\n"
    assert (env.state / "ld.so.preload").stat().st_mode & 0o777 == 0o644

    sh = PtyShell([RUNC, "--root", str(env.runc_root), "exec", "-t", "--env", f"PS1={PS1}", cid,
                   "/bin/bash", "--norc", "--noprofile", "-i"])
    status = sh.session(['echo "hello world" > /tmp/example.txt', "cat /tmp/example.txt"])
    assert status == 0
    assert b"\r\nhello world\r\n" in sh.out
    assert (b / "rootfs" / "tmp" / "example.txt").read_text() == "hello world\n"

    expected = ['echo "hello world" > /tmp/example.txt', "cat /tmp/example.txt", "exit"]
    recs = d.wait_for(lambda rs: len([r for r in rs if r["type"] == "command"]) >= 3)
    cmds = [r for r in recs if r["type"] == "command"]
    assert [c["text"] for c in cmds] == expected
    assert all(c["shell"] == "bash" and c["uid"] == 0 for c in cmds)
    start = next(r for r in recs if r["type"] == "session_start")
    assert start["service"] == "implicit" and cmds[0]["session"] == start["session"]
    assert d.stop() == 0
    v = d.verify()
    assert v.returncode == 0, v.stdout + v.stderr


def test_image_with_its_own_ld_so_preload_keeps_its_lines(env, daemon_factory, public_dir):
    d = public_daemon(daemon_factory, public_dir).start()
    env.settings(d.socket)
    b = env.bundle("b")
    theirs = "/lib/x86_64-linux-gnu/libtinfo.so.6\n"
    (b / "rootfs" / "etc" / "ld.so.preload").write_text(theirs)
    cid = env.new_id()
    rc, _, err = env.wrapper("run", "-d", "--bundle", b, cid)
    assert rc == 0 and wrapper_lines(err) == [], err
    generated = env.state / f"{cid}.ld.so.preload"
    assert generated.read_text() == IN_CONTAINER + "\n" + theirs
    mount = next(m for m in config(b)["mounts"] if m["destination"] == "/etc/ld.so.preload")
    assert mount["source"] == str(generated)
    r = env.runc("exec", cid, "cat", "/etc/ld.so.preload")
    assert r.stdout == IN_CONTAINER + "\n" + theirs
    # The image's own file is as it was; `delete` removes the generated one.
    assert (b / "rootfs" / "etc" / "ld.so.preload").read_text() == theirs
    env.runc("kill", cid, "KILL", check=False)
    rc, _, err = env.wrapper("delete", "-f", cid)
    assert rc == 0, err
    assert not generated.exists()


# ---------------------------------------------------------------------------------------
# containers that still start, recorded as what they are

def test_static_image_gets_the_socket_but_no_preload(env, daemon_factory, public_dir):
    d = public_daemon(daemon_factory, public_dir).start()
    env.settings(d.socket)
    b = env.bundle("b", glibc=False)
    cid = env.new_id()
    rc, _, err = env.wrapper("run", "-d", "--bundle", b, cid)
    assert rc == 0, err
    assert env.status(cid) == "running"
    assert wrapper_lines(err) == [
        f"{PREFIX}container {cid}: no dynamic loader in the image (statically linked programs "
        "only): the interposer is not preloaded, it runs unaudited (shaudit.io/interposer: none; "
        "shauditd's socket is mounted)"]
    cfg = config(b)
    assert cfg["annotations"]["shaudit.io/interposer"] == "none"
    assert cfg["annotations"]["shaudit.io/reason"] == \
        "no dynamic loader in the image (statically linked programs only)"
    assert our_mounts(cfg) == [{"destination": "/run/shaudit", "type": "bind",
                                "source": str(public_dir), "options": OPTIONS}]
    assert f"SHAUDIT_SOCKET=/run/shaudit/{d.socket.name}" in cfg["process"]["env"]
    assert not [e for e in cfg["process"]["env"] if e.startswith("LD_PRELOAD=")]
    assert env.runc("exec", cid, "ls", "/run/shaudit").stdout.split() == sorted(
        p.name for p in public_dir.iterdir())


def test_missing_interposer_starts_unaudited_with_config_json_unchanged(env, tmp_path, public_dir):
    env.settings(public_dir / "d.sock", preload=tmp_path / "no-such" / "libshaudit_preload.so")
    cid, lines = starts_unchanged(env, env.bundle("b"))
    assert lines == [
        f"{PREFIX}interposer {tmp_path}/no-such/libshaudit_preload.so: No such file or directory; "
        f"container {cid} runs unaudited (config.json unchanged)"]


def test_shauditd_names_each_container_no_process_of_which_can_report(env, daemon_factory, public_dir, tmp_path):
    """Each container that runs without an interposer gets one signed container_unaudited
    record saying why: opted out, an image the wrapper could not preload (static), a wrapper
    that failed (config.json unchanged). An audited container gets none."""
    d = public_daemon(daemon_factory, public_dir, container_state_dirs=[str(env.runc_root)]).start()
    env.settings(d.socket)
    audited = env.new_id()
    rc, _, err = env.wrapper("run", "-d", "--bundle", env.bundle("ok"), audited)
    assert rc == 0, err
    opted_out, _ = starts_unchanged(env, env.bundle("out", annotations={"shaudit.io/audit": "false"}))
    static = env.new_id()
    rc, _, err = env.wrapper("run", "-d", "--bundle", env.bundle("static", glibc=False), static)
    assert rc == 0, err
    env.settings(d.socket, preload=tmp_path / "no-such" / "libshaudit_preload.so")
    failed, _ = starts_unchanged(env, env.bundle("failed"))
    deadline = time.monotonic() + 15
    while True:
        recs = [r for r in d.records() if r["type"] == "container_unaudited"] if d.log.exists() else []
        if len(recs) >= 3 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    time.sleep(1.2)  # one more look at the state directory: nothing twice, nothing for `audited`
    recs = {r["container"]["id"]: r for r in d.records() if r["type"] == "container_unaudited"}
    assert sorted(recs) == sorted([opted_out, static, failed]), recs
    assert recs[opted_out]["reason"] == 'opted out (annotation shaudit.io/audit: "false")'
    assert recs[static]["reason"] == ("shaudit-oci-runtime left it without an interposer: no dynamic "
                                      "loader in the image (statically linked programs only)")
    assert recs[static]["container"]["interposer"] == "none"
    assert recs[failed]["reason"] == ("its image carries no shaudit interposer and shaudit-oci-runtime "
                                      "did not prepare it")
    assert all(r["evidence"].startswith(f"lines typed in container {cid} are not reported")
               for cid, r in recs.items())
    assert d.stop() == 0
    assert d.verify().returncode == 0


def test_old_glibc_image_is_not_preloaded(env, public_dir):
    """An image whose libc.so.6 lacks a symbol version the interposer needs: preloading it
    would stop every program there, so the container runs without it."""
    env.settings(public_dir / "d.sock")
    b = env.bundle("b", glibc=False)
    lib = b / "rootfs" / "lib" / "x86_64-linux-gnu"
    lib.mkdir(parents=True)
    (b / "rootfs" / "lib64").mkdir()
    shutil.copy2("/lib64/ld-linux-x86-64.so.2", b / "rootfs" / "lib64" / "ld-linux-x86-64.so.2")
    # A library that defines versions, none of them GLIBC_*, in libc's place.
    shutil.copy2("/lib/x86_64-linux-gnu/libtinfo.so.6", lib / "libc.so.6")
    cid = env.new_id()
    rc, _, err = env.wrapper("run", "-d", "--bundle", b, cid)
    assert rc == 0, err
    assert env.status(cid) == "running"
    cfg = config(b)
    reason = cfg["annotations"]["shaudit.io/reason"]
    assert cfg["annotations"]["shaudit.io/interposer"] == "none"
    assert reason.startswith("the image's /lib/x86_64-linux-gnu/libc.so.6 lacks GLIBC_2.")
    assert reason.endswith(", which the interposer needs (its glibc is older than the one the "
                           "interposer was built with)")
    assert [m["destination"] for m in our_mounts(cfg)] == ["/run/shaudit"]
    assert wrapper_lines(err) == [
        f"{PREFIX}container {cid}: {reason}: the interposer is not preloaded, it runs unaudited "
        "(shaudit.io/interposer: none; shauditd's socket is mounted)"]


def test_musl_image(env, public_dir):
    """musl reads no /etc/ld.so.preload: with preload_musl the interposer comes through
    $LD_PRELOAD; without it the container runs unaudited. (The loader here is a stand-in:
    the container runs static busybox.)"""
    env.settings(public_dir / "d.sock")
    b = env.bundle("b", glibc=False)
    (b / "rootfs" / "lib").mkdir()
    shutil.copy2(BUSYBOX, b / "rootfs" / "lib" / "ld-musl-x86_64.so.1")
    cid = env.new_id()
    rc, _, err = env.wrapper("run", "-d", "--bundle", b, cid)
    assert rc == 0, err
    assert env.status(cid) == "running"
    reason = "a musl image, and the setting preload_musl is not set"
    assert config(b)["annotations"]["shaudit.io/reason"] == reason
    assert wrapper_lines(err) == [
        f"{PREFIX}container {cid}: {reason}: the interposer is not preloaded, it runs unaudited "
        "(shaudit.io/interposer: none; shauditd's socket is mounted)"]

    env.settings(public_dir / "d.sock", preload_musl=PRELOAD)  # a stand-in again
    b2 = env.bundle("b2", glibc=False)
    shutil.copytree(b / "rootfs" / "lib", b2 / "rootfs" / "lib")
    cfg = config(b2)
    cfg["process"]["env"].append("LD_PRELOAD=/opt/theirs.so")
    write_config(b2, cfg)
    cid2 = env.new_id()
    rc, _, err = env.wrapper("run", "-d", "--bundle", b2, cid2)
    assert rc == 0 and wrapper_lines(err) == [], err
    assert env.status(cid2) == "running"
    cfg = config(b2)
    assert cfg["annotations"]["shaudit.io/interposer"] == "musl"
    assert [m["destination"] for m in our_mounts(cfg)] == [IN_CONTAINER, "/run/shaudit"]
    assert f"LD_PRELOAD={IN_CONTAINER}:/opt/theirs.so" in cfg["process"]["env"]
    assert "LD_PRELOAD=/opt/theirs.so" not in cfg["process"]["env"]


def test_opted_out_container_is_untouched(env, public_dir):
    env.settings(public_dir / "d.sock")
    cid, lines = starts_unchanged(env, env.bundle("b", annotations={"shaudit.io/audit": "false"}))
    assert lines == [
        f'{PREFIX}container {cid} is annotated shaudit.io/audit: "false": it runs unaudited '
        "(config.json untouched)"]
    assert not env.state.exists()


def test_opt_in_mode(env, public_dir):
    env.settings(public_dir / "d.sock", mode="opt-in")
    plain = env.bundle("plain")
    before = (plain / "config.json").read_bytes()
    chosen = env.bundle("chosen", annotations={"shaudit.io/audit": "true"})
    c1, c2 = env.new_id(), env.new_id()
    rc, _, err = env.wrapper("run", "-d", "--bundle", plain, c1)
    assert rc == 0, err
    assert (plain / "config.json").read_bytes() == before
    assert wrapper_lines(err) == [
        f'{PREFIX}mode opt-in and container {c1} is not annotated shaudit.io/audit: "true": it '
        "runs unaudited (config.json untouched)"]
    rc, _, err = env.wrapper("run", "-d", "--bundle", chosen, c2)
    assert rc == 0 and wrapper_lines(err) == [], err
    assert config(chosen)["annotations"]["shaudit.io/interposer"] == "glibc"
    assert env.status(c1) == env.status(c2) == "running"


def test_config_json_runc_reads_but_the_wrapper_does_not(env, public_dir):
    """Go's JSON decoder takes invalid UTF-8 and matches keys case-insensitively; the wrapper
    refuses both (it could not edit such a file faithfully), and the container starts."""
    env.settings(public_dir / "d.sock")
    b = env.bundle("b")
    text = (b / "config.json").read_bytes().replace(b'"hostname": "audited"',
                                                     b'"hostname": "audited", "Hostname": "x\xff"')
    (b / "config.json").write_bytes(text)
    cid = env.new_id()
    rc, _, err = env.wrapper("run", "-d", "--bundle", b, cid)
    assert rc == 0, err
    assert env.status(cid) == "running"
    assert (b / "config.json").read_bytes() == text
    [line] = wrapper_lines(err)
    assert line.startswith(f"{PREFIX}{b}/config.json: JSON error at byte ")
    assert line.endswith(f"; container {cid} runs unaudited (config.json unchanged)")


def test_unparsable_config_json_is_passed_to_the_runtime(env, fake_runtime, public_dir):
    script, calls = fake_runtime
    env.settings(public_dir / "d.sock", runtime=script)
    b = env.bundle("b")
    (b / "config.json").write_text('{"ociVersion": "1.0.2", "process": {')
    args = ["--root", env.runc_root, "--log", env.tmp / "runc.log", "--log-format", "json",
            "create", "--bundle", b, "--pid-file", env.tmp / "pid", "c1"]
    rc, _, err = env.raw_wrapper(*args, cwd=env.tmp)
    assert rc == 0, err
    assert calls() == [{"argv": [str(script), *map(str, args)], "cwd": str(env.tmp)}]
    assert (b / "config.json").read_text() == '{"ociVersion": "1.0.2", "process": {'
    assert wrapper_lines(err) == [
        f"{PREFIX}{b}/config.json: JSON error at byte 36: expected a string key; container c1 "
        "runs unaudited (config.json unchanged)"]


def test_state_dir_that_cannot_be_written(env, public_dir):
    env.settings(public_dir / "d.sock", state_dir="/proc/version/shaudit")
    cid, lines = starts_unchanged(env, env.bundle("b"))
    assert lines == [
        f"{PREFIX}cannot create /proc/version/shaudit: Not a directory; container {cid} runs "
        "unaudited (config.json unchanged)"]


def test_socket_in_a_shared_directory_is_refused(env):
    env.settings("/tmp/shauditd.sock")
    cid, lines = starts_unchanged(env, env.bundle("b"))
    assert lines == [
        f"{PREFIX}the socket's directory /tmp is mounted into every container, so it must be a "
        "directory of shauditd's own (like /run/shaudit), not /tmp; container "
        f"{cid} runs unaudited (config.json unchanged)"]


# ---------------------------------------------------------------------------------------
# the command line: the same arguments reach the runtime

@pytest.mark.parametrize("args", [
    ["start", "c1"],
    ["--root", "/run/x", "state", "c1"],
    ["kill", "c1", "KILL"],
    ["delete", "-f", "c1"],
    ["--version"],
    ["features"],
    ["--debug", "--log=/tmp/l", "exec", "-t", "--env", "A=1", "c1", "/bin/sh", "-c", "echo x"],
    ["create", "--help"],
    ["ps", "c1"],
])
def test_other_subcommands_pass_through_untouched(env, fake_runtime, public_dir, args):
    script, calls = fake_runtime
    env.settings(public_dir / "d.sock", runtime=script)
    b = env.bundle("b")
    before = (b / "config.json").read_bytes()
    rc, _, err = env.raw_wrapper(*args, cwd=b)
    assert rc == 0 and err == "", err
    assert calls() == [{"argv": [str(script), *args], "cwd": str(b)}]
    assert (b / "config.json").read_bytes() == before


@pytest.mark.parametrize("form", [
    # containerd's shim: global options, then create with --bundle and its own options
    ["--root", "{root}", "--log", "{tmp}/log.json", "--log-format", "json", "--systemd-cgroup",
     "create", "--bundle", "{b}", "--pid-file", "{tmp}/pid", "--no-pivot", "{id}"],
    ["--debug", "--root={root}", "--rootless", "false", "--criu", "/usr/sbin/criu",
     "create", "-b", "{b}", "{id}"],
    ["create", "--bundle={b}", "--console-socket", "{tmp}/console.sock", "{id}"],
    ["create", "{id}", "--bundle", "{b}"],  # urfave/cli moves options after the id before it
    ["-root", "{root}", "run", "-d", "-bundle", "{b}", "{id}"],  # Go flags: one dash too
    ["run", "--detach", "--keep", "{id}"],  # the bundle is the working directory
])
def test_create_and_run_find_the_bundle_however_it_is_given(env, fake_runtime, public_dir, form):
    script, calls = fake_runtime
    env.settings(public_dir / "d.sock", runtime=script)
    b = env.bundle("b")
    args = [a.format(root=env.runc_root, tmp=env.tmp, b=b, id="c1") for a in form]
    rc, _, err = env.raw_wrapper(*args, cwd=b)
    assert rc == 0 and err == "", err
    assert calls() == [{"argv": [str(script), *args], "cwd": str(b)}]
    assert config(b)["annotations"]["shaudit.io/interposer"] == "glibc"


def test_unreadable_settings_fall_back_to_runc(env, tmp_path):
    missing = tmp_path / "missing.yaml"
    rc, out, err = env.raw_wrapper("--version", settings=missing)
    assert rc == 0
    assert out == subprocess.run([RUNC, "--version"], capture_output=True, text=True).stdout
    assert err == ""  # --version and --help are passed on quietly
    # Quiet for every command but create and run: containerd parses the combined stdout and
    # stderr of `runc state` and `runc ps` as JSON.
    rc, out, err = env.raw_wrapper("--root", env.runc_root, "list", settings=missing)
    assert rc == 0 and out.startswith("ID "), out
    assert err == ""

    b = env.bundle("b")
    before = (b / "config.json").read_bytes()
    cid = env.new_id()
    rc, _, err = env.raw_wrapper("--root", env.runc_root, "run", "-d", "--bundle", b, cid,
                                 settings=missing)
    assert rc == 0, err
    assert env.status(cid) == "running"
    assert (b / "config.json").read_bytes() == before
    assert wrapper_lines(err) == [
        f"{PREFIX}cannot read {missing}: No such file or directory; container {cid} runs unaudited"]


def test_broken_settings_still_name_the_runtime(env, fake_runtime, public_dir):
    script, calls = fake_runtime
    env.settings(public_dir / "d.sock", runtime=script, mode="sometimes")
    b = env.bundle("b")
    before = (b / "config.json").read_bytes()
    rc, _, err = env.raw_wrapper("create", "--bundle", b, "c1")
    assert rc == 0, err
    assert [c["argv"] for c in calls()] == [[str(script), "create", "--bundle", str(b), "c1"]]
    assert (b / "config.json").read_bytes() == before
    assert wrapper_lines(err) == [
        f"{PREFIX}{env.settings_path}:5:7: key 'mode': expected all or opt-in, got 'sometimes'; "
        "container c1 runs unaudited"]


def test_a_runtime_that_is_the_wrapper_itself_is_not_run(env, public_dir):
    env.settings(public_dir / "d.sock", runtime=WRAPPER)
    rc, out, err = env.raw_wrapper("--version")
    assert rc == 0 and out.startswith("runc version"), out
    assert err == ""
    b = env.bundle("b")
    cid = env.new_id()
    rc, _, err = env.wrapper("run", "-d", "--bundle", b, cid)
    assert rc == 0, err
    assert env.status(cid) == "running"
    assert config(b)["annotations"]["shaudit.io/interposer"] == "glibc"
    assert wrapper_lines(err) == [f"{PREFIX}{WRAPPER} is shaudit-oci-runtime itself; running {RUNC}"]
