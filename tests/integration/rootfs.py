# SPDX-License-Identifier: Apache-2.0
"""Small container root filesystems and runc bundles for the container tests: busybox (static)
with its applets, bash and dash with the libraries ldd lists and the glibc loader; a bundle
from `runc spec` with CRI-style annotations. Containers run under a runc --root of the
test's own, and are ended by id."""
import json
import os
import re
import secrets
import shutil
import subprocess
import time
from pathlib import Path

RUNC = shutil.which("runc") or "/usr/sbin/runc"
BUSYBOX = next((p for p in ("/bin/busybox", "/usr/bin/busybox") if os.path.exists(p)), None)


def copy_with_libs(binary, rootfs: Path):
    """binary and every library ldd names (and the loader), at the same paths."""
    paths = [binary]
    out = subprocess.run(["ldd", binary], capture_output=True, text=True).stdout
    paths += re.findall(r"(/\S+\.so[^\s]*) \(0x", out)
    for p in paths:
        real = os.path.realpath(p)
        for dest in {p, real}:
            d = rootfs / dest.lstrip("/")
            d.parent.mkdir(parents=True, exist_ok=True)
            if not d.exists():
                shutil.copy2(real, d)


def make_rootfs(rootfs: Path):
    for d in ("bin", "etc", "run", "tmp", "proc", "dev", "sys", "root", "usr/bin"):
        (rootfs / d).mkdir(parents=True, exist_ok=True)
    (rootfs / "tmp").chmod(0o1777)
    shutil.copy2(BUSYBOX, rootfs / "bin/busybox")
    applets = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True).stdout.split()
    for a in applets:
        if a != "busybox" and not (rootfs / "bin" / a).exists():
            (rootfs / "bin" / a).symlink_to("busybox")
    for b in ("/bin/bash", "/bin/dash"):
        copy_with_libs(b, rootfs)
    (rootfs / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534::/:/bin/sh\n")
    (rootfs / "etc/group").write_text("root:x:0:\nnogroup:x:65534:\n")
    return rootfs


def container_id():
    return secrets.token_hex(32)  # 64 hex digits, as CRI runtimes name containers


def make_bundle(bundle: Path, cid: str, annotations=None, readonly=False):
    """A runc bundle (rootfs made by the caller under bundle/rootfs) running `sleep 3600`."""
    subprocess.run([RUNC, "spec"], cwd=bundle, check=True)
    cfg = json.loads((bundle / "config.json").read_text())
    cfg["process"]["terminal"] = False
    cfg["process"]["args"] = ["sleep", "3600"]
    cfg["root"] = {"path": "rootfs", "readonly": readonly}
    cfg["hostname"] = "ctr"
    cfg["annotations"] = annotations or {}
    cfg["linux"]["cgroupsPath"] = f"/kubepods/besteffort/pod{cid[:8]}/{cid}"
    (bundle / "config.json").write_text(json.dumps(cfg, indent=2))
    return bundle


def cri_annotations(pod, namespace, name, image):
    return {"io.kubernetes.cri.container-type": "container",
            "io.kubernetes.cri.sandbox-name": pod, "io.kubernetes.cri.sandbox-namespace": namespace,
            "io.kubernetes.cri.container-name": name, "io.kubernetes.cri.image-name": image}


class Runc:
    """runc with a state root of the test's own."""

    def __init__(self, root: Path):
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.ids = []

    def argv(self, *args):
        return [RUNC, "--root", str(self.root), *args]

    def run_detached(self, cid, bundle: Path):
        log = bundle / "runc.log"
        with open(log, "wb") as f:
            r = subprocess.run(self.argv("run", "-d", "--bundle", str(bundle), cid), stdin=subprocess.DEVNULL,
                               stdout=f, stderr=subprocess.STDOUT, timeout=60)
        self.ids.append(cid)
        assert r.returncode == 0, log.read_text()

    def delete_all(self):
        for cid in self.ids:
            subprocess.run(self.argv("kill", cid, "KILL"), capture_output=True, timeout=30)
            for _ in range(50):
                if subprocess.run(self.argv("delete", "-f", cid), capture_output=True, timeout=30).returncode == 0:
                    break
                time.sleep(0.1)
        self.ids.clear()
