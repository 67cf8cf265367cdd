# SPDX-License-Identifier: Apache-2.0
"""Kernel cross-check end to end: shauditd with `bpf: on` and real dash, bash and zsh on real
pseudo-terminals with the interposer preloaded (implicit sessions). Every way around the
interposer in the bypass corpus must give its bypass record, with the exact kind, pid and argv
and the kernel's own exec record (`source: "bpf"`) before it; the clean corpus, everything
a person normally does in a shell, must give none. Then: kernel events lost to a tiny ring
buffer are a loss record (never a bypass), a report of an exec that never happened is a
forged_report, and the host-wide mode (/etc/ld.so.preload, inside a private mount namespace
only) is no bypass.

Host state is left as found: test users are removed, /etc/ld.so.preload exists only in a
mount namespace that ends with its last process, and processes are ended by PID."""
import os
import re
import shutil
import subprocess
import textwrap
import time
from pathlib import Path

import pytest

from conftest import built, kill_pids, run_cli, stats
from ptyshell import PS1, PtyShell
from test_capture import (PRELOAD, SHELLS, script, shell_env, start_shell, type_keys,
                          wait_commands)
from test_pam_ssh import Users

TESTS = Path(__file__).resolve().parent
WINDOW_MS = 300  # crosscheck_window_ms: decisions come 0.3 s after the event
BUSYBOX = "/bin/busybox"

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (eBPF, useradd, mount namespaces)"),
    pytest.mark.skipif(not built(PRELOAD).exists(), reason="build the interposer first"),
]


# ---------------------------------------------------------------------------------------------
# helpers


def cc_daemon(daemon_factory, public_dir=None, **extra):
    """shauditd with the eBPF collector and a short cross-check window. With public_dir its
    socket sits where every user can reach it (as /run/shaudit is): su and sudo children that
    dropped root still report."""
    d = daemon_factory(bpf="on", crosscheck_window_ms=WINDOW_MS, **extra)
    if public_dir is not None:
        d.socket = public_dir / "d.sock"
        d.config["socket"] = str(d.socket)
    return d.start()


def bypasses(recs, kind=None):
    return [r for r in recs if r["type"] == "bypass" and (kind is None or r["kind"] == kind)]


def brief(bs):
    """Bypass records in short, for assertion messages."""
    return [(b["kind"], b["pid"], b.get("text", b["argv"])) for b in bs]


def reported_exec(recs, argv):
    """The exec record of argv (exactly one), written from the kernel's exec event
    (`source: "bpf"`; interposers send no exec reports when the kernel records execs); its pid is
    the process that ran it."""
    ex = [r for r in recs if r["type"] == "exec" and r.get("source") == "bpf" and r["argv"] == argv]
    assert len(ex) == 1, (argv, ex)
    return ex[0]


def kernel_exec_before(recs, b):
    """The kernel's exec record (`source: "bpf"`) of the exec bypass b is about, written before
    b (at once when a report claimed it, else when the window passed, just before b)."""
    i = recs.index(b)
    xs = [x for x in recs[:i] if x["type"] == "exec" and x.get("source") == "bpf"
          and x["pid"] == b["pid"] and x["argv"] == b["argv"] and x["path"] == b["exe"]]
    assert xs, b
    x = xs[-1]
    assert x["session"] == b["session"]
    return x


def find_bypass(recs, kind, pid, argv=None, text=None):
    found = [b for b in bypasses(recs, kind) if b["pid"] == pid
             and (argv is None or b["argv"] == argv) and (text is None or b.get("text") == text)]
    return found


def wait_bypasses(d, wanted, timeout=20):
    """wanted: (kind, pid, argv, text) tuples; waits until each has its bypass record."""
    def ok(recs):
        return all(find_bypass(recs, *w) for w in wanted)
    try:
        return d.wait_for(ok, timeout=timeout)
    except AssertionError:
        recs = d.records() if d.log.exists() else []
        missing = [w for w in wanted if not find_bypass(recs, *w)]
        raise AssertionError(f"no bypass record for {missing}; bypasses: {bypasses(recs)}")


def check_exec_bypass(recs, kind, pid, argv, exe, session, uid=0):
    """Exactly one bypass of kind for pid with this argv and exe, after the kernel's record."""
    found = find_bypass(recs, kind, pid, argv)
    assert len(found) == 1, (kind, pid, argv, bypasses(recs))
    b = found[0]
    assert b["exe"] == exe and b["session"] == session and b["uid"] == uid, b
    assert b["severity"] == "high"
    x = kernel_exec_before(recs, b)
    assert x["uid"] == uid
    return b, x


