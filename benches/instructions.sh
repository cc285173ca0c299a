#!/usr/bin/env bash
# Instructions per packet of each kind, counted by callgrind (valgrind):
# (instructions for N packets - instructions for none) / N, through the
# benchmark's own decider. Needs valgrind (apt install valgrind).
#   bash benches/instructions.sh [KIND ...]     # default: every kind
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "needs valgrind: apt install valgrind" >&2; exit 1; }
cargo build --release -q -p v6fw-benches --bin instructions
bin=${CARGO_TARGET_DIR:-target}/release/instructions
n=204800
kinds=("$@")
[ ${#kinds[@]} -gt 0 ] || mapfile -t kinds < <("$bin" --list)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ir() { # instructions of one run
  valgrind --tool=callgrind --callgrind-out-file="$tmp/out" "$bin" --kind "$1" --count "$2" \
    >/dev/null 2>"$tmp/err" || { cat "$tmp/err" >&2; exit 1; }
  awk '/^summary:/ { print $2 }' "$tmp/out"
}
for k in "${kinds[@]}"; do
  full=$(ir "$k" "$n")
  none=$(ir "$k" 0)
  awk -v k="$k" -v a="$full" -v b="$none" -v n="$n" \
    'BEGIN { printf "%-16s %6.1f instructions per packet\n", k, (a - b) / n }'
done
