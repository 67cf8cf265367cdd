#!/usr/bin/env bash
# Builds and installs shaudit under PREFIX (default /usr/local), creates a signing key,
# starts shauditd on its compiled-in default configuration and shows a signed, audited
# session. Run as root on Debian 12.
set -euo pipefail
cd "$(dirname "$0")/.."
PREFIX=${PREFIX:-/usr/local}
KEY=/etc/shaudit/signing.key
LOG=/var/log/shaudit/audit.jsonl
source installer/deps.sh
shaudit_install_deps

cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSHAUDIT_TESTS=OFF >/dev/null
cmake --build build -j"$(nproc)"
cmake --install build --prefix "$PREFIX" >/dev/null
echo "installed shauditd, shaudit, libshaudit under $PREFIX"

install -d -m 0700 /etc/shaudit
[ -f "$KEY" ] || "$PREFIX/bin/shaudit" keygen --out "$KEY"

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

# A small audited session reported through the C API (the path a custom shell uses).
"$PREFIX/bin/shaudit" emit line 'ls /bin' --shell demo
"$PREFIX/bin/shaudit" emit exec ls /bin
"$PREFIX/bin/shaudit" emit line 'mkdir /hellofalco' --shell demo
"$PREFIX/bin/shaudit" emit line 'echo "hello world" > example.txt' --shell demo
sleep 0.3   # one seal interval (100 ms) plus margin: the lines above are now signed

echo
echo "== the signed log: $LOG"
"$PREFIX/bin/shaudit" show "$LOG" | tail -n 8
echo
echo "== verification (live log; a stopped daemon's log verifies without --allow-open)"
"$PREFIX/bin/shaudit" verify "$LOG" --pubkey "$KEY.pub" --allow-open
echo
echo "look at it:   $PREFIX/bin/shaudit show $LOG [--follow] [--json]"
echo "verify it:    $PREFIX/bin/shaudit verify $LOG --pubkey $KEY.pub [--allow-open]"
echo "counters:     $PREFIX/bin/shaudit stats"
