# SPDX-License-Identifier: Apache-2.0
"""The musl build of the interposer (libshaudit_preload_musl.so) in an Alpine-style root.

The root is made here from Debian's packages: musl's loader (/lib/ld-musl-<arch>.so.1, from
`dpkg -L musl`), busybox-static for the tools (static: it loads no preload, like a program the
interposer never sees), and two programs compiled with musl-gcc, dynamically linked against
musl: tests/musl_shell.c, a minimal shell installed as /bin/dash that reads its lines from the
terminal with read(2) in canonical mode as dash does, and tests/interposer_probe.c (the probe of
test_interposer_faults.py). They run chrooted, in a private mount namespace that binds /proc and
/dev, with LD_PRELOAD naming the library inside the root; shauditd's socket lives in the root's
/run/shaudit. Skipped (with the reason) only when musl-gcc is missing."""
import os
import platform
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import BUILD
from ptyshell import PS1, PtyShell
from test_binary_shape import INTERPOSED, exported, needed
from test_interposer_faults import FDS_OUTPUT, IN_CHILD, check_exec_family, execs_with, of

MUSL_GCC = shutil.which("musl-gcc")
MUSL_PRELOAD = BUILD / "preload" / "libshaudit_preload_musl.so"
GLIBC_PRELOAD = BUILD / "preload" / "libshaudit_preload.so"
TESTS = Path(__file__).resolve().parents[1]
SOCKET_IN_ROOT = "/run/shaudit/shaudit.sock"
IN_ROOT_PATH = "/usr/bin:/bin"

pytestmark = pytest.mark.skipif(MUSL_GCC is None,
                                reason="musl-gcc is missing (Debian: musl-tools musl-dev): "
                                       "no musl interposer to test")


def musl_loader():
    """The musl dynamic loader that Debian's musl package installs."""
    name = f"ld-musl-{platform.machine()}.so.1"
    r = subprocess.run(["dpkg", "-L", "musl"], capture_output=True, text=True)
    for line in r.stdout.splitlines():
        if line.endswith("/" + name) and os.path.exists(line):
            return Path(line)
    pytest.fail(f"{name} not found in `dpkg -L musl` (apt-get install musl)")


def musl_compile(src, out, *extra):
    r = subprocess.run([MUSL_GCC, "-O2", "-Wall", "-Wextra", "-o", str(out), str(src), *extra],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr


@pytest.fixture(scope="module")
def root():
    """A musl root: loader, both interposer builds, busybox-static, the musl programs."""
    cache = BUILD / "CMakeCache.txt"
    if cache.exists() and "SHAUDIT_MUSL:STRING=OFF" in cache.read_text():
        pytest.skip(f"this build was configured with SHAUDIT_MUSL=OFF ({BUILD})")
    assert MUSL_PRELOAD.exists(), (f"{MUSL_PRELOAD} was not built: musl-gcc was installed after "
                                   "the build was configured? (cmake -DSHAUDIT_MUSL=ON)")
    busybox = Path("/bin/busybox")
    assert busybox.exists(), "busybox-static is not installed (installer/deps.sh --test installs it)"
    r = Path(tempfile.mkdtemp(prefix="shaudit-musl-", dir="/tmp"))
    try:
        for d in ("bin", "lib", "usr/bin", "etc", "proc", "dev", "tmp", "work", "run/shaudit"):
            (r / d).mkdir(parents=True)
        (r / "tmp").chmod(0o1777)
        shutil.copy(musl_loader(), r / "lib" / musl_loader().name)  # the file, not the symlink
        shutil.copy(MUSL_PRELOAD, r / "lib")
        shutil.copy(GLIBC_PRELOAD, r / "lib")
        shutil.copy(busybox, r / "bin" / "busybox")
        applets = subprocess.run([str(busybox), "--list"], capture_output=True, text=True,
                                 check=True).stdout.split()
        for a in applets:
            if a not in ("dash", "busybox"):
                (r / "bin" / a).symlink_to("busybox")
        for a in ("echo", "env", "true"):
            (r / "usr" / "bin" / a).symlink_to("../../bin/busybox")
        (r / "etc" / "passwd").write_text("root:x:0:0:root:/:/bin/sh\n")
        musl_compile(TESTS / "musl_shell.c", r / "bin" / "dash")
        musl_compile(TESTS / "interposer_probe.c", r / "bin" / "interposer_probe", "-lpthread")
        out = run_in_root(r, ["/bin/busybox", "true"])
        assert out.returncode == 0, f"/bin/busybox does not run in the root (not static?): {out.stderr}"
        yield r
    finally:
        shutil.rmtree(r, ignore_errors=True)


def in_root_argv(root, argv, env):
    """A command that runs argv chrooted into root with exactly env, in a private mount
    namespace with /proc and /dev bound in. Every step execs the next: the pid is argv's."""
    script = 'mount --rbind /proc "$0/proc" && mount --rbind /dev "$0/dev" && exec chroot "$0" "$@"'
    unshare = shutil.which("unshare", path=HOST_ENV["PATH"]) or "/usr/bin/unshare"
    return [unshare, "--mount", "--propagation", "private", "/bin/sh", "-c", script, str(root),
            "/bin/env", "-i", *[f"{k}={v}" for k, v in env.items()], *argv]


HOST_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}


