# SPDX-License-Identifier: Apache-2.0
"""The enforcing mode (`enforce:`, BPF LSM) end to end: shauditd with `bpf: on` and real dash
and bash on real pseudo-terminals with the interposer preloaded (implicit sessions).

With enforcement on, every way around the interposer in the bypass corpus (a static binary, a
static busybox, `env -u LD_PRELOAD`, execve with an empty environment, a bash started without
the interposer, the dynamic loader run as a program, fexecve of a memfd) is refused by the
kernel with EPERM before the program runs, and its `bypass` record says `action: "denied"`
with the kernel's reason; nothing ran, so no exec record. With it off the same lines run and
are only recorded (no `action`). A clean session (the clean corpus, the seed lines and a
make-style build with cc) has no denial at all, and processes outside audited sessions are
never affected. With protection (on with enforcement), a root shell can neither write the log,
read the key files, remove them nor ptrace shauditd, and each attempt is a `tamper` record.
A kernel without BPF LSM, or `bpf: off`, is a start-up error naming why; so is a kernel that
lists `bpf` but refuses to load BPF LSM programs (this project's CI kernel does: the tests that
need the programs skip there, saying so).

Processes are ended by PID; nothing on the host is changed."""
import os
import re
import shutil
import signal
import subprocess
import textwrap
import time
from pathlib import Path

import pytest

from conftest import built, stats
from ptyshell import PtyShell
from test_capture import PRELOAD, SHELLS, shell_env
from test_crosscheck import (CLEAN_SCRIPT, WINDOW_MS, brief, bypasses, clean_corpus,
                             compile_programs, session_of, typed_command)

BUSYBOX = "/bin/busybox"
LOADER = "/lib64/ld-linux-x86-64.so.2"
LSM_FILE = Path("/sys/kernel/security/lsm")


def lsm_list():
    """The active LSMs, or why they cannot be read."""
    try:
        return LSM_FILE.read_text().strip().split(","), ""
    except OSError as e:
        return [], f"cannot read {LSM_FILE} ({e.strerror}: is securityfs mounted?)"


def bpf_lsm_active():
    return "bpf" in lsm_list()[0]


def no_lsm_reason():
    lsms, why = lsm_list()
    return why or (f"the kernel has no active BPF LSM ('bpf' not in {LSM_FILE}: {','.join(lsms)}; "
                   "boot with lsm=...,bpf)")


pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (eBPF, BPF LSM)"),
    pytest.mark.skipif(not built(PRELOAD).exists(), reason="build the interposer first"),
]

needs_lsm = pytest.mark.skipif(not bpf_lsm_active(), reason=no_lsm_reason())


REFUSED = ("shauditd: enforce: the enforcing mode cannot start: the kernel refused to load the BPF "
           "LSM program (lsm/bprm_check_security): ")


def needs_lsm_for(mode):
    """The deny mode needs an active BPF LSM (skipped, saying why, without it); the kill mode
    does not."""
    if mode == "deny" and not bpf_lsm_active():
        pytest.skip(no_lsm_reason())


def enforce_daemon(daemon_factory, enforce=True, mode="deny", **extra):
    """shauditd with eBPF and the enforcing mode on (or off), in `mode` (deny: `enforce: {mode:
    deny}`, what `enforce: true` means, the BPF LSM; kill: `enforce: {mode: kill}`). A kernel that lists `bpf` among its LSMs but
    refuses to load BPF LSM programs (some hardened or sandboxed kernels refuse every BPF
    trampoline program: lsm, fentry, fexit) makes shauditd exit 1 in the deny mode, saying so:
    the test is skipped with that line."""
    needs_lsm_for(mode if enforce else "kill")
    # Pins only where a test asks (a private BPF file system): /tmp is none, so a shauditd the
    # fixture kills leaves nothing attached on the host.
    extra.setdefault("enforce_pin_root", "/tmp")
    keys = {k[len("enforce_"):]: v for k, v in extra.items() if k.startswith("enforce_")}
    extra = {k: v for k, v in extra.items() if not k.startswith("enforce_")}
    if enforce and (mode == "kill" or keys):
        value = "{" + ", ".join(f"{k}: {v}" for k, v in {"mode": mode, **keys}.items()) + "}"
    else:
        value = str(enforce).lower()
    d = daemon_factory(bpf="on", crosscheck_window_ms=WINDOW_MS, enforce=value, **extra)
    d.start(wait=False)
    try:
        d.wait_ready(timeout=20)
    except AssertionError:
        if enforce and d.proc.poll() == 1 and REFUSED in d.stderr():
            pytest.skip(f"this kernel loads no BPF LSM program: {d.stderr().strip().splitlines()[-1]}")
        raise
    return d


