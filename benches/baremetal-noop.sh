#!/usr/bin/env bash
# No-op re-apply on 10 test hosts: `terroir apply` against an equivalent Ansible playbook run in
# check mode (same hosts, same files, packages and services). Needs root, the test-host harness
# (tests/hosts/hostctl), hyperfine, and ansible-core (installed from PyPI here if missing).
# Usage: benches/baremetal-noop.sh
set -euo pipefail
cd "$(dirname "$0")/.."
N=10
work=$(mktemp -d)
trap 'tests/hosts/hostctl down >/dev/null 2>&1 || true; rm -rf "$work"' EXIT

cargo build --release --quiet
command -v hyperfine >/dev/null || { echo "hyperfine is needed (apt-get install hyperfine)" >&2; exit 1; }
command -v ansible-playbook >/dev/null || python3 -m pip install --quiet 'ansible-core>=2.17,<2.18'

tests/hosts/hostctl up "$N" >/dev/null
state=${TERROIR_HOSTS_STATE:-/run/terroir-test-hosts}

# The bare-metal example spread over N hosts: database, MTA + monitoring, and N-2 app hosts.
python3 - "$state" "$N" > "$work/platform.yaml" <<'PY'
import sys
state, n = sys.argv[1], int(sys.argv[2])
text = open("examples/baremetal.yaml").read()
text = text.replace("identityFile: ~/.ssh/terroir_ed25519", f"identityFile: {state}/id_ed25519")
text = text.replace("knownHostsFile: ./known_hosts", f"knownHostsFile: {state}/known_hosts")
text = text.replace("    app:\n      artifact:", "    app:\n      enabled: false\n      artifact:")
start = text.index("      hosts:\n")
end = text.index("  components:")
hosts = "      hosts:\n        - {name: db1, address: 198.18.0.11, roles: [database]}\n        - {name: ops1, address: 198.18.0.12, roles: [mta, monitoring]}\n"
for i in range(3, n + 1):
    hosts += f"        - {{name: app{i}, address: 198.18.0.{10 + i}, roles: [app]}}\n"
print(text[:start] + hosts + text[end:], end="")
PY

target/release/terroir apply "$work/platform.yaml" >/dev/null 2>&1 || target/release/terroir apply "$work/platform.yaml"
target/release/terroir --output json apply "$work/platform.yaml" | python3 -c 'import json,sys; r=json.load(sys.stdin); assert r["changed"] == 0, r; print("converged: 0 changed on", len(r["hosts"]), "hosts")'

# Ansible needs Python on the hosts.
for i in $(seq "$N"); do tests/hosts/hostctl exec "h$i" sh -c 'cd / && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-apt >/dev/null 2>&1'; done

# The same plan as an Ansible playbook: packages, users, directories, files, services.
target/release/terroir render "$work/platform.yaml" --out "$work/rendered" >/dev/null
python3 - "$work" > "$work/site.yml" <<'PY'
import json, sys
work = sys.argv[1]
plan = json.load(open(f"{work}/rendered/baremetal/plan.json"))
hosts = {}
for h in plan["hosts"]:
    v = {"ansible_host": h["address"], "pkgs": [], "users": [], "dirs": [], "files": [], "svcs": []}
    for s in h["steps"]:
        k = s["kind"]
        if k == "packages":
            v["pkgs"] = s["names"]
        elif k == "user":
            v["users"].append({"name": s["name"], "system": s["system"], "home": s.get("home")})
        elif k == "directory":
            v["dirs"].append({k2: s[k2] for k2 in ("path", "owner", "group", "mode")})
        elif k == "file":
            v["files"].append({"src": f"{work}/rendered/baremetal/hosts/{h['name']}/{s['source']}", "dest": s["dest"], "owner": s["owner"], "group": s["group"], "mode": s["mode"]})
        elif k == "service" and s["name"] != "nftables":
            v["svcs"].append(s["name"])
    hosts[h["name"]] = v
json.dump({"platform": {"hosts": hosts}}, open(f"{work}/inventory.json", "w"), indent=1)
play = [{
    "hosts": "platform", "become": True, "gather_facts": False,
    "tasks": [
        {"name": "packages", "ansible.builtin.apt": {"name": "{{ pkgs }}", "state": "present"}},
        {"name": "users", "ansible.builtin.user": {"name": "{{ item.name }}", "system": "{{ item.system }}", "home": "{{ item.home }}"}, "loop": "{{ users }}"},
        {"name": "directories", "ansible.builtin.file": {"path": "{{ item.path }}", "state": "directory", "owner": "{{ item.owner }}", "group": "{{ item.group }}", "mode": "{{ item.mode }}"}, "loop": "{{ dirs }}"},
        {"name": "files", "ansible.builtin.copy": {"src": "{{ item.src }}", "dest": "{{ item.dest }}", "owner": "{{ item.owner }}", "group": "{{ item.group }}", "mode": "{{ item.mode }}"}, "loop": "{{ files }}"},
        {"name": "services", "ansible.builtin.service": {"name": "{{ item }}", "state": "started"}, "loop": "{{ svcs }}"},
    ],
}]
print(json.dumps(play, indent=1))
PY
cat > "$work/ansible.cfg" <<CFG
[defaults]
inventory = $work/inventory.json
remote_user = deploy
private_key_file = $state/id_ed25519
forks = 16
host_key_checking = True
interpreter_python = /usr/bin/python3
[ssh_connection]
ssh_args = -o UserKnownHostsFile=$state/known_hosts -o ControlMaster=auto -o ControlPersist=60s
pipelining = True
CFG
ANSIBLE_CONFIG=$work/ansible.cfg ansible-playbook --check "$work/site.yml" | tail -n "$((N + 2))"
# the playbook must find nothing to change either, or the comparison is unfair
ANSIBLE_CONFIG=$work/ansible.cfg ansible-playbook --check "$work/site.yml" | grep -q 'changed=[1-9]' && { echo "ansible reports changes: not comparable" >&2; exit 1; }

hyperfine --warmup 1 --runs 10 --style basic --export-json "$work/terroir.json" \
  "target/release/terroir apply $work/platform.yaml"
ANSIBLE_CONFIG=$work/ansible.cfg hyperfine --warmup 1 --runs 5 --style basic --export-json "$work/ansible.json" \
  "ansible-playbook --check $work/site.yml"
python3 - "$work" <<'PY'
import json, sys
w = sys.argv[1]
t = json.load(open(f"{w}/terroir.json"))["results"][0]["mean"]
a = json.load(open(f"{w}/ansible.json"))["results"][0]["mean"]
print(f"no-op on 10 hosts: terroir apply {t:.3f} s, ansible-playbook --check {a:.3f} s: terroir is {a / t:.1f}x faster")
PY