def check_input_bypass(recs, pid, text, session):
    """The kernel saw shell pid read text; no interposer reported it. The shell's own exec was
    flagged before (unhooked_process, with the kernel's exec record)."""
    found = find_bypass(recs, "unreported_input", pid, text=text)
    assert len(found) == 1, (pid, text, bypasses(recs))
    b = found[0]
    assert b["session"] == session and b["argv"] == [] and b["severity"] == "high"
    shell = bypasses(recs, "unhooked_process")
    shell = [s for s in shell if s["pid"] == pid]
    assert shell and recs.index(shell[0]) < recs.index(b)
    return b


def output_value(sh, tag):
    """The value printed as `TAG value` on a line of its own by a command (not the echo of the
    typed line, which holds `$$` or code, not digits)."""
    m = re.findall(rb"(?:^|[\r\n])" + re.escape(tag.encode()) + rb" (\d+)(?: (\d+))?\r\n", sh.out)
    assert m, f"no {tag} in output: {sh.out[-600:]!r}"
    return [int(v) for v in m[-1] if v]


def typed_command(recs, shell_pid, text):
    """The command id of the line the shell read (the bypasses it led to name it)."""
    c = [r for r in recs if r["type"] == "command" and r["pid"] == shell_pid and r["text"] == text]
    assert len(c) == 1, (text, c)
    return c[0]["command"]


def session_of(recs, shell_pid):
    starts = [r for r in recs if r["type"] == "session_start" and r["pid"] == shell_pid]
    assert len(starts) == 1, starts
    return starts[0]["session"]


@pytest.fixture(scope="module")
def programs(tmp_path_factory):
    """Small C programs the corpus runs: a static one that fork+execs /bin/true with an empty
    environment, and a dynamic burst of fork+exec for the ring-buffer test."""
    if not shutil.which("cc"):
        pytest.skip("no C compiler (apt-get install gcc)")
    d = tmp_path_factory.mktemp("progs")
    (d / "static_forker.c").write_text(textwrap.dedent("""\
        #include <stdio.h>
        #include <sys/wait.h>
        #include <unistd.h>
        int main(void) {
          pid_t c = fork();
          if (c == 0) {
            char* argv[] = {"/bin/true", "static-child", NULL};
            char* envp[] = {NULL};
            execve("/bin/true", argv, envp);
            _exit(127);
          }
          int st;
          waitpid(c, &st, 0);
          printf("STATIC %d %d\\n", (int)getpid(), (int)c);
          return 0;
        }
        """))
    (d / "burst.c").write_text(textwrap.dedent("""\
        #include <stdlib.h>
        #include <string.h>
        #include <sys/wait.h>
        #include <unistd.h>
        extern char** environ;
        int main(int argc, char** argv) {
          int n = argc > 1 ? atoi(argv[1]) : 2000;
          static char big[3000];
          memset(big, 'x', sizeof big - 1);  /* large exec events fill a small ring fast */
          char* args[] = {"/bin/true", big, NULL};
          int running = 0;
          for (int i = 0; i < n; ++i) {
            pid_t c = fork();
            if (c == 0) {
              execve("/bin/true", args, environ);
              _exit(127);
            }
            if (c > 0 && ++running == 16) {
              while (running > 0 && wait(NULL) > 0) --running;
            }
          }
          while (wait(NULL) > 0) {}
          return 0;
        }
        """))
    return compile_programs(d, (("static_forker", ["-static"]), ("burst", [])))


def compile_programs(d, programs):
    """Compiles each d/NAME.c of programs ((NAME, extra cc arguments), ...) to d/NAME; skips
    the test, saying why, when cc fails."""
    for name, extra in programs:
        r = subprocess.run(["cc", "-O2", *extra, "-o", str(d / name), str(d / f"{name}.c")],
                           capture_output=True, text=True)
        if r.returncode != 0:
            pytest.skip(f"cc {' '.join(extra)} failed (static libc: apt-get install libc6-dev): {r.stderr}")
    d.chmod(0o755)
    return d


@pytest.fixture
def cc_user():
    """A test user whose shells show PS1 (login and non-login): for su and sudo."""
    users = Users()
    name, uid, gid, home = users.add("cc")
    rc = home / ".bashrc"
    rc.write_text(f"PS1='{PS1}'\nunset PROMPT_COMMAND\n")
    os.chown(rc, uid, gid)
    yield name, uid
    users.remove_all()