@pytest.fixture(scope="module")
def programs(tmp_path_factory):
    """A static program, and one that runs /bin/true from a memfd through fexecve."""
    if not shutil.which("cc"):
        pytest.skip("no C compiler (apt-get install gcc)")
    d = tmp_path_factory.mktemp("eprogs")
    (d / "static_hello.c").write_text(textwrap.dedent("""\
        #include <stdio.h>
        int main(void) { printf("STATIC-RAN\\n"); return 0; }
        """))
    (d / "memfd_exec.c").write_text(textwrap.dedent("""\
        #define _GNU_SOURCE
        #include <errno.h>
        #include <fcntl.h>
        #include <stdio.h>
        #include <string.h>
        #include <sys/mman.h>
        #include <unistd.h>
        extern char** environ;
        int main(void) {
          /* At fd 100 whatever the caller left open: the kernel runs /dev/fd/100. */
          int fd = dup3(memfd_create("payload", MFD_CLOEXEC), 100, O_CLOEXEC);
          int in = open("/bin/true", O_RDONLY);
          char buf[65536];
          ssize_t n;
          while ((n = read(in, buf, sizeof buf)) > 0) write(fd, buf, (size_t)n);
          char* argv[] = {"payload", "from-memfd", NULL};
          printf("MEMFD %d\\n", (int)getpid());
          fflush(stdout);
          fexecve(fd, argv, environ);
          printf("fexecve: %s\\n", strerror(errno));
          return 126;
        }
        """))
    return compile_programs(d, (("static_hello", ["-static"]), ("memfd_exec", [])))


def denied(recs, argv, action="denied"):
    return [b for b in bypasses(recs, "unhooked_process") if b.get("action") == action and b["argv"] == argv]


ACTION = {"deny": "denied", "kill": "killed"}
EVIDENCE = {"deny": "refused (EPERM)", "kill": "killed (SIGKILL, before the new image ran)"}


# ---------------------------------------------------------------------------------------------
# 1. Start-up: no BPF LSM, or eBPF off, is a clear error


def test_enforce_without_bpf_lsm_is_a_startup_error(daemon_factory, tmp_path):
    fake = tmp_path / "lsm"
    fake.write_text("lockdown,capability,landlock,yama,apparmor")
    d = daemon_factory(bpf="on", enforce=f"{{mode: deny, lsm_file: {fake}}}")
    d.start(wait=False)
    assert d.proc.wait(timeout=20) == 1
    assert d.stderr().strip().splitlines()[-1] == (
        f"shauditd: enforce: the kernel has no BPF LSM: 'bpf' is not among the active security "
        f"modules in {fake} (lockdown,capability,landlock,yama,apparmor); boot with "
        f"CONFIG_BPF_LSM=y and lsm=...,bpf, or use enforce: {{mode: kill}}, which needs no BPF LSM")
    assert not d.socket.exists()


def test_the_kill_mode_needs_no_bpf_lsm(daemon_factory, tmp_path):
    """`enforce: {mode: kill}` starts where the kernel lists no BPF LSM (protect, which needs
    it, is off unless asked for); with protect: true it is the same start-up error."""
    fake = tmp_path / "lsm"
    fake.write_text("lockdown,capability,yama")
    d = daemon_factory(bpf="on", enforce=f"{{mode: kill, lsm_file: {fake}}}")
    d.start(wait=False)
    d.wait_ready(timeout=20)
    assert d.stop() == 0
    start = [r for r in d.records() if r["type"] == "start"][-1]
    assert start["enforce"] is True and start["enforce_mode"] == "kill" and start["protect"] is False, start
    p = daemon_factory(name="p", bpf="on", enforce=f"{{mode: kill, protect: true, lsm_file: {fake}}}")
    p.start(wait=False)
    assert p.proc.wait(timeout=20) == 1
    assert p.stderr().strip().splitlines()[-1] == (
        f"shauditd: enforce: the kernel has no BPF LSM: 'bpf' is not among the active security "
        f"modules in {fake} (lockdown,capability,yama); boot with CONFIG_BPF_LSM=y and lsm=...,bpf "
        f"(enforce: {{mode: kill}} needs it only for protect: true)")


