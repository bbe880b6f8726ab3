import { rmSync } from 'node:fs';
import { unmountUnder } from '../../sandbox/overlay';
import type { PodmanService } from '../../sandbox/podman';

export default async function globalTeardown(): Promise<void> {
  // The dev server or the PostgreSQL cluster (globalSetup): both stop the same way.
  const server = (globalThis as Record<string, unknown>).__nightshiftTemporal as { stop(): Promise<void> } | undefined;
  await server?.stop();
  await ((globalThis as Record<string, unknown>).__nightshiftPodman as PodmanService | undefined)?.stop();
  if (process.env.NIGHTSHIFT_TEST_DIR && !process.env.NIGHTSHIFT_KEEP_TEST_DIR) {
    // Overlays a killed worker left mounted (workspaces, environments): a mount point cannot be removed.
    await unmountUnder(process.env.NIGHTSHIFT_TEST_DIR);
    rmSync(process.env.NIGHTSHIFT_TEST_DIR, { recursive: true, force: true });
  }
}
