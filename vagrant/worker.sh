#!/usr/bin/env bash
# A worker: join the cluster with the command the control plane left in the shared folder.
set -euo pipefail
join=/vagrant/vagrant/join.sh
if [[ ! -s "$join" ]]; then
  echo "no $join: provision the control plane first (vagrant up cp)" >&2
  exit 1
fi
if [[ ! -f /etc/kubernetes/kubelet.conf ]]; then
  bash "$join" --node-name="$(hostname)"
fi
