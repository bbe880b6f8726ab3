import { DefaultLogger, Runtime, type LogLevel } from '@temporalio/worker';
import { mkdirSync } from 'node:fs';
import * as path from 'node:path';
import pino, { type Logger } from 'pino';

/** pino into `$NIGHTSHIFT_HOME/logs/nightshift.log`, so the terminal keeps the short human summary. */
export function createLogger(home: string, name: string): Logger {
  const dir = path.join(home, 'logs');
  mkdirSync(dir, { recursive: true });
  return pino(
    { name, level: process.env.NIGHTSHIFT_LOG_LEVEL || 'info' },
    pino.destination({ dest: path.join(dir, 'nightshift.log'), append: true, sync: false }),
  );
}

/**
 * Route the Temporal SDK's own logs into pino: warnings and errors only. The runtime is per process: first one wins.
 */
export function installTemporalLogging(logger: Logger): void {
  const level: Record<LogLevel, 'trace' | 'debug' | 'info' | 'warn' | 'error'> = {
    TRACE: 'trace',
    DEBUG: 'debug',
    INFO: 'info',
    WARN: 'warn',
    ERROR: 'error',
  };
  try {
    Runtime.install({
      logger: new DefaultLogger('WARN', (entry) =>
        logger[level[entry.level]]({ ...entry.meta, sdk: true }, entry.message),
      ),
    });
  } catch {
    // already installed in this process (tests start several stacks)
  }
}
