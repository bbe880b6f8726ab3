import { z } from 'zod';
import { SpecIssueSchema, type SpecIssue } from '../spec/parse';

const ERROR_CODES = [
  'bad_request',
  'unauthorized',
  'forbidden',
  'not_found',
  'conflict',
  'too_large',
  'unsupported_media_type',
  'too_many_requests',
  'internal',
  'unavailable',
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

/** Every error the API answers with. */
export const ErrorBodySchema = z.object({
  error: z.object({
    code: z.enum(ERROR_CODES),
    message: z.string().describe('One line'),
    issues: z.array(SpecIssueSchema).optional().describe('For a refused spec: each problem with its field and line'),
  }),
});

const STATUS: Record<ErrorCode, number> = {
  bad_request: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  too_large: 413,
  unsupported_media_type: 415,
  too_many_requests: 429,
  internal: 500,
  unavailable: 503,
};

/** An error the API answers with: a status, a code and a one-line message (and spec issues for 400s). */
export class ApiError extends Error {
  readonly status: number;
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly issues?: SpecIssue[],
  ) {
    super(message);
    this.status = STATUS[code];
  }

  toJSON(): z.infer<typeof ErrorBodySchema> {
    return { error: { code: this.code, message: this.message, ...(this.issues ? { issues: this.issues } : {}) } };
  }
}
