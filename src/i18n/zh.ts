// 简体中文：与 en.ts 同样的消息 id、同样的占位符（有测试检查），按功能分文件放在 zh/ 下。术语按本项目所依据的中文文章：
// 节点 IP、Pod IP、集群 IP；port、targetPort、nodePort、hostPort、containerPort 保留英文名。
import type { en } from './en.js';
import { labZh } from './zh/lab.js';
import { traceZh } from './zh/trace.js';
import { pathZh } from './zh/path.js';
import { statusZh } from './zh/status.js';
import { doctorZh } from './zh/doctor.js';
import { cliZh } from './zh/cli.js';
import { dropsZh } from './zh/drops.js';
import { webZh } from './zh/web.js';

export const zh: Record<keyof typeof en, string> = {
  ...labZh,
  ...traceZh,
  ...pathZh,
  ...statusZh,
  ...doctorZh,
  ...cliZh,
  ...dropsZh,
  ...webZh,
};
