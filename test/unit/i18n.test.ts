// The learner's languages: every message in both catalogues with the same placeholders, the choice by
// --lang or the locale, and Chinese where the learner reads it.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CATALOGUES, LANGS, pickLang, placeholders, proofName, setLang, t } from '../../src/i18n/index.js';
import { ROOT } from '../helpers/netns.js';
import { displayWidth, table } from '../../src/i18n/table.js';
import { missingLines, readmeOutputs } from '../helpers/readme.js';

describe('catalogues', () => {
  it('every message exists in every language, with the same placeholders, and is not left empty', () => {
    const ids = Object.keys(CATALOGUES.en).sort();
    for (const l of LANGS) {
      expect(Object.keys(CATALOGUES[l]).sort(), l).toEqual(ids);
      for (const id of ids) {
        const text = CATALOGUES[l][id as keyof typeof CATALOGUES.en];
        expect(text.trim().length, `${l} ${id}`).toBeGreaterThan(0);
        expect(placeholders(text), `${l} ${id}`).toEqual(placeholders(CATALOGUES.en[id as keyof typeof CATALOGUES.en]));
      }
    }
  });

  it("Chinese is Chinese (apart from names kept in English), and keeps the articles' terms", () => {
    const zh = Object.entries(CATALOGUES.zh);
    // Han, or Chinese punctuation (the list separator is only a comma)
    const han = /[\u4e00-\u9fff\u3000-\u303f\uff00-\uffef]/;
    // Headings that are names (Pod IP, VTEP MAC, podCIDR, Service, targetPort = containerPort) may stay as they are.
    const names = new Set([
      'diagram.pod',
      'diagram.podIP',
      'col.podIP',
      'col.vtepMac',
      'col.podCIDR',
      'col.service',
      'col.targetPort',
      'col.pod',
      'col.hostPorts',
      'col.podMtu',
      'step.reserve',
      'part.hostportTo',
      'hop.reason',
    ]);
    for (const [id, text] of zh) if (!names.has(id)) expect(han.test(text), id).toBe(true);
    expect(CATALOGUES.zh['col.nodeIP']).toBe('节点 IP');
    expect(CATALOGUES.zh['col.clusterIP']).toContain('集群 IP');
    expect(CATALOGUES.zh['col.targetPort']).toBe('targetPort = containerPort');
    // The port fields keep their English names, as the articles write them: never 目标端口, 节点端口 ...
    for (const [id, text] of zh) expect(text, id).not.toMatch(/目标端口|节点端口|主机端口|容器端口|集群IP|节点IP/);
  });
});

describe('choosing', () => {
  it('--lang wins; else LC_ALL, LC_MESSAGES or LANG starting with zh; else English', () => {
    expect(pickLang('en', { LANG: 'zh_CN.UTF-8' })).toBe('en');
    expect(pickLang(undefined, { LANG: 'zh_CN.UTF-8' })).toBe('zh');
    expect(pickLang(undefined, { LC_ALL: 'zh_TW', LANG: 'en_US' })).toBe('zh');
    expect(pickLang(undefined, { LANG: 'en_US.UTF-8' })).toBe('en');
    expect(pickLang(undefined, {})).toBe('en');
  });

  it('fills placeholders, and names proofs in the language (IPv6 marked in its own way)', () => {
    setLang('zh');
    try {
      expect(t('lab.failed', { n: 3 })).toBe('3 项检查失败');
      expect(proofName('podToPod', 6)).toBe('Pod 到 Pod（IPv6）');
      expect(proofName('noSuchProof')).toBe('noSuchProof');
    } finally {
      setLang('en');
    }
    expect(proofName('podToPod', 6)).toBe('pod to pod (IPv6)');
  });
});

describe('tables in Chinese', () => {
  it('line up on a terminal: a Han character takes two columns', () => {
    expect(displayWidth('节点 IP')).toBe(7);
    expect(displayWidth('Pod 到 Pod（IPv6）')).toBe(18);
    const out = table(
      ['验证项', 'passed'],
      [
        ['Pod 到 Pod', 30],
        ['节点到其他节点上的 Pod', 6],
      ],
    ).split('\n');
    // The second column starts at the same terminal column on every line.
    const at = out.map((l) => displayWidth(l.slice(0, l.search(/\S+$/))));
    expect(new Set(at).size).toBe(1);
  });
});

describe('README.zh-CN.md', () => {
  const commands = (file: string) =>
    [...readFileSync(join(ROOT, file), 'utf8').matchAll(/`((?:npm run|npm test|sudo |dist\/podwire|podwire )[^`]*)`/g)].map((m) =>
      m[1]!.trim(),
    );
  it('is linked from the first lines of the README', () => {
    expect(readFileSync(join(ROOT, 'README.md'), 'utf8').split('\n').slice(0, 12).join('\n')).toContain('README.zh-CN.md');
  });

  it('its sample outputs are blocks the tests can check, line by line, with only run-to-run details left open', () => {
    const [path] = readmeOutputs('path');
    expect(readmeOutputs('lab').length).toBeGreaterThan(2);
    expect(path!.length).toBeGreaterThan(8);
    const line = '  2. n1-pod1   eth0 是 veth 对的一端：帧从另一端出来，即 node1 中的 vethd2b826e8，网桥 cni0 的一个端口';
    expect(missingLines([line], line.replace('vethd2b826e8', 'veth0badf00d').replace('2.', '7.'))).toEqual([]);
    expect(missingLines([line], line.replace('帧从另一端出来', 'frame comes out'))).toEqual([line]);
    expect(missingLines([line], line.replace('cni0', 'cni1'))).toEqual([]); // digits are open (addresses, ports, counts)
  });

  it("its commands are the English README's (nothing it promises is missing there)", () => {
    // The English documentation: the front page and the pages of docs/.
    const pages = [
      'README.md',
      ...readdirSync(join(ROOT, 'docs'))
        .filter((f) => f.endsWith('.md'))
        .map((f) => `docs/${f}`),
    ];
    const en = new Set(pages.flatMap(commands));
    const zh = commands('README.zh-CN.md');
    expect(zh.length).toBeGreaterThan(8);
    for (const c of zh) expect(en.has(c), c).toBe(true);
  });
});
