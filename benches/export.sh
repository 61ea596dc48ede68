#!/usr/bin/env bash
# Export throughput on a database of at least 1 GB, against `pg_dump | sha256sum` on the same
# database in the same run.
#
#   benches/export.sh [SIZE_MB]      (default 1200; needs root, like the test hosts)
#   benches/export.sh --quick        20 MB, one run, for the test suite: checks that the export
#                                    and the restore ran, never how fast
# TERROIR_BIN runs that binary instead of building one; TERROIR_BENCH_HOSTS_UP=1 uses the test
# hosts that are up (whatever they run: the first apply configures them) and leaves them up.
#
# Brings up one test host (tests/hosts/hostctl), deploys the bare-metal example there with every
# role on it, fills the application's database with SIZE_MB of rows, then times, three times each
# and alternating:
#   baseline   on the host:  runuser -u postgres -- pg_dump DB | sha256sum
#   baseline   over SSH:     ssh HOST 'sudo runuser -u postgres -- pg_dump DB' | sha256sum
#   terroir    terroir export DOC --to DIR   (the whole export: dump, one CSV per table,
#              mail, metrics, configuration, every file hashed, manifest, SHA256SUMS)
# and prints the medians, the throughput (database size / time) and the ratio to the baseline.
set -euo pipefail
cd "$(dirname "$0")/.."
quick=
if [ "${1:-}" = --quick ]; then quick=1; SIZE_MB=20; RUNS=1; else SIZE_MB=${1:-1200}; RUNS=3; fi
STATE=${TERROIR_HOSTS_STATE:-/run/terroir-test-hosts}
work=$(mktemp -d /tmp/terroir-bench-export.XXXXXX)
given=${TERROIR_BENCH_HOSTS_UP:-}
trap '[ -n "$given" ] || tests/hosts/hostctl down >/dev/null 2>&1 || true; rm -rf "$work"' EXIT

if [ -z "${TERROIR_BIN:-}" ]; then
  cargo build --release --quiet
  TERROIR_BIN=$PWD/target/release/terroir
fi
bin=$TERROIR_BIN

[ -n "$given" ] || tests/hosts/hostctl up 2 >/dev/null

# the smoke application as the release archive
mkdir -p "$work/release/bin"
strip -o "$work/release/bin/terroir" "$bin"
printf '#!/bin/sh\nexec "$(dirname "$0")/terroir" smoke-app\n' > "$work/release/bin/crm"
chmod 755 "$work/release/bin/crm"
tar -I 'gzip -1' -cf "$work/smoke-app.tar.gz" -C "$work/release" bin
sha=$(sha256sum "$work/smoke-app.tar.gz" | cut -d' ' -f1)

# two one-host platforms: the one measured (h1) and the one restored into (h2)
python3 - "$work" "$STATE" "$sha" <<'PY'
import sys, re
work, state, sha = sys.argv[1:]
base = open("examples/baremetal.yaml").read()
# backups off (their S3 storage is the client's) and no public name (its ACME CA is public)
base = base.replace("    backups:\n", "    backups:\n      enabled: false\n")
base = re.sub(r"\n      publicHost: [^\n]*", "", base)
acme = base.index("    acmeCa:\n")
base = base[:acme] + base[base.index("      country: GR\n", acme) + len("      country: GR\n"):]
start, end = base.index("      hosts:\n"), base.index("  components:\n")
for file, name, host, addr in [("platform.yaml", "acme-crm", "db1", "198.18.0.11"), ("next.yaml", "acme-crm-next", "next1", "198.18.0.12")]:
    t = base[:start] + f"      hosts:\n        - name: {host}\n          address: {addr}\n          roles: [database, mta, monitoring, app]\n" + base[end:]
    t = t.replace("  name: acme-crm\n", f"  name: {name}\n")
    t = t.replace("identityFile: ~/.ssh/terroir_ed25519", f"identityFile: {state}/id_ed25519")
    t = t.replace("knownHostsFile: ./known_hosts", f"knownHostsFile: {state}/known_hosts")
    t = re.sub(r"url: https://releases\.acme\.example\.fr/\S+", f"url: file://{work}/smoke-app.tar.gz", t)
    t = re.sub(r"sha256: [0-9a-f]{64}", f"sha256: {sha}", t)
    open(f"{work}/{file}", "w").write(t)
PY
doc=$work/platform.yaml
"$bin" apply "$doc" >"$work/apply-a.log" 2>&1 &
a=$!
"$bin" apply "$work/next.yaml" >"$work/apply-b.log" 2>&1 || { cat "$work/apply-b.log" >&2; exit 1; }
wait "$a" || { cat "$work/apply-a.log" >&2; exit 1; }

