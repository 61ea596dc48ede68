#!/usr/bin/env bash
# Continuity drills on the high-availability test platform of tests/baremetal/ha.rs (three
# database members, two hosts with the MTA, monitoring and the application, S3 on h6, the SMTP
# relay, fallback relay and DNS resolvers on h7 and h8): ROUNDS runs of `terroir continuity` over
# every claim, and prints the whole drill's time and, per claim, the median times to detect (the
# fault in place until every probe of its degraded mode held) and to recover (the fault removed
# until every probe of nominal held), with their ranges.
#
#   benches/continuity.sh [ROUNDS]      (default 3; needs root, like the test hosts)
#
# The drill is the test itself (it checks that every claim holds); this script runs it ROUNDS
# times on one deployment and reads the report it copies to TERROIR_CONTINUITY_REPORT.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
reports=$(mktemp -d /tmp/terroir-bench-continuity.XXXXXX)
trap 'rm -rf "$reports"' EXIT
for round in $(seq "$ROUNDS"); do
  echo "round $round of $ROUNDS" >&2
  TERROIR_CONTINUITY_REPORT=$reports/$round.json cargo nextest run --test baremetal \
    --status-level fail -E \
    'test(=continuity::every_claim_holds_and_mail_sent_while_the_relay_is_cut_arrives_through_the_fallback)' >&2
done

python3 - "$reports" <<'PY'
import json, os, statistics, sys
runs = [json.load(open(os.path.join(sys.argv[1], f))) for f in sorted(os.listdir(sys.argv[1]))]
def span(xs):
    xs = [x for x in xs if x is not None]
    if not xs:
        return "-"
    return f"{statistics.median(xs):.1f} s ({min(xs):.1f}-{max(xs):.1f})"
total = [r["totalSeconds"] for r in runs]
print(f"whole drill, {len(runs)} runs: median {statistics.median(total):.1f} s ({min(total):.1f}-{max(total):.1f})\n")
print("| claim | fault | detect, median (range) | recover, median (range) |")
print("| --- | --- | --- | --- |")
for c in runs[0]["claims"]:
    same = [next(x for x in r["claims"] if x["name"] == c["name"]) for r in runs]
    kind = "stopped" if "stopped" in c["fault"] else "cut"
    print(f"| {c['name']} | {kind} | {span([x.get('detectSeconds') for x in same])} | {span([x.get('recoverSeconds') for x in same])} |")
PY
