# SPDX-License-Identifier: Apache-2.0
"""Installing shaudit the way operators do, into scratch Debian 12 roots (debootstrap'd once,
cached as a tarball), never into the host's own /etc:

- installer/install.sh into a root: files, the PAM line through pam-auth-update, a second run
  that changes nothing, --uninstall and --purge that give the root back byte for byte; --pam
  SERVICES and --host-wide, with an operator's edit kept through the uninstall; the loader only
  warns when the host-wide library is missing.
- The Debian package from `cpack -G DEB`: lintian, `dpkg -i` into the root, the installed
  shauditd recording a `su -` session through the PAM line, `dpkg -r` and `dpkg --purge`
  leaving /etc as before, and an upgrade keeping the key, the log chain and an edited config.
- The systemd unit: `systemd-analyze verify` and `security`; shauditd run with exactly the
  unit's capability bounding set and NoNewPrivileges; the package booted under systemd in
  systemd-nspawn: the service is active and an ssh login inside is recorded.
- pam_shaudit's noninteractive=skip (the profile's setting): cron-like sessions are left alone.
"""
import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

import debroot
from conftest import BUILD, SHAUDITD, public_daemon, read_records
from ptyshell import PS1, PtyShell

SRC = Path(__file__).resolve().parents[2]
INSTALL = SRC / "installer" / "install.sh"
MULTIARCH = "/usr/lib/x86_64-linux-gnu"
PRELOAD = f"{MULTIARCH}/libshaudit_preload.so"
PAM_LINE = re.compile(rf"^session\s+optional\s+pam_shaudit\.so preload={re.escape(PRELOAD)} noninteractive=skip$", re.M)


def _missing(*tools):
    return [t for t in tools if not shutil.which(t)]


pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (chroot, mount namespaces, dpkg into a root)"),
    pytest.mark.skipif(bool(_missing("debootstrap", "unshare", "nsenter", "chroot", "dpkg-deb", "cpack")),
                       reason="missing tools: " + " ".join(_missing("debootstrap", "unshare", "nsenter", "chroot",
                                                                    "dpkg-deb", "cpack"))),
]


@pytest.fixture(scope="session")
def base_tar():
    return debroot.base_tarball()


@pytest.fixture
def root(tmp_path, base_tar):
    r = debroot.extract(base_tar, tmp_path / "root")
    yield r
    debroot.kill_pids(debroot.pids_in_root(r))
    subprocess.run(["rm", "-rf", "--one-file-system", str(r)], check=False)


@pytest.fixture
def chroot(root):
    c = debroot.Chroot(root)
    yield c
    c.close()


def build_deb(out: Path, version=None):
    out.mkdir(parents=True, exist_ok=True)
    cmd = ["cpack", "-G", "DEB", "--config", str(BUILD / "CPackConfig.cmake"), "-B", str(out)]
    if version:
        cmd += ["-D", f"CPACK_PACKAGE_VERSION={version}"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    debs = sorted(out.glob("shaudit_*_amd64.deb"))
    assert len(debs) == 1, (debs, r.stdout)
    return debs[0]


@pytest.fixture(scope="session")
def deb(tmp_path_factory):
    d = build_deb(tmp_path_factory.mktemp("deb"))
    assert d.name == "shaudit_0.1.0_amd64.deb"
    return d


def install_sh(*args, input=None):
    return subprocess.run(["bash", str(INSTALL), *map(str, args)], capture_output=True, text=True,
                          timeout=900, input=input, stdin=None if input is not None else subprocess.DEVNULL)


def ok(r):
    assert r.returncode == 0, f"rc={r.returncode}\n{r.stdout}\n{r.stderr}"
    return r


def wait_file(path: Path, timeout=30):
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} did not appear"
        time.sleep(0.05)


def wait_records(log: Path, pred, timeout=20):
    deadline = time.monotonic() + timeout
    while True:
        recs = debroot.read_records(log)
        if pred(recs):
            return recs
        assert time.monotonic() < deadline, "\n".join(json.dumps(r) for r in recs)[-30:]
        time.sleep(0.1)


# ---------------------------------------------------------------------------------------------
# install.sh


