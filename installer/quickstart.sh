#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Builds and installs shaudit under PREFIX (default /usr/local) with installer/install.sh
# (which creates a signing key), starts shauditd on its compiled-in default configuration and
# shows a signed, audited session. Run as root on Debian 12.
set -euo pipefail
cd "$(dirname "$0")/.."
PREFIX=${PREFIX:-/usr/local}
KEY=/etc/shaudit/signing.key
LOG=/var/log/shaudit/audit.jsonl
source installer/deps.sh
shaudit_mount_kernel_fs
shaudit_install_deps

# The host installer (installer/install.sh): files under PREFIX, /etc/shaudit (configuration,
# rules, a signing key when none exists), the systemd unit; no PAM change here (`--pam none`)
# and nothing started by it. `installer/install.sh --uninstall` takes it all away again.
installer/install.sh --prefix "$PREFIX" --build build-install --pam none --no-start

if [ -S /run/shaudit/control.sock ] && "$PREFIX/bin/shaudit" stats >/dev/null 2>&1; then
  echo "shauditd is already running"
else
  install -d -m 0755 /var/log/shaudit
  # No --config: shauditd uses its built-in default (see: shauditd --print-default-config).
  nohup "$PREFIX/sbin/shauditd" >>/var/log/shaudit/shauditd.stderr 2>&1 </dev/null &
  echo $! >/run/shauditd.pid
  for _ in $(seq 100); do [ -S /run/shaudit/shaudit.sock ] && break; sleep 0.05; done
  echo "started shauditd (pid $(cat /run/shauditd.pid)); stop it with: kill \$(cat /run/shauditd.pid)"
fi

# A real audited session: bash on a pseudo-terminal (util-linux `script`) with the
# interposer preloaded types the seed commands; the interactive shell opens an implicit
# session (with PAM, add `session required pam_shaudit.so preload=...` to a service instead).
DEMO=$(mktemp -d)
PRELOAD=$(find "$PREFIX" -name libshaudit_preload.so -path '*/lib*' | head -n 1)
printf '%s\n' 'ls /bin > /dev/null' "mkdir $DEMO/hellofalco" "cd $DEMO" \
  'echo "hello world" > example.txt' 'cat example.txt' 'exit' |
  script -q -c "env -i HOME=$DEMO TERM=dumb PS1='demo$ ' LD_PRELOAD=$PRELOAD bash --norc --noprofile -i" /dev/null >/dev/null
sleep 0.3   # one seal interval (100 ms) plus margin: the session is now signed
SESSION=$(grep -o '"session":"[0-9a-f]*"' "$LOG" | tail -n 1 | cut -d'"' -f4)
echo
echo "== the signed log: $LOG; the demo session as a tree:"
"$PREFIX/bin/shaudit" show "$LOG" --session "$SESSION" --tree
echo
echo "== verification (live log; a stopped daemon's log verifies without --allow-open)"
"$PREFIX/bin/shaudit" verify "$LOG" --pubkey "$KEY.pub" --allow-open
echo
echo "look at it:   $PREFIX/bin/shaudit show $LOG [--follow] [--json]"
echo "verify it:    $PREFIX/bin/shaudit verify $LOG --pubkey $KEY.pub [--allow-open]"
echo "sessions:     $PREFIX/bin/shaudit sessions $LOG"
echo "counters:     $PREFIX/bin/shaudit stats"
