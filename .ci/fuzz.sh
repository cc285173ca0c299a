#!/usr/bin/env bash
# Runs each fuzz target for SECONDS (default 60) on nightly, one at a
# time. Exits non-zero on the first crash, printing the reproducer's path and
# hex. New inputs go to a scratch corpus; the committed seeds in
# fuzz/corpus/<target>/ are read, never written.
#
#   bash .ci/fuzz.sh [SECONDS] [TARGET...]
#
# cargo-fuzz itself builds on stable (`cargo install cargo-fuzz --locked`);
# only the targets need nightly (-Zsanitizer). Both are installed if missing.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(decide parse_vs_etherparse policy_ops control_request capture_file http_head)
fi

rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
cd fuzz
for t in "${targets[@]}"; do
  echo "--- fuzz target $t: ${seconds}s"
  mkdir -p "$scratch/$t" "artifacts/$t"
  log="$scratch/$t.log"
  if ! cargo +nightly fuzz run "$t" "$scratch/$t" "corpus/$t" -- \
      -max_total_time="$seconds" -print_final_stats=1 >"$log" 2>&1; then
    tail -n 40 "$log"
    echo "FUZZ FAILURE in target $t"
    for f in "artifacts/$t"/*; do
      [ -f "$f" ] || continue
      echo "reproducer: fuzz/$f"
      echo "hex: $(od -An -v -tx1 "$f" | tr -d ' \n')"
    done
    echo "replay it: cd fuzz && cargo +nightly fuzz run $t <reproducer>"
    exit 1
  fi
  grep -E '^(stat::number_of_executed_units|stat::average_exec_per_sec|stat::peak_rss_mb)' "$log" || true
  grep -E '^Done [0-9]+ runs' "$log" || true
  echo "corpus: $(find "$scratch/$t" "corpus/$t" -type f | wc -l) files (committed seeds + new)"
done
echo "fuzz: all targets ran ${seconds}s without a crash"