def test_enforce_with_bpf_off_is_a_startup_error(daemon_factory):
    d = daemon_factory(bpf="off", enforce="true")
    d.start(wait=False)
    assert d.proc.wait(timeout=20) == 1
    assert d.stderr().strip().splitlines()[-1] == (
        "shauditd: enforce: the enforcing mode needs the eBPF collector, but the configuration "
        "says bpf: off")


def test_enforce_with_an_unreadable_lsm_file_is_a_startup_error(daemon_factory, tmp_path):
    missing = tmp_path / "no-such-lsm"
    d = daemon_factory(bpf="on", enforce=f"{{lsm_file: {missing}}}")
    d.start(wait=False)
    assert d.proc.wait(timeout=20) == 1
    assert d.stderr().strip().splitlines()[-1] == (
        f"shauditd: enforce: cannot read the kernel's active security modules from {missing}: "
        f"No such file or directory (is securityfs mounted? mount -t securityfs securityfs "
        f"/sys/kernel/security)")


@needs_lsm
def test_a_kernel_that_refuses_bpf_lsm_programs_is_a_startup_error(daemon_factory):
    """`bpf` is among the kernel's LSMs, yet loading the LSM program fails: shauditd says so and
    exits 1 (never runs without the enforcement it was told to do)."""
    d = daemon_factory(bpf="on", enforce="true")
    d.start(wait=False)
    deadline = time.monotonic() + 20
    while d.proc.poll() is None and time.monotonic() < deadline:
        if d.socket.exists():
            d.stop()
            pytest.skip("this kernel loads BPF LSM programs: the denial tests below run instead")
        time.sleep(0.05)
    assert d.proc.wait(timeout=20) == 1
    last = d.stderr().strip().splitlines()[-1]
    assert last.startswith(REFUSED), last
    assert last.endswith(" (BPF LSM needs CONFIG_BPF_LSM=y, 'bpf' in lsm=, and a kernel that loads "
                         "BPF trampoline programs); enforce: {mode: kill} enforces without BPF LSM"), last
    assert not d.socket.exists()


def test_unknown_enforce_key_is_named(daemon_factory):
    d = daemon_factory(bpf="on", enforce="{mode: deny, pin: true}")
    d.start(wait=False)
    assert d.proc.wait(timeout=20) == 1
    assert ("enforce: unknown key 'pin' (known: mode, lsm_file, protect, fail, heartbeat_ms, "
            "break_glass, pin_root)") in d.stderr()


# ---------------------------------------------------------------------------------------------
# 2. The bypass corpus: denied with enforcement on, only recorded with it off

# (line typed, argv the kernel was asked to run, exe, reason)
def corpus(programs, notbash):
    static = str(programs / "static_hello")
    memfd = str(programs / "memfd_exec")
    empty_code = "import os; os.execve('/bin/true',['/bin/true','empty-env'],{})"
    return [
        (static, [static], static, "no_interpreter"),
        (f"{BUSYBOX} sh -c '/bin/true'", [BUSYBOX, "sh", "-c", "/bin/true"], BUSYBOX, "no_interpreter"),
        (f"{LOADER} /bin/true via-loader", [LOADER, "/bin/true", "via-loader"], LOADER, "no_interpreter"),
        ("env -u LD_PRELOAD /bin/sh -c '/bin/true; id'", ["/bin/sh", "-c", "/bin/true; id"], "/bin/sh",
         "no_preload"),
        (f'python3 -c "{empty_code}"', ["/bin/true", "empty-env"], "/bin/true", "no_preload"),
        (f"env -u LD_PRELOAD {notbash} --norc --noprofile -i", [str(notbash), "--norc", "--noprofile", "-i"],
         str(notbash), "no_preload"),
        ("env -u LD_PRELOAD bash --norc -i", ["bash", "--norc", "-i"], "/usr/bin/bash", "no_preload"),
        ("env LD_PRELOAD= /bin/true emptied", ["/bin/true", "emptied"], "/bin/true", "no_preload"),
        (f"env LD_PRELOAD={PRELOAD} LD_PRELOAD= /bin/true last-wins", ["/bin/true", "last-wins"], "/bin/true",
         "no_preload"),
        (memfd, ["payload", "from-memfd"], "/dev/fd/100", "unlinked_file"),
    ]