# ---------------------------------------------------------------------------------------------
# 1. The bypass corpus, in dash and in bash sessions


@pytest.mark.parametrize("name", ["dash", "bash"])
def test_bypass_corpus(daemon_factory, public_dir, work, programs, cc_user, name):
    if not os.access(BUSYBOX, os.X_OK):
        pytest.skip("no static busybox (apt-get install busybox-static)")
    user, user_uid = cc_user
    d = cc_daemon(daemon_factory, public_dir)
    notbash_dir = work / "x"
    notbash_dir.mkdir()
    notbash = notbash_dir / "notbash"
    shutil.copy2("/bin/bash", notbash)  # bash under another name and path: probed when it runs
    static = programs / "static_forker"
    raw_code = ("import ctypes,os; l=ctypes.CDLL(None); "
                "a=(ctypes.c_char_p*3)(b'/bin/true',b'raw-syscall',None); "
                "e=[(k+'='+v).encode() for k,v in os.environ.items()]; "
                "p=(ctypes.c_char_p*(len(e)+1))(*e,None); "
                "print('RAW',os.getpid(),flush=True); l.syscall(59,b'/bin/true',a,p)")
    empty_code = ("import os; print('EMPTY',os.getpid(),flush=True); "
                  "os.execve('/bin/true',['/bin/true','empty-env'],{})")
    env_line = "env -u LD_PRELOAD /bin/sh -c '/bin/true; id'"
    busybox_line = f"{BUSYBOX} sh -c '/bin/true'"
    notbash_line = f"env -u LD_PRELOAD {notbash} --norc --noprofile -i"
    bash_line = "env -u LD_PRELOAD bash --norc -i"

    sh = PtyShell(SHELLS[name], env=shell_env(d), cwd=str(work))
    try:
        sh.wait_prompt()
        sh.line(env_line)
        sh.line(busybox_line)
        sh.line(str(static))
        sh.line(f'python3 -c "{raw_code}"')
        sh.line(f'python3 -c "{empty_code}"')
        # A bash copy without the interposer: its first line is typed at once.
        sh.line(notbash_line)
        sh.line("echo in-notbash $$")
        sh.line("exit")
        sh.line(bash_line)
        sh.line("echo in-bash $$")
        sh.line("exit")
        # su and sudo clear the environment: the shells they start run without the interposer.
        sh.line(f"su - {user}", timeout=30)
        sh.line("echo in-su $$")
        sh.line("exit")
        sh.line(f"sudo -u {user} -s", timeout=30)
        sh.line("echo in-sudo $$")
        sh.line("exit")
        assert sh.exit() == 0
    finally:
        sh.kill()
    static_pid, static_child = output_value(sh, "STATIC")
    raw_pid, = output_value(sh, "RAW")
    empty_pid, = output_value(sh, "EMPTY")
    notbash_pid, = output_value(sh, "in-notbash")
    bash_pid, = output_value(sh, "in-bash")
    su_pid, = output_value(sh, "in-su")
    sudo_pid, = output_value(sh, "in-sudo")
    recs = d.records()
    env_pid = reported_exec(recs, ["env", "-u", "LD_PRELOAD", "/bin/sh", "-c", "/bin/true; id"])["pid"]
    busybox_pid = reported_exec(recs, [BUSYBOX, "sh", "-c", "/bin/true"])["pid"]
    wanted = [
        ("unhooked_process", env_pid, ["/bin/sh", "-c", "/bin/true; id"], None),
        ("unhooked_process", busybox_pid, [BUSYBOX, "sh", "-c", "/bin/true"], None),
        ("unhooked_process", static_pid, [str(static)], None),
        ("unhooked_process", static_child, ["/bin/true", "static-child"], None),
        ("unhooked_process", empty_pid, ["/bin/true", "empty-env"], None),
        ("unhooked_process", notbash_pid, [str(notbash), "--norc", "--noprofile", "-i"], None),
        ("unreported_input", notbash_pid, None, "echo in-notbash $$"),
        ("unhooked_process", bash_pid, ["bash", "--norc", "-i"], None),
        ("unreported_input", bash_pid, None, "echo in-bash $$"),
        ("unhooked_process", su_pid, ["-bash"], None),
        ("unreported_input", su_pid, None, "echo in-su $$"),
        ("unhooked_process", sudo_pid, ["/bin/bash"], None),
        ("unreported_input", sudo_pid, None, "echo in-sudo $$"),
    ]
    recs = wait_bypasses(d, wanted)
    sid = session_of(recs, sh.pid)

    # env -u LD_PRELOAD /bin/sh -c '/bin/true; id': sh, and both of its children, run bare.
    check_exec_bypass(recs, "unhooked_process", env_pid, ["/bin/sh", "-c", "/bin/true; id"], "/bin/sh", sid)
    for argv, exe in ((["/bin/true"], "/bin/true"), (["id"], "/usr/bin/id")):
        kids = [b for b in bypasses(recs, "unhooked_process") if b["argv"] == argv and b["ppid"] == env_pid]
        assert len(kids) == 1, (argv, bypasses(recs))
        check_exec_bypass(recs, "unhooked_process", kids[0]["pid"], argv, exe, sid)
    assert re.search(rb"[\r\n]uid=0\(root\) ", sh.out)  # id ran

    # A static busybox: its exec was reported (by the shell), but it never said hello. The
    # /bin/true it then became carries the interposer again (LD_PRELOAD is still set): no bypass.
    check_exec_bypass(recs, "unhooked_process", busybox_pid, [BUSYBOX, "sh", "-c", "/bin/true"],
                      BUSYBOX, sid)
    assert not [b for b in bypasses(recs) if b["pid"] == busybox_pid and b["argv"] != [BUSYBOX, "sh", "-c", "/bin/true"]]

    # A static program, and the child it fork+execs with an empty environment.
    b, _ = check_exec_bypass(recs, "unhooked_process", static_pid, [str(static)], str(static), sid)
    b, _ = check_exec_bypass(recs, "unhooked_process", static_child, ["/bin/true", "static-child"],
                             "/bin/true", sid)
    assert b["ppid"] == static_pid

    # A raw execve system call: nothing to bypass, the kernel records every exec (with the typed
    # command it ran for). The new image got the environment, so it is hooked: no bypass.
    raw = reported_exec(recs, ["/bin/true", "raw-syscall"])
    assert raw["pid"] == raw_pid and raw["session"] == sid and raw["command"].startswith(f"{sh.pid}.")
    assert not [b for b in bypasses(recs) if b["pid"] == raw_pid]

    # execve with an empty environment: reported (through libc), but the new image is bare.
    check_exec_bypass(recs, "unhooked_process", empty_pid, ["/bin/true", "empty-env"], "/bin/true", sid)

    # A copy of bash elsewhere under another name, and bash itself, without the interposer: the
    # process is flagged, and each line it read (from the kernel's probe) is in the log.
    assert notbash_pid == reported_exec(recs, ["env", "-u", "LD_PRELOAD", str(notbash), "--norc",
                                               "--noprofile", "-i"])["pid"]
    check_exec_bypass(recs, "unhooked_process", notbash_pid,
                      [str(notbash), "--norc", "--noprofile", "-i"], str(notbash), sid)
    check_input_bypass(recs, notbash_pid, "echo in-notbash $$", sid)
    check_input_bypass(recs, notbash_pid, "exit", sid)
    assert bash_pid == reported_exec(recs, ["env", "-u", "LD_PRELOAD", "bash", "--norc", "-i"])["pid"]
    check_exec_bypass(recs, "unhooked_process", bash_pid, ["bash", "--norc", "-i"], "/usr/bin/bash", sid)
    check_input_bypass(recs, bash_pid, "echo in-bash $$", sid)
    check_input_bypass(recs, bash_pid, "exit", sid)

    # su - USER: su is set-user-ID (its own exec is no bypass); the login shell it starts with a
    # clean environment is, and so is what it reads.
    check_exec_bypass(recs, "unhooked_process", su_pid, ["-bash"], "/bin/bash", sid, uid=user_uid)
    check_input_bypass(recs, su_pid, "echo in-su $$", sid)
    su_exec = reported_exec(recs, ["su", "-", user])
    assert not [b for b in bypasses(recs) if b["pid"] == su_exec["pid"]]
    assert reported_exec(recs, ["-bash"])["pid"] == su_pid
    # sudo -s likewise (sudo resets the environment).
    check_exec_bypass(recs, "unhooked_process", sudo_pid, ["/bin/bash"], "/bin/bash", sid, uid=user_uid)
    check_input_bypass(recs, sudo_pid, "echo in-sudo $$", sid)
    sudo_exec = reported_exec(recs, ["sudo", "-u", user, "-s"])
    assert not [b for b in bypasses(recs) if b["pid"] == sudo_exec["pid"]]
    assert reported_exec(recs, ["/bin/bash"])["pid"] == sudo_pid

    # Each bypass names the typed line that led to it.
    for text, pids in ((env_line, [env_pid]), (busybox_line, [busybox_pid]),
                       (str(static), [static_pid, static_child]), (notbash_line, [notbash_pid]),
                       (bash_line, [bash_pid]), (f"su - {user}", [su_pid]),
                       (f"sudo -u {user} -s", [sudo_pid])):
        cmd = typed_command(recs, sh.pid, text)
        for b in bypasses(recs):
            if b["pid"] in pids:
                assert b.get("command") == cmd, (text, b)
    cmd = typed_command(recs, sh.pid, f'python3 -c "{empty_code}"')
    assert [b.get("command") for b in bypasses(recs) if b["pid"] == empty_pid] == [cmd]
    assert raw["command"] == typed_command(recs, sh.pid, f'python3 -c "{raw_code}"')

    # Nothing the outer shell itself typed or ran is a bypass, and no report was called forged.
    assert not [b for b in bypasses(recs) if b["pid"] == sh.pid]
    assert not bypasses(recs, "forged_report")
    st = stats(d)
    assert st["bypasses"] >= len(wanted) and st["bpf_dropped"] == 0
    assert d.stop() == 0
    v = d.verify()
    assert v.returncode == 0, v.stdout + v.stderr


