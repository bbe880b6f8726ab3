import { Connection } from '@temporalio/client';
import * as grpc from '@grpc/grpc-js';
import { TemporalConnection } from '../../temporal/connection';

// A connection closed while the SDK's retry interceptor waits to try a call again (test/unit/temporalConnection).
// Run as a script: `node closeDuringRetry.js plain|temporal` prints how the call ended, or dies of the timer's throw.

const bytes = { serialize: (b: Buffer) => b, deserialize: (b: Buffer) => b };
const DESCRIBE_NAMESPACE = '/temporal.api.workflowservice.v1.WorkflowService/DescribeNamespace';

/** A server that answers DescribeNamespace UNAVAILABLE (retryable), and every other call UNIMPLEMENTED. */
async function unavailableServer(): Promise<{ address: string; calls: () => number; stop(): void }> {
  const server = new grpc.Server();
  let calls = 0;
  server.addService(
    {
      DescribeNamespace: {
        path: DESCRIBE_NAMESPACE,
        requestStream: false,
        responseStream: false,
        requestSerialize: bytes.serialize,
        requestDeserialize: bytes.deserialize,
        responseSerialize: bytes.serialize,
        responseDeserialize: bytes.deserialize,
      },
    },
    {
      DescribeNamespace: (_call: unknown, callback: grpc.sendUnaryData<Buffer>) => {
        calls++;
        callback({ code: grpc.status.UNAVAILABLE, details: 'down for the test' });
      },
    },
  );
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  return { address: `127.0.0.1:${port}`, calls: () => calls, stop: () => server.forceShutdown() };
}

/** Starts a call that fails retryably, and closes the connection once the server has answered it once. */
export async function closeDuringRetry(kind: 'plain' | 'temporal'): Promise<{ outcome: string; calls: number }> {
  const server = await unavailableServer();
  try {
    const connection =
      kind === 'plain'
        ? await Connection.connect({ address: server.address })
        : await TemporalConnection.open({ address: server.address });
    const call = connection.workflowService.describeNamespace({ namespace: 'default' }).then(
      () => 'answered',
      (err: Error) => `failed: ${err.message}`,
    );
    while (server.calls() === 0) await new Promise((r) => setTimeout(r, 5));
    // Its answer back at the client, whose retry is now due in about 170 ms.
    await new Promise((r) => setTimeout(r, 30));
    await connection.close();
    // Time enough for any retry timer left armed to fire.
    await new Promise((r) => setTimeout(r, 1000));
    return { outcome: await Promise.race([call, 'still waiting']), calls: server.calls() };
  } finally {
    server.stop();
  }
}

if (require.main === module)
  void closeDuringRetry(process.argv[2] as 'plain' | 'temporal').then((r) => console.log(JSON.stringify(r)));
