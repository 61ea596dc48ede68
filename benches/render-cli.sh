#!/usr/bin/env bash
# Wall time of the real CLI rendering each shipped example (process start, load, validate, render,
# write the tree and SHA256SUMS). Needs hyperfine (Debian package `hyperfine`).
#
#   benches/render-cli.sh           release build, 3 warm-up runs and 50 timed ones per example
#   benches/render-cli.sh --quick   one run per example, for the test suite: checks that each
#                                   rendered its tree, never how fast
# TERROIR_BIN runs that binary instead of building one.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = --quick ]; then quick=1; warmup=0; runs=1; else quick=; warmup=3; runs=50; fi
if [ -z "${TERROIR_BIN:-}" ]; then
  cargo build --release --quiet
  TERROIR_BIN=$PWD/target/release/terroir
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for ex in baremetal kubernetes secnumcloud-outscale; do
  hyperfine --warmup "$warmup" --runs "$runs" --style basic \
    "$TERROIR_BIN render examples/$ex.yaml --out $out/$ex"
  [ -s "$out/$ex/SHA256SUMS" ] || { echo "$ex: no SHA256SUMS in the rendered tree" >&2; exit 1; }
done
[ -z "$quick" ] || echo "render benchmark (quick): ran"
