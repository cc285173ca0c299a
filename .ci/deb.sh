#!/usr/bin/env bash
# CI step: builds the Debian package with cargo-deb (installed once, then
# cached in ~/.cargo/bin) twice (the second with a higher version, for an
# upgrade), and walks it through its life, checking each step:
#   install  files in place; the default policy copied from /usr/share/v6fw
#            into /etc/v6fw (no conffile); the unit enabled, not started
#   edit     the admin changes the policy (a comment and `v6fw ports open`)
#   upgrade  to the rebuilt package: the admin's policy untouched, no
#            conffile question, the unit still enabled
#   remove   `dpkg -r` stops a running daemon (it takes its rules away) and
#            removes rules a killed daemon left; the policy stays
#   purge    the policy, the log and the unit's enablement are gone
# The daemon runs in a network namespace of this script's own (its rules go
# there, never into this machine's), and dpkg runs in that namespace too, so
# the package's prerm finds it. Where systemd is not PID 1 (a container),
# systemctl is skipped by the scripts and here; the enablement is checked
# through deb-systemd-helper's symlinks, and the stop on removal through
# prerm's SIGTERM to the daemon's instance lock. The script says which it did.
# Refuses to run where v6fw is already installed (package or /usr/bin/v6fw).
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
need=()
command -v dpkg-deb >/dev/null || need+=(dpkg)
command -v man >/dev/null || need+=(man-db)
command -v deb-systemd-helper >/dev/null || need+=(init-system-helpers)
command -v ip6tables >/dev/null || need+=(iptables)
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
ns=v6fwdeb$$
pid=
fail() { echo "deb.sh: $*" >&2; exit 1; }
# A policy of a `sudo v6fw run` on this machine (not packaged) is set aside
# for the test and put back after it.
saved=
if [ -e /etc/v6fw ]; then saved="$out/etc-v6fw"; mv /etc/v6fw "$saved"; fi
cleanup() {
  if [ -n "$pid" ]; then kill -9 "$pid" 2>/dev/null || true; fi
  dpkg -P v6fw >/dev/null 2>&1 || true
  ip netns del "$ns" 2>/dev/null || true
  if [ -n "$saved" ]; then rm -rf /etc/v6fw; mv "$saved" /etc/v6fw; fi
  rm -rf "$out"
}
trap cleanup EXIT
version=$(grep -m1 '^version' Cargo.toml | cut -d'"' -f2)
mkdir "$out/v1" "$out/v2"
cargo deb -p v6fw-api --no-build --output "$out/v1"
cargo deb -p v6fw-api --no-build --deb-version "$version+ci1" --output "$out/v2"
deb1=$(ls "$out"/v1/v6fw_*.deb)
deb2=$(ls "$out"/v2/v6fw_*.deb)
echo "built $deb1 and $deb2"
dpkg-deb --contents "$deb1"
dpkg-deb --info "$deb1" | grep -E 'postinst|prerm|postrm' || fail "the package has no maintainer scripts"

systemd=no
[ -d /run/systemd/system ] && systemd=yes
echo "deb.sh: systemd running as PID 1: $systemd"
wants=/etc/systemd/system/multi-user.target.wants/v6fw.service
v6fw_version() { dpkg-query -W -f='${Version}' v6fw; }

# --- install ---------------------------------------------------------------
dpkg -i "$deb1" </dev/null
installed=(/usr/bin/v6fw /lib/systemd/system/v6fw.service
  /usr/share/man/man1/v6fw.1.gz /usr/share/man/man1/v6fw-run.1.gz
  /usr/share/bash-completion/completions/v6fw /usr/share/zsh/vendor-completions/_v6fw
  /usr/share/fish/vendor_completions.d/v6fw.fish /usr/share/doc/v6fw/copyright
  /usr/share/v6fw/policy.toml)
for f in "${installed[@]}"; do
  [ -e "$f" ] || fail "$f is not installed"
done
# Outputs are captured first: `| grep -q` would close the pipe early.
got=$(/usr/bin/v6fw --version)
[ "$got" = "v6fw $version" ] || fail "$got"
[ "$(man -w v6fw)" = /usr/share/man/man1/v6fw.1.gz ]
[ "$(man -w v6fw-run)" = /usr/share/man/man1/v6fw-run.1.gz ]
grep -q '^ExecStart=/usr/bin/v6fw run' /lib/systemd/system/v6fw.service
grep -q ' ports ' /usr/share/bash-completion/completions/v6fw
cmp /usr/share/v6fw/policy.toml /etc/v6fw/policy.toml || fail "the default policy was not installed into /etc/v6fw"
[ -z "$(dpkg-query -W -f='${Conffiles}' v6fw)" ] || fail "the package has conffiles: $(dpkg-query -W -f='${Conffiles}' v6fw)"
[ -L "$wants" ] || fail "the unit was not enabled on install ($wants)"
if [ "$systemd" = yes ]; then
  [ "$(systemctl is-enabled v6fw)" = enabled ] || fail "systemctl: not enabled"
  ! systemctl is-active --quiet v6fw || fail "the unit was started on install"