def root_env(preload=None, **extra):
    env = {"PATH": IN_ROOT_PATH, "HOME": "/work", "TERM": "xterm", "PS1": PS1,
           "SHAUDIT_SOCKET": SOCKET_IN_ROOT}
    if preload:
        env["LD_PRELOAD"] = "/lib/" + preload.name
    env.update(extra)
    return env


def run_in_root(root, argv, env=None, timeout=120):
    return subprocess.run(in_root_argv(root, argv, env or root_env()), env=HOST_ENV,
                          capture_output=True, text=True, timeout=timeout)


def popen_in_root(root, argv, env):
    return subprocess.Popen(in_root_argv(root, argv, env), env=HOST_ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def root_daemon(daemon_factory, root, name="d", **config):
    """A started shauditd with its socket in the root's /run/shaudit."""
    for f in (root / "run" / "shaudit").iterdir():  # what an earlier daemon left there
        if f.is_dir() and not f.is_symlink():
            shutil.rmtree(f)
        else:
            f.unlink()
    d = daemon_factory(name, **config)
    d.socket = root / SOCKET_IN_ROOT.lstrip("/")
    d.config["socket"] = str(d.socket)
    d.log = d.dir / f"log-{name}" / "audit.jsonl"  # a log of its own
    d.config["log"] = str(d.log)
    return d.start()


@pytest.fixture
def daemon(daemon_factory, root):
    d = root_daemon(daemon_factory, root)
    yield d
    d.stop()


# ---------------------------------------------------------------------------------------

def test_musl_build_needs_only_libc_and_exports_exactly_the_interposed_symbols(root):
    assert needed(MUSL_PRELOAD) == ["libc.so"]  # musl's soname (its loader is its libc)
    assert exported(MUSL_PRELOAD) == INTERPOSED


def test_musl_build_changes_nothing_without_daemon(root):
    line = "ls /nonexistent"
    plain = run_in_root(root, ["/bin/dash", "-c", line])
    r = run_in_root(root, ["/bin/dash", "-c", line], root_env(MUSL_PRELOAD))
    assert (r.returncode, r.stdout, r.stderr) == (plain.returncode, plain.stdout, plain.stderr)
    assert r.returncode == 1 and "/nonexistent" in r.stderr


def test_glibc_build_refuses_to_load_and_musl_build_loads(root, daemon):
    line = "echo loaded"
    # The glibc build needs glibc's symbols (__register_atfork, behind pthread_atfork): musl's
    # loader refuses the process outright, before main.
    r = run_in_root(root, ["/bin/dash", "-c", line], root_env(GLIBC_PRELOAD))
    assert r.returncode == 127, (r.returncode, r.stdout, r.stderr)
    assert r.stdout == ""
    assert "Error relocating /lib/libshaudit_preload.so" in r.stderr, r.stderr
    assert "symbol not found" in r.stderr

    # Likewise the musl build in a glibc program (here, the host's): glibc's loader takes its
    # own libc.so (a linker script) for the `libc.so` it needs, and the program never starts.
    r = subprocess.run(["/bin/true"], env=dict(HOST_ENV, LD_PRELOAD=str(MUSL_PRELOAD)),
                       capture_output=True, text=True)
    assert r.returncode == 127 and "libc.so" in r.stderr, (r.returncode, r.stderr)

    p = popen_in_root(root, ["/bin/dash", "-c", line], root_env(MUSL_PRELOAD))
    out, err = p.communicate(timeout=60)
    assert (p.returncode, out, err) == (0, "loaded\n", "")  # the interposer printed nothing
    recs = daemon.wait_for(lambda rs: execs_with(rs, ["echo", "loaded"]))
    # The shell's hello names its argv (found on the initial stack: musl's constructors get no
    # argc/argv): nobody reported its exec, so it is recorded from the hello.
    (shell,) = execs_with(recs, ["/bin/dash", "-c", line])
    assert (shell["pid"], shell["source"], shell["path"]) == (p.pid, "hello", "/bin/dash")
    # Its child's execvp, reported by the child: the name resolved through PATH in the root.
    (echo,) = execs_with(recs, ["echo", "loaded"])
    assert echo["ppid"] == p.pid and echo["pid"] != p.pid
    assert (echo["path"], echo["cwd"], echo["source"]) == ("/usr/bin/echo", "/", "report")
    assert of(recs, "loss") == []
    assert daemon.stop() == 0 and daemon.verify().returncode == 0


def test_interactive_musl_shell_opens_a_session_and_reports_lines_and_execs(root, daemon):
    lines = [
        "mkdir /work/made",
        "cd /work",
        "touch made/file",
        "system echo via-system > /work/system.txt",
        "popen echo via-popen",
        "spawn touch /work/spawned",
        "false",
    ]
    sh = PtyShell(in_root_argv(root, ["/bin/dash"], root_env(MUSL_PRELOAD)), env=HOST_ENV)
    try:
        sh.wait_prompt()
        for text in lines:
            sh.line(text)
        assert sh.exit() == 1  # `exit` returns the last status: false's
    finally:
        sh.kill()
    assert b"via-popen" in sh.out
    assert (root / "work" / "made" / "file").exists() and (root / "work" / "spawned").exists()
    assert (root / "work" / "system.txt").read_text() == "via-system\n"

    recs = daemon.wait_for(lambda rs: of(rs, "session_end"))
    (start,) = of(recs, "session_start")
    assert (start["service"], start["pid"]) == ("implicit", sh.pid)
    assert start["tty"].startswith("/dev/pts/")
    cmds = of(recs, "command", sh.pid)
    # Typed lines, by the terminal-line path (read(2) of fd 0 in canonical mode), as dash's.
    assert [c["text"] for c in cmds] == lines + ["exit"]
    assert all(c["shell"] == "dash" and c["session"] == start["session"] for c in cmds)
    assert [c["cwd"] for c in cmds] == ["/"] * 2 + ["/work"] * 6
    by_text = {c["text"]: c["command"] for c in cmds}

    def one(argv):
        found = execs_with(recs, argv)
        assert len(found) == 1, (argv, found)
        return found[0]

    # fork + execvp: the child reports, linked to the typed line that started it.
    for text, argv, path in [("mkdir /work/made", ["mkdir", "/work/made"], "/bin/mkdir"),
                             ("touch made/file", ["touch", "made/file"], "/bin/touch")]:
        e = one(argv)
        assert (e["ppid"], e["path"], e["command"]) == (sh.pid, path, by_text[text])
        assert e["session"] == start["session"] and e["pid"] != sh.pid
    # system, popen, posix_spawnp: the shell reports the child it is about to start.
    for text, argv in [("system echo via-system > /work/system.txt",
                        ["sh", "-c", "echo via-system > /work/system.txt"]),
                       ("popen echo via-popen", ["sh", "-c", "echo via-popen"]),
                       ("spawn touch /work/spawned", ["touch", "/work/spawned"])]:
        e = one(argv)
        assert (e["pid"], e.get("spawn"), e["command"]) == (sh.pid, True, by_text[text]), e
    (end,) = of(recs, "session_end")
    assert (end["session"], end["reason"], end["commands"]) == (start["session"], "entry_exit", 8)
    assert of(recs, "loss") == []
    assert daemon.stop() == 0 and daemon.verify().returncode == 0


def run_probe(root, *args, same_as_without=False):
    """Runs the musl probe in the root with the interposer: (pid, stdout, rc). With
    same_as_without, its stdout (errno values included) must be that of a run without it."""
    p = popen_in_root(root, ["/bin/interposer_probe", *map(str, args)], root_env(MUSL_PRELOAD))
    out, err = p.communicate(timeout=120)
    assert err == "", err
    if same_as_without:
        plain = run_in_root(root, ["/bin/interposer_probe", *map(str, args)])
        assert (plain.returncode, plain.stderr) == (0, "")
        assert out == plain.stdout
    return p.pid, out, p.returncode


def test_exec_family_under_musl(root, daemon):
    pid, out, rc = run_probe(root, "execfamily", same_as_without=True)
    assert rc == 0
    assert out.splitlines()[:len(IN_CHILD) + 4] == [f"via-{n}" for n in IN_CHILD] + [
        "via-system", "popen-read via-popen", "via-posix_spawn", "via-posix_spawnp"]
    daemon.wait_for(lambda rs: len(of(rs, "exec")) >= 18)
    time.sleep(0.3)  # nothing more may arrive
    # fexecve names the file behind the descriptor: busybox, which /bin/echo links to.
    check_exec_family(daemon.records(), pid, "/bin/busybox")


def test_descriptors_threads_and_vfork_under_musl(root, daemon):
    pid, out, rc = run_probe(root, "fds")
    assert rc == 0
    assert out.splitlines() == FDS_OUTPUT
    markers = [["/bin/true", f"fds-{m}"] for m in
               ("1-start", "2-after-closefrom", "3-after-close-loop", "4-after-dup2", "5-end")]
    recs = daemon.wait_for(lambda rs: len(of(rs, "exec", pid)) >= len(markers))
    assert [e["argv"] for e in of(recs, "exec", pid)] == markers

    # fork() in 4 threads at once: musl runs the interposer's atfork handler in each child.
    tpid, out, rc = run_probe(root, "threads-fork", 4, 25)
    assert (rc, out) == (0, "ok 100\n")
    recs = daemon.wait_for(lambda rs: len([e for e in execs_with(rs, ["/bin/true"])
                                           if e["ppid"] == tpid]) >= 100, timeout=30)
    forked = [e for e in execs_with(recs, ["/bin/true"]) if e["ppid"] == tpid]
    assert len({e["pid"] for e in forked}) == 100 and all(e["report_seq"] == 1 for e in forked)

    n = 10
    vpid, out, rc = run_probe(root, "vfork", n)
    assert rc == 0
    rows = [line.split() for line in out.splitlines()]
    assert rows[-1] == ["parent", str(vpid)]
    children = {row[2]: int(row[1]) for row in rows[:-1]}
    recs = daemon.wait_for(lambda rs: of(rs, "exec", vpid))
    for marker, child in children.items():
        mine = [e for e in execs_with(recs, ["/bin/true", marker]) if e["ppid"] == vpid]
        assert [(e["pid"], e["report_seq"]) for e in mine] == [(child, 1)]
    # The parent's numbering did not move: its own exec is its first report.
    (p,) = of(recs, "exec", vpid)
    assert (p["argv"], p["report_seq"]) == (["/bin/true", "parent-after-vfork"], 1)
    assert of(recs, "loss") == []
    assert [r for r in recs if r.get("report_out_of_order")] == []


def test_kernel_accepts_the_musl_interposer_only_from_the_file_interposer_names(daemon_factory, root):
    """With `bpf: on` the kernel records the execs whatever the libc; the interposer's
    announcement counts only from the file `interposer` names: a musl process that loaded the
    musl build is `unhooked_process` while that names the glibc build, and not when it names
    the musl one. Static busybox applets load nothing: unhooked either way."""
    lines = ["/bin/interposer_probe whoami", "mkdir -p /tmp/static-applet"]
    for name, interposer in [("glibc", GLIBC_PRELOAD), ("musl", root / "lib" / MUSL_PRELOAD.name)]:
        d = root_daemon(daemon_factory, root, name, bpf="on", interposer=str(interposer))
        try:
            sh = PtyShell(in_root_argv(root, ["/bin/dash"], root_env(MUSL_PRELOAD)), env=HOST_ENV)
            try:
                sh.wait_prompt()
                for text in lines:
                    sh.line(text)
                assert sh.exit() == 0
            finally:
                sh.kill()
            # With the glibc build named, dash's image is not hooked: what the kernel saw it read
            # from the terminal once its session was followed (from the second line on) is
            # rebuilt (`reconstructed`), and that line, not dash's report, names what it forks.
            def named(rs):
                return {c["command"]: c for c in of(rs, "command", sh.pid)}

            def complete(rs):
                cmds = named(rs)
                return (len(of(rs, "bypass")) >= (3 if name == "glibc" else 2)
                        and all(e.get("command") in cmds for e in of(rs, "exec")))
            recs = d.wait_for(complete)
            cmds = named(recs)
            (probe,) = execs_with(recs, ["/bin/interposer_probe", "whoami"])
            (mkdir,) = execs_with(recs, ["mkdir", "-p", "/tmp/static-applet"])
            (true,) = execs_with(recs, ["/bin/true", "setuid-probe-marker"])  # what it spawned
            for e, text in [(probe, lines[0]), (mkdir, lines[1]), (true, lines[0])]:
                assert (e["source"], cmds[e["command"]]["text"]) == ("bpf", text), e
            assert cmds[mkdir["command"]].get("reconstructed", False) == (name == "glibc"), cmds
            time.sleep(0.3)  # nothing more may arrive
            unhooked = {b["pid"] for b in of(d.records(), "bypass") if b["kind"] == "unhooked_process"}
            assert {mkdir["pid"], true["pid"]} <= unhooked
            assert (probe["pid"] in unhooked) == (name == "glibc"), name
            assert [b for b in of(d.records(), "bypass") if b["kind"] != "unhooked_process"] == []
        finally:
            d.stop()
