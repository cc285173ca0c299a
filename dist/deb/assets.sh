#!/usr/bin/env bash
# Generates what the Debian package ships besides the binary, from the binary
# itself, into dist/deb/out/ (git-ignored; api/Cargo.toml's [package.metadata.deb]
# lists them): the man pages (`v6fw man`), the bash/zsh/fish completions
# (`v6fw completions`) and the systemd unit with the package's binary path.
# Usage: dist/deb/assets.sh [V6FW_BINARY]   (default target/release/v6fw)
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${1:-target/release/v6fw}
out=dist/deb/out
rm -rf "$out"
mkdir -p "$out/man" "$out/completions"
"$bin" man "$out/man" >/dev/null
"$bin" completions bash >"$out/completions/v6fw"
"$bin" completions zsh >"$out/completions/_v6fw"
"$bin" completions fish >"$out/completions/v6fw.fish"
sed 's|/usr/local/bin/v6fw|/usr/bin/v6fw|g' dist/systemd/v6fw.service >"$out/v6fw.service"
grep -q '^ExecStart=/usr/bin/v6fw run' "$out/v6fw.service"
echo "deb assets in $out: $(ls "$out/man" | wc -l) man pages, 3 completions, the unit"
