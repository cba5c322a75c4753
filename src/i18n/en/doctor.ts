// English: `doctor`: each finding, why pods break, and the fix.
export const doctor = {
  // doctor
  'doctor.why': 'why',
  'doctor.fix': 'fix',
  'doctor.fixSafe': 'fix (--fix does it)',
  'doctor.on': 'on {node}',
  'doctor.problems': '{n} problem(s) on {node}',
  'doctor.noProblems': '{node}: no problems found',
  'doctor.thisNode': 'this node',
  'dr.noConfig': 'no network config with a podwire plugin',
  'dr.cniConfig': '{error}',
  'dr.cniConfig.why': 'the runtime reports NetworkReady=false and starts no pod on this node until a config is in its conf dir',
  'dr.cniConfig.ok': '{file}: network {network}',
  'dr.forward': '{name} is 0: this node does not route {family}',
  'dr.forward.why': "{family} packets between cni0, the VXLAN device and the uplink are dropped: pods reach only their own node's pods",
  'dr.forward.ok': '{name}=1',
  'dr.brMissing': 'br_netfilter is not loaded',
  'dr.brOff': '{keys} is 0',
  'dr.brOffN': '{keys} are 0',
  'dr.br.why':
    "traffic between two pods on the same cni0 never meets iptables, so kube-proxy's DNAT of a Service whose backend is on " +
    "the client's own node is not undone on the reply: those connections hang",
  'dr.br.ok': 'br_netfilter loaded, {keys}',
  'dr.nftMissing': 'nft is not installed',
  'dr.nft': "nftables (the node's backend): {problems}",
  'dr.nft.why':
    "pods' hostPorts, masquerade and forwarding rules are incomplete: hostPorts may not answer, traffic leaving the cluster network keeps Pod IPs",
  'dr.nft.ok': "nftables: table {table} has the node's chains as node up writes them",
  'dr.nftDrop': "{tool}: FORWARD's policy is DROP, and podwire's rules are in nftables",
  'dr.nftDrop.why':
    "nf_tables passes a packet only if every table's chain on the hook accepts it: podwire's accept cannot overrule that DROP, so routed pod traffic is dropped",
  'dr.both': 'rules of both backends on this node: the node uses {backend}, and {others} is there too',
  'dr.both.why': 'two sets of rules for the same pods: a stale one may DNAT a hostPort to an address another pod has now',
  'dr.both.ok': "only {backend} holds podwire's rules",
  'dr.fwd.ok':
    "{tool}: FORWARD (policy {policy}) sends pod traffic to PODWIRE-FORWARD after kube-proxy's rules and before any other, which accepts it",
  'dr.fwd.accept': "{tool}: FORWARD's policy ACCEPT lets pod traffic through (PODWIRE-FORWARD is missing: node up adds it)",
  'dr.fwd':
    "{tool}: FORWARD's policy is {policy} and podwire's PODWIRE-FORWARD chain is missing or out of place (after kube-proxy's rules, before any other)",
  'dr.fwd.why': 'every packet a node routes for pods (to other nodes, from Services) is dropped: pods reach only pods on their own bridge',
  'dr.bridgeDown': 'bridge {name} is down',
  'dr.bridgeMissing': 'bridge {name} does not exist',
  'dr.bridge.why': "pods' veths have nothing to join: pods are cut off",
  'dr.bridge.ok': '{name} up, {addresses}',
  'dr.vxlanDown': 'VXLAN device {name} is down',
  'dr.vxlanMissing': 'VXLAN device {name} does not exist',
  'dr.vxlan.why': 'pods on other nodes are unreachable',
  'dr.vxlan.ok': '{name} up: VNI {vni}, UDP {port}, local {local}',
  'dr.rpVxlan': 'reverse-path filtering is strict on {dev} (rp_filter 1, on the device or "all")',
  'dr.rpVxlan.why':
    "a peer's own processes that send from their Node IP (hostNetwork pods, daemons bound to it) reach this node's pods " +
    'through the VXLAN device, but the route back to a Node IP leaves by the underlay: the kernel drops them as spoofed',
  'dr.rp.ok': 'rp_filter on {dev}: {state}',
  'dr.offload.unknown': 'TX checksum offload of {dev}: unknown (ethtool not installed)',
  'dr.offload.ok': 'TX checksum offload of {dev}: {state} ({decided})',
  'dr.offload': 'TX checksum offload is {state} for {dev}, and should be {want}: {decided}',
  'dr.offloadOn.why':
    "this kernel sends VXLAN packets that kube-proxy's SNAT rewrote with a wrong checksum and peers drop them: " +
    'connections to Services across nodes stall (the 63-second delay)',
  'dr.offloadOff.why': "every VXLAN packet is checksummed in software: pods on other nodes get a fraction of the wire's throughput",
  'dr.csum.uncounted': 'UDP checksum errors: not counted by this kernel',
  'dr.csum': 'UDP checksum errors grew from {before} to {after} while doctor ran ({dev} received {n} packets meanwhile)',
  'dr.csum.why':
    'packets reach this node with bad UDP checksums: typically VXLAN from a peer whose kernel (before 5.7) offloads TX ' +
    "checksums of packets kube-proxy's MASQUERADE --random-fully rewrote. On every peer, turn the offload off " +
    '(the fix below, run there), and keep it off with checksumOffload "off" in the cluster file or the agent\'s --checksum-offload off',
  'dr.csum.ok': 'UDP checksum errors: {after} since boot, none while doctor ran',
  'dr.everyPeer': 'every peer',
  'dr.underlay': '{error}',
  'dr.underlay.why': 'podwire cannot tell which device carries pod traffic to other nodes',
  'dr.rpUnderlay': 'rp_filter is strict on {dev}, and the routes back to {peers} leave by another device',
  'dr.rpUnderlay.why': 'their packets (VXLAN or host-gw) arrive on {dev}; strict reverse-path filtering drops them as spoofed',
  'dr.rpUnderlay.ok': "rp_filter is strict on {dev}, and every peer's route comes back through it",
  'dr.mtuVxlan': "{name}'s MTU {mtu} does not fit {dev}'s {underlay} minus VXLAN's {overhead} bytes over {family}",
  'dr.mtuVxlan.why': 'full-size packets to other nodes are dropped once encapsulated: small pings work, real connections hang',
  'dr.mtu': "MTU above the path's {limit}: {list}",
  'dr.mtu.why':
    'a pod sends packets up to its MTU; those bigger than {limit} are dropped on the way (at the host veth, or once ' +
    'encapsulated) without an error: small pings work, large transfers hang',
  'dr.mtu.ok': 'pods, veths and {through} fit the path: at most {limit} bytes',
  'dr.mtu.veth': 'host veth {veth} {mtu}',
  'dr.mtu.pod': '{ifname} of {netns} ({ip}) {mtu}',
  'dr.theUnderlay': 'the underlay',
  'dr.peers': 'routes, neighbours or FDB entries differ from the node list: {wrong}',
  'dr.peers.why':
    'a missing route, neighbour or FDB entry leaves pods of that node unreachable; a stale one sends their packets to a ' +
    "node that no longer has them (a node's MAC or IP changed)",
  'dr.peers.ok': '{n} peer(s): routes, neighbours and FDB entries as the node list says',
  'dr.probe.ok': '{peer} answers through the overlay (UDP {port} to {nodeIP}; {got} packet(s) in on {dev})',
  'dr.probe': '{peer} does not answer through the overlay: a ping to its VTEP {vtep} (UDP {port} to {nodeIP}) got no reply',
  'dr.probe.why':
    'pods on {peer} are unreachable: something between the nodes drops UDP {port} (a firewall, a cloud security ' +
    "group), or {peer}'s VXLAN device is missing or down",
  'dr.probe.on': '{peer} (and any firewall or security group between the nodes: allow UDP {port} between Node IPs)',
  'dr.leak': '{ip} is reserved for {containerID}/{ifname}, whose host veth {veth} is gone',
  'dr.leak.why':
    "its pod's namespace was deleted without a DEL: the address (and any hostPort rule) is held by nobody; a full slice " +
    'reclaims it, this DEL releases it now',
  'dr.bindings.ok': 'spoofing checks: {n} port(s) bound in {table}, every pod with its binding, none left over',
  'dr.bindings.off': 'spoofing checks off for network {network} (spoofChecks: false, or no nft)',
  'dr.noGuard': 'the spoofing checks are on, but {table} is missing',
  'dr.noGuard.why':
    'no pod is checked: any pod can forge its source address, MAC, ARP and ND, past every NetworkPolicy. node up (or the agent) writes the table',
  'dr.unbound': 'the pod {ip} ({containerID}) on {veth} has no binding',
  'dr.unbound.why':
    "what it sends is not checked, so it can forge another pod's address or MAC. A pod started before the checks were on: delete the pod, and its new ADD binds it",
  'dr.staleBinding': '{table} still binds {ports}, which no longer exist',
  'dr.staleBinding.why':
    'a binding left by a DEL that never came (a killed runtime, a pod namespace torn down by hand): should a port of that name come back, its pod could also send as those addresses',
  'dr.stray': '{veth} is on {bridge} but no reservation names it',
  'dr.stray.why': 'a veth left by a failed or foreign ADD: its pod (if any) has an address the IPAM may hand out again',
  'dr.reservations.ok': '{n} reservation(s), each with its veth on {bridge}',
  'dr.leftOut': 'the agent leaves out {list}',
  'dr.leftOut.why':
    "no node routes to those nodes' pods (and their pods reach no one) until their Node objects are fixed or deleted: " +
    'kubectl describe node shows the same as a Warning Event',
  'dr.leftOut.ok': 'the agent uses every Node it was given',
  'dr.blind': 'the agent has not followed the API server ({server}) since {since}: {what}',
  'dr.blind.why':
    'what is in the kernel stays and pods keep talking, but nodes, pods and policies that change meanwhile are not seen until it is back; check the API server and the network between this node and it',
  'dr.blind.ok': 'the agent follows the API server ({server})',
  'dr.idle': 'NetworkPolicy {keys} selects no pod in the cluster',
  'dr.idleN': 'NetworkPolicy {keys} select no pod in the cluster',
  'dr.idle.why':
    "its podSelector matches no pod of its namespace (a label's spelling, or the wrong namespace): it isolates nothing and allows nothing",
  'dr.idle.ok': 'every NetworkPolicy selects a pod ({n} enforced)',
  'dr.namedPort': '{list}',
  'dr.namedPort.one': 'NetworkPolicy {key}: no pod has a container port named {ports}',
  'dr.namedPort.why':
    "a named port resolves on the destination pod's container ports: with none of that name (and protocol), the rule allows nothing",
  'dr.namedPort.ok': 'every named port in a policy is a container port of some pod',
  'dr.policyLeftOut': '{list}',
  'dr.policyLeftOut.one': '{kind} {name}: {why}',
  'dr.policyLeftOut.why': 'the agent enforces every other object: these are not, until they are fixed',
  'dr.restartAgent.on': 'a machine with kubectl (the agent sets this node up again when it restarts)',
  'dr.binMissing': '{bin} does not exist',
  'dr.binMissing.why': 'the runtime finds no plugin of type podwire: every ADD fails',
  'dr.bin.ok': '{bin} is podwire {version}, as this one',
  'dr.binOther': '{bin} is podwire {version}, this is {ours}',
  'dr.binBroken': '{bin} is not runnable, this is {ours}',
  'dr.bin.why':
    'pods are wired by another version than the one checking and syncing the node: their idea of names, rules and files may differ',
  'dr.subnet.inConfig': 'the slice is written in the config (ipam.subnet)',
  'dr.subnetMissing': 'the node subnet file {file} does not exist',
  'dr.subnetMissing.why':
    'every ADD fails with "try again later" (11) and STATUS says the network is not ready (50): no pod starts on this node',
  'dr.subnetUnreadable': '{file} cannot be read as a subnet file',
  'dr.subnetUnreadable.why': 'every ADD fails',
  'dr.subnetWrong': "{file} says {have}, the node's podCIDR is {want}",
  'dr.subnetWrongN': "{file} says {have}, the node's podCIDRs are {want}",
  'dr.subnetWrong.why':
    "new pods get addresses from another node's slice (or miss a family): the other nodes route those to that node, so " +
    'replies never come back',
  'dr.subnet.ok': '{file}: {have}',
  'dr.subnet.okCidr': "{file}: {have}, the node's podCIDR",
  'dr.subnet.okCidrs': "{file}: {have}, the node's podCIDRs",
  'dr.podSubnet': 'the pod subnet {cidr} {clash}',
  'dr.podSubnet.why':
    "the gateway's connected route on {bridge} competes with the node's own: traffic of the node (or to its gateway) " +
    "goes to the pods, and the node loses part of its network. Give the cluster a pod network apart from the nodes' (kubeadm " +
    '--pod-network-cidr) or renumber the node',
  'dr.podSubnet.ok': 'the pod subnet {cidr} is apart from every network the node is on',
} as const;
