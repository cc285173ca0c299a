#!/usr/bin/env bash
# CI step: `systemd-analyze verify` on the shipped unit, dist/systemd/v6fw.service.
# verify checks that ExecStart's binary exists, so a copy of the unit points at
# the freshly built v6fw instead of /usr/local/bin/v6fw. Installs systemd (for
# systemd-analyze) when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v systemd-analyze >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq systemd
fi
cargo build --release -p v6fw-api --bin v6fw
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
sed "s|/usr/local/bin/v6fw|$PWD/target/release/v6fw|g" dist/systemd/v6fw.service >"$dir/v6fw.service"
grep -q '^Type=notify$' "$dir/v6fw.service"
grep -q '^Restart=always$' "$dir/v6fw.service"
grep -q '^ExecReload=/bin/kill -HUP \$MAINPID$' "$dir/v6fw.service"
systemd-analyze verify "$dir/v6fw.service"
echo "systemd-analyze verify: dist/systemd/v6fw.service is valid"
