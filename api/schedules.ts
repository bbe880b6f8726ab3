import { ScheduleAlreadyRunning, ScheduleNotFoundError, type Client } from '@temporalio/client';
import { randomBytes } from 'node:crypto';
import { Router, type Request, type Response } from 'express';
import { z } from 'zod';
import type { Config } from '../config';
import { PLAN_RUN_WORKFLOW, SPEC_RUN_WORKFLOW } from '../workflows/names';
import { ApiError } from './errors';
import { principalOf, repoAllowed, repoLimitName, requireRepo, requireRole } from './auth';
import { jsonBodyOf } from './runs';
import { prepareRun } from '../admission/prepareRun';
import { runStartOptions } from './submit';

export const ScheduleRequestSchema = z.strictObject({
  id: z
    .string()
    .regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'lowercase letters, digits and "-" (at most 63)')
    .optional(),
  cron: z.string().trim().min(1, 'a cron expression, e.g. "0 6 * * 1-5"'),
  spec: z.union([z.string().min(1), z.record(z.string(), z.unknown())]),
  specFormat: z.enum(['markdown', 'yaml', 'json']).optional(),
  paused: z.boolean().default(false),
});

/** A schedule as `GET /v1/schedules` lists it. */
export const ScheduleSchema = z.object({
  id: z.string(),
  cron: z.string(),
  title: z.string(),
  paused: z.boolean(),
  nextRunAt: z.iso.datetime().optional(),
  recentRuns: z.array(z.string()).describe('Ids of the runs it started lately'),
});

/** Recurring specs, as Temporal Schedules (visible and editable in Temporal Web too). */
export function schedulesRouter(client: Client, config: Config): Router {
  const router = Router();

  router.post('/', requireRole('submitter'), (req, res) => createSchedule(client, config, req, res));
  router.get('/', requireRole('viewer'), (req, res) => listSchedules(client, config, req, res));

  const actions: [string, 'submitter' | 'admin', (id: string) => Promise<void>, number][] = [
    ['trigger', 'submitter', (id) => client.schedule.getHandle(id).trigger('ALLOW_ALL'), 202],
    ['pause', 'submitter', (id) => client.schedule.getHandle(id).pause('paused from the Nightshift API'), 202],
    ['unpause', 'submitter', (id) => client.schedule.getHandle(id).unpause('unpaused from the Nightshift API'), 202],
  ];
  for (const [name, role, act, status] of actions) {
    router.post(`/:id/${name}`, requireRole(role), async (req, res) => {
      const id = await existing(req);
      await act(id);
      res.status(status).json({ id });
    });
  }

  router.delete('/:id', requireRole('submitter'), async (req, res) => {
    await client.schedule.getHandle(await existing(req)).delete();
    res.status(204).end();
  });

  /**
   * The schedule's id, once Temporal confirms a Nightshift schedule by that id exists (of a repo the token may touch).
   */
  async function existing(req: Request): Promise<string> {
    const id = String(req.params.id);
    try {
      const d = await client.schedule.getHandle(id).describe();
      if (d.memo?.nightshift) {
        requireRepo(principalOf(req), repoOf(d.memo), config.reposDir, `schedule ${id}`);
        return id;
      }
    } catch (err) {
      if (!(err instanceof ScheduleNotFoundError)) throw err;
    }
    throw new ApiError('not_found', `no schedule with id ${id.slice(0, 100)}`);
  }

  return router;
}

/** A Temporal Schedule that starts the spec's run on its cron. */
async function createSchedule(client: Client, config: Config, req: Request, res: Response): Promise<void> {
  const body = parseBody(req);
  const id = body.id ?? randomBytes(4).toString('hex');
  const specText = typeof body.spec === 'string' ? body.spec : JSON.stringify(body.spec);
  const format = typeof body.spec === 'string' ? body.specFormat : 'json';
  const principal = principalOf(req);
  const input = prepareRun(specText, format, `${principal.name} (schedule ${id})`, config);
  requireRepo(principal, input.spec.repo, config.reposDir, `repo ${repoLimitName(input.spec.repo, config.reposDir)}`);
  try {
    await client.schedule.create({
      scheduleId: id,
      spec: { cronExpressions: [body.cron] },
      action: {
        type: 'startWorkflow',
        // A scheduled plan runs as a plan, its tasks each a run of its own (docs/plans.md).
        workflowType: input.spec.tasks ? PLAN_RUN_WORKFLOW : SPEC_RUN_WORKFLOW,
        workflowId: `ns-sched-${id}`,
        ...runStartOptions(input, config),
      },
      policies: { overlap: 'SKIP' },
      state: { paused: body.paused },
      // The repo, so repo-limited tokens see and act on their repos' schedules only.
      memo: { nightshift: true, title: input.spec.title, cron: body.cron, repo: input.spec.repo },
    });
  } catch (err) {
    if (err instanceof ScheduleAlreadyRunning)
      throw new ApiError('conflict', `a schedule with id ${id} already exists`);
    const msg = (err as Error).message ?? '';
    if (/cron|invalid/i.test(msg))
      throw new ApiError('bad_request', `cron: ${msg.split('\n')[0]}`, [
        { field: 'cron', message: msg.split('\n')[0] },
      ]);
    throw err;
  }
  res.status(201).json({ id, url: `${config.publicUrl}/v1/schedules/${id}` });
}

/** The Nightshift schedules of the repos the token may see. */
async function listSchedules(client: Client, config: Config, req: Request, res: Response): Promise<void> {
  const principal = principalOf(req);
  const schedules: z.infer<typeof ScheduleSchema>[] = [];
  for await (const s of client.schedule.list()) {
    if (!s.memo?.nightshift || !repoAllowed(principal, repoOf(s.memo), config.reposDir)) continue;
    schedules.push({
      id: s.scheduleId,
      cron: String(s.memo.cron ?? ''),
      title: String(s.memo.title ?? ''),
      paused: s.state.paused,
      nextRunAt: s.info.nextActionTimes[0]?.toISOString(),
      recentRuns: s.info.recentActions.map((a) => a.action.workflow.workflowId),
    });
  }
  res.json({ schedules });
}

/** Schedules made before repos were recorded in the memo have none: repo-limited tokens cannot touch them. */
const repoOf = (memo: Record<string, unknown>): string | undefined =>
  typeof memo.repo === 'string' ? memo.repo : undefined;

function parseBody(req: Request): z.infer<typeof ScheduleRequestSchema> {
  return jsonBodyOf(req, ScheduleRequestSchema, '{"cron": "…", "spec": "…"}');
}