def test_install_sh_round_trip(root, chroot):
    before = debroot.snapshot(root)
    r = ok(install_sh("--root", root, "--build", BUILD))
    assert "created the signing key /etc/shaudit/signing.key" in r.stdout
    assert "PAM: pam_shaudit.so in common-session and common-session-noninteractive" in r.stdout
    for f, mode in [("usr/sbin/shauditd", 0o755), ("usr/bin/shaudit", 0o755),
                    (f"{MULTIARCH[1:]}/security/pam_shaudit.so", 0o644), (PRELOAD[1:], 0o644),
                    ("etc/shaudit/shauditd.yaml", 0o600), ("etc/shaudit/rules.d/00-default.yaml", 0o644),
                    ("etc/shaudit/signing.key", 0o600), ("lib/systemd/system/shauditd.service", 0o644),
                    ("usr/share/pam-configs/shaudit", 0o644), ("etc/shaudit/oci-runtime.yaml", 0o644)]:
        assert (root / f).is_file(), f
        assert (root / f).stat().st_mode & 0o7777 == mode, f
    # The runtime wrapper's settings, for the prefix, naming the musl interposer when it was built.
    oci = (root / "etc/shaudit/oci-runtime.yaml").read_text()
    assert 'BinaryName = "/usr/sbin/shaudit-oci-runtime"' in oci and f"#preload: {PRELOAD}\n" in oci
    musl = f"{MULTIARCH}/libshaudit_preload_musl.so"
    assert (f"\npreload_musl: {musl}\n" in oci) == (root / musl.lstrip("/")).exists(), oci
    for d in ("var/log/shaudit", "var/lib/shaudit"):
        assert (root / d).stat().st_mode & 0o7777 == 0o700, d
    assert os.readlink(root / "etc/systemd/system/multi-user.target.wants/shauditd.service") == \
        "/lib/systemd/system/shauditd.service"
    for f in ("common-session", "common-session-noninteractive"):
        assert len(PAM_LINE.findall((root / "etc/pam.d" / f).read_text())) == 1, f
    # The installed daemon takes the installed configuration as it is.
    c = chroot.run("/usr/sbin/shauditd", "--check-config", "--config", "/etc/shaudit/shauditd.yaml")
    assert c.returncode == 0 and c.stdout == "shauditd: configuration OK\n", c.stdout + c.stderr
    c = chroot.run("/usr/bin/shaudit", "rules", "check", "/etc/shaudit/rules.d/00-default.yaml")
    assert c.returncode == 0 and c.stdout.startswith("OK: "), c.stdout + c.stderr

    # A second run changes nothing at all (contents, modes, times).
    once = debroot.snapshot(root)
    ok(install_sh("--root", root, "--build", BUILD))
    assert debroot.differences(once, debroot.snapshot(root), mtimes=True) == {}

    # --uninstall: everything back byte for byte, but the key and what remembers it.
    r = ok(install_sh("--root", root, "--uninstall"))
    assert "kept the signing key and the logs" in r.stdout
    diff = debroot.differences(before, debroot.snapshot(root))
    assert sorted(diff) == ["/etc/shaudit", "/etc/shaudit/signing.key", "/etc/shaudit/signing.key.pub",
                            "/var/lib/shaudit", "/var/lib/shaudit/install", "/var/lib/shaudit/install/manifest"]
    assert all(b is None for b, _ in diff.values())

    # --purge asks first; without a yes it does nothing.
    r = install_sh("--root", root, "--purge", input="n\n")
    assert r.returncode == 1 and "not purged (answer y, or pass --yes)" in r.stderr
    assert (root / "etc/shaudit/signing.key").exists()
    ok(install_sh("--root", root, "--purge", "--yes"))
    assert debroot.differences(before, debroot.snapshot(root)) == {}


