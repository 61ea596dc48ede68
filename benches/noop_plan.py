"""The plan terroir renders for bare metal (rendered/baremetal/plan.json), written as an Ansible
playbook and as a pyinfra deploy that bring the same hosts to the same state: packages, users,
directories, files, secrets (from the platform's store), the application's release, commands,
services. What terroir checks with a command of its own (a release's `current` link, a command's
guard, services without an init script) both tools check with the same command.

    python3 benches/noop_plan.py WORK STATE PLATFORM

WORK holds platform.yaml and rendered/; STATE is the test hosts' state (key, known_hosts).
Writes WORK/ansible/{site.yml,inventory.json,ansible.cfg} and WORK/pyinfra/{deploy.py,inventory.py}.
"""

import json
import os
import sys

work, state, platform = sys.argv[1:4]
plan = json.load(open(f"{work}/rendered/baremetal/plan.json"))
store = f"{work}/.terroir/{platform}/secrets"


def sh_quote(s):
    return "'" + s.replace("'", "'\\''") + "'"


def service_check(name):
    # terroir's own probe for services Debian 12 ships without an init script
    return {"nftables": "nft list table inet terroir", "rsyslog": "pidof rsyslogd"}.get(name)


hosts = {}
for h in plan["hosts"]:
    v = {"address": h["address"], "packages": [], "users": [], "dirs": [], "files": [], "checks": [], "services": []}
    for s in h["steps"]:
        k = s["kind"]
        if k == "packages":
            v["packages"] += s["names"]
        elif k == "user":
            v["users"].append({"name": s["name"], "system": s["system"], "home": s.get("home")})
        elif k == "directory":
            v["dirs"].append({k2: s[k2] for k2 in ("path", "owner", "group", "mode")})
        elif k == "file":
            src = f"{work}/rendered/baremetal/hosts/{h['name']}/{s['source']}"
            v["files"].append({"src": src, "dest": s["dest"], "owner": s["owner"], "group": s["group"], "mode": s["mode"]})
        elif k == "secret":
            src = f"{store}/{s['secret']}"
            assert os.path.exists(src), f"{src}: the store holds every secret once terroir applied"
            v["files"].append({"src": src, "dest": s["dest"], "owner": s["owner"], "group": s["group"], "mode": s["mode"]})
        elif k == "artifact":
            v["checks"].append(f"test \"$(readlink {sh_quote(s['dir'])}/current)\" = releases/{s['sha256']}")
        elif k == "command":
            check = f"[ -e {sh_quote(s['creates'])} ]" if s.get("creates") else s.get("unless", "false")
            v["checks"].append(check)
        elif k == "service":
            check = service_check(s["name"])
            if check:
                v["checks"].append(check)
            else:
                v["services"].append(s["name"])
        elif k == "firewall":
            pass  # enforced by /etc/nftables.conf (a file) and the nftables service, as terroir does
        else:
            raise SystemExit(f"step kind {k!r} has no Ansible or pyinfra form here: add one")
    hosts[h["name"]] = v

# Ansible: --check, one task per kind, looping over the host's items.
os.makedirs(f"{work}/ansible", exist_ok=True)
inventory = {"platform": {"hosts": {n: {"ansible_host": v["address"], **{k: v[k] for k in v if k != "address"}} for n, v in hosts.items()}}}
json.dump(inventory, open(f"{work}/ansible/inventory.json", "w"), indent=1)
play = [{
    "hosts": "platform", "become": True, "gather_facts": False,
    "tasks": [
        {"name": "packages", "ansible.builtin.apt": {"name": "{{ packages }}", "state": "present"}},
        {"name": "users", "ansible.builtin.user": {"name": "{{ item.name }}", "system": "{{ item.system }}", "home": "{{ item.home | default(omit, true) }}", "create_home": False}, "loop": "{{ users }}"},
        {"name": "directories", "ansible.builtin.file": {"path": "{{ item.path }}", "state": "directory", "owner": "{{ item.owner }}", "group": "{{ item.group }}", "mode": "{{ item.mode }}"}, "loop": "{{ dirs }}"},
        {"name": "files", "ansible.builtin.copy": {"src": "{{ item.src }}", "dest": "{{ item.dest }}", "owner": "{{ item.owner }}", "group": "{{ item.group }}", "mode": "{{ item.mode }}"}, "loop": "{{ files }}"},
        # checks that change nothing when they hold, run in check mode too
        {"name": "checks", "ansible.builtin.shell": "{{ item }}", "changed_when": False, "check_mode": False, "loop": "{{ checks }}"},
        {"name": "services", "ansible.builtin.service": {"name": "{{ item }}", "state": "started"}, "loop": "{{ services }}"},
    ],
}]
json.dump(play, open(f"{work}/ansible/site.yml", "w"), indent=1)
open(f"{work}/ansible/ansible.cfg", "w").write(f"""[defaults]
inventory = {work}/ansible/inventory.json
remote_user = deploy
private_key_file = {state}/id_ed25519
forks = 16
host_key_checking = True
interpreter_python = /usr/bin/python3
[ssh_connection]
ssh_args = -o UserKnownHostsFile={state}/known_hosts -o ControlMaster=auto -o ControlPersist=60s
pipelining = True
""")

# pyinfra: the same items as host data; operations read them.
os.makedirs(f"{work}/pyinfra", exist_ok=True)
with open(f"{work}/pyinfra/inventory.py", "w") as f:
    f.write("platform = [\n")
    for n, v in hosts.items():
        data = {k: v[k] for k in v if k != "address"}
        data.update({"ssh_hostname": v["address"], "ssh_user": "deploy", "ssh_key": f"{state}/id_ed25519",
                     "ssh_known_hosts_file": f"{state}/known_hosts", "ssh_strict_host_key_checking": "yes", "_sudo": True})
        f.write(f"    ({n!r}, {data!r}),\n")
    f.write("]\n")
open(f"{work}/pyinfra/deploy.py", "w").write('''\
from pyinfra import host
from pyinfra.facts.server import Command
from pyinfra.operations import apt, files, server, sysvinit

apt.packages(name="packages", packages=host.data.packages, present=True)
for u in host.data.users:
    server.user(name=f"user {u['name']}", user=u["name"], system=u["system"], home=u["home"], ensure_home=False)
for d in host.data.dirs:
    files.directory(name=f"directory {d['path']}", path=d["path"], user=d["owner"], group=d["group"], mode=d["mode"], present=True)
for f in host.data.files:
    files.put(name=f"file {f['dest']}", src=f["src"], dest=f["dest"], user=f["owner"], group=f["group"], mode=f["mode"])
for check in host.data.checks:
    # a fact, like terroir's probe: a failing check fails the deploy rather than changing anything
    assert host.get_fact(Command, command=f"( {check} ) >/dev/null 2>&1 && echo ok || echo no", _sudo=True) == "ok", check
for s in host.data.services:
    sysvinit.service(name=f"service {s}", service=s, running=True)
''')
print(f"{len(hosts)} hosts; " + ", ".join(f"{n}: {sum(len(v[k]) for k in ('packages', 'users', 'dirs', 'files', 'checks', 'services'))} items" for n, v in hosts.items()))
