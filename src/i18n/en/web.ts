// English: `podwire web`, the live page: its own words (the hops' come from path's catalogue).
export const web = {
  'web.title': 'podwire: the lab, live',
  'web.src': 'from',
  'web.dst': 'to',
  'web.proto': 'protocol',
  'web.show': 'show the path',
  'web.lang': 'language',
  'web.hint':
    'Click a pod to pick the source, then another for the destination (Enter on a focused pod does the same), or type any address: a Pod IP, a Node IP, a Cluster IP with :port.',
  'web.there': 'There',
  'web.back': 'And back',
  'web.preset.sameNode': 'pod → pod, same node',
  'web.preset.acrossNodes': 'pod → pod, across nodes',
  'web.preset.nodeToPod': 'node → pod',
  'web.preset.podToService': 'pod → Service (Cluster IP)',
  'web.preset.outsideToNodePort': 'outside → nodePort',
  'web.send': 'send it',
  'web.arrived': 'Sent, and it arrived: the answer begins',
  'web.noAnswer': 'Sent: no answer came back.',
} as const;
