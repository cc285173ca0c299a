#!/usr/bin/env bash
# The Ansible example of docs/fleet.md (dist/ansible/): the playbook passes
# `ansible-playbook --syntax-check`, and its policy template, rendered by
# Ansible with the example variables, is a policy v6fw reads and decides the
# sample with as README's flags do. ansible-core comes from PyPI into a venv
# under target/ when it is not there yet.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=target/ansible-venv
# A venv is not relocatable: one whose scripts point to a Python elsewhere
# (a target/ moved or restored from another checkout) is made again.
if ! "$venv/bin/ansible-playbook" --version >/dev/null 2>&1; then
  rm -rf "$venv"
  if ! python3 -m venv "$venv"; then
    # Debian and Ubuntu ship venv separately.
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq python3-venv
    rm -rf "$venv"
    python3 -m venv "$venv"
  fi
  "$venv/bin/pip" install --quiet ansible-core
fi
export ANSIBLE_LOCALHOST_WARNING=False ANSIBLE_INVENTORY_UNPARSED_WARNING=False
"$venv/bin/ansible-playbook" --syntax-check \
  -i dist/ansible/inventory.example.ini dist/ansible/playbook.yml

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
# Rendered on this machine with the venv's own Python (not whatever python3
# is first on PATH).
if ! "$venv/bin/ansible" localhost -c local -i localhost, -m ansible.builtin.template \
  -e "ansible_python_interpreter=$PWD/$venv/bin/python" \
  -a "src=dist/ansible/templates/policy.toml.j2 dest=$out/policy.toml" \
  -e @dist/ansible/group_vars/v6fw.yml >"$out/ansible.log" 2>&1; then
  cat "$out/ansible.log"
  exit 1
fi
cargo build -q -p v6fw-api --bin v6fw
v6fw=target/debug/v6fw
# What the playbook's validate runs.
"$v6fw" check "$out/policy.toml" >/dev/null
"$v6fw" replay samples/sample.pcap --policy "$out/policy.toml" --connection eth0 \
  --local 2001:db8:1::/48 >"$out/summary"
# The example opens what README's flags open: the same decisions.
grep -q '^packets   28$' "$out/summary"
grep -q '^accepted  13$' "$out/summary"
echo "ansible: playbook syntax ok; the rendered policy decides the sample as README's flags do"