# ---------------------------------------------------------------------------------------------
# 2. The clean corpus: dash, bash and zsh, no bypass at all

CLEAN_SCRIPT = """\
#!/bin/sh
ls / > /dev/null
/bin/true from-script
echo from-script | tr a-z A-Z > /dev/null
x=$(id -u)
"""


def clean_corpus(work, loop):
    """The clean corpus: what people type that must never be a bypass (nor be refused by the
    enforcing mode), ending with `loop`, a loop of execs. work/script.sh is CLEAN_SCRIPT."""
    return [
        "ls /bin > /dev/null",
        f"mkdir {work}/hellofalco",
        'echo "hello world" > example.txt',
        "cat example.txt | grep hello | wc -l",
        "printf 'b\\na\\n' | sort | head -1 > sorted.txt",
        "sh script.sh",
        "./script.sh",
        "sh -c 'ls / > /dev/null; id -u'",
        "(cd / && ls > /dev/null)",
        "echo $(/bin/echo substituted) > sub.txt",
        "{ /bin/true grouped; ls > /dev/null; }",
        "passwd --status root",
        "env /bin/true via-env",
        "python3 -c \"import os, subprocess; os.system('/bin/true system'); "
        "subprocess.run(['/bin/true', 'spawn'], close_fds=False)\"",
        loop,
    ]