def test_install_sh_pam_services_host_wide_and_an_operators_edit(root, chroot):
    before = debroot.snapshot(root)
    su_before = (root / "etc/pam.d/su").read_bytes()
    login_before = (root / "etc/pam.d/login").read_bytes()
    r = ok(install_sh("--root", root, "--build", BUILD, "--pam", "su,login", "--host-wide"))
    assert "PAM: added pam_shaudit.so to /etc/pam.d/su" in r.stdout
    su = (root / "etc/pam.d/su").read_text().splitlines()
    line = f"session optional pam_shaudit.so preload={PRELOAD} noninteractive=skip"
    # Right before the service's common-session, so the session is registered first.
    i = su.index(line)
    assert su[i + 1].startswith("@include common-session")
    assert "/etc/pam.d/common-session" not in debroot.differences(before, debroot.snapshot(root))
    assert not (root / "usr/share/pam-configs/shaudit").exists()  # no profile for pam-auth-update to enable later
    assert (root / "etc/ld.so.preload").read_text() == PRELOAD + "\n"

    # Host-wide: every dynamically linked program in the root loads the interposer ...
    c = chroot.run("/bin/cat", "/proc/self/maps")
    assert PRELOAD in c.stdout, c.stderr
    # ... and if the library ever goes missing, the loader only warns: programs still run.
    lib = root / PRELOAD.lstrip("/")
    saved = lib.read_bytes()
    lib.unlink()
    c = chroot.run("/bin/echo", "still runs")
    assert c.returncode == 0 and c.stdout == "still runs\n"
    warning = (f"ERROR: ld.so: object '{PRELOAD}' from /etc/ld.so.preload cannot be preloaded "
               "(cannot open shared object file): ignored.")
    assert c.stderr.splitlines() == [warning, warning]  # once for env, once for the echo it runs
    lib.write_bytes(saved)
    lib.chmod(0o644)

    # The operator edits a file after the install: uninstall keeps the edit, takes our line out.
    with open(root / "etc/pam.d/login", "a") as f:
        f.write("# local change\n")
    r = ok(install_sh("--root", root, "--uninstall"))
    assert "/etc/pam.d/login changed since the install: removed only the shaudit line" in r.stdout
    assert (root / "etc/pam.d/su").read_bytes() == su_before
    assert (root / "etc/pam.d/login").read_bytes() == login_before + b"# local change\n"
    assert not (root / "etc/ld.so.preload").exists()
    ok(install_sh("--root", root, "--purge", "--yes"))
    diff = debroot.differences(before, debroot.snapshot(root))
    assert list(diff) == ["/etc/pam.d/login"]


def test_install_sh_refuses_what_it_cannot_do(tmp_path):
    r = install_sh("--prefix", "usr")
    assert r.returncode == 1 and r.stderr == "install.sh: --prefix must be an absolute path: usr\n"
    r = install_sh("--root", tmp_path / "nope")
    assert r.returncode == 1 and r.stderr == f"install.sh: --root: no such directory: {tmp_path / 'nope'}\n"
    r = install_sh("--uninstall", "--root", tmp_path)
    assert r.returncode == 1
    assert r.stderr == f"install.sh: nothing to uninstall: no {tmp_path}/var/lib/shaudit/install/manifest\n"
    r = install_sh("--bogus")
    assert r.returncode == 2 and r.stderr.startswith("install.sh: unknown argument '--bogus'\n")


# ---------------------------------------------------------------------------------------------
# The Debian package


def lintian_kept_warnings():
    """The lintian warnings the README lists as kept, with a reason each."""
    text = (SRC / "README.md").read_text()
    section = text.split("<!-- lintian-warnings-kept -->")[1].split("<!-- /lintian-warnings-kept -->")[0]
    return set(re.findall(r"^\| `([a-z0-9-]+)` \|", section, re.M))


def test_lintian_has_no_errors_and_only_the_warnings_the_readme_explains(deb):
    if not shutil.which("lintian"):
        pytest.fail("lintian is not installed (installer/deps.sh --test installs it)")
    r = subprocess.run(["lintian", "--tag-display-limit", "0", str(deb)], capture_output=True, text=True,
                       timeout=600)
    tags = re.findall(r"^([EWIXPO]): shaudit[^:]*: (\S+)", r.stdout, re.M)
    errors = [t for k, t in tags if k == "E"]
    assert errors == [], r.stdout
    warnings = {t for k, t in tags if k == "W"}
    assert warnings <= lintian_kept_warnings(), r.stdout


