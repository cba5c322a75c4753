#!/usr/bin/env bash
# Every node: kernel settings kubeadm checks, containerd, kubeadm/kubelet/kubectl, kubelet's --node-ip,
# and podwire (the CNI binary from the host's dist/, and the DaemonSet's image built from it).
set -euo pipefail
: "${NODE_IP:?NODE_IP must be set to the private-network address of the node}"
: "${K8S_MINOR:=v1.31}"
export DEBIAN_FRONTEND=noninteractive

swapoff -a
sed -i '/\sswap\s/d' /etc/fstab

cat > /etc/modules-load.d/k8s.conf <<MODULES
overlay
br_netfilter
MODULES
modprobe overlay
modprobe br_netfilter
cat > /etc/sysctl.d/k8s.conf <<SYSCTL
net.ipv4.ip_forward = 1
net.bridge.bridge-nf-call-iptables = 1
SYSCTL
sysctl --system >/dev/null

apt-get update -q
apt-get install -y -q containerd iptables curl gpg buildah

# containerd with the systemd cgroup driver, as kubelet expects.
mkdir -p /etc/containerd
containerd config default > /etc/containerd/config.toml
sed -i 's/SystemdCgroup = false/SystemdCgroup = true/' /etc/containerd/config.toml
systemctl restart containerd

keyring=/etc/apt/keyrings/kubernetes.gpg
mkdir -p /etc/apt/keyrings
curl -fsSL "https://pkgs.k8s.io/core:/stable:/${K8S_MINOR}/deb/Release.key" | gpg --dearmor --yes -o "$keyring"
echo "deb [signed-by=${keyring}] https://pkgs.k8s.io/core:/stable:/${K8S_MINOR}/deb/ /" > /etc/apt/sources.list.d/kubernetes.list
apt-get update -q
apt-get install -y -q kubelet kubeadm kubectl
apt-mark hold kubelet kubeadm kubectl

# The private-network address, not Vagrant's NAT one (the same on every VM).
echo "KUBELET_EXTRA_ARGS=--node-ip=${NODE_IP}" > /etc/default/kubelet
systemctl restart kubelet || true

# podwire: the plugin binary where kubelet's runtime looks, and the DaemonSet's image in containerd.
if [[ ! -x /vagrant/dist/podwire ]]; then
  echo "no /vagrant/dist/podwire: run 'npm run build' on the host first" >&2
  exit 1
fi
/vagrant/dist/podwire install --bin-dir /opt/cni/bin
buildah bud -q -t localhost/podwire:latest -f /vagrant/deploy/Containerfile /vagrant
rm -f /tmp/podwire-image.tar
buildah push localhost/podwire:latest oci-archive:/tmp/podwire-image.tar:localhost/podwire:latest
ctr -n k8s.io images import /tmp/podwire-image.tar
