import { type NativeConnection, Worker } from '@temporalio/worker';
import { randomBytes } from 'node:crypto';
import { existsSync, promises as fs, readFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Logger } from 'pino';
import { createActivities } from '../activities';
import type { ActivityDeps } from '../runtime/deps';
import { SecretStore } from '../secrets/secretStore';
import { SandboxSlots } from '../sandbox/slots';
import { workerDir } from '../workspaces/sandboxes';
import type { Config } from '../config';
import { removeCgroupGroup } from '../sandbox/cgroup';
import { unmountUnder } from '../sandbox/overlay';
import { DockerDriver } from '../sandbox/docker';
import { probeDrivers } from '../sandbox/drivers';
import type { SandboxDriverName } from '../spec/schema';
import { openArtifactStore } from '../store/openArtifacts';
import { RunLog } from '../store/runLog';
import { prepareRun } from '../admission/prepareRun';
import { claimQueue } from '../contracts/taskQueues';
import { claimSlotSupplier } from '../sandbox/claimSlotSupplier';
import type { WorkspaceRef } from '../contracts/run';
import { startFleetReports } from './fleetReport';
import { agentCliMounts } from '../agents/cli';

/**
 * Heartbeats reach Temporal this often (the SDK otherwise sends them at 80% of the heartbeat timeout): a dead worker is
 * then noticed within the heartbeat timeout of its last one, with the timeout's other seconds left for a busy machine,
 * and a cancel reaches a stage within a second.
 */
const HEARTBEAT_EVERY = '1s';
const STICKY_TIMEOUT = '2s';
const ONE_SLOT = { type: 'fixed-size', numSlots: 1 } as const;

export interface NightshiftWorker {
  self: WorkspaceRef;
  /** Resolves when all its Temporal workers have stopped. */
  run(): Promise<void>;
  /** Stop polling, let running activities finish (up to the grace time), then resolve run(). */
  shutdown(): void;
}

export interface WorkerOptions {
  config: Config;
  connection: NativeConnection;
  logger: Logger;
}

/**
 * One Nightshift worker = several Temporal workers in one process, each registering only its queue's activities
 * (activities/index.ts): the shared queue (workflows and activities any worker can run), this worker's own queue
 * (activities bound to the sandboxes it holds), and one claim queue per sandbox driver it offers.
 */
/** What this worker's activities get: the server's settings, and what the worker itself opened. */
function activityDeps(config: Config, own: Pick<ActivityDeps, 'drivers' | 'slots' | 'self' | 'logger'>): ActivityDeps {
  return {
    home: config.home,
    store: openArtifactStore(config),
    runLog: new RunLog(config.home),
    ...own,
    secrets: new SecretStore(config.allowedSecrets, config.secretsFile),
    modelPrices: config.modelPrices,
    serverBudget: config.serverBudget,
    publicUrl: config.publicUrl,
    githubApiUrl: config.githubApiUrl,
    webhooks: config.webhooks,
    driverWaitMs: config.driverWaitMs,
    // The config's own arrays: `up --example` adds its scripted model server after the worker has started.
    modelUpstreams: config.modelUpstreams,
    egressInternal: config.egressInternal,
    setupNetwork: config.setupNetwork,
    toolchains: config.toolchains,
    envCacheBytes: config.envCacheBytes,
    reposDir: config.reposDir,
    holdoutDir: config.holdoutDir,
    prepareRun: (text, submittedBy) => prepareRun(text, 'application/json', submittedBy, config),
    specDefaultsFile: config.specDefaultsFile,
  };
}