@pytest.mark.parametrize("mode", ["deny", "kill"])
@pytest.mark.parametrize("name", ["dash", "bash"])
def test_bypass_corpus_is_denied(daemon_factory, work, programs, name, mode):
    """deny: the exec fails with EPERM (the shell says "Operation not permitted", status 126);
    kill: the exec goes through and the process is killed before the new image runs (the shell
    sees its child killed by SIGKILL: "Killed", status 137)."""
    if not os.access(BUSYBOX, os.X_OK):
        pytest.skip("no static busybox (apt-get install busybox-static)")
    if not os.access(LOADER, os.X_OK):
        pytest.skip(f"no {LOADER}")
    d = enforce_daemon(daemon_factory, mode=mode)
    action = ACTION[mode]
    notbash = work / "notbash"
    shutil.copy2("/bin/bash", notbash)
    cases = corpus(programs, notbash)
    sh = PtyShell(SHELLS[name], env=shell_env(d), cwd=str(work))
    outs = []
    try:
        sh.wait_prompt()
        for line, *_ in cases:
            start = len(sh.out)
            sh.line(line)
            sh.line("echo status=$?")
            outs.append(sh.out[start:].decode(errors="replace"))
        sh.line("echo after $$")
        assert sh.exit() == 0
    finally:
        sh.kill()
    assert b"STATIC-RAN" not in sh.out and b"uid=0(" not in sh.out
    recs = d.wait_for(lambda rs: all(denied(rs, argv, action) for _, argv, _, _ in cases), timeout=20)
    sid = session_of(recs, sh.pid)
    for (line, argv, exe, reason), out in zip(cases, outs):
        bs = denied(recs, argv, action)
        assert len(bs) == 1, (line, brief(bypasses(recs)))
        b = bs[0]
        assert b["exe"] == exe and b["reason"] == reason and b["session"] == sid, b
        assert b["severity"] == "high" and b["uid"] == 0
        assert b["evidence"].startswith(
            f"enforcing mode: the kernel {EVIDENCE[mode]} pid {b['pid']}'s exec of {exe}: "), b["evidence"]
        assert b["command"] == typed_command(recs, sh.pid, line)
        # Nothing ran: no exec record of it, no other bypass of it.
        assert not [x for x in recs if x["type"] == "exec" and x["pid"] == b["pid"] and x["argv"] == argv]
        assert not [x for x in bypasses(recs) if x["argv"] == argv and x is not b], brief(bypasses(recs))
        if mode == "deny":
            assert "Operation not permitted" in out, (line, out)
        else:
            # What the terminal showed after the echoed line (bash's bracketed-paste switches
            # removed): the shell's report of a child killed by SIGKILL, and its status.
            shown = out.replace("\x1b[?2004l\r", "").replace("\x1b[?2004h", "").split("\r\n", 1)[1]
            if argv == ["payload", "from-memfd"]:
                assert re.fullmatch(r"MEMFD \d+\r\n", shown[:shown.index("Killed")]), (line, out)
                shown = shown[shown.index("Killed"):]
            assert shown == "Killed\r\nPROMPT> echo status=$?\r\nstatus=137\r\nPROMPT> ", (line, out)
    st = stats(d)
    assert st["bpf_dropped"] == 0
    assert d.stop() == 0
    v = d.verify()
    assert v.returncode == 0, v.stdout + v.stderr


def test_bypass_corpus_is_only_recorded_with_enforcement_off(daemon_factory, work, programs):
    if not os.access(BUSYBOX, os.X_OK):
        pytest.skip("no static busybox (apt-get install busybox-static)")
    d = enforce_daemon(daemon_factory, enforce=False)
    static = str(programs / "static_hello")
    sh = PtyShell(SHELLS["bash"], env=shell_env(d), cwd=str(work))
    try:
        sh.wait_prompt()
        sh.line(static)
        sh.line("env -u LD_PRELOAD /bin/sh -c 'id -u'")
        assert sh.exit() == 0
    finally:
        sh.kill()
    assert b"STATIC-RAN" in sh.out
    want = [[static], ["/bin/sh", "-c", "id -u"]]
    recs = d.wait_for(lambda rs: all([b for b in bypasses(rs, "unhooked_process") if b["argv"] == a] for a in want),
                      timeout=20)
    for a in want:
        bs = [b for b in bypasses(recs, "unhooked_process") if b["argv"] == a]
        assert len(bs) == 1 and "action" not in bs[0] and "reason" not in bs[0], bs
    assert d.stop() == 0