@pytest.mark.parametrize("name", ["dash", "bash", "zsh"])
def test_clean_corpus_has_no_bypass(daemon_factory, work, name):
    d = cc_daemon(daemon_factory)
    script = work / "script.sh"
    script.write_text(CLEAN_SCRIPT)
    script.chmod(0o755)
    loop = {
        "dash": "i=0; while [ $i -lt 1000 ]; do /bin/true $i; i=$((i+1)); done",
        "bash": "for i in $(seq 1000); do /bin/true $i; done",
        "zsh": "for i in {1..1000}; do /bin/true $i; done",
    }[name]
    lines = clean_corpus(work, loop)
    if shutil.which("ping"):
        lines.append("ping -c1 -W5 127.0.0.1 > /dev/null")
    sh = PtyShell(SHELLS[name], env=shell_env(d), cwd=str(work))
    try:
        sh.wait_prompt()
        for line in lines:
            sh.line(line, timeout=60)
        if name in ("bash", "zsh"):
            sh.type("cat exampl\t")  # completion
            sh.type(" > /dev/null\r")
            sh.wait_prompt()
        if name == "bash":
            sh.line("read -e -p 'RE> ' v", prompt="RE> ")
            sh.line("typed into read -e")
            sh.line('echo "$v" > read.txt')
        if name == "zsh":
            sh.line("v=init; vared -p 'VA> ' v", prompt="VA> ")
            sh.line("-edited")
            sh.line('echo "$v" > read.txt')
        for i in range(150):  # a busy session: many typed lines, builtins and external commands
            sh.line(f"/bin/true typed-{i}" if i % 2 else f"echo typed-{i} > /dev/null", delay=0)
        time.sleep(2 * WINDOW_MS / 1000 + 0.3)  # every decision taken
        st = stats(d)
        assert sh.exit() == 0
    finally:
        sh.kill()
    assert (work / "hellofalco").is_dir()
    assert (work / "example.txt").read_text() == "hello world\n"
    assert (work / "sorted.txt").read_text() == "a\n"
    assert (work / "sub.txt").read_text() == "substituted\n"
    if name == "bash":
        assert (work / "read.txt").read_text() == "typed into read -e\n"
    if name == "zsh":
        assert (work / "read.txt").read_text() == "init-edited\n"
    recs = d.records()
    texts = [r["text"] for r in recs if r["type"] == "command" and r["pid"] == sh.pid]
    assert loop in texts and "passwd --status root" in texts and len(texts) >= len(lines) + 150
    # The kernel saw it all: every one of the loop's 1,000 execs was checked.
    assert st["bpf_events"] > 2000 and st["bpf_dropped"] == 0
    assert st["bypasses"] == 0, brief(bypasses(d.records()))
    assert d.stop() == 0  # decides whatever was still pending
    recs = d.records()
    assert not bypasses(recs), brief(bypasses(recs))
    # Every exec is the kernel's record, linked to the typed line that ran it.
    execs = [r for r in recs if r["type"] == "exec"]
    assert len(execs) > 1000
    cmds = {r["command"] for r in recs if r["type"] == "command" and r["pid"] == sh.pid}
    bad = [r for r in execs if r.get("source") != "bpf" or r.get("command") not in cmds]
    assert not bad, bad[:3]
    assert not [r for r in recs if r["type"] == "loss"]
    if name == "bash":
        assert [r for r in recs if r["type"] == "noncmd_input" and r["kind"] == "read_e"]
    if name == "zsh":
        assert [r for r in recs if r["type"] == "noncmd_input" and r["kind"] == "vared"]
    v = d.verify()
    assert v.returncode == 0, v.stdout + v.stderr


