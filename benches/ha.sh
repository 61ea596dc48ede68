#!/usr/bin/env bash
# High availability on the five test hosts of tests/baremetal/ha.rs (examples/baremetal-ha.yaml:
# three database members under Patroni and etcd, two hosts with the MTA, monitoring and the
# application): the first apply, then ROUNDS rounds of the three drills, each with a writer
# recording every acknowledged commit:
#   failover-host-cut         the primary's host cut off (network gone, processes killed)
#   failover-postgres-crash   PostgreSQL killed (-9) on the primary's live host
#   switchover                `terroir switchover`
# and prints, per drill, the median time without acknowledged writes (RTO) and the acknowledged
# writes lost (RPO), over the rounds.
#
#   benches/ha.sh [ROUNDS]      (default 5; needs root, like the test hosts)
#
# The drills are the tests themselves (they check that writes resume and that nothing
# acknowledged is lost); this script runs them ROUNDS times on one deployment and reads the
# figures they write to TERROIR_HA_RESULTS.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-5}
results=$(mktemp /tmp/terroir-bench-ha.XXXXXX)
trap 'rm -f "$results"' EXIT
export TERROIR_HA_RESULTS=$results

# a fresh deployment, whose first apply is measured (on hosts with the platform's packages
# installed, as the tests' hosts are: it configures, it does not download)
flock -o /run/terroir-test-hosts.lock tests/hosts/hostctl down
cargo nextest run --test baremetal --no-fail-fast --status-level fail \
  'ha::a_replicated_platform_applies_and_reports_one_leader_and_two_replicas' >&2
for round in $(seq "$ROUNDS"); do
  echo "round $round of $ROUNDS" >&2
  cargo nextest run --test baremetal --status-level fail -E \
    'test(=ha::a_primary_host_cut_off_fails_over_and_rejoins_as_a_replica) | test(=ha::postgres_crashing_on_the_primary_recovers_without_losing_a_write) | test(=ha::switchover_moves_the_primary_to_the_synchronous_standby)' >&2
done

python3 - "$results" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
first = [r["seconds"] for r in rows if r["measure"] == "first-apply"]
print("| drill | runs | RTO median (min-max) | RPO (acknowledged writes lost) |")
print("| --- | --- | --- | --- |")
for drill in ("failover-host-cut", "failover-postgres-crash", "switchover"):
    rs = [r for r in rows if r["measure"] == drill]
    if not rs:
        continue
    rto = [r["rtoSeconds"] for r in rs]
    rpo = [r["rpoRows"] for r in rs]
    print(f"| {drill} | {len(rs)} | {statistics.median(rto):.1f} s ({min(rto):.1f}-{max(rto):.1f}) | {max(rpo)} of {sum(r['acked'] for r in rs)} |")
if first:
    print(f"\nfirst apply of the five-host platform (packages preinstalled): {first[0]:.1f} s")
PY
