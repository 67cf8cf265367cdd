# SPDX-License-Identifier: Apache-2.0
"""The client library custom shells link (libshaudit.so.1): what an installed prefix holds,
what the library exports and needs, and a custom shell built out of tree against it (with
pkg-config and with CMake's find_package) whose typed lines and exit statuses end up in the
signed log."""
import os
import shutil
import subprocess
import time

import pytest

from conftest import BUILD, read_records
from ptyshell import PtyShell

SOURCE = next(p for p in [BUILD.parent, *BUILD.parents] if (p / "examples" / "minishell.c").is_file())

EXPORTED = sorted([
    "shaudit_api_version", "shaudit_client_close", "shaudit_client_command_begin",
    "shaudit_client_command_end", "shaudit_client_create", "shaudit_client_hello",
    "shaudit_client_open", "shaudit_client_report_exec", "shaudit_client_report_line",
    "shaudit_client_session_entry", "shaudit_client_set_timeout_ms", "shaudit_version",
])


@pytest.fixture(scope="module")
def prefix(tmp_path_factory):
    """This build installed into a fresh prefix, as an operator or a package would."""
    p = tmp_path_factory.mktemp("prefix")
    r = subprocess.run(["cmake", "--install", str(BUILD), "--prefix", str(p)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    return p


def libdir(prefix):
    (so,) = list(prefix.glob("lib*/**/libshaudit.so.1"))
    return so.parent


def test_the_prefix_holds_the_client_library_and_only_its_public_header(prefix):
    lib = libdir(prefix)
    assert (lib / "libshaudit.so").is_symlink()
    assert os.readlink(lib / "libshaudit.so") == "libshaudit.so.1"
    assert sorted(p.name for p in (prefix / "include" / "shaudit").iterdir()) == ["shaudit.h"]
    assert (lib / "pkgconfig" / "shaudit.pc").is_file()
    assert (lib / "cmake" / "shaudit" / "shauditConfig.cmake").is_file()
    assert (prefix / "share" / "man" / "man3" / "libshaudit.3").is_file()
    # The engine is static inside shauditd and the CLI: no other shaudit library is installed
    # (the interposers are preloaded, never linked; the musl one when the build made it).
    musl = ["libshaudit_preload_musl.so"] if (BUILD / "preload" / "libshaudit_preload_musl.so").exists() else []
    assert sorted(p.name for p in lib.glob("libshaudit*")) == [
        "libshaudit.so", "libshaudit.so.1", "libshaudit.so.1.0.0", "libshaudit_preload.so", *musl]


def test_exports_exactly_the_c_api_under_a_versioned_soname(prefix):
    so = libdir(prefix) / "libshaudit.so.1"
    dyn = subprocess.run(["readelf", "-d", "-W", str(so)], capture_output=True, text=True, check=True).stdout
    assert "Library soname: [libshaudit.so.1]" in dyn
    syms = subprocess.run(["readelf", "--dyn-syms", "-W", str(so)], capture_output=True, text=True,
                          check=True).stdout
    defined = set()
    for line in syms.splitlines():
        f = line.split()
        # Num: Value Size Type Bind Vis Ndx Name
        # (the version node, SHAUDIT_1, is an ABS entry, not a symbol of the API)
        if len(f) >= 8 and f[0].endswith(":") and f[6] not in ("UND", "ABS") and f[3] in ("FUNC", "OBJECT"):
            defined.add(f[7].split("@")[0])
    assert sorted(defined) == EXPORTED


def test_needs_only_libc(prefix):
    so = libdir(prefix) / "libshaudit.so.1"
    needed = [l.split("[")[1].rstrip("]") for l in subprocess.run(
        ["readelf", "-d", str(so)], capture_output=True, text=True, check=True).stdout.splitlines()
        if "(NEEDED)" in l]
    assert needed == ["libc.so.6"]
    out = subprocess.run(["ldd", str(so)], capture_output=True, text=True, check=True).stdout
    names = sorted(l.split()[0].rsplit("/", 1)[-1] for l in out.splitlines() if l.strip())
    assert names == ["ld-linux-x86-64.so.2", "libc.so.6", "linux-vdso.so.1"]


def build_with_pkg_config(prefix, dest):
    shutil.copytree(SOURCE / "examples", dest)
    env = dict(os.environ, PKG_CONFIG_PATH=str(libdir(prefix) / "pkgconfig"))
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "shaudit"], env=env,
                           capture_output=True, text=True, check=True).stdout.split()
    # The .pc file is relocatable: its paths are relative to where it lies.
    flags = [f[:2] + os.path.normpath(f[2:]) if f[:2] in ("-I", "-L") else f for f in flags]
    assert flags == [f"-I{prefix}/include", f"-L{libdir(prefix)}", "-lshaudit"]
    r = subprocess.run(["make", "-C", str(dest)], env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    return dest / "minishell"


def build_with_cmake(prefix, dest):
    shutil.copytree(SOURCE / "examples", dest)
    r = subprocess.run(["cmake", "-S", str(dest), "-B", str(dest / "build"),
                        f"-DCMAKE_PREFIX_PATH={prefix}"], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    r = subprocess.run(["cmake", "--build", str(dest / "build")], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    return dest / "build" / "minishell"


def minishell(prefix, d, exe, *args):
    """The example shell on a pty, reporting to d, with the installed library."""
    env = {"PATH": "/usr/bin:/bin", "SHAUDIT_SOCKET": str(d.socket),
           "LD_LIBRARY_PATH": str(libdir(prefix)), "TERM": "dumb"}
    return PtyShell([str(exe), *args], env=env)


def records_of(d, pid, statuses, timeout=10):
    """pid's records once `statuses` command_status records are in (the last report sent)."""
    deadline = time.monotonic() + timeout
    while True:
        recs = [r for r in read_records(d.log) if r.get("pid") == pid]
        if sum(r["type"] == "command_status" for r in recs) >= statuses or time.monotonic() > deadline:
            return recs
        time.sleep(0.05)


@pytest.mark.parametrize("how", ["pkg-config", "cmake"])
def test_a_custom_shell_built_against_the_installed_library_is_audited(prefix, daemon_factory,
                                                                        tmp_path, how):
    exe = (build_with_pkg_config if how == "pkg-config" else build_with_cmake)(prefix, tmp_path / "ex")
    # Linked against the installed library (not the build tree's).
    ldd = subprocess.run(["ldd", str(exe)], capture_output=True, text=True,
                         env=dict(os.environ, LD_LIBRARY_PATH=str(libdir(prefix)))).stdout
    assert f"{libdir(prefix)}/libshaudit.so.1" in ldd
    d = daemon_factory().start()
    sh = minishell(prefix, d, exe, "-l")
    for line in ["echo hello from minishell", "false", "sh -c 'exit 7'"]:
        sh.wait_prompt("minishell$ ")
        sh.type(line + "\n")
    sh.wait_prompt("minishell$ ")
    sh.type("exit\n")
    _, status = os.waitpid(sh.pid, 0)
    assert os.waitstatus_to_exitcode(status) == 7  # the last status, as a shell does

    recs = records_of(d, sh.pid, 4)  # three lines and `exit`, each with its status
    start = [r for r in recs if r["type"] == "session_start"]
    assert len(start) == 1 and start[0]["service"] == "implicit"
    assert start[0]["reason"] == "interactive shell outside any session"
    session = start[0]["session"]
    cmds = [r for r in recs if r["type"] == "command"]
    assert [(r["text"], r["shell"], r["command"], r["session"]) for r in cmds] == [
        ("echo hello from minishell", "minishell", f"{sh.pid}.1", session),
        ("false", "minishell", f"{sh.pid}.2", session),
        ("sh -c 'exit 7'", "minishell", f"{sh.pid}.3", session),
        ("exit", "minishell", f"{sh.pid}.4", session),
    ]
    statuses = [r for r in recs if r["type"] == "command_status"]
    assert [(r["command"], r["exit_status"]) for r in statuses] == [
        (f"{sh.pid}.1", 0), (f"{sh.pid}.2", 1), (f"{sh.pid}.3", 7), (f"{sh.pid}.4", 7)]
    assert all(r["duration_ns"] > 0 for r in statuses)
    assert d.stop() == 0
    # The session's end counts the failed commands the library reported.
    end = [r for r in read_records(d.log) if r["type"] == "session_end" and r.get("session") == session]
    assert len(end) == 1 and end[0]["commands"] == 4 and end[0]["failed_commands"] == 3
    assert d.verify().returncode == 0


def run_until_audited(d, sh, away_lines):
    """Types away_lines while shauditd is not running, starts it, types one more line and exit;
    returns the records of the shell's process."""
    sh.wait_prompt("minishell$ ")
    t0 = time.monotonic()
    for line in away_lines:
        sh.type(line + "\n", delay=0)
        sh.wait_prompt("minishell$ ")
    assert time.monotonic() - t0 < 2 + len(away_lines) * 0.2  # never stalled by the missing daemon
    d.start()
    sh.type("echo now audited\n")
    sh.wait_prompt("minishell$ ")
    sh.type("exit\n")
    os.waitpid(sh.pid, 0)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        recs = [r for r in read_records(d.log) if r.get("pid") == sh.pid]
        if any(r.get("text") == "exit" for r in recs) and recs[-1]["type"] == "command_status":
            break
        time.sleep(0.05)
    assert d.stop() == 0
    assert d.verify().returncode == 0
    return [r for r in read_records(d.log) if r.get("pid") == sh.pid]


def test_a_lazy_client_starts_without_shauditd_and_delivers_what_it_held(prefix, daemon_factory,
                                                                         tmp_path):
    d = daemon_factory()  # not started yet
    sh = minishell(prefix, d, build_with_pkg_config(prefix, tmp_path / "ex"))
    recs = run_until_audited(d, sh, ["echo while away", "false"])
    # Held by the library while shauditd was away, delivered first when it was back: nothing
    # lost, in order, each with its status.
    assert [(r["type"], r.get("text"), r.get("exit_status"), r["report_seq"]) for r in recs] == [
        ("command", "echo while away", None, 1), ("command_status", None, 0, 2),
        ("command", "false", None, 3), ("command_status", None, 1, 4),
        ("command", "echo now audited", None, 5), ("command_status", None, 0, 6),
        ("command", "exit", None, 7), ("command_status", None, 0, 8)]


def test_what_the_library_cannot_hold_is_a_signed_loss_never_silent(prefix, daemon_factory,
                                                                    tmp_path):
    d = daemon_factory()  # not started yet
    sh = minishell(prefix, d, build_with_pkg_config(prefix, tmp_path / "ex"))
    # 20 lines of 3,900 bytes while shauditd is away: more than the library's 64 KiB backlog.
    away = [f"true {i:02d} " + "x" * 3890 for i in range(20)]
    recs = run_until_audited(d, sh, away)
    sent = 2 * (len(away) + 2)  # a line and a status for each typed line
    delivered = [r for r in recs if r["type"] in ("command", "command_status")]
    losses = [r for r in recs if r["type"] == "loss"]
    assert losses and all(l["cause"] == "report_gap" for l in losses)
    # Every report is accounted for: recorded, or counted in a signed loss record.
    assert len(delivered) + sum(l["missing"] for l in losses) == sent
    held = [r["text"] for r in delivered if r["type"] == "command"][:-2]
    assert 10 <= len(held) < len(away) and held == away[:len(held)]
