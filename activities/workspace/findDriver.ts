import { ApplicationFailure, Context } from '@temporalio/activity';
import { temporal } from '@temporalio/proto';
import { SANDBOX_DRIVERS, type SandboxDriverName } from '../../spec/schema';
import { claimQueue } from '../../contracts/taskQueues';
import type { ActivityDeps } from '../../runtime/deps';

/**
 * Which workers offer the driver (they poll its claim queue), waiting a little for workers that are just starting;
 * none at all fails the run now, saying what the fleet does offer, rather than leaving it queued unseen.
 */
export const findDriver =
  (deps: Pick<ActivityDeps, 'driverWaitMs'>) =>
  async (input: { driver: SandboxDriverName; taskQueue: string }): Promise<string[]> => {
    const client = Context.current().client;
    const pollersOf = async (driver: SandboxDriverName) => {
      const res = await client.workflowService.describeTaskQueue({
        namespace: client.options.namespace,
        taskQueue: { name: claimQueue(input.taskQueue, driver) },
        taskQueueType: temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
      });
      return (res.pollers ?? []).map((p) => p.identity ?? 'unknown');
    };
    for (const deadline = Date.now() + deps.driverWaitMs; ;) {
      const workers = await pollersOf(input.driver);
      if (workers.length) return workers;
      if (Date.now() > deadline) break;
      await Context.current().sleep(1000);
    }
    const offered = [];
    for (const driver of SANDBOX_DRIVERS) if ((await pollersOf(driver)).length) offered.push(driver);
    throw ApplicationFailure.nonRetryable(
      `no worker offers the ${input.driver} sandbox driver (the fleet offers: ${offered.join(', ') || 'nothing'}); see \`nightshift doctor\` on the workers`,
      'NoSandboxDriver',
    );
  };