def test_deb_install_records_a_su_session_then_remove_and_purge(root, chroot, deb):
    ok(chroot.run("useradd", "-m", "-s", "/bin/bash", "audtest"))
    before = debroot.snapshot(root)
    shutil.copy(deb, root / "tmp" / deb.name)
    r = ok(chroot.run("dpkg", "-i", f"/tmp/{deb.name}"))
    assert "shaudit: created the signing key /etc/shaudit/signing.key" in r.stdout
    listed = set(ok(chroot.run("dpkg", "-L", "shaudit")).stdout.split())
    for f in ("/usr/sbin/shauditd", "/usr/bin/shaudit", f"{MULTIARCH}/security/pam_shaudit.so", PRELOAD,
              f"{MULTIARCH}/libshaudit.so.1", "/etc/shaudit/shauditd.yaml", "/etc/shaudit/rules.d/00-default.yaml",
              "/lib/systemd/system/shauditd.service", "/usr/share/pam-configs/shaudit",
              "/usr/share/doc/shaudit/copyright", "/usr/share/doc/shaudit/changelog.gz",
              "/etc/shaudit/oci-runtime.yaml"):
        assert f in listed and (root / f.lstrip("/")).exists(), f
    conffiles = ok(chroot.run("dpkg-query", "-W", "-f=${Conffiles}", "shaudit")).stdout
    assert all(f in conffiles for f in ("/etc/shaudit/shauditd.yaml", "/etc/shaudit/rules.d/00-default.yaml",
                                        "/etc/shaudit/oci-runtime.yaml")), conffiles
    assert (root / "etc/shaudit/signing.key").stat().st_mode & 0o777 == 0o600
    assert (root / "etc/shaudit/shauditd.yaml").stat().st_mode & 0o777 == 0o600
    for f in ("common-session", "common-session-noninteractive"):
        assert len(PAM_LINE.findall((root / "etc/pam.d" / f).read_text())) == 1, f

    # The packaged daemon on the packaged configuration (no systemd in a chroot: by hand, with
    # the runtime directory the unit would make).
    (root / "run/shaudit").mkdir(mode=0o755, exist_ok=True)
    err = open(root / "tmp/shauditd.stderr", "wb")
    d = chroot.popen("/usr/sbin/shauditd", "--config", "/etc/shaudit/shauditd.yaml",
                     stdout=subprocess.DEVNULL, stderr=err)
    log = root / "var/log/shaudit/audit.jsonl"
    try:
        wait_file(root / "run/shaudit/shaudit.sock")
        sh = PtyShell(chroot.argv(["su", "-", "audtest"], env={"TERM": "dumb"}))
        assert sh.session([f"PS1='{PS1}'", 'echo "hello world" > example.txt', "cat example.txt"],
                          first_prompt="$ ") == 0
        recs = wait_records(log, lambda rs: any(r["type"] == "session_end" for r in rs))
        start, = [r for r in recs if r["type"] == "session_start" and r.get("user") == "audtest"]
        assert start["service"] == "su-l" and start["tty"].startswith("/dev/pts/")
        texts = [r["text"] for r in recs if r["type"] == "command" and r["session"] == start["session"]]
        assert texts == [f"PS1='{PS1}'", 'echo "hello world" > example.txt', "cat example.txt", "exit"]
        s = ok(chroot.run("shaudit", "sessions", "/var/log/shaudit/audit.jsonl")).stdout
        row, = [l for l in s.splitlines() if l.startswith(start["session"])]
        assert re.search(r"\baudtest\s+su-l\s+/dev/pts/\d+\s", row), s
    finally:
        d.terminate()
        assert d.wait(timeout=30) == 0
        err.close()
    v = ok(chroot.run("shaudit", "verify", "/var/log/shaudit/audit.jsonl", "--pubkey", "/etc/shaudit/signing.key.pub"))
    assert "OK" in v.stdout

    # dpkg -r: the PAM lines go, byte for byte; config, key and logs stay (and the unit is
    # masked, as Debian does for removed services).
    ok(chroot.run("dpkg", "-r", "shaudit"))
    etc = {k: v for k, v in debroot.differences(before, debroot.snapshot(root)).items() if k.startswith("/etc/")}
    assert sorted(etc) == ["/etc/shaudit", "/etc/shaudit/oci-runtime.yaml", "/etc/shaudit/rules.d",
                           "/etc/shaudit/rules.d/00-default.yaml", "/etc/shaudit/shauditd.yaml", "/etc/shaudit/signing.key", "/etc/shaudit/signing.key.pub",
                           "/etc/systemd/system/multi-user.target.wants/shauditd.service",
                           "/etc/systemd/system/shauditd.service"]
    assert etc["/etc/systemd/system/shauditd.service"][1] == ("link", "/dev/null")
    assert log.exists()
    # dpkg --purge: /etc exactly as before; logs and state gone.
    ok(chroot.run("dpkg", "--purge", "shaudit"))
    after = debroot.snapshot(root)
    assert {k: v for k, v in debroot.differences(before, after).items() if k.startswith("/etc/")} == {}
    assert not (root / "var/log/shaudit").exists() and not (root / "var/lib/shaudit").exists()