# ---------------------------------------------------------------------------------------------
# 3. Kernel events lost to a full ring buffer: a loss record, never a bypass


def test_ring_buffer_loss_is_a_loss_record(daemon_factory, work, programs):
    d = cc_daemon(daemon_factory, bpf_ringbuf_kib=4)
    sh = PtyShell(SHELLS["bash"], env=shell_env(d), cwd=str(work))
    try:
        sh.wait_prompt()
        sh.line(f"{programs / 'burst'} 2000", timeout=120)
        recs = d.wait_for(lambda rs: any(r["type"] == "loss" and r.get("cause") == "bpf_ringbuf"
                                         for r in rs), timeout=20)
        time.sleep(2 * WINDOW_MS / 1000 + 0.3)
        st = stats(d)
        assert sh.exit() == 0
    finally:
        sh.kill()
    losses = [r for r in recs if r["type"] == "loss" and r.get("cause") == "bpf_ringbuf"]
    assert losses and all(r["missing"] > 0 for r in losses)
    assert st["bpf_dropped"] > 0 and st["bpf_dropped"] >= losses[0]["missing"]
    assert st["loss_records"] >= 1
    r = run_cli("stats", "--control", d.control)
    assert r.returncode == 0
    dropped = [l for l in r.stdout.splitlines() if l.startswith("bpf_dropped:")]
    assert dropped and int(dropped[0].split(":")[1]) > 0, r.stdout
    assert d.stop() == 0
    recs = d.records()
    # The loss records add up to the drop counter (as of the last look, at stop at the latest).
    assert sum(r["missing"] for r in recs if r["type"] == "loss" and r.get("cause") == "bpf_ringbuf") \
        >= st["bpf_dropped"]
    # Every exec was reported and every image said hello: what the kernel lost is loss, and
    # no report is called forged for want of its kernel event.
    assert not bypasses(recs), brief(bypasses(recs))[:5]
    v = d.verify()
    assert v.returncode == 0, v.stdout + v.stderr


# ---------------------------------------------------------------------------------------------
# 4. A report of an exec the kernel never saw

FORGE = """\
import os, socket, sys, time
sys.path.insert(0, {tests!r})
import wire
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.connect(sys.argv[1])
time.sleep(0.1)
s.send(wire.exec_(2, ["/usr/bin/forged-tool", "--claimed"], path="/usr/bin/forged-tool"))
print("FORGER", os.getpid(), flush=True)
time.sleep(1)
"""


