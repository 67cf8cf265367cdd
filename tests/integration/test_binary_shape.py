# SPDX-License-Identifier: Apache-2.0
"""Binary-shape checks of the interposer and the PAM module (what they pull into other
people's processes, what they export, whether they load)."""
import ctypes
import os
import subprocess

from conftest import BUILD

PRELOAD = BUILD / "preload" / "libshaudit_preload.so"
PAM = BUILD / "pam_module" / "pam_shaudit.so"

INTERPOSED = {"execve", "execveat", "fexecve", "execv", "execvp", "execvpe", "execl", "execlp",
              "execle", "posix_spawn", "posix_spawnp", "system", "popen", "read", "write",
              "ioctl", "zleread",
              # readline and libedit programs (repl.c)
              "readline", "rl_callback_handler_install", "rl_callback_read_char", "el_gets"}


def needed(path):
    out = subprocess.run(["readelf", "-d", str(path)], capture_output=True, text=True, check=True)
    return [line.split("[")[1].rstrip("]") for line in out.stdout.splitlines() if "(NEEDED)" in line]


def exported(path):
    out = subprocess.run(["nm", "-D", "--defined-only", str(path)], capture_output=True, text=True,
                         check=True)
    return {line.split()[-1].split("@")[0] for line in out.stdout.splitlines() if line.strip()}


def test_interposer_needs_only_libc():
    assert needed(PRELOAD) == ["libc.so.6"]


def test_interposer_exports_exactly_the_interposed_symbols():
    assert exported(PRELOAD) == INTERPOSED


def test_pam_module_exports_only_session_entry_points():
    assert exported(PAM) == {"pam_sm_open_session", "pam_sm_close_session"}
    assert "libstdc++.so.6" not in needed(PAM)


def test_pam_module_loads_with_rtld_now():
    lib = ctypes.CDLL(str(PAM), mode=os.RTLD_NOW)
    assert lib.pam_sm_open_session is not None


def test_interposer_loads_with_rtld_now_and_changes_nothing_without_daemon(tmp_path):
    # No daemon on this socket: the program runs unchanged, prints nothing extra, keeps errno.
    env = dict(os.environ, LD_PRELOAD=str(PRELOAD), SHAUDIT_SOCKET=str(tmp_path / "none.sock"))
    r = subprocess.run(["/bin/sh", "-c", "echo out; ls /nonexistent; echo rc=$?"], env=env,
                       capture_output=True, text=True)
    assert r.stdout == "out\nrc=2\n"
    assert r.stderr == "ls: cannot access '/nonexistent': No such file or directory\n"
