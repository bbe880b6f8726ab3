import { z } from 'zod';

/** What a worker tells the fleet registry about itself (workers/fleetReport.ts), and what /v1/fleet shows of it. */
export const WorkerReportSchema = z.object({
  name: z.string(),
  host: z.string(),
  capacity: z.number().int().describe('Sandboxes it holds at once (NIGHTSHIFT_MAX_SANDBOXES)'),
  load: z.number().int().describe('Sandboxes it holds now'),
  waiting: z
    .number()
    .int()
    .describe(
      'Claims it holds while full, for a moment, in case a slot frees up (the others wait in the claim queue: queueDepth.claims)',
    ),
  drivers: z.array(z.string()).describe('Sandbox drivers it offers; runs go only to workers offering theirs'),
  agents: z.array(z.object({ kind: z.string(), version: z.string().optional() })),
  memoryBytes: z.number().int().describe('RSS of the worker process'),
  startedAt: z.iso.datetime(),
  at: z.iso.datetime().describe('When it sent this report (every 5 s)'),
  leaving: z.boolean().optional().describe('Shutting down: forget it now'),
});
export type WorkerReport = z.infer<typeof WorkerReportSchema>;