def test_forged_exec_report(daemon_factory, work):
    d = cc_daemon(daemon_factory)
    forge = work / "forge.py"
    forge.write_text(FORGE.format(tests=str(TESTS)))
    sh = PtyShell(SHELLS["bash"], env=shell_env(d), cwd=str(work))
    try:
        sh.wait_prompt()
        sh.line("ls / > /dev/null")
        sh.line(f"python3 {forge} {d.socket}", timeout=30)
        forger, = output_value(sh, "FORGER")
        recs = wait_bypasses(d, [("forged_report", forger, ["/usr/bin/forged-tool", "--claimed"], None)])
        assert sh.exit() == 0
    finally:
        sh.kill()
    sid = session_of(recs, sh.pid)
    found = find_bypass(recs, "forged_report", forger)
    assert len(found) == 1, bypasses(recs)
    b = found[0]
    assert b["argv"] == ["/usr/bin/forged-tool", "--claimed"] and b["exe"] == "/usr/bin/forged-tool"
    assert b["session"] == sid and b["severity"] == "high"
    # The claim is in the log only as the finding (argv and exe of the bypass): a report the
    # kernel contradicts is never an exec record.
    assert not [r for r in recs if r["type"] == "exec" and r["argv"] == ["/usr/bin/forged-tool", "--claimed"]]
    # The python3 process itself (tracked by fork from the audited shell) is no bypass.
    assert bypasses(recs) == [b]
    assert d.stop() == 0
    assert bypasses(d.records()) == [b]


# ---------------------------------------------------------------------------------------------
# 5. Host-wide mode: /etc/ld.so.preload (in a private mount namespace) keeps the interposer in
#    a shell started without LD_PRELOAD: not a bypass, and its lines are recorded.


def test_host_wide_mode_is_no_bypass(daemon_factory, work, tmp_path):
    for tool in ("unshare", "mount"):
        if not shutil.which(tool):
            pytest.skip(f"no {tool} (util-linux)")
    d = cc_daemon(daemon_factory)
    upper, wdir = tmp_path / "etc-upper", tmp_path / "etc-work"
    upper.mkdir()
    wdir.mkdir()
    (upper / "ld.so.preload").write_text(f"{PRELOAD}\n")
    (upper / "ld.so.preload").chmod(0o644)
    # In the namespace only: /etc carries an ld.so.preload through an overlay. The shell gets an
    # audit session of its own (writing loginuid), which the daemon publishes for its implicit
    # session: host-wide mode audits processes of published audit sessions.
    script = "\n".join([
        "set -e",
        f"mount -t overlay overlay -o lowerdir=/etc,upperdir={upper},workdir={wdir} /etc",
        "echo 0 > /proc/self/loginuid",
        "exec bash --norc --noprofile -i",
    ])
    argv = [shutil.which("unshare"), "--mount", "--propagation", "private", "/bin/sh", "-c", script]
    sh = PtyShell(argv, env=shell_env(d), cwd=str(work))
    inner = None
    try:
        sh.wait_prompt(timeout=20)
        host = Path("/etc/ld.so.preload")  # the host's /etc is untouched
        assert not host.exists() or str(PRELOAD) not in host.read_text()
        sh.line("env -u LD_PRELOAD bash --norc --noprofile -i")
        sh.line("echo inner $$")
        inner, = output_value(sh, "inner")
        sh.line("ls /bin > /dev/null")
        sh.line('echo "hello world" > example.txt')
        sh.line("/bin/true in-host-wide")
        env = Path(f"/proc/{inner}/environ").read_bytes().split(b"\0")
        assert not [e for e in env if e.startswith(b"LD_PRELOAD=")]
        assert str(PRELOAD) in Path(f"/proc/{inner}/maps").read_text()
        sh.line("exit")
        time.sleep(2 * WINDOW_MS / 1000 + 0.3)
        st = stats(d)
        assert sh.exit() == 0
    finally:
        sh.kill()
        if inner:
            kill_pids([inner])
    recs = d.records()
    inner_cmds = [r["text"] for r in recs if r["type"] == "command" and r["pid"] == inner]
    assert inner_cmds == ["echo inner $$", "ls /bin > /dev/null", 'echo "hello world" > example.txt',
                          "/bin/true in-host-wide", "exit"]
    sid = session_of(recs, sh.pid)
    assert all(r["session"] == sid for r in recs if r["type"] == "command" and r["pid"] == inner)
    assert (work / "example.txt").read_text() == "hello world\n"
    assert st["bypasses"] == 0
    assert d.stop() == 0
    recs = d.records()
    assert not bypasses(recs), brief(bypasses(recs))
    v = d.verify()
    assert v.returncode == 0, v.stdout + v.stderr