export async function createWorker(opts: WorkerOptions): Promise<NightshiftWorker> {
  const { config, connection, logger } = opts;
  const name = `${os.hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
  const self: WorkspaceRef = { worker: name, queue: `${config.taskQueue}/worker/${name}` };
  const { drivers, statuses } = await probeDrivers(config, name, agentCliMounts());
  for (const s of statuses)
    logger[s.usable ? 'info' : 'warn']({ driver: s.name, usable: s.usable }, `sandbox driver ${s.name}: ${s.detail}`);
  for (const image of statuses.flatMap((s) => s.images ?? []))
    if (image.missing.length)
      logger.warn({ image: image.name }, `image ${image.name}: ${image.missing.join(', ')} (not offered)`);
    else logger.info({ image: image.name, id: image.id }, `image ${image.name}: offered`);
  if (Object.keys(drivers).length === 0)
    throw new Error(`no sandbox driver is usable here: ${statuses.map((s) => `${s.name}: ${s.detail}`).join('; ')}`);
  await sweepDeadWorkers(config.home, logger);
  if (drivers.docker instanceof DockerDriver) {
    const removed = await drivers.docker.sweep((worker) => isLiveWorker(config.home, worker));
    if (removed.length) logger.info({ runs: removed }, 'removed the sandbox containers of dead workers');
  }
  const dir = workerDir(config.home, name);
  await fs.mkdir(dir, { recursive: true });
  await fs.writeFile(path.join(dir, 'owner.json'), JSON.stringify({ pid: process.pid, hostname: os.hostname() }));

  // A claim that no provision follows within the queue timeout was abandoned (its run was cancelled meanwhile).
  const slots = new SandboxSlots(config.maxSandboxes, config.workerQueueTimeoutMs + 60_000);
  const activities = createActivities(activityDeps(config, { drivers, slots, self, logger }));
  // A prebuilt bundle starts in milliseconds; bundling workflows/ here takes seconds.
  const workflowCode = config.workflowBundlePath
    ? { workflowBundle: { codePath: config.workflowBundlePath } }
    : { workflowsPath: require.resolve('../workflows') };
  const common = { connection, namespace: config.namespace, shutdownGraceTime: config.shutdownGraceMs };
  // A run's workflow tasks go to the worker that ran its last one (its sticky queue); when that worker is dead, they
  // wait this long before any worker takes them (and replays the history): the SDK's 10 s would double a move's time.
  const shared = await Worker.create({
    ...common,
    ...workflowCode,
    activities: activities.shared,
    taskQueue: config.taskQueue,
    identity: name,
    stickyQueueScheduleToStartTimeout: STICKY_TIMEOUT,
  });
  const own = await Worker.create({
    ...common,
    activities: activities.workspace,
    taskQueue: self.queue,
    identity: name,
    maxConcurrentActivityTaskExecutions: config.maxSandboxes,
    maxHeartbeatThrottleInterval: HEARTBEAT_EVERY,
  });
  // One claim queue per driver offered, so runs come only to workers that can serve them. One claim at a time, and
  // only with a slot free (sandbox/claimSlotSupplier.ts): a full worker leaves the claims to workers with room, and
  // to Temporal's queue, which hands its next free slot to the claim of highest priority.
  const offered = Object.keys(drivers) as SandboxDriverName[];
  const claimers = await Promise.all(
    offered.map((driver) =>
      Worker.create({
        ...common,
        activities: activities.claim,
        taskQueue: claimQueue(config.taskQueue, driver),
        identity: name,
        tuner: {
          activityTaskSlotSupplier: claimSlotSupplier(slots),
          // It runs no workflows, local activities or Nexus tasks.
          workflowTaskSlotSupplier: ONE_SLOT,
          localActivityTaskSlotSupplier: ONE_SLOT,
          nexusTaskSlotSupplier: ONE_SLOT,
        },
        maxHeartbeatThrottleInterval: HEARTBEAT_EVERY,
      }),
    ),
  );
  const workers = [shared, own, ...claimers];

  return {
    self,
    async run() {
      logger.info(
        { worker: name, queue: self.queue, maxSandboxes: config.maxSandboxes, drivers: offered },
        'worker started',
      );
      const reports = startFleetReports({ connection, config, name, slots, drivers: offered, logger });
      try {
        await Promise.all(workers.map((w) => w.run()));
      } finally {
        await reports.stop();
      }
      // Stages cut short by the shutdown left their sandboxes; their runs move on elsewhere from the last checkpoint.
      // Their overlays (workspaces, environments) first: a mount point cannot be removed.
      await unmountUnder(dir);
      await fs.rm(dir, { recursive: true, force: true });
      await removeCgroupGroup(name);
      logger.info({ worker: name }, 'worker stopped');
    },
    shutdown() {
      for (const w of workers) if (w.getState() === 'RUNNING') w.shutdown();
    },
  };
}

/** Sandboxes of workers on this machine whose process is gone: nobody will tear them down, so do it here. */
async function sweepDeadWorkers(home: string, logger: Logger): Promise<void> {
  const root = path.join(home, 'work');
  if (!existsSync(root)) return;
  for (const entry of await fs.readdir(root)) {
    const dir = path.join(root, entry);
    const owner = readOwner(dir);
    if (!owner || owner.hostname !== os.hostname() || isAlive(owner.pid)) continue;
    // Its sandboxes' environment overlays first: deleting through one would only fill its upper layer.
    await unmountUnder(dir);
    await fs.rm(dir, { recursive: true, force: true });
    await removeCgroupGroup(entry);
    logger.info({ worker: entry }, 'removed the sandboxes of a dead worker');
  }
}

function readOwner(dir: string): { pid: number; hostname: string } | undefined {
  try {
    return JSON.parse(readFileSync(path.join(dir, 'owner.json'), 'utf8'));
  } catch {
    return undefined;
  }
}

/** A worker of this machine whose process still runs (its directory says which process it is). */
function isLiveWorker(home: string, worker: string): boolean {
  const owner = readOwner(workerDir(home, worker));
  return owner !== undefined && owner.hostname === os.hostname() && isAlive(owner.pid);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