# ---------------------------------------------------------------------------------------------
# 3. Zero false denials: a clean session, and processes outside sessions

MAKEFILE = """\
all: hello
\t./hello > made.txt

hello: hello.o util.o
\tcc -o hello hello.o util.o

%.o: %.c
\tcc -O2 -c $< -o $@
"""


@pytest.mark.parametrize("mode", ["deny", "kill"])
@pytest.mark.parametrize("name", ["dash", "bash"])
def test_clean_session_has_no_denial(daemon_factory, work, name, mode):
    if not shutil.which("make") or not shutil.which("cc"):
        pytest.skip("no make or cc (apt-get install make gcc)")
    d = enforce_daemon(daemon_factory, mode=mode)
    (work / "script.sh").write_text(CLEAN_SCRIPT)
    (work / "script.sh").chmod(0o755)
    src = work / "proj"
    src.mkdir()
    (src / "Makefile").write_text(MAKEFILE)
    (src / "hello.c").write_text('#include <stdio.h>\nint util(void);\nint main(void) { printf("made %d\\n", util()); return 0; }\n')
    (src / "util.c").write_text("int util(void) { return 42; }\n")
    loop = ("i=0; while [ $i -lt 200 ]; do /bin/true $i; i=$((i+1)); done" if name == "dash"
            else "for i in $(seq 200); do /bin/true $i; done")
    # The clean corpus of the bypass tests, the rest of the seed lines, two preloads, a build.
    lines = clean_corpus(work, loop) + [
        f"cd {work}/hellofalco",
        f"cd {work}",
        "cat example.txt",
        f"env LD_PRELOAD=/lib/x86_64-linux-gnu/libm.so.6:{PRELOAD} /bin/true two-preloads",
        "make -C proj",
        "cat proj/made.txt",
    ]
    sh = PtyShell(SHELLS[name], env=shell_env(d), cwd=str(work))
    try:
        sh.wait_prompt()
        for line in lines:
            sh.line(line, timeout=60)
        time.sleep(2 * WINDOW_MS / 1000 + 0.3)
        assert sh.exit() == 0
    finally:
        sh.kill()
    assert (work / "example.txt").read_text() == "hello world\n"
    assert (work / "sorted.txt").read_text() == "a\n"
    assert (work / "sub.txt").read_text() == "substituted\n"
    assert (src / "made.txt").read_text() == "made 42\n"
    assert b"Operation not permitted" not in sh.out and b"Killed" not in sh.out
    assert d.stop() == 0
    recs = d.records()
    assert not bypasses(recs), brief(bypasses(recs))
    texts = [r["text"] for r in recs if r["type"] == "command" and r["pid"] == sh.pid]
    assert "make -C proj" in texts and loop in texts
    assert [r for r in recs if r["type"] == "exec" and r["argv"][:2] == ["cc", "-O2"]]
    start = [r for r in recs if r["type"] == "start"]
    assert start and start[-1]["enforce"] is True and start[-1]["enforce_mode"] == mode


@pytest.mark.parametrize("mode", ["deny", "kill"])
def test_processes_outside_sessions_are_not_affected(daemon_factory, programs, mode):
    d = enforce_daemon(daemon_factory, mode=mode)
    env = {"PATH": "/usr/bin:/bin"}
    static = str(programs / "static_hello")
    r = subprocess.run(["env", "-u", "LD_PRELOAD", static], capture_output=True, text=True, env=env)
    assert r.returncode == 0 and r.stdout == "STATIC-RAN\n"
    r = subprocess.run([LOADER, "/bin/echo", "outside"], capture_output=True, text=True, env=env)
    assert r.returncode == 0 and r.stdout == "outside\n"
    assert d.stop() == 0
    assert not bypasses(d.records())


# ---------------------------------------------------------------------------------------------
# 4. shaudit's own files and process, against a root shell (enforce with protect)

