// Runs inside a sandbox that may reach the worker: for each `port=socket` argument it listens on 127.0.0.1:port in
// the sandbox's own (empty) network namespace and hands each connection to the worker through that bind-mounted unix
// socket (the egress proxy on 3128, the model gateway on 3129); then it runs the command after `--`.
// Only node built-ins: this file is all the sandbox gets.
import { spawn } from 'node:child_process';
import * as net from 'node:net';
import { constants } from 'node:os';

export const BRIDGE_PORT = 3128;
export const GATEWAY_PORT = 3129;

function listen(port: number, socketPath: string): Promise<void> {
  const server = net.createServer((client) => {
    const upstream = net.connect(socketPath);
    client.pipe(upstream);
    upstream.pipe(client);
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
  });
  return new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
}

async function main(args: string[]): Promise<void> {
  const end = args.indexOf('--');
  const cmd = args.slice(end + 1);
  for (const pair of args.slice(0, end)) {
    const [port, socketPath] = pair.split(/=(.*)/s);
    await listen(Number(port), socketPath);
  }
  const child = spawn(cmd[0], cmd.slice(1), { stdio: 'inherit' });
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(signal, () => child.kill(signal));
  child.on('error', (err) => {
    process.stderr.write(`nightshift: cannot run ${cmd[0]}: ${err.message}\n`);
    process.exit(127);
  });
  child.on('exit', (code, signal) => process.exit(code ?? 128 + (signal ? constants.signals[signal] : 0)));
}

if (require.main === module) void main(process.argv.slice(2));
