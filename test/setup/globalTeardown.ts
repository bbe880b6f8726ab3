import { rmSync } from 'node:fs';
import type { PodmanService } from '../../sandbox/podman';
import type { DevServer } from '../../temporal/devServer';

export default async function globalTeardown(): Promise<void> {
  const server = (globalThis as Record<string, unknown>).__nightshiftDevServer as DevServer | undefined;
  await server?.stop();
  await ((globalThis as Record<string, unknown>).__nightshiftPodman as PodmanService | undefined)?.stop();
  if (process.env.NIGHTSHIFT_TEST_DIR && !process.env.NIGHTSHIFT_KEEP_TEST_DIR) rmSync(process.env.NIGHTSHIFT_TEST_DIR, { recursive: true, force: true });
}
