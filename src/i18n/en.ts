// English: the catalogue every other language is checked against (same ids, same placeholders), one file
// per feature under en/: lab, trace, path, status, doctor, cli.
import { lab } from './en/lab.js';
import { trace } from './en/trace.js';
import { path } from './en/path.js';
import { status } from './en/status.js';
import { doctor } from './en/doctor.js';
import { cli } from './en/cli.js';
import { drops } from './en/drops.js';
import { web } from './en/web.js';

export const en = { ...lab, ...trace, ...path, ...status, ...doctor, ...cli, ...drops, ...web } as const;
