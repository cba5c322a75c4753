// 简体中文：`podwire web` 实时页面上的文字（每一跳的文字来自 path 的词条）。
import type { web } from '../en/web.js';

export const webZh: Record<keyof typeof web, string> = {
  'web.title': 'podwire：实时的实验环境',
  'web.src': '从',
  'web.dst': '到',
  'web.proto': '协议',
  'web.show': '显示路径',
  'web.lang': '语言',
  'web.hint': '点一个 Pod 选作源，再点一个选作目的（焦点在 Pod 上时按回车也一样），或者直接输入地址：Pod IP、节点 IP、带 :port 的集群 IP。',
  'web.there': '去程',
  'web.back': '回程',
  'web.preset.sameNode': 'Pod → Pod，同一节点',
  'web.preset.acrossNodes': 'Pod → Pod，跨节点',
  'web.preset.nodeToPod': '节点 → Pod',
  'web.preset.podToService': 'Pod → Service（集群 IP）',
  'web.preset.outsideToNodePort': '集群外 → nodePort',
  'web.send': '发送',
  'web.arrived': '已发送，并且到达了：回复开头是',
  'web.noAnswer': '已发送：没有收到回复。',
  'web.preset.outsideToLocal': '集群外 → nodePort（Local）',
  'web.preset.outsideToHostPort': '集群外 → hostPort',
  'web.preset.pingClusterIP': 'ping 一个集群 IP',
  'web.preset.podToOutside': 'Pod → 集群外（看到的是节点 IP）',
};