host() { tests/hosts/hostctl exec h1 sh -c "cd / && $1"; }
echo "filling the database with about $SIZE_MB MB..." >&2
rows=$((SIZE_MB * 1024 * 1024 / 190))
host "runuser -u postgres -- psql -q -v ON_ERROR_STOP=1 -d crm -c 'set role crm' -c \"
  create table events (id bigint primary key, customer bigint not null, kind text not null, at timestamptz not null, payload text);
  insert into events select i, i % 100000, (array['mail','call','chat','visit'])[1 + i % 4], timestamptz '2026-01-01' + i * interval '1 second',
    md5(i::text) || ' ' || md5((i * 7)::text) || ' ' || repeat('x', (i % 40)) from generate_series(1, $rows) i;
  create table customers (id bigint primary key, name text, email text);
  insert into customers select i, 'Client ' || i, 'c' || i || '@example.fr' from generate_series(1, 100000) i;
\" -c 'vacuum analyze'"
db_bytes=$(host "runuser -u postgres -- psql -XAtd crm -c 'select pg_database_size(current_database())'")
dump_bytes=$(host "runuser -u postgres -- pg_dump crm | wc -c")
echo "database: $db_bytes bytes on disk, $dump_bytes bytes as a plain dump" >&2

key=$STATE/id_ed25519
ssh_opts=(-i "$key" -o UserKnownHostsFile="$STATE/known_hosts" -o StrictHostKeyChecking=yes -o BatchMode=yes)
now() { date +%s.%N; }
declare -a base over tr
for i in $(seq "$RUNS"); do
  t0=$(now); host "runuser -u postgres -- pg_dump crm | sha256sum" >/dev/null; t1=$(now)
  base+=("$(echo "$t1 - $t0" | bc)")
  t0=$(now); ssh "${ssh_opts[@]}" deploy@198.18.0.11 'sudo -n runuser -u postgres -- pg_dump crm' | sha256sum >/dev/null; t1=$(now)
  over+=("$(echo "$t1 - $t0" | bc)")
  rm -rf "$work/export"
  t0=$(now); "$bin" export "$doc" --to "$work/export" >"$work/export.log" 2>&1 || { cat "$work/export.log" >&2; exit 1; }; t1=$(now)
  tr+=("$(echo "$t1 - $t0" | bc)")
done
# one restore of the last export into the second platform (digest check, then the load)
t0=$(now); "$bin" --output json restore "$work/next.yaml" --from "$work/export" --replace > "$work/restore.json"; t1=$(now)
restore_total=$(echo "$t1 - $t0" | bc)
restore_load=$(python3 -c "import json,sys; r=json.load(open(sys.argv[1]))['report']; print(r['restoreSeconds'], r['verifySeconds'], [a['seconds'] for a in r['actions'] if a['what']=='database'][0])" "$work/restore.json")
median() { printf '%s\n' "$@" | sort -n | sed -n "$(( ($# + 1) / 2 ))p"; }
b=$(median "${base[@]}"); o=$(median "${over[@]}"); e=$(median "${tr[@]}")
mbps() { echo "scale=1; $1 / 1000000 / $2" | bc; }
echo
echo "database size (pg_database_size): $((db_bytes / 1000000)) MB; plain dump: $((dump_bytes / 1000000)) MB; export: $(du -sb "$work/export" | cut -f1 | awk '{print int($1/1000000)}') MB"
printf '%-44s %8s s  %8s MB/s\n' "pg_dump | sha256sum (on the host)" "$b" "$(mbps "$db_bytes" "$b")"
printf '%-44s %8s s  %8s MB/s\n' "ssh pg_dump | sha256sum (from here)" "$o" "$(mbps "$db_bytes" "$o")"
printf '%-44s %8s s  %8s MB/s\n' "terroir export (dump + CSV + all, hashed)" "$e" "$(mbps "$db_bytes" "$e")"
echo "terroir export / on-host baseline: $(echo "scale=0; 100 * $b / $e" | bc)% of its throughput (goal: at least 90%)"
read -r rs vs dbs <<<"$restore_load"
echo "terroir restore into a second host: $restore_total s in all (verify $vs s, restore $rs s of which the database load $dbs s: $(mbps "$db_bytes" "$dbs") MB/s of database)"
echo "runs: baseline ${base[*]}; over ssh ${over[*]}; terroir ${tr[*]}"
if [ -n "$quick" ]; then
  # it ran: the export is complete and the restore loaded the database
  [ -s "$work/export/SHA256SUMS" ] || { echo "the export wrote no SHA256SUMS" >&2; exit 1; }
  python3 -c "import json,sys; r=json.load(open(sys.argv[1])); assert r['report']['actions'], r" "$work/restore.json"
  echo "export benchmark (quick): ran"
fi
