import * as path from 'node:path';
import { freePort } from '../temporal/ports';

/**
 * A bench's environment: its home under `dir` (unless `extra` names one), its repos in `dir`, free ports for the API
 * and its own Temporal dev server (never one from the caller's environment), and `extra` on top.
 */
export async function benchEnv(dir: string, extra: NodeJS.ProcessEnv = {}): Promise<NodeJS.ProcessEnv> {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    NIGHTSHIFT_HOME: path.join(dir, 'home'),
    NIGHTSHIFT_REPOS_DIR: dir,
    NIGHTSHIFT_PORT: String(await freePort()),
    NIGHTSHIFT_TEMPORAL_PORT: String(await freePort()),
    NIGHTSHIFT_TEMPORAL_UI_PORT: String(await freePort()),
    ...extra,
  };
  delete env.TEMPORAL_ADDRESS;
  return env;
}
