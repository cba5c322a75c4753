#!/usr/bin/env bash
# A worker: waits for the control plane (libvirt provisions the VMs side by side; VirtualBox in order),
# with a deadline and a message that says what to do, takes podwire's image from it, and joins with the
# lab's fixed token — no join command travels through a shared folder. ROOT: see common.sh.
set -euo pipefail
: "${CP_IP:?CP_IP must be set}"
: "${LAB_TOKEN:?LAB_TOKEN must be set (the Vagrantfile sets it)}"
: "${WAIT_SECONDS:=1200}"
: "${ROOT:=}"

wait_for() {
  local what=$1 url=$2 end=$((SECONDS + WAIT_SECONDS))
  until curl -fsk -o /dev/null "$url"; do
    if ((SECONDS >= end)); then
      echo "$(hostname): ${what} (${url}) did not answer within ${WAIT_SECONDS} s: is the control plane up? Run 'vagrant up cp', then 'vagrant provision $(hostname)'" >&2
      exit 1
    fi
    sleep 5
  done
}
wait_for "the control plane's API server" "https://${CP_IP}:6443/readyz"
wait_for "podwire's image on the control plane" "http://${CP_IP}:8088/podwire-image.tar"

curl -fsS -o "${ROOT}/tmp/podwire-image.tar" "http://${CP_IP}:8088/podwire-image.tar"
ctr -n k8s.io images import "${ROOT}/tmp/podwire-image.tar"

if [[ ! -f "${ROOT}/etc/kubernetes/kubelet.conf" ]]; then
  kubeadm join "${CP_IP}:6443" --token "${LAB_TOKEN}" --discovery-token-unsafe-skip-ca-verification --node-name "$(hostname)"
fi
