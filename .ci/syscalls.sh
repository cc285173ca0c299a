#!/usr/bin/env bash
# CI step: every system call `v6fw run` makes (and the ip6tables it runs) is
# in the unit's SystemCallFilter=@system-service and none in its
# SystemCallFilter=~@privileged @resources, so the unit's filter cannot break
# it. systemd does not run here (no PID 1 to start the unit
# under), so the daemon runs under `strace -f` instead, in two network
# namespaces of this script's own: start, --metrics scraped, a policy change
# through the control socket, pings from the peer decided through NFQUEUE,
# SIGHUP, SIGTERM. Each system call seen must be in the set
# `systemd-analyze syscall-filter @system-service` expands to, and in neither
# @privileged nor @resources.
#
#   bash .ci/syscalls.sh [V6FW_BINARY]   (default target/release/v6fw)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(realpath "${1:-target/release/v6fw}")
if ! command -v strace >/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq strace
fi
id=$$
fw=v6fwsys-fw-$id peer=v6fwsys-peer-$id
dir=$(mktemp -d)
cleanup() {
  [ -n "${pid:-}" ] && kill -TERM "$pid" 2>/dev/null || true
  ip netns del "$fw" 2>/dev/null || true
  ip netns del "$peer" 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
ip netns add "$fw"; ip netns add "$peer"
ip link add "v6sa$id" netns "$fw" type veth peer name "v6sb$id" netns "$peer"
ip -n "$fw" addr add fd00::1/64 dev "v6sa$id" nodad
ip -n "$peer" addr add fd00::2/64 dev "v6sb$id" nodad
for ns in "$fw" "$peer"; do ip -n "$ns" link set lo up; done
ip -n "$fw" link set "v6sa$id" up; ip -n "$peer" link set "v6sb$id" up
v6fw() { ip netns exec "$fw" "$bin" "$@" --state-dir "$dir/state" --socket "$dir/control.sock"; }

ip netns exec "$fw" strace -f -qq -o "$dir/trace" "$bin" run --metrics --stats-interval 1 \
  --state-dir "$dir/state" --socket "$dir/control.sock" >"$dir/out" 2>"$dir/err" &
for _ in $(seq 200); do grep -q "filtering IPv6" "$dir/err" && break; sleep 0.1; done
grep -q "filtering IPv6" "$dir/err" || { cat "$dir/err"; echo "v6fw run did not start"; exit 1; }
pid=$(ip netns pids "$fw" | while read -r p; do
  [ "$(cat /proc/"$p"/comm)" = v6fw ] && echo "$p"; done | head -1)
v6fw ports open 8080/tcp >/dev/null
v6fw ports list >/dev/null
ip netns exec "$fw" python3 -c \
  'import urllib.request; urllib.request.urlopen("http://[::1]:9640/metrics", timeout=3).read()'
ip netns exec "$peer" ping -6 -c 3 -i 0.2 -W 1 fd00::1 >/dev/null || true
kill -HUP "$pid"; sleep 1.5
kill -TERM "$pid"
for _ in $(seq 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
pid=
wait || true
grep -q "stopped;" "$dir/err" || { cat "$dir/err"; echo "v6fw run did not stop cleanly"; exit 1; }
grep -Eq "packets=[1-9]" "$dir/out" "$dir/err" || { cat "$dir/out"; echo "no packet was decided"; exit 1; }

awk '{ sub(/^[0-9]+ +/, ""); if (match($0, /^[a-z_0-9]+\(/)) print substr($0, 1, RLENGTH-1) }' \
  "$dir/trace" | sort -u >"$dir/used"
allowed() { # the names a syscall-filter group expands to, groups within it too
  systemd-analyze syscall-filter "$1" | sed 's/^ *//' | grep -v '^#' | while read -r n; do
    case "$n" in ""|"$1") ;; @*) allowed "$n" ;; *) echo "$n" ;; esac
  done
}
allowed @system-service | sort -u >"$dir/allowed"
{ allowed @privileged; allowed @resources; } | sort -u >"$dir/denied"
missing=$(comm -23 "$dir/used" "$dir/allowed"; comm -12 "$dir/used" "$dir/denied")
[ -z "$missing" ] || { echo "refused by the unit's SystemCallFilter=: $missing"; exit 1; }
echo "syscalls: the $(wc -l <"$dir/used") distinct system calls seen all pass the unit's SystemCallFilter="
