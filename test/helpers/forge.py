#!/usr/bin/env python3
# An attacker in a pod, as the spoofing tests play one: raw Ethernet frames on the pod's interface
# (AF_PACKET, what CAP_NET_RAW allows in any pod), and a listener that prints the source of each datagram it
# gets. Only the tests' own namespaces are ever addressed. Python's standard library only.
#
#   forge.py udp IFACE SRC_MAC DST_MAC SRC_IP DST_IP PORT TEXT     one UDP datagram, IPv4 or IPv6
#   forge.py arp IFACE SRC_MAC SENDER_MAC SENDER_IP TARGET_IP       a gratuitous ARP reply (broadcast)
#   forge.py na IFACE SRC_MAC SRC_IP TARGET_IP TARGET_MAC           an unsolicited neighbour advertisement
#   forge.py ra IFACE SRC_MAC SRC_IP PREFIX                         a router advertisement with a /64 prefix
#   forge.py vxlan DST PORT VNI INNER_DST_MAC INNER_SRC INNER_DST UDP_PORT TEXT
#                                                                   a VXLAN packet from a plain UDP socket
#                                                                   (no privilege): inside, one UDP datagram
#   forge.py listen FAMILY PORT SECONDS                             prints "SRC TEXT" per datagram
import ipaddress
import socket
import struct
import sys


def mac(s):
    return bytes(int(x, 16) for x in s.split(':'))


def csum(data):
    if len(data) % 2:
        data += b'\0'
    s = sum(struct.unpack('!%dH' % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ip4(src, dst, proto, payload):
    h = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(payload), 0, 0x4000, 64, proto, 0,
                    socket.inet_aton(src), socket.inet_aton(dst))
    h = h[:10] + struct.pack('!H', csum(h)) + h[12:]
    return 0x0800, h + payload


def ip6(src, dst, nh, payload, hop=64):
    s, d = socket.inet_pton(socket.AF_INET6, src), socket.inet_pton(socket.AF_INET6, dst)
    return 0x86DD, struct.pack('!IHBB16s16s', 6 << 28, len(payload), nh, hop, s, d) + payload


def pseudo6(src, dst, nh, body):
    return (socket.inet_pton(socket.AF_INET6, src) + socket.inet_pton(socket.AF_INET6, dst) +
            struct.pack('!IxxxB', len(body), nh))


def udp(src, dst, port, text):
    body = text.encode()
    u = struct.pack('!HHHH', 40000, port, 8 + len(body), 0) + body
    if ':' in src:
        c = csum(pseudo6(src, dst, 17, u) + u) or 0xFFFF
        return ip6(src, dst, 17, u[:6] + struct.pack('!H', c) + u[8:])
    ph = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack('!BBH', 0, 17, len(u))
    c = csum(ph + u) or 0xFFFF
    return ip4(src, dst, 17, u[:6] + struct.pack('!H', c) + u[8:])


def icmp6(src, dst, body):
    c = csum(pseudo6(src, dst, 58, body) + body)
    return ip6(src, dst, 58, body[:2] + struct.pack('!H', c) + body[4:], hop=255)


def send(iface, src_mac, dst_mac, ethertype, payload):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((iface, 0))
    s.send(mac(dst_mac) + mac(src_mac) + struct.pack('!H', ethertype) + payload)


def main(a):
    cmd = a[0]
    if cmd == 'udp':
        iface, smac, dmac, src, dst, port, text = a[1:8]
        send(iface, smac, dmac, *udp(src, dst, int(port), text))
    elif cmd == 'arp':
        iface, smac, sender_mac, sender_ip, target_ip = a[1:6]
        body = struct.pack('!HHBBH6s4s6s4s', 1, 0x0800, 6, 4, 2, mac(sender_mac), socket.inet_aton(sender_ip),
                           b'\xff' * 6, socket.inet_aton(target_ip))
        send(iface, smac, 'ff:ff:ff:ff:ff:ff', 0x0806, body)
    elif cmd == 'na':
        iface, smac, src, target, target_mac = a[1:6]
        body = (struct.pack('!BBHI', 136, 0, 0, 0x20000000) + socket.inet_pton(socket.AF_INET6, target) +
                struct.pack('!BB6s', 2, 1, mac(target_mac)))
        send(iface, smac, '33:33:00:00:00:01', *icmp6(src, 'ff02::1', body))
    elif cmd == 'ra':
        iface, smac, src, prefix = a[1:5]
        net = ipaddress.IPv6Network(prefix)
        body = (struct.pack('!BBHBBHII', 134, 0, 0, 64, 0, 1800, 0, 0) +
                struct.pack('!BB6s', 1, 1, mac(smac)) +
                struct.pack('!BBBBIII16s', 3, 4, 64, 0xC0, 86400, 14400, 0, net.network_address.packed))
        send(iface, smac, '33:33:00:00:00:01', *icmp6(src, 'ff02::1', body))
    elif cmd == 'vxlan':
        dst, port, vni, inner_mac, src, inner_dst, uport, text = a[1:9]
        ethertype, payload = udp(src, inner_dst, int(uport), text)
        frame = mac(inner_mac) + mac('02:00:00:00:00:99') + struct.pack('!H', ethertype) + payload
        s = socket.socket(socket.AF_INET6 if ':' in dst else socket.AF_INET, socket.SOCK_DGRAM)
        s.sendto(struct.pack('!II', 0x08000000, int(vni) << 8) + frame, (dst, int(port)))
    elif cmd == 'listen':
        fam, port, secs = a[1], int(a[2]), float(a[3])
        s = socket.socket(socket.AF_INET6 if fam == '6' else socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(('::' if fam == '6' else '0.0.0.0', port))
        s.settimeout(secs)
        print('listening', flush=True)
        try:
            while True:
                data, addr = s.recvfrom(2048)
                print(addr[0], data.decode(errors='replace'), flush=True)
        except socket.timeout:
            pass
    else:
        raise SystemExit('unknown command ' + cmd)


main(sys.argv[1:])
