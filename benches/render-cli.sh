#!/usr/bin/env bash
# Wall time of the real CLI rendering each shipped example (process start, load, validate, render,
# write the tree and SHA256SUMS). Needs hyperfine (Debian package `hyperfine`).
# Usage: benches/render-cli.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for ex in baremetal kubernetes secnumcloud-outscale; do
  hyperfine --warmup 3 --runs 50 --style basic \
    "target/release/terroir render examples/$ex.yaml --out $out/$ex"
done
