import { promises as fs } from 'node:fs';
import { stringify } from 'yaml';
import { formatIssue, readFields, SpecError, validateFields, type FieldsDocument, type SpecIssue } from './parse';
import { SpecSchema } from './schema';

/** A repo's own defaults: spec fields on its default branch, at the root. */
export const REPO_DEFAULTS_FILE = '.nightshift.yml';

/** Where the defaults of a quick spec came from. */
export const QUICK_SPEC_SOURCES = [REPO_DEFAULTS_FILE, 'server', 'built-in'] as const;
export type QuickSpecSource = (typeof QUICK_SPEC_SOURCES)[number];

/**
 * When neither the repo nor the server has defaults: the agent, and the schema's defaults for the rest. The agent is
 * also the default of a file that names none.
 */
export const BUILT_IN_DEFAULTS: Record<string, unknown> = { agent: { kind: 'claude-code' } };

/** What a person gives: which repo, what to call it, what to do. Everything else comes from defaults. */
export interface QuickRequest {
  repo: string;
  title: string;
  task: string;
}

/**
 * Fields the request sets. In `.nightshift.yml` and the server's defaults they are ignored: a repo's file is shared
 * by every run of the repo, so a title or task there would be wrong for all but one, and the repo is the one asked for.
 */
const OWN_FIELDS = ['title', 'task', 'repo'] as const;
const DEFAULTS_SCHEMA = SpecSchema.omit({ title: true, task: true, repo: true });

/** Bad defaults or overrides: one line naming where (`.nightshift.yml`, the server's file, the overrides). */
export class QuickSpecError extends Error {
  readonly issues: SpecIssue[];
  constructor(
    readonly where: string,
    error: SpecError,
  ) {
    super(`${where}: ${formatIssue(error.issues[0])}`);
    this.issues = error.issues;
    this.name = 'QuickSpecError';
  }
}

/**
 * The spec for `request`: the repo's `.nightshift.yml` if it has one, else the server's defaults file, else the
 * built-in defaults; then `overridesYaml` (the form's edited defaults), whose top-level fields replace the defaults'
 * whole (`null` removes one). Returned as plain fields, durations and sizes as written, ready to submit as JSON.
 * Throws QuickSpecError for invalid YAML or fields, SpecError for a bad title or task.
 */
export function quickSpec(
  request: QuickRequest,
  repoYaml: string | undefined,
  serverDefaultsYaml: string | undefined,
  overridesYaml?: string,
): { spec: Record<string, unknown>; source: QuickSpecSource } {
  const [source, text, where] =
    repoYaml !== undefined
      ? ([REPO_DEFAULTS_FILE, repoYaml, REPO_DEFAULTS_FILE] as const)
      : serverDefaultsYaml !== undefined
        ? (['server', serverDefaultsYaml, "the server's spec-defaults.yml"] as const)
        : (['built-in', undefined, 'the built-in defaults'] as const);
  // The built-in agent is the default of every source: a file that sets only checks still runs.
  const defaults = { ...BUILT_IN_DEFAULTS, ...(text === undefined ? {} : withoutOwnFields(readDefaults(text, where))) };
  const spec: Record<string, unknown> = { title: request.title, repo: request.repo, ...defaults };
  let overrides: FieldsDocument | undefined;
  if (overridesYaml !== undefined && overridesYaml.trim() !== '') {
    overrides = read(overridesYaml, 'the overrides');
    for (const field of OWN_FIELDS) {
      const given = overrides.fields[field];
      if (given !== undefined && given !== request[field]) {
        throw new QuickSpecError(
          'the overrides',
          new SpecError([
            {
              field,
              line: overrides.lineOf([field]),
              message: `differs from the request's ${field}; set it there, not in the overrides`,
            },
          ]),
        );
      }
    }
    for (const [key, value] of Object.entries(withoutOwnFields(overrides))) {
      if (value === null) delete spec[key];
      else spec[key] = value;
    }
  }
  spec.task = request.task;
  try {
    validateFields(spec, overrides);
  } catch (err) {
    if (err instanceof SpecError && overrides) throw new QuickSpecError('the overrides', err);
    throw err;
  }
  return { spec, source };
}

/** The request behind a repo's defaults alone (`defaultsYaml` leaves its title and task out). */
export function repoDefaults(repo: string): QuickRequest {
  return { repo, title: 'defaults', task: '' };
}

/** The defaults as the form shows them (folded, editable): the spec minus title and task, as YAML. */
export function defaultsYaml(spec: Record<string, unknown>): string {
  const { title: _title, task: _task, ...rest } = spec;
  return stringify(rest, { lineWidth: 0 });
}

/** A title from a task: its first non-empty line, at most 80 characters. */
export function titleOf(task: string): string {
  const line =
    task
      .split('\n')
      .map((l) => l.trim())
      .find(Boolean) ?? '';
  return line.length > 80 ? `${line.slice(0, 79).trimEnd()}…` : line;
}

/** A defaults file, validated on its own so an issue names its line in that file. */
function readDefaults(text: string, where: string): FieldsDocument {
  const doc = read(text, where);
  const result = DEFAULTS_SCHEMA.safeParse({ ...BUILT_IN_DEFAULTS, ...withoutOwnFields(doc) });
  if (!result.success) throw new QuickSpecError(where, new SpecError(doc.issuesOf(result.error)));
  return doc;
}

function read(text: string, where: string): FieldsDocument {
  try {
    return readFields(text, 'yaml', { emptyIsNone: true });
  } catch (err) {
    if (err instanceof SpecError) throw new QuickSpecError(where, err);
    throw err;
  }
}

function withoutOwnFields(doc: FieldsDocument): Record<string, unknown> {
  const fields = { ...doc.fields };
  for (const field of OWN_FIELDS) delete fields[field];
  return fields;
}

/**
 * The server's defaults (`$NIGHTSHIFT_HOME/spec-defaults.yml`), read at each use so the admin's edits count at once;
 * undefined when there is none. Read by the API (quick runs) and by workers (runs a forge starts).
 */
export async function readServerDefaults(file: string): Promise<string | undefined> {
  try {
    return await fs.readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new Error(
      `cannot read the server's spec-defaults.yml: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    );
  }
}
