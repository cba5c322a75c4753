#!/usr/bin/env bash
# Every node: kernel settings kubeadm checks, containerd (2.3, its LTS line, from its release, with runc),
# kubeadm/kubelet/kubectl, the pause image kubeadm wants, kubelet's --node-ip, the loopback plugin
# containerd runs for every pod, and logrotate for podwire's log. The repository arrives as the tarball the
# Vagrantfile uploaded. ROOT prefixes every path written: empty on a VM, a temp dir when
# test/unit/vagrant.test.ts runs this against recorded stand-ins for apt-get, systemctl, kubeadm, curl, ...
set -euo pipefail
: "${NODE_IP:?NODE_IP must be set to the private-network address of the node}"
: "${K8S_MINOR:=v1.36}"
: "${CONTAINERD_VERSION:=2.3.0}"
: "${RUNC_VERSION:=v1.3.0}"
: "${ROOT:=}"
SRC="${ROOT}/opt/podwire-src"
export DEBIAN_FRONTEND=noninteractive
# amd64 or arm64: containerd's and runc's release files are named so.
ARCH="$(dpkg --print-architecture)"

swapoff -a
sed -i '/\sswap\s/d' "${ROOT}/etc/fstab"

mkdir -p "${ROOT}/etc/modules-load.d" "${ROOT}/etc/sysctl.d"
cat > "${ROOT}/etc/modules-load.d/k8s.conf" <<MODULES
overlay
br_netfilter
MODULES
modprobe overlay
modprobe br_netfilter
cat > "${ROOT}/etc/sysctl.d/k8s.conf" <<SYSCTL
net.ipv4.ip_forward = 1
net.bridge.bridge-nf-call-iptables = 1
SYSCTL
sysctl --system >/dev/null

mkdir -p "$SRC"
tar -xzf "${ROOT}/tmp/podwire-src.tar.gz" -C "$SRC"

apt-get update -q
apt-get install -y -q iptables curl gpg ca-certificates python3 containernetworking-plugins logrotate

# containerd and runc from their releases (Debian's containerd is 1.6, past its end of life), with
# containerd's own systemd unit.
curl -fsSL -o "${ROOT}/tmp/containerd.tar.gz" \
  "https://github.com/containerd/containerd/releases/download/v${CONTAINERD_VERSION}/containerd-${CONTAINERD_VERSION}-linux-${ARCH}.tar.gz"
mkdir -p "${ROOT}/usr/local" "${ROOT}/usr/local/sbin" "${ROOT}/etc/systemd/system"
tar -xzf "${ROOT}/tmp/containerd.tar.gz" -C "${ROOT}/usr/local"
curl -fsSL -o "${ROOT}/usr/local/sbin/runc" "https://github.com/opencontainers/runc/releases/download/${RUNC_VERSION}/runc.${ARCH}"
chmod 755 "${ROOT}/usr/local/sbin/runc"
curl -fsSL -o "${ROOT}/etc/systemd/system/containerd.service" \
  "https://raw.githubusercontent.com/containerd/containerd/v${CONTAINERD_VERSION}/containerd.service"

keyring="${ROOT}/etc/apt/keyrings/kubernetes.gpg"
mkdir -p "${ROOT}/etc/apt/keyrings" "${ROOT}/etc/apt/sources.list.d"
curl -fsSL "https://pkgs.k8s.io/core:/stable:/${K8S_MINOR}/deb/Release.key" | gpg --dearmor --yes -o "$keyring"
echo "deb [signed-by=/etc/apt/keyrings/kubernetes.gpg] https://pkgs.k8s.io/core:/stable:/${K8S_MINOR}/deb/ /" \
  > "${ROOT}/etc/apt/sources.list.d/kubernetes.list"
apt-get update -q
apt-get install -y -q kubelet kubeadm kubectl
apt-mark hold kubelet kubeadm kubectl

# containerd's config: the systemd cgroup driver kubelet uses, and the pause image this kubeadm wants
# (containerd's default is older, and kubeadm warns about it).
pause=$(kubeadm config images list --kubernetes-version "$(kubeadm version -o short)" | grep '/pause:')
mkdir -p "${ROOT}/etc/containerd"
config="${ROOT}/etc/containerd/config.toml"
containerd config default > "$config"
sed -i "s#^\(\s*sandbox = \).*#\1'${pause}'#; s#^\(\s*sandbox_image = \).*#\1\"${pause}\"#; s/SystemdCgroup = false/SystemdCgroup = true/" "$config"
grep -q 'SystemdCgroup = true' "$config" ||
  sed -i "/runtimes.runc.options\]/a\            SystemdCgroup = true" "$config"
systemctl daemon-reload
systemctl enable --now containerd
systemctl restart containerd

# The loopback plugin containerd sets up every pod's lo with, where it looks for CNI plugins.
mkdir -p "${ROOT}/opt/cni/bin"
ln -sf /usr/lib/cni/loopback "${ROOT}/opt/cni/bin/loopback"
# podwire's plugin log (/var/log/podwire.log): rotated by size; every call opens it anew, so a rename is safe.
mkdir -p "${ROOT}/etc/logrotate.d"
cp "${SRC}/deploy/logrotate.d/podwire" "${ROOT}/etc/logrotate.d/podwire"

# The private-network address, not Vagrant's NAT one (the same on every VM).
mkdir -p "${ROOT}/etc/default"
echo "KUBELET_EXTRA_ARGS=--node-ip=${NODE_IP}" > "${ROOT}/etc/default/kubelet"
systemctl restart kubelet || true
