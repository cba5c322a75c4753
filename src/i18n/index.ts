// The learner's language: English (default) or Simplified Chinese, chosen by --lang zh|en or the locale
// (LC_ALL, then LANG, starting with "zh"). One catalogue per language (en.ts, zh.ts), keyed by message id,
// with {placeholders}; a test checks both have every id with the same placeholders. Terms are those of the
// Chinese articles this project teaches from: 节点 IP, Pod IP, 集群 IP; port, targetPort, nodePort,
// hostPort and containerPort keep their English names. A small formatter of our own: the catalogues need
// no plurals or dates, and nothing here is loaded on the plugin's path.
import { en } from './en.js';
import { zh } from './zh.js';

export type Lang = 'en' | 'zh';
export type MessageId = keyof typeof en;
export const LANGS: readonly Lang[] = ['en', 'zh'];
export const CATALOGUES: Record<Lang, Record<MessageId, string>> = { en, zh };

let current: Lang = 'en';

/** --lang when given, else the locale: LC_ALL, LC_MESSAGES or LANG starting with zh means Chinese. */
export function pickLang(flag?: string, env: NodeJS.ProcessEnv = process.env): Lang {
  if (flag === 'zh' || flag === 'en') return flag;
  const locale = env.LC_ALL || env.LC_MESSAGES || env.LANG || '';
  return /^zh/i.test(locale) ? 'zh' : 'en';
}

export function setLang(l: Lang): void {
  current = l;
}
export const lang = (): Lang => current;

/** A message not yet in words: its id and its placeholders' values (the trace's steps are kept so). */
export interface Msg {
  id: MessageId;
  p?: Params;
}
/** A placeholder's value: text, a number, a message of its own, or a list of them (joined by `list.sep`). */
export type Params = Readonly<Record<string, string | number | Msg | readonly Msg[]>>;

/** A message with its values, typed as one (for a placeholder whose value is a message). */
export const msg = (id: MessageId, p?: Params): Msg => ({ id, p });

const value = (v: Params[string]): string =>
  typeof v === 'object' ? ('id' in v ? t(v.id, v.p) : (v as readonly Msg[]).map((m) => t(m.id, m.p)).join(t('list.sep'))) : String(v);

/** The message in the current language, its {placeholders} filled in. */
export function t(id: MessageId, params: Params = {}): string {
  const text = CATALOGUES[current][id] ?? en[id];
  return text.replace(/\{(\w+)\}/g, (m, k: string) => (k in params ? value(params[k]!) : m));
}

/** A proof of the lab (`proof.<id>`) in the current language, IPv6's marked so. */
export function proofName(id: string, family: 4 | 6 = 4): string {
  const key = `proof.${id}` as MessageId;
  const base = key in en ? t(key) : id;
  return family === 6 ? `${base}${current === 'zh' ? '（IPv6）' : ' (IPv6)'}` : base;
}

/** The placeholders of a message, sorted (for the catalogue test). */
export const placeholders = (text: string): string[] => [...text.matchAll(/\{(\w+)\}/g)].map((m) => m[1]!).sort();
