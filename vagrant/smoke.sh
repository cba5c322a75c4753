#!/usr/bin/env bash
# End-to-end checks of the pod network on the Vagrant cluster (run on the control plane as root):
#   vagrant ssh cp -c 'sudo /opt/podwire-src/vagrant/smoke.sh'        (KEEP=1 leaves the test objects)
# A "web" DaemonSet (agnhost netexec) on every node behind a ClusterIP and a NodePort Service, with a
# hostPort; a "client" DaemonSet (busybox); a single "solo" pod for hairpin. Prints PASS/FAIL per check.
set -uo pipefail
export KUBECONFIG="${KUBECONFIG:-/etc/kubernetes/admin.conf}"
NS=podwire-smoke
PORT=80           # Service port, on the Cluster IP
TARGET_PORT=8080  # the container's port (containerPort), where the pod listens
NODE_PORT=30080   # on every Node IP, forwarded by kube-proxy
HOST_PORT=8081    # on the Node IP of the node running the pod, forwarded by podwire
fails=0

check() {
  local what=$1
  shift
  if "$@" >/dev/null 2>&1; then
    echo "PASS  $what"
  else
    echo "FAIL  $what"
    fails=$((fails + 1))
  fi
}
in_pod() { kubectl -n "$NS" exec "$1" -- "${@:2}"; }

kubectl wait --for=condition=Ready nodes --all --timeout=300s || exit 1
kubectl create namespace "$NS" --dry-run=client -o yaml | kubectl apply -f -
kubectl -n "$NS" apply -f - <<YAML
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      tolerations: [{operator: Exists}]
      containers:
        - name: web
          image: registry.k8s.io/e2e-test-images/agnhost:2.52
          args: ["netexec", "--http-port=${TARGET_PORT}"]
          ports: [{containerPort: ${TARGET_PORT}, hostPort: ${HOST_PORT}}]
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: client}
spec:
  selector: {matchLabels: {app: client}}
  template:
    metadata: {labels: {app: client}}
    spec:
      tolerations: [{operator: Exists}]
      containers:
        - {name: client, image: registry.k8s.io/e2e-test-images/busybox:1.36.1-1, command: ["sleep", "86400"]}
---
apiVersion: v1
kind: Pod
metadata: {name: solo, labels: {app: solo}}
spec:
  containers:
    - {name: solo, image: registry.k8s.io/e2e-test-images/agnhost:2.52, args: ["netexec", "--http-port=${TARGET_PORT}"]}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: ${PORT}, targetPort: ${TARGET_PORT}}]
---
apiVersion: v1
kind: Service
metadata: {name: web-nodeport}
spec:
  type: NodePort
  selector: {app: web}
  ports: [{port: ${PORT}, targetPort: ${TARGET_PORT}, nodePort: ${NODE_PORT}}]
---
apiVersion: v1
kind: Service
metadata: {name: solo}
spec:
  selector: {app: solo}
  ports: [{port: ${PORT}, targetPort: ${TARGET_PORT}}]
YAML
kubectl -n "$NS" rollout status ds/web --timeout=300s
kubectl -n "$NS" rollout status ds/client --timeout=300s
kubectl -n "$NS" wait --for=condition=Ready pod/solo --timeout=300s

mapfile -t web_ips < <(kubectl -n "$NS" get pods -l app=web -o jsonpath='{range .items[*]}{.status.podIP}{"\n"}{end}')
mapfile -t clients < <(kubectl -n "$NS" get pods -l app=client -o jsonpath='{range .items[*]}{.metadata.name}{"\n"}{end}')
mapfile -t node_ips < <(kubectl get nodes -o jsonpath='{range .items[*]}{.status.addresses[?(@.type=="InternalIP")].address}{"\n"}{end}')
cluster_ip=$(kubectl -n "$NS" get svc web -o jsonpath='{.spec.clusterIP}')

echo "Node IPs: ${node_ips[*]}   web Pod IPs: ${web_ips[*]}   Cluster IP of web: ${cluster_ip}"
echo "port ${PORT} = Service port on the Cluster IP; targetPort ${TARGET_PORT} = containerPort in the pod;"
echo "nodePort ${NODE_PORT} = on every Node IP (kube-proxy); hostPort ${HOST_PORT} = on the pod's own Node IP (podwire)"

for c in "${clients[@]}"; do
  for ip in "${web_ips[@]}"; do
    check "pod ${c} pings pod ${ip}" in_pod "$c" ping -c 1 -W 2 "$ip"
  done
  check "pod ${c} reaches Cluster IP ${cluster_ip}:${PORT}" in_pod "$c" wget -q -T 5 -O - "http://${cluster_ip}:${PORT}/hostname"
  check "pod ${c} resolves kubernetes.default (DNS)" in_pod "$c" nslookup kubernetes.default.svc.cluster.local
done
for ip in "${node_ips[@]}"; do
  check "NodePort ${ip}:${NODE_PORT}" curl -fsS -m 5 "http://${ip}:${NODE_PORT}/hostname"
  check "hostPort ${ip}:${HOST_PORT}" curl -fsS -m 5 "http://${ip}:${HOST_PORT}/hostname"
done
check "hairpin: solo reaches itself through its Service" in_pod solo /agnhost connect "solo.${NS}.svc.cluster.local:${PORT}" --timeout=5s

if [[ "${KEEP:-0}" != 1 ]]; then kubectl delete namespace "$NS" --wait=false >/dev/null; fi
if ((fails)); then
  echo "${fails} check(s) failed"
  exit 1
fi
echo "all checks passed"
