#!/usr/bin/env bash
# The control plane: kubeadm init with the pod network podwire serves, kubectl for the vagrant user,
# the join command for the workers (through the shared folder), and podwire's manifests.
set -euo pipefail
: "${NODE_IP:?NODE_IP must be set}"
: "${POD_NETWORK_CIDR:=10.244.0.0/16}"

if [[ ! -f /etc/kubernetes/admin.conf ]]; then
  kubeadm init --apiserver-advertise-address="${NODE_IP}" --pod-network-cidr="${POD_NETWORK_CIDR}" --node-name="$(hostname)"
fi

for home in /root /home/vagrant; do
  mkdir -p "${home}/.kube"
  cp /etc/kubernetes/admin.conf "${home}/.kube/config"
done
chown -R vagrant:vagrant /home/vagrant/.kube
export KUBECONFIG=/etc/kubernetes/admin.conf

# Workers read this from the shared folder.
kubeadm token create --print-join-command > /vagrant/vagrant/join.sh
chmod 600 /vagrant/vagrant/join.sh

# The manifest's cluster CIDR must be the one kubeadm was given.
sed "s#--cluster-cidr=10.244.0.0/16#--cluster-cidr=${POD_NETWORK_CIDR}#" /vagrant/deploy/podwire.yaml | kubectl apply -f -
kubectl -n kube-system rollout status daemonset/podwire --timeout=300s
