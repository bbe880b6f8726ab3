import { readFileSync } from 'node:fs';
import * as path from 'node:path';

/** Nightshift's version, from its package.json (the built code runs from dist/<dir>/, two levels below it). */
export function nightshiftVersion(): string {
  try {
    return JSON.parse(readFileSync(path.resolve(__dirname, '..', '..', 'package.json'), 'utf8')).version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}
