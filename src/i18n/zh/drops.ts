// 简体中文：`podwire drops` 与 agent 日志：podwire 丢弃的每个包、它指向的 Pod 以及原因。
import type { drops } from '../en/drops.js';

export const dropsZh: Record<keyof typeof drops, string> = {
  'drops.line': '{time} 丢弃 {packet}：{why}',
  'drops.packet.arp': '来自 {mac} 的 ARP',
  'drops.packet.other': '来自 {mac} 的以太网类型 {type} 的帧',
  'drops.who.podPort': '{pod}（{port}）',
  'drops.who.port': '{port} 上的 Pod',
  'drops.who.unknown': 'podwire 不认识的发送者',
  'drops.why.mac': '{who} 用源 MAC {smac} 发出，而那不是它自己的 MAC（它的是 {mac}）',
  'drops.why.arp': '{who} 发出的 ARP 声称了不属于它的地址或 MAC（它自己的：{own}，{mac}）',
  'drops.why.ip4': '{who} 以 {src} 为源地址发出，而那不是它的地址（它自己的：{own}）',
  'drops.why.ip6': '{who} 以 {src} 为源地址发出，而那不是它的地址（它自己的：{own}）',
  'drops.why.ra': '{who} 发出了路由器通告或重定向：只有节点为它的 Pod 路由',
  'drops.why.na': '{who} 通告了不属于它的地址（它自己的：{own}）',
  'drops.why.ethertype': '{who} 发出了 Pod 不该发的帧类型',
  'drops.why.vxlan': '来自 {src}（{who} ）的 VXLAN，而它不是集群的节点：只有节点能访问 VXLAN 端口',
  'drops.why.ingress': '发往 {who}，{policies} 对它做了入向隔离，没有一条允许',
  'drops.why.egress': '来自 {who}，{policies} 对它做了出向隔离，没有一条允许',
  'drops.why.held': '{who} 被拦着：agent 还没把它放进 NetworkPolicy 表',
  'drops.reading': '正在读取 {where} 的丢包（Ctrl-C 停止）',
  'drops.fromAgent': '本节点 agent',
  'drops.fromGroup': 'netlink 日志组 {group}（{addr} 上没有 agent 应答）',
  'drops.cannot': '无法读取丢包：{why}',
};
