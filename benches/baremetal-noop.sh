#!/usr/bin/env bash
# No-op re-apply on 10 test hosts, side by side in one run: `terroir apply`, the same plan as a
# pyinfra deploy (a real run that finds nothing to do) and as an Ansible playbook in check mode
# (benches/noop_plan.py writes both from the rendered plan). The hosts carry the real platform:
# a database host, a mail and monitoring host, and 8 hosts running the smoke application.
# Needs root and the test-host harness (tests/hosts/hostctl), hyperfine, and ansible-core and
# pyinfra (from PyPI, in the virtualenv $TERROIR_BENCH_VENV; installed here if missing).
#
#   benches/baremetal-noop.sh           10 hosts, release build, repeated runs, the figures
#   benches/baremetal-noop.sh --quick   3 hosts, one run of each tool, for the test suite: checks
#                                       that every tool ran and found nothing to change
# TERROIR_BIN runs that binary instead of building one; TERROIR_BENCH_HOSTS_UP=1 uses the test
# hosts that are up (whatever they run: the first apply configures them) and leaves them up.
# TERROIR_BASELINE_BIN=PATH also times that build of terroir on the same hosts and plan, paired
# with this one (before/after a change); TERROIR_BENCH_PEERS=0 then leaves pyinfra and Ansible out.
set -euo pipefail
cd "$(dirname "$0")/.."
quick=
[ "${1:-}" = --quick ] && quick=1
# terroir runs 10 times, the slower tools 5 (quick: once each, no warm-up)
if [ -n "$quick" ]; then N=3; runs=1; other_runs=1; warmup=0; else N=10; runs=10; other_runs=5; warmup=1; fi
venv=${TERROIR_BENCH_VENV:-/var/cache/terroir-bench/venv}
state=${TERROIR_HOSTS_STATE:-/run/terroir-test-hosts}
work=$(mktemp -d)
given=${TERROIR_BENCH_HOSTS_UP:-}
trap '[ -n "$given" ] || tests/hosts/hostctl down >/dev/null 2>&1 || true; rm -rf "$work"' EXIT

if [ -z "${TERROIR_BIN:-}" ]; then
  cargo build --release --quiet
  TERROIR_BIN=$PWD/target/release/terroir