def test_deb_upgrade_keeps_key_log_chain_and_edited_config(root, chroot, deb, tmp_path):
    newer = build_deb(tmp_path / "newer", version="0.1.1")
    assert newer.name == "shaudit_0.1.1_amd64.deb"
    for p in (deb, newer):
        shutil.copy(p, root / "tmp" / p.name)
    ok(chroot.run("dpkg", "-i", f"/tmp/{deb.name}"))
    conf = root / "etc/shaudit/shauditd.yaml"
    conf.write_text(conf.read_text().replace("#seal_every: 10000", "seal_every: 5000"))
    key = (root / "etc/shaudit/signing.key").read_bytes()
    (root / "run/shaudit").mkdir(mode=0o755, exist_ok=True)

    def run_daemon_once():
        d = chroot.popen("/usr/sbin/shauditd", "--config", "/etc/shaudit/shauditd.yaml",
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_file(root / "run/shaudit/shaudit.sock")
        d.terminate()
        assert d.wait(timeout=30) == 0

    run_daemon_once()
    # The first start moved the key into the key state and left a note in the key file.
    assert b"PRIVATE KEY" in key
    key = (root / "etc/shaudit/signing.key").read_bytes()
    assert key.startswith(b"# shaudit: signing key moved into the forward-secure key state "
                          b"/var/lib/shaudit/key-state\n"), key
    key_state = (root / "var/lib/shaudit/key-state").read_bytes()
    r = ok(chroot.run("dpkg", "-i", f"/tmp/{newer.name}"))
    assert "created the signing key" not in r.stdout
    assert ok(chroot.run("dpkg-query", "-W", "-f=${Version}", "shaudit")).stdout == "0.1.1"
    assert (root / "etc/shaudit/signing.key").read_bytes() == key
    assert (root / "var/lib/shaudit/key-state").read_bytes() == key_state
    assert "\nseal_every: 5000\n" in conf.read_text()
    run_daemon_once()
    recs = debroot.read_records(root / "var/log/shaudit/audit.jsonl")
    starts = [r for r in recs if r["type"] == "start"]
    assert len(starts) == 2 and starts[1]["previous_run"] == "clean", starts
    ok(chroot.run("shaudit", "verify", "/var/log/shaudit/audit.jsonl", "--pubkey", "/etc/shaudit/signing.key.pub"))


# ---------------------------------------------------------------------------------------------
# The systemd unit


def rendered_unit(tmp_path, sbindir):
    text = (SRC / "installer/system/shauditd.service.in").read_text().replace("@SBINDIR@", str(sbindir))
    p = tmp_path / "shauditd.service"
    p.write_text(text)
    return p


def test_unit_verifies_and_is_sandboxed(tmp_path):
    if not shutil.which("systemd-analyze"):
        pytest.fail("systemd-analyze is missing (package systemd)")
    unit = rendered_unit(tmp_path, SHAUDITD.parent)
    r = subprocess.run(["systemd-analyze", "verify", "--man=no", str(unit)], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout == "" and r.stderr == "", r.stdout + r.stderr
    r = subprocess.run(["systemd-analyze", "security", "--offline=true", str(unit)], capture_output=True, text=True)
    m = re.search(r"Overall exposure level for shauditd.service: ([0-9.]+)", r.stdout)
    assert m, r.stdout + r.stderr
    assert float(m.group(1)) <= 3.0, r.stdout  # 9.6 for the same unit without its sandboxing lines


def unit_capabilities():
    text = (SRC / "installer/system/shauditd.service.in").read_text()
    caps, = re.findall(r"^CapabilityBoundingSet=(.*)$", text, re.M)
    return [c.lower().removeprefix("cap_") for c in caps.split()]


def run_with_caps(daemon_factory, public_dir, caps):
    d = public_daemon(daemon_factory, public_dir, bpf="on", crosscheck_window_ms=300)
    wrapper = ["setpriv", "--bounding-set=-all," + ",".join("+" + c for c in caps), "--inh-caps=-all",
               "--no-new-privs"]
    d.start(wait=False, wrapper=wrapper)
    return d


def test_shauditd_runs_with_exactly_the_units_capabilities(daemon_factory, public_dir):
    """bpf: on (probes attached, or exit 1) under the unit's bounding set and NoNewPrivileges;
    an unprivileged user's session is recorded and a bypass caught. Without CAP_SYS_ADMIN (even
    with CAP_BPF and CAP_PERFMON) the line probes cannot attach: the set is not too big."""
    caps = unit_capabilities()
    assert caps == ["sys_admin", "audit_write", "chown"]
    d = run_with_caps(daemon_factory, public_dir, caps)
    d.wait_ready(timeout=30)
    env = {"PATH": "/usr/bin:/bin", "TERM": "dumb", "PS1": PS1, "SHAUDIT_SOCKET": str(d.socket),
           "LD_PRELOAD": str(d.config["interposer"])}
    sh = PtyShell(["/usr/sbin/runuser", "-u", "nobody", "--", "/bin/bash", "--norc", "--noprofile", "-i"], env=env)
    assert sh.session(["ls / > /dev/null", "env -u LD_PRELOAD /bin/true"]) == 0
    recs = wait_records_daemon(d, lambda rs: any(r["type"] == "bypass" for r in rs))
    start, = [r for r in recs if r["type"] == "start"]
    assert start["bpf"] == "on"
    assert [r["text"] for r in recs if r["type"] == "command"] == ["ls / > /dev/null", "env -u LD_PRELOAD /bin/true",
                                                                   "exit"]
    assert any(r["type"] == "exec" and r["argv"] == ["ls", "/"] for r in recs)
    assert [r["argv"] for r in recs if r["type"] == "bypass"] == [["/bin/true"]]
    assert d.stop() == 0

    d2 = run_with_caps(daemon_factory, public_dir, ["bpf", "perfmon", "audit_write", "chown"])
    assert d2.proc.wait(timeout=60) == 1
    assert "bpf: on, but the eBPF collector cannot start" in d2.stderr()
    assert "Permission denied" in d2.stderr()


def wait_records_daemon(d, pred, timeout=20):
    deadline = time.monotonic() + timeout
    while True:
        recs = read_records(d.log) if d.log.exists() else []
        if pred(recs):
            return recs
        assert time.monotonic() < deadline, "\n".join(json.dumps(r) for r in recs)
        time.sleep(0.1)


def test_package_boots_under_systemd_and_records_an_ssh_login(root, chroot, deb, tmp_path):
    if not shutil.which("systemd-nspawn"):
        pytest.fail("systemd-nspawn is missing (package systemd-container)")
    # Before boot, in the chroot: the package, a user with an ssh key, sshd on loopback only.
    shutil.copy(deb, root / "tmp" / deb.name)
    ok(chroot.run("dpkg", "-i", f"/tmp/{deb.name}"))
    ok(chroot.run("useradd", "-m", "-s", "/bin/bash", "sshtest"))
    ok(chroot.run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", "/root/id"))
    keys = root / "etc/ssh/keys"
    keys.mkdir()
    shutil.copy(root / "root/id.pub", keys / "sshtest")
    (keys / "sshtest").chmod(0o644)
    (root / "etc/ssh/sshd_config.d/test.conf").write_text(
        "ListenAddress 127.0.0.1\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        "AuthorizedKeysFile /etc/ssh/keys/%u\n")
    chroot.close()
    box = debroot.Nspawn(root, tmp_path / "console.log")
    try:
        box.wait_leader()
        deadline = time.monotonic() + 90
        while True:
            state = box.run("systemctl", "is-active", "shauditd.service").stdout.strip()
            ssh = box.run("systemctl", "is-active", "ssh.service").stdout.strip()
            if state == "active" and ssh == "active":
                break
            assert state not in ("failed",), box.run("journalctl", "-u", "shauditd", "--no-pager").stdout
            assert time.monotonic() < deadline, (state, ssh, (tmp_path / "console.log").read_text()[-3000:])
            time.sleep(0.5)
        # Ordered before ssh.service: it was ready when sshd started.
        t_shauditd = box.run("systemctl", "show", "-p", "ActiveEnterTimestampMonotonic", "--value",
                             "shauditd.service").stdout.strip()
        t_ssh = box.run("systemctl", "show", "-p", "ActiveEnterTimestampMonotonic", "--value",
                        "ssh.service").stdout.strip()
        assert 0 < int(t_shauditd) <= int(t_ssh)
        sh = PtyShell(box.argv(["ssh", "-tt", "-i", "/root/id", "-o", "StrictHostKeyChecking=no",
                                "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes", "-o", "LogLevel=ERROR",
                                "sshtest@127.0.0.1"]))
        assert sh.session([f"PS1='{PS1}'", "id -un"], first_prompt="$ ", timeout=30) == 0
        log = root / "var/log/shaudit/audit.jsonl"
        recs = wait_records(log, lambda rs: any(r["type"] == "session_end" and r.get("user") == "sshtest" for r in rs))
        start, = [r for r in recs if r["type"] == "session_start" and r.get("user") == "sshtest"]
        assert start["service"] == "sshd" and start["remote_host"] == "127.0.0.1"
        texts = [r["text"] for r in recs if r["type"] == "command" and r["session"] == start["session"]]
        assert texts == [f"PS1='{PS1}'", "id -un", "exit"]
        rows = box.run("shaudit", "sessions", "/var/log/shaudit/audit.jsonl").stdout
        row, = [l for l in rows.splitlines() if l.startswith(start["session"])]
        assert re.search(r"\bsshtest\s+sshd\s+127\.0\.0\.1\s", row), rows
        # Reload is SIGHUP; the service stays active and says so in the log.
        ok(box.run("systemctl", "reload", "shauditd.service"))
        wait_records(log, lambda rs: any(r["type"] == "config_loaded" for r in rs))
        assert box.run("systemctl", "is-active", "shauditd.service").stdout.strip() == "active"
    finally:
        box.close()


# ---------------------------------------------------------------------------------------------
# pam_shaudit noninteractive=skip


def test_noninteractive_sessions_are_left_alone(daemon_factory, tmp_path):
    if not shutil.which("pamtester"):
        pytest.fail("pamtester is missing (installer/deps.sh --test installs it)")
    d = daemon_factory().start()
    module = (BUILD / "pam_module" / "pam_shaudit.so").resolve()
    svc = f"shaudit-ni-{os.getpid()}"
    pam = Path("/etc/pam.d") / svc
    pam.write_text(f"auth required pam_permit.so\naccount required pam_permit.so\n"
                   f"session required pam_permit.so\nsession optional {module} socket={d.socket} noninteractive=skip\n")
    try:
        def session(*items):
            r = subprocess.run(["pamtester", *[a for i in items for a in ("-I", i)], svc, "root",
                                "open_session", "close_session"], capture_output=True, text=True, timeout=30)
            assert r.returncode == 0, r.stdout + r.stderr

        session("tty=cron")                          # cron
        session()                                    # systemd --user, at, scripted sudo: no tty
        session("tty=/dev/pts/9")                    # a terminal
        session("tty=ssh", "rhost=192.0.2.7")        # `ssh host cmd`: no pty, but remote
        recs = wait_records_daemon(d, lambda rs: len([r for r in rs if r["type"] == "session_end"]) == 2)
        starts = [(r.get("tty"), r.get("remote_host")) for r in recs if r["type"] == "session_start"]
        assert starts == [("/dev/pts/9", None), ("ssh", "192.0.2.7")]
    finally:
        pam.unlink()
        d.stop()
