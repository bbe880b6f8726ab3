// Runs inside a sandbox that may reach allowlisted hosts: it listens on 127.0.0.1:3128 in the sandbox's own (empty)
// network namespace, hands each connection to the worker's egress proxy through a bind-mounted unix socket, and runs
// the command. Only node built-ins: this file is all the sandbox gets.
import { spawn } from 'node:child_process';
import * as net from 'node:net';
import { constants } from 'node:os';

export const BRIDGE_PORT = 3128;

function main(socketPath: string, cmd: string[]): void {
  const server = net.createServer((client) => {
    const upstream = net.connect(socketPath);
    client.pipe(upstream);
    upstream.pipe(client);
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
  });
  server.listen(BRIDGE_PORT, '127.0.0.1', () => {
    const child = spawn(cmd[0], cmd.slice(1), { stdio: 'inherit' });
    for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(signal, () => child.kill(signal));
    child.on('error', (err) => {
      process.stderr.write(`nightshift: cannot run ${cmd[0]}: ${err.message}\n`);
      process.exit(127);
    });
    child.on('exit', (code, signal) => process.exit(code ?? 128 + (signal ? constants.signals[signal] : 0)));
  });
}

if (require.main === module) main(process.argv[2], process.argv.slice(3));
