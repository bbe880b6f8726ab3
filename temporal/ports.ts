import * as net from 'node:net';

/** A TCP port free on 127.0.0.1 right now (the OS picks it). */
export function freePort(): Promise<number> {
  return listenOn(0);
}

/**
 * A free port below 32768, out of the OS's ephemeral range: Temporal's SQL schema keeps membership ports in a
 * `smallint` column, which an ephemeral port overflows.
 */
export async function freeLowPort(): Promise<number> {
  for (let attempt = 0; ; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 12_768);
    try {
      return await listenOn(port);
    } catch (err) {
      if (attempt >= 50) throw err;
    }
  }
}

function listenOn(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(port, '127.0.0.1', () => {
      const { port: bound } = server.address() as net.AddressInfo;
      server.close(() => resolve(bound));
    });
  });
}
