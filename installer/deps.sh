#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs shaudit's build dependencies (and, with --test, its test dependencies) from
# Debian's packages. Sourced by quickstart.sh and test.sh.
set -euo pipefail
shaudit_install_deps() {
  local pkgs=(cmake ninja-build g++ pkg-config libssl-dev libyaml-cpp-dev libfmt-dev libpam0g-dev
    clang libbpf-dev bpftool libaudit-dev libcurl4-openssl-dev zlib1g-dev libre2-dev
    go-md2man python3 dpkg-dev file musl-tools musl-dev)
  if [ "${1:-}" = "--test" ]; then
    pkgs+=(clang libclang-rt-dev libgtest-dev libgmock-dev python3 python3-pytest python3-yaml util-linux
      bash dash zsh openssh-server openssh-client pamtester sudo passwd binutils busybox-static
      iputils-ping rsyslog rsyslog-openssl openssl auditd make debootstrap lintian systemd-container
      fakeroot systemd man-db yamllint umoci runc
      ksh mksh yash fish tcsh tmux screen sqlite3 bc gdb postgresql-client-15 openssh-sftp-server
      python3-protobuf protobuf-compiler)
    # kubectl for the Kubernetes manifests' test; any kubectl on PATH will do (another package
    # that provides one, such as the Kubernetes project's own `kubectl`, conflicts with it).
    command -v kubectl >/dev/null || pkgs+=(kubernetes-client)
    # containerd and ctr for test_containerd (a private instance; the system's is not used). Any
    # on PATH will do: Docker's containerd.io conflicts with Debian's package.
    { command -v containerd && command -v ctr; } >/dev/null || pkgs+=(containerd)
  fi
  local missing=()
  for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}"
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
  fi
}

# The kernel file systems shauditd reads: tracefs (the eBPF collector attaches syscall
# tracepoints, which libbpf finds through it) and securityfs (below).
shaudit_mount_kernel_fs() {
  if [ -d /sys/kernel/tracing ] && ! mountpoint -q /sys/kernel/tracing; then
    mount -t tracefs tracefs /sys/kernel/tracing || echo "note: could not mount tracefs" >&2
  fi
  # securityfs: the active LSM list (/sys/kernel/security/lsm) the enforcing mode checks for
  # `bpf` (systemd mounts it; a bare container or VM image may not).
  if [ -d /sys/kernel/security ] && ! mountpoint -q /sys/kernel/security; then
    mount -t securityfs securityfs /sys/kernel/security || echo "note: could not mount securityfs" >&2
  fi
}
