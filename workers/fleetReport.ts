import { Client } from '@temporalio/client';
import type { NativeConnection } from '@temporalio/worker';
import * as os from 'node:os';
import type { Logger } from 'pino';
import type { SandboxSlots } from '../sandbox/slots';
import { agentCliVersion } from '../agents/cli';
import type { Config } from '../config';
import { fleetWorkflowId, fleetRegistry, REPORT_INTERVAL_MS, workerReportSignal } from '../workflows/fleet';
import type { WorkerReport } from '../contracts/run';

/**
 * The agent CLIs this worker can put in a sandbox, with their versions (from their package.json: no process started).
 */
function agentClis(): WorkerReport['agents'] {
  const agents: WorkerReport['agents'] = [{ kind: 'command' }];
  for (const kind of ['claude-code', 'codex']) {
    const version = agentCliVersion(kind);
    if (version) agents.push({ kind, version });
  }
  return agents;
}

/**
 * Tell the fleet registry (a workflow) who this worker is, every few seconds, until stopped; the last report says it
 * is leaving. A report that fails (Temporal restarting) is logged and the next one tries again.
 */
export function startFleetReports(opts: {
  connection: NativeConnection;
  config: Config;
  name: string;
  slots: SandboxSlots;
  drivers: string[];
  logger: Logger;
}): { stop(): Promise<void> } {
  const { config, slots, logger } = opts;
  const client = new Client({ connection: opts.connection, namespace: config.namespace });
  const startedAt = new Date().toISOString();
  const agents = agentClis();
  const report = (leaving?: boolean): WorkerReport => ({
    name: opts.name,
    host: os.hostname(),
    capacity: slots.capacity,
    load: slots.load,
    waiting: slots.waiting,
    drivers: opts.drivers,
    agents,
    memoryBytes: process.memoryUsage().rss,
    startedAt,
    at: new Date().toISOString(),
    ...(leaving ? { leaving } : {}),
  });
  const send = (r: WorkerReport) =>
    client.workflow.signalWithStart(fleetRegistry, {
      workflowId: fleetWorkflowId(config.taskQueue),
      taskQueue: config.taskQueue,
      args: [[]],
      signal: workerReportSignal,
      signalArgs: [r],
    });
  let last: Promise<unknown> = send(report()).catch((err: Error) => logger.warn({ err }, 'fleet report failed'));
  const timer = setInterval(() => {
    last = send(report()).catch((err: Error) => logger.warn({ err }, 'fleet report failed'));
  }, REPORT_INTERVAL_MS);
  return {
    async stop() {
      clearInterval(timer);
      await last;
      await send(report(true)).catch((err: Error) => logger.warn({ err }, 'fleet report failed'));
    },
  };
}
