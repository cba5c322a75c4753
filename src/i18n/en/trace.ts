// English: the plugin's trace: each step, why, and what was undone (cni/trace.ts, kernel/step.ts).
export const trace = {
  'value.reachable': 'reachable',
  'value.unreachable': 'unreachable',
  'trace.title': '{command} {containerID}/{ifname} (network {network}, netns {netns})',
  'trace.why': 'why',
  'trace.failed': 'FAILED',
  'trace.ok': '{command} ok in {ms} ms{ips}',
  'trace.error': '{command} failed (code {code}): {message}',
  'note.batch': 'steps {first}-{last} went to the kernel in one `ip -batch -`, {ms} ms',
  'note.withHost': 'ran at the same time as the host-side steps below',
  'note.withPod': 'at the same time as the pod-side steps above',
  'note.withHostDel': 'at the same time as the host-side steps below',
  'note.forwardingOn': 'it was on already: nothing written',
  'step.gateway': 'give {bridge} the gateway address {cidr}',
  'step.gateway.why':
    "the bridge is every pod's default gateway: what a pod sends off its own subnet (other nodes' pods, Cluster IPs, the world) " +
    "enters the node's routing table here; `replace` is a no-op when it is there",
  'step.bridgeCreate': "create the bridge {bridge}, the node's virtual switch for its pods",
  'step.bridgeCreate.why':
    "every pod's host end plugs into it, so pods on this node reach each other at layer 2; its MAC is derived from the " +
    'gateway address, so it stays the same as pods come and go',
  'step.bridgeUp': 'bring {bridge} up',
  'step.bridgeUp.why': 'a bridge that is down forwards nothing (a no-op when it is up)',
  'step.veth':
    "create the veth pair {host} <-> {peer}: the {peer} end is made directly inside the pause container's network namespace, " +
    'already named {peer}',
  'step.veth.why':
    'a veth pair is a virtual cable: what enters one end leaves the other. One netlink call does what "create the pair, move the ' +
    'peer into the pod\'s namespace, rename it to {peer}" does in three',
  'step.attach': 'attach the host end {host} to {bridge} and bring it up',
  'step.attach.why':
    "the host end becomes a port of the bridge: the pod is now plugged into the node's switch (the pod's MAC is learned on this port)",
  'step.hairpin': 'turn hairpin on for {host}',
  'step.hairpin.why':
    'a bridge never sends a frame back out of the port it came in by; hairpin allows it, so a pod can reach itself through ' +
    'a Service when kube-proxy picks it as the backend',
  'step.lo': 'bring up loopback inside the pod',
  'step.lo.why': 'the containers of a pod share this namespace and talk to each other over 127.0.0.1',
  'step.podIP': 'give {ifname} the Pod IP {address}',
  'step.podIP.why':
    'the Pod IP is how every other pod, node and Service backend reaches this pod; the /{prefix} says which addresses ' +
    "are on the pod's own link (this node's pods, reached through the bridge){nodad}{noprefix}",
  'step.nodad':
    '. nodad: no duplicate address detection, which would keep the address unusable ("tentative") for a second or two while ' +
    "the pod starts; the IPAM made it this pod's alone already",
  'step.noprefix':
    ". noprefixroute: the subnet is not on-link after all — this node's pods are reached through the gateway like any " +
    'other address, so every packet passes the node (its firewall, NetworkPolicy, kube-proxy), with or without br_netfilter',
  'step.gatewayRoute': 'add the route to the gateway {gw} on {ifname}',
  'step.gatewayRoute.why':
    'the only address on the link: with no subnet route, the pod reaches its gateway by this route and everything else ' + 'through it',
  'step.announce': 'ask for the gateway {gw} on {ifname} now',
  'step.announce.why':
    "the ARP request carries this pod's address and MAC: the node, and any host on the bridge that remembers the address " +
    "with another pod's MAC (a reused IP), learn the new one at once, before the pod sends anything of its own",
  'step.podSysctl': 'inside the pod, before {ifname} comes up: {set}',
  'step.podSysctl.why':
    "accept_ra=0: the pod takes its routes from its node, never from a router advertisement (any other pod's is dropped at its port " +
    'anyway). Set from inside its namespace by this process (setns there and back), no process started',
  'step.podSysctlNo': "the pod keeps its namespace's accept_ra",
  'step.podSysctlNo.why':
    "the pod's namespace could not be entered without a process (podwire under Node, or the kernel refused): a hardening only, the pod is wired all the same, and another pod's router advertisement is still dropped at its port",
  'step.podUp': 'bring {ifname} up',
  'step.podUp.why': 'an interface that is down sends nothing, and the kernel adds the subnet route for its address only once it is up',
  'step.defaultRoute': 'add the default route via {gw} (the bridge)',
  'step.defaultRoute.why':
    "everything off the pod's subnet (pods on other nodes, Cluster IPs, the outside world) goes to the node, whose routing table " +
    'decides where it goes next',
  'step.route': 'add the route to {dst}{via}',
  'step.via': ' via {gw}',
  'step.route.why': 'a route from the IPAM config (ipam.routes)',
  'step.forwarding': 'make sure the node forwards IPv4 packets',
  'step.forwarding.why':
    'the node routes between cni0, the VXLAN device and its own uplink; without forwarding, pods reach only their own node',
  'step.hostports': 'map {mappings}',
  'step.hostports.why':
    "traffic to this node's own addresses on the hostPort is rewritten (DNAT) to {podIP}:containerPort; the masquerade rule lets " +
    'pods on this node use it too (hairpin)',
  'part.hostport': 'hostPort {hostPort}/{protocol} to containerPort {containerPort}',
  'step.masq': 'masquerade what {podIP} sends outside {subnet} (ipMasq)',
  'step.masq.why':
    "the world outside the pod network does not know the route back to Pod IPs, so such traffic leaves with the node's address",
  'step.gateHold': 'hold {ips} at the gate (table inet podwire-gate) until the agent has placed the pod',
  'step.gateHold.why':
    'NetworkPolicies are enforced on this node: the pod sends and receives nothing through the node until the agent has ' +
    "seen it and put its address in the policies' sets, so its first packet is judged, and an address a deleted pod had " +
    "never lends the new one that pod's rights; the pod's own node still reaches it (kubelet's probes)",
  'step.gateRelease': "release the pod's addresses from the gate, if they were still held",
  'step.gateRelease.why': 'nothing of a deleted pod stays in the kernel: a held address the agent never placed goes too',
  'step.bind': 'bind the pod to its port {host}: MAC {mac}, addresses {ips} (table bridge podwire-guard, {how})',
  'step.bind.netlink': 'written straight to the kernel: one nf_tables batch over netlink, no process; the commands below do the same',
  'step.bind.nft': 'one nft -f -',
  'step.bind.why':
    'a pod is only itself: every frame entering the node by {host} is checked before the bridge learns from it — a source MAC, ' +
    "an ARP sender or an IP source that is not this pod's, a neighbour advertisement for another's address, any router " +
    "advertisement or redirect is dropped and logged — so no pod can take another's address, MAC or the gateway, and a " +
    'NetworkPolicy that trusts a source address cannot be walked around',
  'step.bindOff': 'no spoofing checks for this pod: the network config says "spoofChecks": false',
  'step.bindOff.why': 'its frames enter the node unchecked; `podwire status` says so',
  'step.bindNoNft': 'no spoofing checks for this pod: nft is not installed on this node',
  'step.bindNoNft.why': 'the checks are a bridge-family nftables table; `podwire doctor` says what to install',
  'step.unbind': "remove the pod's binding to its port {host}",
  'step.unbind.why': 'a deleted pod leaves nothing: its port, MAC and addresses go from the checks with it',
  'step.nftAdd': "add the pod's nftables elements: {parts}",
  'step.nftAdd.why':
    'one transaction in table inet podwire: map elements send NodeIP:hostPort to the pod (DNAT), the hairpin set masquerades pods of ' +
    'this subnet reaching it that way, and set membership masquerades what an ipMasq pod sends outside its subnet; no rule per pod',
  'part.masq': 'masquerade {ip}',
  'part.hostportTo': 'hostPort {hostPort}/{protocol} -> {ip}:{containerPort}',
  'step.natDel': "remove the pod's nat chains (masquerade, hostPorts)",
  'step.natDel.why': 'rules naming a Pod IP that is about to be handed to another pod must go with this one',
  'step.nftDel': "remove the pod's nftables elements (masquerade, hostPorts)",
  'step.nftDel.why':
    'elements naming a Pod IP that is about to be handed to another pod must go with this one (added then deleted: gone whether or not they were there)',
  'step.vethGone': 'the host end {host} is gone already',
  'step.vethGone.why': "the pod's namespace was deleted first, and the kernel removed the pair with it",
  'step.vethDel': 'delete the host end {host} of the veth pair',
  'step.vethDel.why':
    "deleting one end of a veth pair deletes both: the pod's {ifname} goes with it, so DEL works even when the pod's namespace is gone",
  'step.undo': 'undo: {undo}',
  'step.undo.why': '{call} failed: it leaves nothing behind',
  'step.undoFailed': 'undo: {undo} FAILED: {error}',
  'step.undoFailed.why': '{call} failed',
  'call.add': 'ADD of {containerID}/{ifname}',
  'undo.veth': 'delete {host} (its {ifname} end goes with it)',
  'undo.address': 'release the address',
  'undo.nft': "remove the pod's nftables elements",
  'undo.gate': "release the pod's addresses from the gate",
  'undo.bind': "remove the pod's binding to its port",
  'undo.chains': "remove the pod's nat chains",
  'step.reserve': '{reclaimed}{addresses}',
  'step.reserve.why':
    'every node hands out Pod IPs from its own slice of the cluster network{perFamily}; the slice comes from {from}. The file makes ' +
    "the address this pod's alone; {gateways}",
  'ipam.reclaimed': 'the slice was full; reclaimed {list}; then ',
  'ipam.reclaimedOne': '{ip} ({containerID}: {why})',
  'ipam.keep': 'keep {ip}: this container already holds it (a repeated ADD)',
  'ipam.requested': "reserve {ip}, the address the runtime asked for, in the node's slice {slice}",
  'ipam.next': "take the next free address from the node's slice {slice}: {ip}",
  'ipam.perFamily': ' (one per address family)',
  'ipam.fromFile': "{file} (written by `podwire node up` or the agent from the Node's podCIDR)",
  'ipam.fromFiles': "{file} (written by `podwire node up` or the agent from the Node's podCIDRs)",
  'ipam.fromConfig': 'the config',
  'ipam.gateway': '{gateway} is the gateway and never handed out',
  'ipam.gateways': '{gateway} and {gateway2} are gateways and never handed out',
  'step.release': "release the Pod IP {ips} back to the node's slice",
  'step.release.why':
    'the address is free for a later pod; round-robin hands it out again only after the rest of the slice, in case a peer ' +
    'still caches it',
  'step.releaseNone': 'no address is reserved for {containerID}/{ifname}',
  'step.releaseNone.why': 'it was released already: DEL is repeatable, and runtimes call it again',
  'step.delegateAdd': 'ask the IPAM plugin {type} for an address: {ips}',
  'step.delegateAdd.why':
    'ipam.type names another plugin; podwire executes it from CNI_PATH, as the CNI spec says, and uses the addresses it returns',
  'step.delegateDel': 'ask the IPAM plugin {type} to release the address',
  'step.delegateDel.why': 'the IPAM plugin that handed it out keeps the reservation',
  'word.on': 'on',
  'word.off': 'off',
  'word.loose': 'loose',
  'offload.setting': 'checksumOffload is {setting}',
  'offload.unreadable': 'kernel "{rel}" is not a version podwire can read, so the workaround stays',
  'offload.affected': 'kernel {rel} is before 5.7: VXLAN packets rewritten by MASQUERADE --random-fully could leave with a bad checksum',
  'offload.fixed': 'kernel {rel} has the fix (5.7 and later) for VXLAN checksums after MASQUERADE --random-fully',
} as const;