fi
listed=$(/usr/bin/v6fw ports list --state-dir /etc/v6fw)
grep -q '22/tcp .*ssh' <<<"$listed" || fail "$listed"
echo "deb.sh: install checked"

# --- the admin edits the policy ----------------------------------------------
echo '# kept by the admin' >>/etc/v6fw/policy.toml
/usr/bin/v6fw ports open 8443/tcp --name admin --state-dir /etc/v6fw
grep -q '# kept by the admin' /etc/v6fw/policy.toml || fail "the change lost the admin's comment"
cp /etc/v6fw/policy.toml "$out/edited.toml"

# --- a daemon runs (in a namespace of ours) ------------------------------------
daemon=no
start_daemon() {
  : >"$out/run.err"
  ip netns exec "$ns" /usr/bin/v6fw run --socket "$out/ns.sock" >/dev/null 2>"$out/run.err" &
  pid=$!
  for _ in $(seq 100); do
    grep -q 'filtering IPv6' "$out/run.err" && return 0
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  cat "$out/run.err" >&2
  fail "v6fw run did not start in $ns"
}
rules_in_ns() { ip netns exec "$ns" ip6tables-save 2>/dev/null | grep -c 'V6FW-' || true; }
if ip netns add "$ns" 2>/dev/null; then
  ip netns exec "$ns" ip link set lo up
  if ip netns exec "$ns" ip6tables -w -N V6FWDEBPROBE 2>/dev/null \
    && ip netns exec "$ns" ip6tables -w -A V6FWDEBPROBE -j NFQUEUE --queue-num 0 2>/dev/null; then
    ip netns exec "$ns" ip6tables -w -F V6FWDEBPROBE
    ip netns exec "$ns" ip6tables -w -X V6FWDEBPROBE
    daemon=yes
  fi
fi
if [ "$daemon" = yes ]; then
  start_daemon
  [ "$(rules_in_ns)" -gt 0 ] || fail "the daemon installed no rules in $ns"
  echo "deb.sh: a daemon runs in $ns (pid $pid)"
else
  echo "deb.sh: no network namespace with an NFQUEUE target here: the daemon steps are NOT exercised"
fi
in_ns() { if [ "$daemon" = yes ]; then ip netns exec "$ns" "$@"; else "$@"; fi; }

# --- upgrade -------------------------------------------------------------------
in_ns dpkg -i "$deb2" </dev/null
[ "$(v6fw_version)" = "$version+ci1" ] || fail "the upgrade left version $(v6fw_version)"
cmp "$out/edited.toml" /etc/v6fw/policy.toml || fail "the upgrade changed the admin's policy"
[ -L "$wants" ] || fail "the unit is no longer enabled after the upgrade"
if [ "$daemon" = yes ]; then
  kill -0 "$pid" 2>/dev/null || fail "the upgrade stopped the daemon (it is restarted only by systemd)"
fi
echo "deb.sh: upgrade checked"

# --- remove: no daemon left, no rules left ------------------------------------
in_ns dpkg -r v6fw </dev/null
for f in "${installed[@]}"; do
  [ ! -e "$f" ] || fail "$f is still there after dpkg -r"
done
cmp "$out/edited.toml" /etc/v6fw/policy.toml || fail "dpkg -r changed the policy"
if [ "$daemon" = yes ]; then
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  ! kill -0 "$pid" 2>/dev/null || fail "the daemon still runs after dpkg -r"
  wait "$pid" || fail "the daemon stopped with an error: $(cat "$out/run.err")"
  pid=
  [ "$(rules_in_ns)" -eq 0 ] || fail "rules left after dpkg -r"
  # A daemon killed outright leaves its rules: dpkg -r takes them away.
  in_ns dpkg -i "$deb2" </dev/null
  start_daemon
  kill -9 "$pid"; wait "$pid" 2>/dev/null || true; pid=
  [ "$(rules_in_ns)" -gt 0 ] || fail "a killed daemon left no rules to test with"
  in_ns dpkg -r v6fw </dev/null
  [ "$(rules_in_ns)" -eq 0 ] || fail "dpkg -r left a killed daemon's rules"
  echo "deb.sh: dpkg -r stopped the daemon and removed its rules, and a killed daemon's"
fi
echo "deb.sh: remove checked"

# --- purge ------------------------------------------------------------------------
dpkg -P v6fw </dev/null
[ ! -e /etc/v6fw/policy.toml ] || fail "the policy survived dpkg -P"
[ ! -e "$wants" ] || fail "the unit's enablement survived dpkg -P"
[ ! -e /var/log/v6fw ] || fail "the log survived dpkg -P"
echo "deb.sh: $(basename "$deb1") installs, upgrades to $(basename "$deb2"), removes and purges cleanly" \
  "(systemd running: $systemd; daemon steps: $daemon)"