PTRACE_CODE = ("import ctypes, os, sys; l = ctypes.CDLL(None, use_errno=True); "
               "r = l.ptrace(16, int(sys.argv[1]), None, None); "  # PTRACE_ATTACH
               "print('PTRACE', r, os.strerror(ctypes.get_errno()))")


@needs_lsm
def test_protect_against_a_root_shell(daemon_factory):
    d = enforce_daemon(daemon_factory)
    key_state = Path(d.config["state_dir"]) / "key-state"
    key_state.write_text("secret state\n")  # appears after the start: protected once seen
    key_state.chmod(0o600)
    time.sleep(0.5)
    log = d.log
    before = log.read_bytes()

    def sh(cmd):
        return subprocess.run(["/bin/sh", "-c", cmd], capture_output=True, text=True)

    w = sh(f"echo x >> {log}")
    assert w.returncode == 2 and w.stderr == f"/bin/sh: 1: cannot create {log}: Operation not permitted\n", w
    for f in (key_state, d.key):
        r = sh(f"cat {f}")
        assert r.returncode == 1 and r.stderr == f"cat: {f}: Operation not permitted\n", r
    rm = sh(f"rm -f {log}")
    assert rm.returncode == 1 and "Operation not permitted" in rm.stderr, rm
    p = subprocess.run(["python3", "-c", PTRACE_CODE, str(d.proc.pid)], capture_output=True, text=True)
    assert p.stdout == "PTRACE -1 Operation not permitted\n", p
    assert log.read_bytes().startswith(before) and log.exists()
    want = [("log_write", str(log)), ("key_read", str(key_state)), ("key_read", str(d.key)),
            ("remove", str(log)), ("ptrace", None)]

    def found(rs):
        t = [r for r in rs if r["type"] == "tamper"]
        return all([x for x in t if x["what"] == what and x.get("file") == f] for what, f in want)
    recs = d.wait_for(found, timeout=10)
    for r in [r for r in recs if r["type"] == "tamper"]:
        assert r["action"] == "denied" and r["uid"] == 0, r
        if r["what"] == "ptrace":
            assert r["target_pid"] == d.proc.pid and r["exe"].startswith("/usr/bin/python3"), r
    # shauditd itself still writes and reads its files; a reader may read the log.
    assert d.stop() == 0
    v = d.verify()
    assert v.returncode == 0, v.stdout + v.stderr


# ---------------------------------------------------------------------------------------------
# 5. fail: closed: while shauditd does not keep up (here: SIGSTOPped, its eBPF programs still
#    attached), every exec in an audited session is refused (killed) but the break-glass ones

HEARTBEAT_MS = 300  # stale after 3 x 300 ms


def shown_after(sh, line):
    """Types line, then `echo status=$?`; returns what the terminal showed after the echoed
    line (bash's bracketed-paste switches removed)."""
    start = len(sh.out)
    sh.line(line)
    sh.line("echo status=$?")
    out = sh.out[start:].decode(errors="replace")
    return out.replace("\x1b[?2004l\r", "").replace("\x1b[?2004h", "").split("\r\n", 1)[1]


OK_SHOWN = "PROMPT> echo status=$?\r\nstatus=0\r\nPROMPT> "
REFUSED_SHOWN = {"kill": "Killed\r\nPROMPT> echo status=$?\r\nstatus=137\r\nPROMPT> "}


