#!/usr/bin/env bash
# The control plane: builds podwire and its image here (Node.js from nodejs.org: Debian's is too old for
# the build; nothing is built on the host, which may be macOS or Windows), serves both to the workers on
# the private network, runs kubeadm init with the lab's fixed token and the pod network podwire serves,
# and applies podwire's manifests. ROOT: see common.sh.
set -euo pipefail
: "${NODE_IP:?NODE_IP must be set}"
: "${POD_NETWORK_CIDR:=10.244.0.0/16}"
: "${LAB_TOKEN:?LAB_TOKEN must be set (the Vagrantfile sets it)}"
: "${NODE_VERSION:=22.12.0}"
: "${ROOT:=}"
SRC="${ROOT}/opt/podwire-src"
FILES="${ROOT}/srv/podwire-lab"
export DEBIAN_FRONTEND=noninteractive
# Node.js names its builds x64 and arm64; podwire's build makes the binary of the VM's architecture, which
# the image takes (deploy/Containerfile, TARGETARCH).
case "$(dpkg --print-architecture)" in
  amd64) NODE_ARCH=x64 ;;
  arm64) NODE_ARCH=arm64 ;;
  *) echo "podwire's lab runs on amd64 or arm64 VMs, not $(dpkg --print-architecture)" >&2; exit 1 ;;
esac

curl -fsSL -o "${ROOT}/tmp/node.tar.xz" "https://nodejs.org/dist/v${NODE_VERSION}/node-v${NODE_VERSION}-linux-${NODE_ARCH}.tar.xz"
tar -xJf "${ROOT}/tmp/node.tar.xz" -C "${ROOT}/usr/local" --strip-components=1
(cd "$SRC" && npm ci --no-audit --no-fund && node scripts/build.mjs)

# The DaemonSet's image, built once for the lab (its base is the only image pulled for it).
apt-get install -y -q buildah
mkdir -p "$FILES"
buildah bud -q -t localhost/podwire:latest -f "${SRC}/deploy/Containerfile" "$SRC"
rm -f "${FILES}/podwire-image.tar"
buildah push localhost/podwire:latest "oci-archive:${FILES}/podwire-image.tar:localhost/podwire:latest"
ctr -n k8s.io images import "${FILES}/podwire-image.tar"
"${SRC}/dist/podwire" install --bin-dir "${ROOT}/opt/cni/bin"
# For the workers, on the private network only (they wait for it).
systemctl stop podwire-lab-files 2>/dev/null || true
systemd-run --unit podwire-lab-files python3 -m http.server 8088 --bind "$NODE_IP" --directory "$FILES"

if [[ ! -f "${ROOT}/etc/kubernetes/admin.conf" ]]; then
  kubeadm init --apiserver-advertise-address="${NODE_IP}" --pod-network-cidr="${POD_NETWORK_CIDR}" --node-name="$(hostname)" \
    --token="${LAB_TOKEN}" --token-ttl=0
fi

for home in /root /home/vagrant; do
  mkdir -p "${ROOT}${home}/.kube"
  cp "${ROOT}/etc/kubernetes/admin.conf" "${ROOT}${home}/.kube/config"
done
chown -R vagrant:vagrant "${ROOT}/home/vagrant/.kube"
export KUBECONFIG="${ROOT}/etc/kubernetes/admin.conf"

# The manifest's cluster CIDR must be the one kubeadm was given.
sed "s#--cluster-cidr=10.244.0.0/16#--cluster-cidr=${POD_NETWORK_CIDR}#" "${SRC}/deploy/podwire.yaml" | kubectl apply -f -
kubectl -n kube-system rollout status daemonset/podwire --timeout=300s
