# SPDX-License-Identifier: Apache-2.0
"""installer/kubernetes without a cluster (none runs here):

- the manifests: `kubectl kustomize installer/kubernetes` renders; the DaemonSet has the host's
  pid namespace, privileges, tolerations and every mount shauditd needs, and its ConfigMaps
  carry installer/kubernetes/shauditd.yaml and the default rule set; yamllint passes; the
  opt-in runtime-wrapper kustomization renders too; the rule set's copy equals
  daemon/rules/default.yaml.
- the runtime wrapper's installer script against a scratch node root: prints by default,
  patches containerd's config once (and containerd itself reads the result, when installed).
- the node image from build-node-image.sh, run with runc the way the DaemonSet runs it: the
  pod's init container and then shauditd from the same image, in one set of pod namespaces
  (UTS, IPC, network) and the host's pid namespace, privileged, with the DaemonSet's volumes
  (the node's directories, ConfigMaps and the key Secret laid out as the kubelet does). An
  interposed bash on the host, loading the interposer the init container published, types
  lines; the signed log holds them and verifies. Then the image is imported into a private
  containerd under the name the kubelet asks for.
"""
import json
import os
import re
import resource
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
import yaml

import debroot
from containerd_fixture import PrivateContainerd
from conftest import BUILD, NEEDS_REAL_ROOT, read_records, run_cli
from ptyshell import PS1, PtyShell

SRC = Path(__file__).resolve().parents[2]
K8S = SRC / "installer" / "kubernetes"
IMAGE = "shaudit-node:0.1.0"


def _missing(*tools):
    return [t for t in tools if not shutil.which(t)]


def _skip_without(*tools):
    missing = _missing(*tools)
    return pytest.mark.skipif(bool(missing), reason="missing tools: " + " ".join(missing))


def kubectl():
    return os.environ.get("SHAUDIT_KUBECTL") or shutil.which("kubectl") or "kubectl"


