import type { ActivitySlotInfo, CustomSlotSupplier, SlotPermit } from '@temporalio/worker';
import type { SandboxSlots } from './slots';

/**
 * When a worker polls its driver's claim queue: only with a sandbox slot free, and one claim at a time. A full worker
 * does not poll, so waiting claims stay in Temporal's queue, which hands the next free slot to the claim of highest
 * priority (a single run's before a campaign's: docs/campaigns.md, "Fairness"), not to whichever claim a full worker
 * happened to hold.
 */
export function claimSlotSupplier(slots: SandboxSlots): CustomSlotSupplier<ActivitySlotInfo> {
  let claiming = false;
  const permit = (): SlotPermit => {
    claiming = true;
    return {};
  };
  return {
    type: 'custom',
    async reserveSlot(_ctx, signal) {
      // Another reservation may take the flag while this one waits for a slot: look again until both hold at once.
      while (claiming || slots.load >= slots.capacity) {
        signal.throwIfAborted();
        await (claiming ? new Promise((resolve) => setTimeout(resolve, 50)) : slots.whenFree(signal));
      }
      return permit();
    },
    tryReserveSlot: () => (claiming || slots.load >= slots.capacity ? null : permit()),
    markSlotUsed: () => undefined,
    releaseSlot: () => {
      claiming = false;
    },
  };
}