# ---------------------------------------------------------------------------------------------
# Exit statuses a shell does not report


@pytest.mark.parametrize("argv", [["/bin/dash", "-i"], ["/bin/bash", "--norc", "--noprofile", "--noediting", "-i"]],
                         ids=["dash", "bash --noediting"])
def test_a_shell_that_reports_no_status_gets_the_kernels(daemon_factory, work, argv):
    """dash and bash without readline report no command status: the kernel's exit of the
    process the shell forked last for a command gives it (`derived: true`), and session_end
    counts the failures. A command that forks nothing has no status to derive."""
    d = cc_daemon(daemon_factory)
    sh = PtyShell(argv, env=shell_env(d), cwd=str(work))
    lines = ["ls / > /dev/null", "/bin/false", "ls /no-such-dir 2> /dev/null", "echo builtin",
             "/bin/true | /bin/false", "sh -c 'kill -9 $$'", "true"]
    try:
        sh.wait_prompt()
        for line in lines:
            sh.line(line)
        assert sh.exit() == 0
    finally:
        sh.kill()
    recs = d.wait_for(lambda rs: any(r["type"] == "session_end" for r in rs))
    cmds = {r["command"]: r["text"] for r in recs if r["type"] == "command"}
    derived = [(cmds[r["command"]], r["exit_status"]) for r in recs
               if r["type"] == "command_status" and r.get("derived")]
    assert derived == [("ls / > /dev/null", 0), ("/bin/false", 1), ("ls /no-such-dir 2> /dev/null", 2),
                       ("/bin/true | /bin/false", 1), ("sh -c 'kill -9 $$'", 137)]
    assert not [r for r in recs if r["type"] == "command_status" and not r.get("derived")]
    end, = [r for r in recs if r["type"] == "session_end"]
    assert (end["commands"], end["failed_commands"]) == (len(lines) + 1, 4)
    assert d.stop() == 0
    assert d.verify().returncode == 0


def test_a_shell_that_reports_statuses_gets_no_derived_ones(daemon_factory, work):
    d = cc_daemon(daemon_factory)
    sh = PtyShell(SHELLS["bash"], env=shell_env(d), cwd=str(work))
    try:
        sh.wait_prompt()
        sh.line("/bin/false")
        sh.line("ls / > /dev/null")
        assert sh.exit() == 0
    finally:
        sh.kill()
    recs = d.wait_for(lambda rs: any(r["type"] == "session_end" for r in rs))
    assert [(r["exit_status"], r.get("derived")) for r in recs if r["type"] == "command_status"] == \
        [(1, None), (0, None)]


@pytest.mark.parametrize("name", ["ksh-emacs", "ksh-vi", "mksh-emacs", "mksh-vi", "mksh-noedit"])
def test_ksh_and_mksh_lines_are_all_accounted_for(daemon_factory, work, name):
    """ksh93's command records come from its history file, written after a command's last line:
    its earlier (PS2) lines and its read builtin's input are reported as non-command input when
    it prompts again, so the kernel's lines all find a report in time (no reconstructed command,
    no uncaptured_input bypass). mksh reports each line at its Enter; its read builtin reads one
    byte at a time in canonical mode, as the cross-check expects of a reporting shell."""
    d = cc_daemon(daemon_factory)
    sh = start_shell(d, name, work)
    steps = script(name, work)
    try:
        for keys, prompt, _ in steps:
            type_keys(sh, keys)
            sh.wait_prompt(prompt)
        type_keys(sh, "read x\r")
        sh.expect("read x")
        time.sleep(0.3)
        type_keys(sh, "secret words\r")
        sh.wait_prompt()
        time.sleep(2 * WINDOW_MS / 1000 + 0.3)  # every decision taken
        assert sh.exit() == 0
    finally:
        sh.kill()
    expected = [t for _, _, t in steps] + ["read x", "exit"]
    cmds = wait_commands(d, sh.pid, len(expected))
    recs = d.records()
    assert [c["text"] for c in cmds] == expected
    assert not [c for c in cmds if c.get("reconstructed")]
    assert not [r for r in recs if r["type"] == "bypass"]
    noncmd = [r for r in recs if r["type"] == "noncmd_input" and r["pid"] == sh.pid]
    if name.startswith("ksh"):  # for, do, cat <<EOF, the here-document's line, the read input
        assert [r["length"] for r in noncmd] == [12, 22, 23, 8, 12]
    else:
        assert noncmd == []