def kustomize(path: Path):
    """The YAML documents `kubectl kustomize path` renders."""
    r = subprocess.run([kubectl(), "kustomize", str(path)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    return [d for d in yaml.safe_load_all(r.stdout) if d is not None]


def only(docs, kind, name=None):
    hits = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(hits) == 1, (kind, name, [(d["kind"], d["metadata"]["name"]) for d in docs])
    return hits[0]


def mebibytes(q):
    m = re.fullmatch(r"(\d+)(Mi|Gi)", q)
    assert m, q
    return int(m.group(1)) * (1024 if m.group(2) == "Gi" else 1)


# ---------------------------------------------------------------------------------------------
# The manifests


@pytest.mark.skipif(not os.environ.get("SHAUDIT_KUBECTL") and not shutil.which("kubectl"),
                    reason="missing tools: kubectl (Debian: kubernetes-client)")
def test_manifests_render():
    docs = kustomize(K8S)
    ns = only(docs, "Namespace", "shaudit-system")
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"
    for d in docs:
        if d["kind"] != "Namespace":
            assert d["metadata"]["namespace"] == "shaudit-system", d["metadata"]
    # The key never comes from the repository.
    assert not [d for d in docs if d["kind"] == "Secret"]

    ds = only(docs, "DaemonSet", "shauditd")
    pod = ds["spec"]["template"]["spec"]
    assert pod["hostPID"] is True
    assert not pod.get("hostNetwork")
    assert {"operator": "Exists"} in pod["tolerations"]
    assert pod["priorityClassName"] == "system-node-critical"
    assert pod["terminationGracePeriodSeconds"] == 30
    assert pod["automountServiceAccountToken"] is False
    sa = only(docs, "ServiceAccount", pod["serviceAccountName"])
    assert sa["automountServiceAccountToken"] is False

    [c] = pod["containers"]
    assert c["name"] == "shauditd"
    assert c["image"] == IMAGE and c["imagePullPolicy"] == "IfNotPresent"
    assert c["securityContext"]["privileged"] is True
    assert c["args"] == ["--config", "/etc/shaudit/shauditd.yaml"]
    assert c["readinessProbe"]["exec"]["command"] == ["test", "-S", "/run/shaudit/shaudit.sock"]
    # shauditd's measured peak is 37 MiB at 1,000 sessions.
    assert 48 <= mebibytes(c["resources"]["requests"]["memory"]) <= 128
    assert 64 <= mebibytes(c["resources"]["limits"]["memory"]) <= 256
    [init] = pod["initContainers"]
    assert init["image"] == IMAGE and init["securityContext"]["privileged"] is True

    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
    assert len(mounts) == len(c["volumeMounts"])

    def host_path(mount_path, path, read_only, types=("Directory", "DirectoryOrCreate")):
        m = mounts[mount_path]
        hp = volumes[m["name"]]["hostPath"]
        assert hp["path"] == path, (mount_path, hp)
        assert hp.get("type") in types, (mount_path, hp)
        assert bool(m.get("readOnly")) == read_only, m

    host_path("/sys/kernel/btf", "/sys/kernel/btf", True, ("Directory",))
    host_path("/sys/kernel/tracing", "/sys/kernel/tracing", False, ("Directory",))
    host_path("/sys/fs/bpf", "/sys/fs/bpf", False, ("Directory",))
    host_path("/run/containerd", "/run/containerd", True)
    host_path("/run/runc", "/run/runc", True)
    host_path("/run/shaudit", "/run/shaudit", False, ("DirectoryOrCreate",))
    host_path("/var/log/shaudit", "/var/log/shaudit", False, ("DirectoryOrCreate",))
    host_path("/var/lib/shaudit", "/var/lib/shaudit", False, ("DirectoryOrCreate",))
    host_path("/opt/shaudit", "/opt/shaudit", True, ("DirectoryOrCreate",))

    # The configuration: a generated ConfigMap holding installer/kubernetes/shauditd.yaml.
    m = mounts["/etc/shaudit/shauditd.yaml"]
    assert m["subPath"] == "shauditd.yaml" and m["readOnly"]
    cm_name = volumes[m["name"]]["configMap"]["name"]
    assert cm_name.startswith("shauditd-config-")
    config_text = only(docs, "ConfigMap", cm_name)["data"]["shauditd.yaml"]
    assert config_text == (K8S / "shauditd.yaml").read_text()
    # The rules: a ConfigMap directory with the default rule set.
    m = mounts["/etc/shaudit/rules.d"]
    cm = only(docs, "ConfigMap", volumes[m["name"]]["configMap"]["name"])
    assert cm["data"] == {"00-default.yaml": (SRC / "daemon/rules/default.yaml").read_text()}
    # The key: the Secret made by hand, 0400.
    m = mounts["/etc/shaudit/key"]
    secret = volumes[m["name"]]["secret"]
    assert secret["secretName"] == "shaudit-signing-key"
    assert secret["items"] == [{"key": "signing.key", "path": "signing.key"}]
    assert secret["defaultMode"] == 0o400 and m["readOnly"]

    # The configuration's paths are where the pod mounts things.
    cfg = yaml.safe_load(config_text)
    assert cfg["socket"] == "/run/shaudit/shaudit.sock"
    assert cfg["log"] == "/var/log/shaudit/audit.jsonl"
    assert cfg["signing_key"] == "/etc/shaudit/key/signing.key"
    assert cfg["bpf"] in ("on", True)  # YAML 1.1 reads `on` as true; shauditd as "on"
    assert cfg["rules"] == ["/etc/shaudit/rules.d"]
    assert cfg["state_dir"] == "/var/lib/shaudit"
    assert cfg["interposer"] == "/opt/shaudit/lib/libshaudit_preload.so"
    assert set(cfg["container_state_dirs"]) <= {"/run/runc", "/run/containerd/runc"}
    # An output that ships the seals off the node.
    assert any(o.get("seals") is True and o["type"] in ("syslog", "loki") for o in cfg["outputs"])
    # The init container publishes the interposer where the configuration names it, and
    # names the pod after its node.
    script = init["command"][-1]
    assert "/opt/shaudit/lib/libshaudit_preload.so" in script
    assert 'hostname "$NODE_NAME"' in script
    assert {"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}} in init["env"]


@pytest.mark.skipif(not os.environ.get("SHAUDIT_KUBECTL") and not shutil.which("kubectl"),
                    reason="missing tools: kubectl (Debian: kubernetes-client)")
def test_runtime_wrapper_overlay_renders():
    docs = kustomize(K8S / "runtime-wrapper")
    # On its own: the wrapper's one-shot and its ConfigMap, nothing of the base.
    assert sorted(d["kind"] for d in docs) == ["ConfigMap", "DaemonSet"]
    ds = only(docs, "DaemonSet", "shaudit-runtime-wrapper")
    assert ds["metadata"]["namespace"] == "shaudit-system"
    pod = ds["spec"]["template"]["spec"]
    assert {"operator": "Exists"} in pod["tolerations"]
    [init] = pod["initContainers"]
    assert init["image"] == IMAGE and init["command"] == ["/bin/sh", "/scripts/install-runtime-wrapper.sh"]
    cm = only(docs, "ConfigMap")
    assert cm["data"]["install-runtime-wrapper.sh"] == (K8S / "runtime-wrapper/install-runtime-wrapper.sh").read_text()
    assert cm["data"]["CONTAINERD_CONFIG"] == "print"  # patching containerd is a second opt-in
    volumes = {v["name"]: v for v in pod["volumes"]}
    host = {m["mountPath"]: volumes[m["name"]]["hostPath"]["path"] for m in init["volumeMounts"]
            if "hostPath" in volumes[m["name"]]}
    assert host == {"/host/usr": "/usr", "/host/opt/shaudit": "/opt/shaudit",
                    "/host/etc/shaudit": "/etc/shaudit", "/host/etc/containerd": "/etc/containerd"}


@_skip_without("yamllint")
def test_yamllint():
    r = subprocess.run(["yamllint", "-c", str(K8S / ".yamllint"), "--strict", str(K8S)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr


def test_rules_copy_matches_default():
    r = subprocess.run([str(K8S / "sync-rules.sh"), "--check"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert (K8S / "rules/00-default.yaml").read_bytes() == (SRC / "daemon/rules/default.yaml").read_bytes()


# ---------------------------------------------------------------------------------------------
# The runtime wrapper's installer script, on a scratch node root

WRAPPER_SCRIPT = K8S / "runtime-wrapper" / "install-runtime-wrapper.sh"
V2_SECTION = '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]'
V3_SECTION = "[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]"
BINARY_LINE = 'BinaryName = "/opt/shaudit/bin/shaudit-oci-runtime"'


def containerd_default_config():
    if shutil.which("containerd"):
        r = subprocess.run(["containerd", "config", "default"], capture_output=True, text=True, timeout=60)
        if r.returncode == 0 and V2_SECTION in r.stdout:
            return r.stdout
    # The part of containerd 1.6's default that matters here.
    return ('version = 2\n\n[plugins]\n\n  [plugins."io.containerd.grpc.v1.cri"]\n'
            '    [plugins."io.containerd.grpc.v1.cri".containerd]\n'
            '      default_runtime_name = "runc"\n\n'
            '      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes]\n\n'
            '        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]\n'
            '          runtime_type = "io.containerd.runc.v2"\n\n'
            '          ' + V2_SECTION + '\n            BinaryName = ""\n            SystemdCgroup = false\n')


@pytest.fixture
def node(tmp_path):
    """A scratch node root for the wrapper script: a runc on its PATH, a wrapper to install."""
    host = tmp_path / "host"
    (host / "usr/bin").mkdir(parents=True)
    (host / "usr/bin/runc").write_text("#!/bin/sh\n")
    (host / "usr/bin/runc").chmod(0o755)
    (host / "etc/containerd").mkdir(parents=True)
    wrapper = tmp_path / "shaudit-oci-runtime"
    wrapper.write_bytes(b"\x7fELF a stand-in for the wrapper\n")
    return host, wrapper


def run_wrapper_script(host, wrapper, **env):
    e = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "SHAUDIT_HOST": str(host),
         "SHAUDIT_WRAPPER_SOURCE": str(wrapper), **env}
    return subprocess.run(["/bin/sh", str(WRAPPER_SCRIPT)], capture_output=True, text=True, env=e, timeout=60)


def test_runtime_wrapper_script_prints_then_patches(node, tmp_path):
    host, wrapper = node
    conf = host / "etc/containerd/config.toml"
    original = containerd_default_config()
    conf.write_text(original)
    conf.chmod(0o640)

    # Default: the wrapper and its settings in place, containerd's file untouched.
    r = run_wrapper_script(host, wrapper)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (host / "opt/shaudit/bin/shaudit-oci-runtime").read_bytes() == wrapper.read_bytes()
    assert (host / "opt/shaudit/bin/shaudit-oci-runtime").stat().st_mode & 0o777 == 0o755
    settings = yaml.safe_load((host / "etc/shaudit/oci-runtime.yaml").read_text())
    assert settings == {"runtime": "/usr/bin/runc", "socket": "/run/shaudit/shaudit.sock",
                        "preload": "/opt/shaudit/lib/libshaudit_preload.so"}
    assert conf.read_text() == original
    assert V2_SECTION in r.stdout and BINARY_LINE in r.stdout, r.stdout
    inode = (host / "opt/shaudit/bin/shaudit-oci-runtime").stat().st_ino

    # patch: BinaryName set in runc's options table, the original kept once, mode kept.
    r = run_wrapper_script(host, wrapper, CONTAINERD_CONFIG="patch")
    assert r.returncode == 0, r.stdout + r.stderr
    patched = conf.read_text()
    assert (host / "etc/containerd/config.toml.shaudit-orig").read_text() == original
    assert conf.stat().st_mode & 0o777 == 0o640
    diff = [(a, b) for a, b in zip(original.splitlines(), patched.splitlines()) if a != b]
    assert len(patched.splitlines()) == len(original.splitlines())
    assert [(a.strip(), b.strip()) for a, b in diff] == [('BinaryName = ""', BINARY_LINE)]
    # Again: nothing changes (the wrapper file keeps its inode).
    snapshot = debroot.snapshot(host)
    r = run_wrapper_script(host, wrapper, CONTAINERD_CONFIG="patch")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "already runs runc through the wrapper" in r.stdout
    assert debroot.differences(snapshot, debroot.snapshot(host), mtimes=True) == {}
    assert (host / "opt/shaudit/bin/shaudit-oci-runtime").stat().st_ino == inode

    # containerd itself reads the patched file, when it is installed.
    if shutil.which("containerd"):
        r = subprocess.run(["containerd", "--config", str(conf), "config", "dump"],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        assert BINARY_LINE in r.stdout


def test_runtime_wrapper_script_other_configs(node):
    host, wrapper = node
    conf = host / "etc/containerd/config.toml"
    # containerd 2.x (version 3) without the runc options table: the table is added.
    conf.write_text("version = 3\n\n[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]\n"
                    "  runtime_type = 'io.containerd.runc.v2'\n")
    r = run_wrapper_script(host, wrapper, CONTAINERD_CONFIG="patch")
    assert r.returncode == 0, r.stdout + r.stderr
    assert conf.read_text().endswith(f"\n{V3_SECTION}\n  {BINARY_LINE}\n")

    # A BinaryName already set: the wrapper runs that runtime, and takes its place.
    (host / "etc/shaudit/oci-runtime.yaml").unlink()
    (host / "etc/containerd/config.toml.shaudit-orig").unlink()
    conf.write_text('version = 2\n[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]\n'
                    '  BinaryName = "/usr/local/bin/runc-custom"  # ours\n  SystemdCgroup = true\n')
    r = run_wrapper_script(host, wrapper, CONTAINERD_CONFIG="patch")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "runtime: /usr/local/bin/runc-custom\n" in (host / "etc/shaudit/oci-runtime.yaml").read_text()
    assert conf.read_text() == ('version = 2\n' + V2_SECTION + '\n  ' + BINARY_LINE + '\n  SystemdCgroup = true\n')

    # A version 1 file and a missing file are not patched.
    conf.write_text('[plugins.cri.containerd]\n  snapshotter = "overlayfs"\n')
    r = run_wrapper_script(host, wrapper, CONTAINERD_CONFIG="patch")
    assert r.returncode == 1 and "version 1" in r.stderr
    conf.unlink()
    r = run_wrapper_script(host, wrapper, CONTAINERD_CONFIG="patch")
    assert r.returncode == 1 and "does not exist" in r.stderr
    r = run_wrapper_script(host, wrapper, CONTAINERD_CONFIG="yes")
    assert r.returncode == 1 and "print or patch" in r.stderr
    # An image without the wrapper says so.
    r = run_wrapper_script(host, host / "nonexistent")
    assert r.returncode == 1 and "is not in this image" in r.stderr


# ---------------------------------------------------------------------------------------------
# The node image under runc, as the DaemonSet runs it

IMAGE_TOOLS = ("umoci", "runc", "debootstrap", "cpack", "dpkg-deb", "unshare")
# Capability names by number (linux/capability.h), for a privileged container.
CAPS = ["CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID",
        "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW",
        "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT",
        "SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD",
        "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG",
        "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE"]


def all_caps():
    """Every capability this process may pass on (a runtime cannot grant more than its own
    bounding set)."""
    bnd = int(re.search(r"^CapBnd:\s*([0-9a-f]+)$", Path("/proc/self/status").read_text(), re.M).group(1), 16)
    return ["CAP_" + c for i, c in enumerate(CAPS) if bnd >> i & 1]


@pytest.fixture(scope="module")
def node_image(tmp_path_factory):
    """(OCI layout, its .tar) from build-node-image.sh, with a package cpack makes from this build."""
    out = tmp_path_factory.mktemp("image")
    r = subprocess.run(["cpack", "-G", "DEB", "--config", str(BUILD / "CPackConfig.cmake"), "-B", str(out / "deb")],
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout + r.stderr
    [deb] = sorted((out / "deb").glob("shaudit_*_amd64.deb"))
    # The script's own cache of the debootstrapped root (/var/cache/shaudit-node-image).
    r = subprocess.run([str(K8S / "build-node-image.sh"), str(out / "layout"), str(deb)],
                       capture_output=True, text=True, timeout=2400, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    print(r.stdout)
    return out / "layout", out / "layout.tar"


def kubelet_volume(path: Path, files, mode):
    """A ConfigMap or Secret volume as the kubelet writes it: the files in a timestamped
    directory, `..data` pointing at it, and a symbolic link per key."""
    ts = path / "..2026_01_01_00_00_00.000000001"
    ts.mkdir(parents=True)
    for name, data in files.items():
        (ts / name).write_bytes(data)
        (ts / name).chmod(mode)
    os.symlink(ts.name, path / "..data")
    for name in files:
        os.symlink(f"..data/{name}", path / name)


class Pod:
    """The DaemonSet's pod, emulated with runc: namespaces the pod's containers share (UTS, IPC,
    network: what the pod sandbox holds), the host's pid namespace, the volumes laid out under a
    scratch node root (hostPath P is NODE/P, except the kernel's /sys directories, which are the
    host's own), each container privileged as the manifest says."""

    def __init__(self, tmp: Path, rootfs: Path, base_config: dict, node_name: str, key: Path):
        self.tmp, self.rootfs, self.base = tmp, rootfs, base_config
        self.node_name = node_name
        self.node = tmp / "node"
        self.state = tmp / "runc-state"
        self.state.mkdir()
        self.spec = yaml.safe_load((K8S / "daemonset.yaml").read_text())["spec"]["template"]["spec"]
        self.mounted = []
        self.volumes = {}
        for v in self.spec["volumes"]:
            self.volumes[v["name"]] = self._volume(v, key)
        self.ns = {}
        nsdir = tmp / "podns"
        nsdir.mkdir()
        for t in ("uts", "ipc", "net"):
            (nsdir / t).touch()
            self.ns[t] = nsdir / t
        r = subprocess.run(["unshare", f"--uts={self.ns['uts']}", f"--ipc={self.ns['ipc']}",
                            f"--net={self.ns['net']}", "true"], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        self.ids = []

    def _volume(self, v, key):
        if "hostPath" in v:
            p = v["hostPath"]["path"]
            if p == "/sys/kernel/tracing":
                # A node without tracefs mounted: an empty directory on a shared mount, where
                # the init container's mount (Bidirectional) must appear for shauditd.
                d = self.tmp / "node-tracing"
                d.mkdir()
                for argv in (["mount", "--bind", str(d), str(d)], ["mount", "--make-shared", str(d)]):
                    r = subprocess.run(argv, capture_output=True, text=True)
                    assert r.returncode == 0, r.stderr
                    if argv[1] == "--bind":
                        self.mounted.append(d)
                return d
            if p.startswith("/sys/"):
                assert Path(p).is_dir(), p
                return Path(p)
            d = self.node / p.lstrip("/")
            d.mkdir(parents=True, exist_ok=True)
            return d
        d = self.tmp / "volumes" / v["name"]
        d.mkdir(parents=True)
        if "configMap" in v:
            files = {"shauditd-config": {"shauditd.yaml": (K8S / "shauditd.yaml").read_bytes()},
                     "shaudit-rules": {"00-default.yaml": (K8S / "rules/00-default.yaml").read_bytes()}}
            kubelet_volume(d, files[v["configMap"]["name"]], v["configMap"].get("defaultMode", 0o644))
        elif "secret" in v:
            assert v["secret"]["secretName"] == "shaudit-signing-key"
            [item] = v["secret"]["items"]
            kubelet_volume(d, {item["path"]: key.read_bytes()}, v["secret"]["defaultMode"])
        else:
            raise AssertionError(f"volume kind not emulated: {v}")
        return d

    def _config(self, c):
        cfg = json.loads(json.dumps(self.base))
        cfg["root"] = {"path": str(self.rootfs), "readonly": bool(c.get("securityContext", {}).get("readOnlyRootFilesystem"))}
        proc = cfg["process"]
        proc["terminal"] = False
        proc["user"] = {"uid": 0, "gid": 0}
        # About what containerd gives a container, as far as this process may (runc's own
        # default would be a hard limit of 1024).
        hard = min(524288, resource.getrlimit(resource.RLIMIT_NOFILE)[1])
        proc["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": hard}]
        # The kubelet: command replaces the image's entrypoint, args its cmd.
        if "command" in c:
            proc["args"] = c["command"] + c.get("args", [])
        else:
            config = json.loads(json.dumps(self.base))["process"]["args"]
            assert config[0] == "/usr/sbin/shauditd", config
            proc["args"] = config[:1] + c.get("args", [])
        env = [e for e in proc.get("env", []) if not e.startswith("HOSTNAME=")]
        for e in c.get("env", []):
            if "value" in e:
                env.append(f"{e['name']}={e['value']}")
            else:
                assert e["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName"
                env.append(f"{e['name']}={self.node_name}")
        proc["env"] = env
        assert c["securityContext"]["privileged"] is True
        caps = all_caps()
        proc["capabilities"] = {k: caps for k in ("bounding", "effective", "permitted", "inheritable", "ambient")}
        proc.pop("noNewPrivileges", None)
        proc.pop("apparmorProfile", None)
        linux = cfg["linux"]
        # hostPID: no pid namespace of its own; the pod's UTS, IPC and network namespaces.
        paths = {"uts": self.ns["uts"], "ipc": self.ns["ipc"], "network": self.ns["net"]}
        linux["namespaces"] = [({"type": n["type"], "path": str(paths[n["type"]])} if n["type"] in paths else n)
                               for n in linux["namespaces"] if n["type"] != "pid"]
        for k in ("maskedPaths", "readonlyPaths", "seccomp"):
            linux.pop(k, None)
        linux.setdefault("resources", {})["devices"] = [{"allow": True, "access": "rwm"}]
        cfg.pop("hostname", None)
        # containerd makes the container's root shared when a mount is Bidirectional.
        if any(vm.get("mountPropagation") == "Bidirectional" for vm in c["volumeMounts"]):
            linux["rootfsPropagation"] = "rshared"
        mounts = []
        for m in cfg["mounts"]:
            if m["destination"] == "/sys":  # privileged: sysfs writable
                m = dict(m, options=[o for o in m.get("options", []) if o != "ro"])
            mounts.append(m)
        for vm in sorted(c["volumeMounts"], key=lambda vm: vm["mountPath"].count("/")):
            src = self.volumes[vm["name"]]
            if "subPath" in vm:
                src = (src / vm["subPath"]).resolve()  # the kubelet binds the file itself
            prop = {"Bidirectional": "rshared", "HostToContainer": "rslave"}.get(vm.get("mountPropagation"), "rprivate")
            mounts.append({"destination": vm["mountPath"], "type": "bind", "source": str(src),
                           "options": ["rbind", prop, "ro" if vm.get("readOnly") else "rw"]})
        cfg["mounts"] = mounts
        return cfg

    def bundle(self, c):
        b = self.tmp / "bundles" / c["name"]
        b.mkdir(parents=True, exist_ok=True)
        (b / "config.json").write_text(json.dumps(self._config(c), indent=1))
        return b

    def runc(self, *args, timeout=60, **kw):
        return subprocess.run(["runc", "--root", str(self.state), *args], timeout=timeout,
                              stdin=subprocess.DEVNULL, **kw)

    def run_init(self, name, log: Path):
        """Runs an init container to its end; returns its exit status."""
        c = next(c for c in self.spec["initContainers"] if c["name"] == name)
        cid = f"shaudit-k8s-{os.getpid()}-{name}"
        self.ids.append(cid)
        with open(log, "ab") as f:
            r = self.runc("run", "--bundle", str(self.bundle(c)), cid, stdout=f, stderr=subprocess.STDOUT,
                          timeout=120)
        self.runc("delete", "--force", cid, capture_output=True)
        return r.returncode

    def start(self, name, log: Path):
        c = next(c for c in self.spec["containers"] if c["name"] == name)
        cid = f"shaudit-k8s-{os.getpid()}-{name}"
        self.ids.append(cid)
        with open(log, "ab") as f:
            r = self.runc("run", "-d", "--bundle", str(self.bundle(c)), cid, stdout=f, stderr=subprocess.STDOUT)
        assert r.returncode == 0, log.read_text(errors="replace")
        return cid

    def status(self, cid):
        r = self.runc("state", cid, capture_output=True, text=True)
        return json.loads(r.stdout)["status"] if r.returncode == 0 else None

    def stop(self, cid, grace=30):
        """What the kubelet does: SIGTERM, the grace period, then SIGKILL. True if it stopped
        within the grace period."""
        self.runc("kill", cid, "TERM", capture_output=True)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            if self.status(cid) in ("stopped", None):
                self.runc("delete", cid, capture_output=True)
                return True
            time.sleep(0.1)
        self.runc("kill", cid, "KILL", capture_output=True)
        time.sleep(0.5)
        self.runc("delete", "--force", cid, capture_output=True)
        return False

    def close(self):
        for cid in self.ids:
            if self.status(cid) is not None:
                self.runc("kill", cid, "KILL", capture_output=True)
                self.runc("delete", "--force", cid, capture_output=True)
        for f in self.ns.values():
            subprocess.run(["umount", str(f)], capture_output=True)
        # What the init container mounted there, then the directory's own bind mount.
        for d in self.mounted:
            for _ in range(10):
                if subprocess.run(["mountpoint", "-q", str(d)]).returncode != 0:
                    break
                subprocess.run(["umount", str(d)], capture_output=True)


def wait_socket(path: Path, timeout, alive):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert alive(), "shauditd's container stopped"
        try:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            s.connect(str(path))
            s.close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"{path} did not accept connections within {timeout} s")


@NEEDS_REAL_ROOT
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (runc, mounts, dpkg into a root)")
@_skip_without(*IMAGE_TOOLS)
def test_node_image_runs_like_the_daemonset(node_image, tmp_path):
    layout, _ = node_image
    index = json.loads((layout / "index.json").read_text())
    [desc] = index["manifests"]
    assert desc["annotations"]["org.opencontainers.image.ref.name"] == IMAGE
    assert desc["annotations"]["io.containerd.image.name"] == "docker.io/library/" + IMAGE
    bundle = tmp_path / "unpacked"
    r = subprocess.run(["umoci", "unpack", "--image", f"{layout}:{IMAGE}", str(bundle)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    rootfs = bundle / "rootfs"
    base = json.loads((bundle / "config.json").read_text())
    assert base["process"]["args"] == ["/usr/sbin/shauditd", "--config", "/etc/shaudit/shauditd.yaml"]
    # No key baked into the image.
    assert not (rootfs / "etc/shaudit/signing.key").exists()

    key = tmp_path / "signing.key"
    r = run_cli("keygen", "--out", key)
    assert r.returncode == 0, r.stderr
    node_name = f"test-node-{os.getpid()}"
    pod = Pod(tmp_path, rootfs, base, node_name, key)
    log = tmp_path / "containers.log"
    shell = None
    try:
        # The init container: tracefs mounted for the node, the interposer published on the
        # node, its directories 0700.
        assert pod.run_init("prepare-node", log) == 0, log.read_text(errors="replace")
        tracing = pod.volumes["tracing"]
        r = subprocess.run(["stat", "-f", "-c", "%T", str(tracing)], capture_output=True, text=True)
        assert r.stdout.strip() == "tracefs", r.stdout + r.stderr
        published = pod.node / "opt/shaudit/lib/libshaudit_preload.so"
        image_copy = rootfs / "usr/lib/x86_64-linux-gnu/libshaudit_preload.so"
        assert published.read_bytes() == image_copy.read_bytes()
        assert published.stat().st_mode & 0o777 == 0o644
        for d in ("var/log/shaudit", "var/lib/shaudit"):
            assert (pod.node / d).stat().st_mode & 0o777 == 0o700, d
        # A restarted pod leaves the published file as it is (same inode): containers that
        # bound it keep the file shauditd names.
        inode = published.stat().st_ino
        assert pod.run_init("prepare-node", log) == 0, log.read_text(errors="replace")
        assert published.stat().st_ino == inode

        cid = pod.start("shauditd", log)
        sock = pod.node / "run/shaudit/shaudit.sock"
        wait_socket(sock, 60, lambda: pod.status(cid) == "running" or print(log.read_text(errors="replace")))
        # The readiness probe's command, run in the container.
        r = pod.runc("exec", cid, "test", "-S", "/run/shaudit/shaudit.sock", capture_output=True, text=True)
        assert r.returncode == 0, r.stderr

        # A host shell with the interposer the node's processes would load.
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(tmp_path), "TERM": "dumb", "PS1": PS1,
               "LD_PRELOAD": str(published), "SHAUDIT_SOCKET": str(sock)}
        lines = ['echo "typed on $(hostname)" > /dev/null', "cd /tmp", "true k8s node image"]
        shell = PtyShell(["/bin/bash", "--norc", "--noprofile", "-i"], env=env, cwd=str(tmp_path))
        shell_pid = shell.pid
        assert shell.session(lines) == 0
        shell = None

        assert pod.stop(cid), "shauditd did not stop within the grace period"
        audit = pod.node / "var/log/shaudit/audit.jsonl"
        recs = read_records(audit)
        start = [r for r in recs if r["type"] == "start"]
        assert len(start) == 1, start
        # The pod is named after its node (the init container set it); eBPF is on.
        assert start[0].get("host") == node_name, start[0]
        assert start[0].get("bpf") == "on" and start[0].get("cross_check") is True, start[0]
        sessions = [r for r in recs if r["type"] == "session_start" and r.get("uid") == 0]
        cmds = [r for r in recs if r["type"] == "command" and r.get("pid") == shell_pid]
        assert [c["text"] for c in cmds] == lines + ["exit"], [(r["type"], r.get("text")) for r in recs]
        [session] = [s for s in sessions if s["session"] == cmds[0]["session"]]
        assert session["pid"] == shell_pid and session["service"] == "implicit"
        # The exec of $(hostname), from the kernel: the cross-check runs in the pod.
        execs = [r for r in recs if r["type"] == "exec" and r.get("session") == session["session"]]
        assert [(e["argv"], e.get("source")) for e in execs] == [(["hostname"], "bpf")], execs
        # The kernel saw the published interposer initialise in the shell: not reported as a
        # process without it.
        assert not [r for r in recs if r["type"] == "bypass" and r.get("pid") == shell_pid], \
            [r for r in recs if r["type"] == "bypass"]
        assert recs[-1]["type"] == "seal" and recs[-1].get("reason") == "close", recs[-1]
        r = run_cli("verify", audit, "--pubkey", f"{key}.pub")
        assert r.returncode == 0, r.stdout + r.stderr
    finally:
        if shell is not None:
            shell.kill()
        pod.close()
        print(log.read_text(errors="replace") if log.exists() else "")


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (containerd)")
@_skip_without(*IMAGE_TOOLS, "containerd", "ctr")
def test_node_image_imports_into_containerd(node_image):
    """The README's `ctr -n k8s.io images import` gives the image the name the kubelet looks
    up for `image: shaudit-node:0.1.0` (docker.io/library/shaudit-node:0.1.0)."""
    _, tar = node_image
    ctrd = PrivateContainerd(namespace="k8s.io")
    try:
        ctrd.start()
        ctrd.run_ctr("images", "import", tar, timeout=600)
        r = ctrd.run_ctr("images", "ls", "-q")
        assert "docker.io/library/" + IMAGE in r.stdout.split(), r.stdout
        r = ctrd.run_ctr("images", "check")
        assert re.search(r"docker\.io/library/shaudit-node:0\.1\.0\s.*complete", r.stdout), r.stdout
    finally:
        ctrd.stop()


@_skip_without(*IMAGE_TOOLS, "skopeo")
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (dpkg into a root)")
def test_node_image_copies_with_skopeo(node_image, tmp_path):
    """The README's skopeo references, from the layout and from the archive."""
    layout, tar = node_image
    for src in (f"oci:{layout}:{IMAGE}", f"oci-archive:{tar}:{IMAGE}"):
        dest = tmp_path / src.split(":")[0]
        r = subprocess.run(["skopeo", "copy", src, f"dir:{dest}"], capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stdout + r.stderr
        manifest = json.loads((dest / "manifest.json").read_text())
        config = json.loads((dest / manifest["config"]["digest"].split(":")[1]).read_text())
        assert config["config"]["Entrypoint"] == ["/usr/sbin/shauditd"]
        assert config["architecture"] == "amd64" and config["os"] == "linux"
