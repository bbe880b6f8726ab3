import { LineCounter, parseDocument, isNode, type Document } from 'yaml';
import { z } from 'zod';
import { SpecSchema, type Spec } from './schema';

export const SpecIssueSchema = z.object({
  field: z.string().describe('Dotted path of the field, e.g. "agent.kind"; "" for the document itself'),
  line: z.number().int().positive().optional().describe('1-based line in the submitted text, when known'),
  message: z.string(),
});
export type SpecIssue = z.infer<typeof SpecIssueSchema>;

/** A spec that failed to parse or validate. `message` is one line naming the first problem. */
export class SpecError extends Error {
  constructor(readonly issues: SpecIssue[]) {
    super(issues.map(formatIssue).join('; '));
    this.name = 'SpecError';
  }
}

export function formatIssue(i: SpecIssue): string {
  const where = [i.field || 'spec', i.line ? `line ${i.line}` : ''].filter(Boolean).join(' at ');
  return `${where}: ${i.message}`;
}

export type SpecFormat = 'markdown' | 'yaml' | 'json';

/** Guess the format from a content type or file name; markdown when the text opens with front matter. */
export function detectFormat(text: string, hint?: string): SpecFormat {
  const h = (hint ?? '').toLowerCase();
  if (h.includes('markdown') || /\.(md|markdown)$/.test(h)) return 'markdown';
  if (h.includes('json') || h.endsWith('.json')) return 'json';
  if (h.includes('yaml') || /\.ya?ml$/.test(h)) return 'yaml';
  if (/^\uFEFF?---\s*\r?\n/.test(text)) return 'markdown';
  return /^\s*[{[]/.test(text) ? 'json' : 'yaml';
}

/**
 * Parse and validate a spec: Markdown with YAML front matter (the body is the task), or YAML/JSON with a
 * `task` field. Every default is applied here, by the schema. Throws SpecError naming the field and line.
 */
export function parseSpec(text: string, hint?: string): Spec {
  const read = specFields(text, hint);
  return validateFields(read.fields, read);
}

/**
 * A spec's fields as written, not yet validated (Markdown's body as `task`): what a campaign takes its own fields
 * from before each repo's spec is validated. Throws SpecError naming the line.
 */
export function specFields(text: string, hint?: string): FieldsDocument {
  const format = detectFormat(text, hint);
  let source = text.replace(/^\uFEFF/, '');
  let lineOffset = 0;
  let body: string | undefined;
  if (format === 'markdown') {
    const m = /^---[ \t]*\r?\n([\s\S]*?)\r?\n?^---[ \t]*(?:\r?\n|$)/m.exec(source);
    if (!m || m.index !== 0) {
      throw new SpecError([
        { field: '', line: 1, message: 'a Markdown spec must start with YAML front matter between "---" lines' },
      ]);
    }
    body = source.slice(m[0].length).trim();
    source = m[1];
    lineOffset = 1;
  }
  const read = readFields(source, format === 'json' ? 'json' : 'yaml', { lineOffset });
  const { fields } = read;
  if (body !== undefined) {
    if (fields.task !== undefined) {
      throw new SpecError([
        {
          field: 'task',
          line: read.lineOf(['task']),
          message: 'give the task either as the Markdown body or as a field, not both',
        },
      ]);
    }
    fields.task = body;
  }
  return read;
}

/** A YAML or JSON mapping of spec fields, with a way back to the line each field is on. */
export interface FieldsDocument {
  fields: Record<string, unknown>;
  /** The line of the deepest node on `path` that exists (a missing field points at its parent). */
  lineOf(path: (string | number)[]): number | undefined;
  /** The schema's issues, each with the line of its field in this document. */
  issuesOf(error: z.ZodError): SpecIssue[];
}

/**
 * Read YAML or JSON that must be a mapping of fields (a spec, or some of one). `lineOffset` is added to every line
 * (front matter starts on line 2); `emptyIsNone`: a document with no content (empty, or comments only) is no fields.
 * Throws SpecError for a syntax error or another shape.
 */
export function readFields(
  source: string,
  format: 'yaml' | 'json',
  opts: { lineOffset?: number; emptyIsNone?: boolean } = {},
): FieldsDocument {
  const lineOffset = opts.lineOffset ?? 0;
  const lines = new LineCounter();
  const doc = parseDocument(source.replace(/^\uFEFF/, ''), {
    lineCounter: lines,
    prettyErrors: false,
    uniqueKeys: true,
  });
  if (doc.errors.length > 0) {
    throw new SpecError(
      doc.errors.map((e) => ({
        field: '',
        line: lines.linePos(e.pos[0]).line + lineOffset,
        message: `${format === 'json' ? 'invalid JSON' : 'invalid YAML'}: ${e.message.split('\n')[0]}`,
      })),
    );
  }
  const data: unknown = doc.contents === null && opts.emptyIsNone ? {} : doc.toJS();
  if (data === null || typeof data !== 'object' || Array.isArray(data)) {
    throw new SpecError([
      { field: '', line: 1 + lineOffset, message: 'the spec must be a mapping of fields (title, repo, agent, …)' },
    ]);
  }
  return {
    fields: data as Record<string, unknown>,
    lineOf: (path) => lineOf(doc, lines, path, lineOffset),
    issuesOf: (error) => toIssues(error, doc, lines, lineOffset),
  };
}

/**
 * Validate spec fields with the schema, filling in every default; SpecError naming each field (and its line in `from`).
 */
export function validateFields(fields: Record<string, unknown>, from?: FieldsDocument): Spec {
  const result = SpecSchema.safeParse(fields);
  if (result.success) return result.data;
  throw new SpecError(
    from
      ? from.issuesOf(result.error)
      : result.error.issues.map((i) => ({ field: i.path.map(String).join('.'), message: i.message })),
  );
}

function toIssues(error: z.ZodError, doc: Document, lines: LineCounter, lineOffset: number): SpecIssue[] {
  return error.issues.map((issue) => {
    let path = issue.path.filter((p): p is string | number => typeof p !== 'symbol');
    let message = issue.message;
    if (issue.code === 'unrecognized_keys') {
      // Point at the unknown key itself, not its parent.
      path = [...path, issue.keys[0]];
      message = `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
    } else if (issue.code === 'invalid_type' && readAt(doc, path) === undefined) {
      message = 'required';
    }
    return { field: path.join('.'), line: lineOf(doc, lines, path, lineOffset), message };
  });
}

function readAt(doc: Document, path: (string | number)[]): unknown {
  return path.length === 0 ? doc.toJS() : doc.getIn(path);
}

/** The line of the deepest node on `path` that exists (a missing field points at its parent). */
function lineOf(doc: Document, lines: LineCounter, path: (string | number)[], lineOffset: number): number | undefined {
  for (let n = path.length; n >= 0; n--) {
    const sub = path.slice(0, n);
    const node = n === 0 ? doc.contents : doc.getIn(sub, true);
    if (isNode(node) && node.range) {
      // For a mapping value, the key's line reads better than the value's.
      const key = n > 0 ? findKeyNode(doc, sub) : undefined;
      const offset = key?.range?.[0] ?? node.range[0];
      return lines.linePos(offset).line + lineOffset;
    }
  }
  return undefined;
}

function findKeyNode(
  doc: Document,
  path: (string | number)[],
): { range?: [number, number, number] | null } | undefined {
  const parent = path.length === 1 ? doc.contents : doc.getIn(path.slice(0, -1), true);
  const last = path[path.length - 1];
  if (parent && typeof parent === 'object' && 'items' in parent && Array.isArray(parent.items)) {
    for (const item of parent.items as unknown[]) {
      if (item && typeof item === 'object' && 'key' in item) {
        const key = (item as { key: unknown }).key;
        if (isNode(key) && 'value' in key && (key as { value: unknown }).value === last) return key;
      }
    }
  }
  return undefined;
}
