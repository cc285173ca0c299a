#!/usr/bin/env bash
# CI step: `systemd-analyze verify` on the shipped unit, dist/systemd/v6fw.service.
# verify checks that ExecStart's binary exists, so a copy of the unit points at
# the freshly built v6fw instead of /usr/local/bin/v6fw, and its
# Documentation= pages (man:v6fw-run(1)) are generated into a MANPATH of their
# own. Installs systemd (for systemd-analyze) when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
command -v systemd-analyze >/dev/null || need+=(systemd)
command -v man >/dev/null || need+=(man-db)   # verify looks up Documentation=man:...
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need[@]}"
fi
cargo build --release -p v6fw-api --bin v6fw
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
sed "s|/usr/local/bin/v6fw|$PWD/target/release/v6fw|g" dist/systemd/v6fw.service >"$dir/v6fw.service"
grep -q '^Type=notify$' "$dir/v6fw.service"
grep -q '^Restart=always$' "$dir/v6fw.service"
grep -q '^ExecReload=/bin/kill -HUP \$MAINPID$' "$dir/v6fw.service"
grep -q '^ReadWritePaths=/etc/v6fw$' "$dir/v6fw.service"
target/release/v6fw man "$dir/man/man1" >/dev/null
for d in SystemCallFilter=@system-service ProtectProc=invisible IPAddressDeny=any \
    IPAddressAllow=localhost LimitNOFILE= TasksMax= MemoryMax=; do
  grep -q "^$d" "$dir/v6fw.service" || { echo "the unit lost $d"; exit 1; }
done
MANPATH="$dir/man" systemd-analyze verify "$dir/v6fw.service"
echo "systemd-analyze verify: dist/systemd/v6fw.service is valid"
systemd-analyze security --offline=yes "$dir/v6fw.service" | tail -n 1
# systemd itself cannot start the unit here; its system call filter is
# checked against what the daemon really calls, under strace.
bash .ci/syscalls.sh target/release/v6fw
