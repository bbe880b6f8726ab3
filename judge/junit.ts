import { promises as fs } from 'node:fs';
import * as path from 'node:path';

/** A JUnit XML report's totals. */
export interface JunitCounts {
  tests: number;
  failures: number;
  errors: number;
  skipped: number;
}

/**
 * The totals of a JUnit XML report: the `<testsuites>` element's when it has them, else the sum of its `<testsuite>`
 * elements'. Undefined when the text has neither (not a JUnit report).
 */
export function junitCounts(xml: string): JunitCounts | undefined {
  const attrs = (tag: string) =>
    Object.fromEntries(
      [...tag.matchAll(/\b(tests|failures|errors|skipped)="(\d+)"/g)].map((m) => [m[1], Number(m[2])]),
    );
  const total = (list: Record<string, number>[]): JunitCounts => ({
    tests: list.reduce((n, a) => n + (a.tests ?? 0), 0),
    failures: list.reduce((n, a) => n + (a.failures ?? 0), 0),
    errors: list.reduce((n, a) => n + (a.errors ?? 0), 0),
    skipped: list.reduce((n, a) => n + (a.skipped ?? 0), 0),
  });
  const outer = /<testsuites\b[^>]*>/.exec(xml);
  if (outer && /\btests="\d+"/.test(outer[0])) return total([attrs(outer[0])]);
  const suites = [...xml.matchAll(/<testsuite\b[^>]*>/g)].map((m) => attrs(m[0]));
  return suites.length ? total(suites) : undefined;
}

/**
 * A check's JUnit report from the workspace, read by the worker after the check ran. The path comes from the spec and
 * the file from the agent: it must resolve inside the workspace (symlinks included), or it is not read.
 */
export async function readJunit(workspace: string, file: string): Promise<{ xml: string } | { problem: string }> {
  const root = await fs.realpath(workspace);
  let real: string;
  try {
    real = await fs.realpath(path.resolve(root, file));
  } catch {
    return { problem: `no JUnit report at ${file}` };
  }
  if (real !== root && !real.startsWith(root + path.sep))
    return { problem: `the JUnit report ${file} is outside the workspace; not read` };
  const stat = await fs.stat(real);
  if (!stat.isFile() || stat.size > 32 * 1024 ** 2)
    return { problem: `${file} is not a JUnit report file (or larger than 32 MiB)` };
  return { xml: await fs.readFile(real, 'utf8') };
}

/**
 * Removes whatever is at the report's path before the check runs, so that a report the agent committed (every test
 * passing) is never read as the check's. Only inside the workspace: the path's directory is resolved first, and a
 * link there is removed as a link.
 */
export async function removeStaleJunit(workspace: string, file: string): Promise<void> {
  const root = await fs.realpath(workspace);
  const dir = await fs.realpath(path.dirname(path.resolve(root, file))).catch(() => undefined);
  if (!dir || (dir !== root && !dir.startsWith(root + path.sep))) return;
  await fs.rm(path.join(dir, path.basename(file)), { recursive: true, force: true });
}