fi
bin=$TERROIR_BIN
command -v hyperfine >/dev/null || { echo "hyperfine is needed (apt-get install hyperfine)" >&2; exit 1; }
if [ ! -x "$venv/bin/pyinfra" ] || [ ! -x "$venv/bin/ansible-playbook" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check 'ansible-core>=2.17,<2.18' 'pyinfra==3.10.0'
fi

[ -n "$given" ] || tests/hosts/hostctl up "$N" >/dev/null

# the smoke application as the release every app host runs (as the tests build it)
mkdir -p "$work/release/bin"
strip -o "$work/release/bin/terroir" "$bin"
printf '#!/bin/sh\nexec "$(dirname "$0")/terroir" smoke-app\n' > "$work/release/bin/crm"
chmod 755 "$work/release/bin/crm"
tar -I 'gzip -1' -cf "$work/smoke-app.tar.gz" -C "$work/release" bin
sha=$(sha256sum "$work/smoke-app.tar.gz" | cut -d' ' -f1)

# The bare-metal example spread over N hosts: database, MTA + monitoring, and N-2 app hosts.
# Backups off (their S3 storage is the client's) and no public name (its ACME CA is public).
python3 - "$state" "$N" "$work" "$sha" > "$work/platform.yaml" <<'PY'
import re, sys
state, n, work, sha = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
text = open("examples/baremetal.yaml").read()
text = text.replace("identityFile: ~/.ssh/terroir_ed25519", f"identityFile: {state}/id_ed25519")
text = text.replace("knownHostsFile: ./known_hosts", f"knownHostsFile: {state}/known_hosts")
text = re.sub(r"url: https://releases\.acme\.example\.fr/\S+", f"url: file://{work}/smoke-app.tar.gz", text)
text = re.sub(r"sha256: [0-9a-f]{64}", f"sha256: {sha}", text, count=1)
text = text.replace("    backups:\n", "    backups:\n      enabled: false\n")
text = re.sub(r"\n      publicHost: [^\n]*", "", text)
start = text.index("    acmeCa:\n")
end = text.index("      country: GR\n", start) + len("      country: GR\n")
text = text[:start] + text[end:]
start = text.index("      hosts:\n")
end = text.index("  components:")
hosts = "      hosts:\n        - {name: db1, address: 198.18.0.11, roles: [database]}\n        - {name: ops1, address: 198.18.0.12, roles: [mta, monitoring]}\n"
for i in range(3, n + 1):
    hosts += f"        - {{name: app{i}, address: 198.18.0.{10 + i}, roles: [app]}}\n"
print(text[:start] + hosts + text[end:], end="")
PY
grep -q 'enabled: false' "$work/platform.yaml" && ! grep -q 'publicHost\|acmeCa' "$work/platform.yaml"

"$bin" apply "$work/platform.yaml" >"$work/first-apply.log" 2>&1 || { cat "$work/first-apply.log" >&2; exit 1; }
"$bin" --output json apply "$work/platform.yaml" > "$work/second.json"
python3 - "$work/second.json" "$N" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
assert r["changed"] == 0 and len(r["hosts"]) == int(sys.argv[2]), r
apps = [h for h in r["hosts"] if h["name"].startswith("app")]
assert apps and all(any(s["id"].startswith("artifact:") for s in h["steps"]) for h in apps), "every app host runs the release"
print(f"terroir: converged, 0 changed on {len(r['hosts'])} hosts")
PY

baseline=${TERROIR_BASELINE_BIN:-}
if [ -n "$baseline" ]; then
  "$baseline" --output json apply "$work/platform.yaml" > "$work/baseline.json"
  python3 -c 'import json, sys; r = json.load(open(sys.argv[1])); assert r["changed"] == 0, r' "$work/baseline.json"
  hyperfine --warmup "$warmup" --runs "$runs" --style basic -n after "$bin apply $work/platform.yaml" \
    -n before "$baseline apply $work/platform.yaml"
  [ "${TERROIR_BENCH_PEERS:-1}" != 0 ] || exit 0
fi

# Ansible needs Python on the hosts (pyinfra needs nothing but a shell).
for i in $(seq "$N"); do
  tests/hosts/hostctl exec "h$i" sh -c 'cd / && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-apt >/dev/null 2>&1' &
done
wait

"$bin" render "$work/platform.yaml" --out "$work/rendered" >/dev/null
python3 benches/noop_plan.py "$work" "$state" acme-crm

# Each tool must find nothing to change, or the comparison is unfair.
export ANSIBLE_CONFIG=$work/ansible/ansible.cfg
"$venv/bin/ansible-playbook" --check "$work/ansible/site.yml" > "$work/ansible.log" 2>&1 || { cat "$work/ansible.log" >&2; exit 1; }
tail -n "$((N + 1))" "$work/ansible.log"
if grep -Eq 'changed=[1-9]|failed=[1-9]|unreachable=[1-9]' "$work/ansible.log"; then echo "ansible reports changes or failures: not comparable" >&2; exit 1; fi
[ "$(grep -c 'ok=[1-9]' "$work/ansible.log")" = "$N" ] || { echo "ansible did not run on $N hosts" >&2; exit 1; }
pyinfra=("$venv/bin/pyinfra" -y --parallel 16 "$work/pyinfra/inventory.py" "$work/pyinfra/deploy.py")
(cd "$work/pyinfra" && "${pyinfra[@]}") > "$work/pyinfra.log" 2>&1 || { cat "$work/pyinfra.log" >&2; exit 1; }
# pyinfra's closing table: per operation, the hosts where it succeeded (changed something),
# failed, or changed nothing; every operation must have changed nothing
awk '/Operation +Hosts +Success +Error +No Change/ { t = 1; next }
     t && NF >= 5 { rows++; if ($(NF-2) != "-" || $(NF-1) != "-") bad = bad "\n" $0 }
     END { if (!rows) { print "pyinfra printed no results" > "/dev/stderr"; exit 1 }
           if (bad != "") { print "pyinfra changed something: not comparable" bad > "/dev/stderr"; exit 1 }
           print "pyinfra: " rows " operations, nothing to change" }' "$work/pyinfra.log" || { cat "$work/pyinfra.log" >&2; exit 1; }

hyperfine --warmup "$warmup" --runs "$runs" --style basic --export-json "$work/terroir.json" \
  "$bin apply $work/platform.yaml"
(cd "$work/pyinfra" && hyperfine --warmup "$warmup" --runs "$other_runs" --style basic --export-json "$work/pyinfra.json" \
  "${pyinfra[*]}")
hyperfine --warmup "$warmup" --runs "$other_runs" --style basic --export-json "$work/ansible.json" \
  "$venv/bin/ansible-playbook --check $work/ansible/site.yml"
python3 - "$work" "$N" <<'PY'
import json, sys
w, n = sys.argv[1], sys.argv[2]
mean = lambda tool: json.load(open(f"{w}/{tool}.json"))["results"][0]["mean"]
t, p, a = mean("terroir"), mean("pyinfra"), mean("ansible")
print(f"no-op on {n} hosts: terroir apply {t:.3f} s, pyinfra {p:.3f} s, ansible-playbook --check {a:.3f} s")
print(f"terroir is {p / t:.1f}x faster than pyinfra and {a / t:.1f}x faster than Ansible; pyinfra is {a / p:.1f}x faster than Ansible")
PY