@pytest.mark.parametrize("mode", ["deny", "kill"])
def test_fail_closed_while_shauditd_is_stopped(daemon_factory, work, mode):
    glass = work / "glass-true"  # a break-glass program: a copy of /bin/true, listed
    shutil.copy2("/bin/true", glass)
    d = enforce_daemon(daemon_factory, mode=mode, enforce_fail="closed",
                       enforce_heartbeat_ms=HEARTBEAT_MS, enforce_break_glass=f"[{glass}]")
    sh = PtyShell(SHELLS["bash"], env=shell_env(d), cwd=str(work))
    stopped = False
    try:
        sh.wait_prompt()
        assert shown_after(sh, "/bin/true before") == OK_SHOWN
        os.kill(d.proc.pid, signal.SIGSTOP)
        stopped = True
        time.sleep(3 * HEARTBEAT_MS / 1000 + 0.5)
        refused = shown_after(sh, "/bin/true stopped")
        glassed = shown_after(sh, f"{glass} glass")
        # Outside audited sessions nothing changes.
        outside = subprocess.run(["/bin/echo", "outside"], capture_output=True, text=True)
        os.kill(d.proc.pid, signal.SIGCONT)
        stopped = False
        recs = d.wait_for(lambda rs: [r for r in rs if r["type"] == "break_glass"], timeout=20)
        after = shown_after(sh, "/bin/true after")
        assert sh.exit() == 0
    finally:
        if stopped:
            os.kill(d.proc.pid, signal.SIGCONT)
        sh.kill()
    if mode == "deny":
        assert refused.startswith("bash: /bin/true: Operation not permitted\r\n"), refused
    else:
        assert refused == REFUSED_SHOWN["kill"], refused
    assert glassed == OK_SHOWN, glassed
    assert after == OK_SHOWN, after
    assert outside.returncode == 0 and outside.stdout == "outside\n"
    recs = d.wait_for(lambda rs: denied(rs, ["/bin/true", "stopped"], ACTION[mode]), timeout=20)
    sid = session_of(recs, sh.pid)
    [g] = [r for r in recs if r["type"] == "break_glass"]
    age = g.pop("heartbeat_age_ms")
    assert 3 * HEARTBEAT_MS < age < 60000, age
    for k in ("seq", "time", "prev", "hash", "chain"):
        g.pop(k, None)
    assert g == {"type": "break_glass", "pid": g["pid"], "ppid": sh.pid, "uid": 0, "exe": str(glass),
                 "argv": [str(glass), "glass"], "session": sid,
                 "command": typed_command(recs, sh.pid, f"{glass} glass")}, g
    # The break-glass program ran: its exec is on record as any other.
    assert [r for r in recs if r["type"] == "exec" and r["pid"] == g["pid"] and r["argv"] == [str(glass), "glass"]]
    [b] = denied(recs, ["/bin/true", "stopped"], ACTION[mode])
    assert b["reason"] == "fail_closed" and b["exe"] == "/bin/true" and b["session"] == sid, b
    assert re.fullmatch(
        rf"enforcing mode: the kernel {re.escape(EVIDENCE[mode])} pid {b['pid']}'s exec of /bin/true: "
        r"shauditd was not keeping up \(fail: closed\) and the file is not on the break-glass list "
        r"\(no heartbeat for \d+ ms\)", b["evidence"]), b["evidence"]
    # Before and after, nothing was refused.
    assert not [x for x in bypasses(recs) if x["argv"] in (["/bin/true", "before"], ["/bin/true", "after"])]
    start = [r for r in recs if r["type"] == "start"][-1]
    assert start["fail"] == "closed"
    assert d.stop() == 0
    v = d.verify()
    assert v.returncode == 0, v.stdout + v.stderr


def test_fail_open_changes_nothing_while_shauditd_is_stopped(daemon_factory, work):
    d = enforce_daemon(daemon_factory, mode="kill", enforce_heartbeat_ms=HEARTBEAT_MS)
    sh = PtyShell(SHELLS["bash"], env=shell_env(d), cwd=str(work))
    stopped = False
    try:
        sh.wait_prompt()
        os.kill(d.proc.pid, signal.SIGSTOP)
        stopped = True
        time.sleep(3 * HEARTBEAT_MS / 1000 + 0.5)
        shown = shown_after(sh, "/bin/true stopped")
        os.kill(d.proc.pid, signal.SIGCONT)
        stopped = False
        assert sh.exit() == 0
    finally:
        if stopped:
            os.kill(d.proc.pid, signal.SIGCONT)
        sh.kill()
    assert shown == OK_SHOWN, shown
    assert d.stop() == 0
    recs = d.records()
    assert not bypasses(recs) and not [r for r in recs if r["type"] == "break_glass"]
    assert [r for r in recs if r["type"] == "start"][-1]["fail"] == "open"


def test_a_missing_break_glass_program_is_a_startup_error(daemon_factory, tmp_path):
    missing = tmp_path / "no-such-program"
    d = daemon_factory(bpf="on", enforce=f"{{mode: kill, fail: closed, break_glass: [{missing}]}}")
    d.start(wait=False)
    assert d.proc.wait(timeout=20) == 1
    assert d.stderr().strip().splitlines()[-1] == (
        f"shauditd: enforce: break_glass: {missing}: No such file or directory")


