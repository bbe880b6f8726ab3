import * as path from 'node:path';
import { loadConfig } from '../config';
import { startCluster } from '../temporal/cluster';

const say = (line: string) => process.stdout.write(line + '\n');

/** `nightshift cluster`: Temporal on PostgreSQL in the foreground, until SIGINT/SIGTERM stop both cleanly. */
export async function cluster(opts: { dir?: string; port?: string }): Promise<void> {
  const dataDir = path.resolve(opts.dir ?? path.join(loadConfig().home, 'cluster'));
  say(`starting Temporal on PostgreSQL (data in ${dataDir})…`);
  const started = Date.now();
  const running = await startCluster({ dataDir, port: opts.port ? Number(opts.port) : undefined, progress: say });
  say(
    `Temporal is up on ${running.address} (PostgreSQL-backed, ${((Date.now() - started) / 1000).toFixed(1)}s). Point Nightshift at it:`,
  );
  say(`  TEMPORAL_ADDRESS=${running.address} npx nightshift up`);
  say('Ctrl-C stops the server, then PostgreSQL; the next start on the same dir finds every run again.');
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      void running.stop().then(
        () => process.exit(0),
        () => process.exit(1),
      );
    });
  }
}
