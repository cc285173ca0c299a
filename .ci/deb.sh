#!/usr/bin/env bash
# CI step: builds the Debian package with cargo-deb (installed once, then
# cached in ~/.cargo/bin), installs it, checks the binary, the man page, the
# completions, the unit and the default policy, removes it (the files are gone,
# the conffile /etc/v6fw/policy.toml stays), purges it (the conffile is gone).
# Refuses to run where v6fw is already installed (package or /usr/bin/v6fw).
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
need=()
command -v dpkg-deb >/dev/null || need+=(dpkg)
command -v man >/dev/null || need+=(man-db)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  apt-get install -y -qq "${need[@]}"
fi
if dpkg -s v6fw >/dev/null 2>&1 || [ -e /usr/bin/v6fw ]; then
  echo "deb.sh: v6fw is already installed here (package or /usr/bin/v6fw); not touching it" >&2
  exit 1
fi
command -v cargo-deb >/dev/null || cargo install cargo-deb --locked
cargo build --release -p v6fw-api --bin v6fw
bash dist/deb/assets.sh target/release/v6fw
out=$(mktemp -d)
# A policy of a `sudo v6fw run` on this machine (not packaged) is set aside
# for the test and put back after it.
saved=
if [ -e /etc/v6fw ]; then saved="$out/etc-v6fw"; mv /etc/v6fw "$saved"; fi
cleanup() {
  dpkg -P v6fw >/dev/null 2>&1 || true
  if [ -n "$saved" ]; then rm -rf /etc/v6fw; mv "$saved" /etc/v6fw; fi
  rm -rf "$out"
}
trap cleanup EXIT
cargo deb -p v6fw-api --no-build --output "$out"
deb=$(ls "$out"/v6fw_*.deb)
echo "built $deb"
dpkg-deb --contents "$deb"

dpkg -i "$deb"
installed=(/usr/bin/v6fw /lib/systemd/system/v6fw.service
  /usr/share/man/man1/v6fw.1.gz /usr/share/man/man1/v6fw-run.1.gz
  /usr/share/bash-completion/completions/v6fw /usr/share/zsh/vendor-completions/_v6fw
  /usr/share/fish/vendor_completions.d/v6fw.fish /usr/share/doc/v6fw/copyright)
for f in "${installed[@]}"; do
  [ -e "$f" ] || { echo "deb.sh: $f is not installed" >&2; exit 1; }
done
# Outputs are captured first: `| grep -q` would close the pipe early.
version=$(/usr/bin/v6fw --version)
[ "$version" = "v6fw $(grep -m1 '^version' Cargo.toml | cut -d'"' -f2)" ] || { echo "deb.sh: $version" >&2; exit 1; }
[ "$(man -w v6fw)" = /usr/share/man/man1/v6fw.1.gz ]
[ "$(man -w v6fw-run)" = /usr/share/man/man1/v6fw-run.1.gz ]
grep -q '^ExecStart=/usr/bin/v6fw run' /lib/systemd/system/v6fw.service
grep -q ' ports ' /usr/share/bash-completion/completions/v6fw
dpkg-query -W -f='${Conffiles}\n' v6fw | grep -q /etc/v6fw/policy.toml
listed=$(/usr/bin/v6fw ports list --state-dir /etc/v6fw --socket "$out/none.sock")
grep -q '22/tcp .*ssh' <<<"$listed"
if systemctl is-enabled v6fw >/dev/null 2>&1; then
  echo "deb.sh: the package enabled v6fw.service; it must only ship it" >&2; exit 1
fi

dpkg -r v6fw
for f in "${installed[@]}"; do
  [ ! -e "$f" ] || { echo "deb.sh: $f is still there after dpkg -r" >&2; exit 1; }
done
[ -e /etc/v6fw/policy.toml ]   # a conffile stays until purge
dpkg -P v6fw
[ ! -e /etc/v6fw/policy.toml ] || { echo "deb.sh: the policy survived dpkg -P" >&2; exit 1; }
echo "deb.sh: $(basename "$deb") installs, works and removes cleanly"