@pytest.fixture
def bpffs(tmp_path):
    """A private BPF file system for this test's pins (the host's /sys/fs/bpf is left alone);
    unmounted at the end, which also drops every pin left in it."""
    root = tmp_path / "bpffs"
    root.mkdir()
    r = subprocess.run(["mount", "-t", "bpf", "bpf", str(root)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a BPF file system: {r.stderr.strip()}")
    try:
        yield root
    finally:
        try:
            for d in root.glob("shaudit-*"):
                for p in d.iterdir():
                    p.unlink()
                d.rmdir()
        finally:
            subprocess.run(["umount", str(root)], check=True)


def test_fail_closed_outlives_a_killed_shauditd(daemon_factory, work, bpffs):
    """With its links and state maps pinned, a killed shauditd's programs keep enforcing: an
    exec in the session is killed, a break-glass program runs; the next start replaces the
    links, reuses the maps (the session stays followed) and records what happened meanwhile."""
    glass = work / "glass-true"
    shutil.copy2("/bin/true", glass)
    d = enforce_daemon(daemon_factory, mode="kill", enforce_fail="closed", enforce_heartbeat_ms=HEARTBEAT_MS,
                       enforce_break_glass=f"[{glass}]", enforce_pin_root=str(bpffs))
    start = d.wait_for(lambda rs: [r for r in rs if r["type"] == "start"])[-1]
    pin_dir = Path(start["pin_dir"])
    assert pin_dir.parent == bpffs and pin_dir.name.startswith("shaudit-"), start
    names = {p.name for p in pin_dir.iterdir()}
    assert {"link_enforce_kill_exec", "link_handle_fork", "link_handle_exit", "map_tracked", "map_events"} <= names
    sh = PtyShell(SHELLS["bash"], env=shell_env(d), cwd=str(work))
    try:
        sh.wait_prompt()
        assert shown_after(sh, "/bin/true before") == OK_SHOWN
        assert d.stop(sig=signal.SIGKILL) == -signal.SIGKILL
        time.sleep(3 * HEARTBEAT_MS / 1000 + 0.5)
        refused = shown_after(sh, "/bin/true down")
        glassed = shown_after(sh, f"{glass} glass")
        outside = subprocess.run(["/bin/echo", "outside"], capture_output=True, text=True)
        d.start(wait=False)
        d.wait_ready(timeout=20)
        recs = d.wait_for(lambda rs: [r for r in rs if r["type"] == "break_glass"], timeout=20)
        after = shown_after(sh, "/bin/true after")
        assert sh.exit() == 0
    finally:
        sh.kill()
    assert refused == REFUSED_SHOWN["kill"], refused
    assert glassed == OK_SHOWN and after == OK_SHOWN, (glassed, after)
    assert outside.returncode == 0 and outside.stdout == "outside\n"
    recs = d.wait_for(lambda rs: denied(rs, ["/bin/true", "down"], "killed"), timeout=20)
    [g] = [r for r in recs if r["type"] == "break_glass"]
    assert g["exe"] == str(glass) and g["argv"] == [str(glass), "glass"] and g["ppid"] == sh.pid, g
    assert g["heartbeat_age_ms"] > 3 * HEARTBEAT_MS, g
    [b] = denied(recs, ["/bin/true", "down"], "killed")
    assert b["reason"] == "fail_closed", b
    starts = [r for r in recs if r["type"] == "start"]
    assert len(starts) == 2 and starts[1]["previous_run"] == "unclean" and starts[1]["pin_dir"] == str(pin_dir)
    assert d.stop() == 0
    # fail: closed: a clean stop leaves enforcement on (the pins stay).
    assert (pin_dir / "link_enforce_kill_exec").exists()


def test_a_clean_stop_removes_the_pins_with_fail_open(daemon_factory, bpffs):
    d = enforce_daemon(daemon_factory, mode="kill", enforce_pin_root=str(bpffs))
    start = d.wait_for(lambda rs: [r for r in rs if r["type"] == "start"])[-1]
    pin_dir = Path(start["pin_dir"])
    assert (pin_dir / "link_enforce_kill_exec").exists() and (pin_dir / "map_tracked").exists()
    assert d.stop() == 0
    assert not pin_dir.exists()
