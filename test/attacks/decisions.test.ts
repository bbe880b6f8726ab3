import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { formatRun } from '../../cli/format';
import { signDecision } from '../../proof/decisions';
import { keyIdOf } from '../../proof/keys';
import { unpackTarGz } from '../../proof/tar';
import { cancelRequestedSignal, stateQuery } from '../../workflows/messages';
import type { DecisionInput, RunStateView } from '../../contracts/run';
import { spec, VALUE_REPO } from '../helpers/specs';
import { useTestStack } from '../helpers/stack';

// Anyone who reaches Temporal (its frontend, Temporal Web) can signal a run with any `by`. Such a decision still
// counts (Temporal access is admin access), but it must never pass for one made through the API: the run's state,
// its proof and the CLI say it came through Temporal and that its name is unverified.

const suite = useTestStack(VALUE_REPO);

/** Runs awaiting approval, submitted together (each takes a while to get there). */
async function awaitingApproval(n: number): Promise<string[]> {
  const ids = await Promise.all(
    Array.from({ length: n }, () => suite.stack.submit(spec(suite.repo, 'echo 2 > src/value.txt'))),
  );
  await Promise.all(ids.map((id) => suite.stack.waitFor(id, ['awaiting_approval'])));
  return ids;
}

const viaTemporal = (id: string, signal: 'approve' | 'reject', input: DecisionInput) =>
  suite.stack.client.workflow.getHandle(id).signal(signal, input);

async function manifestOf(id: string): Promise<any> {
  const res = await fetch(`${suite.stack.apiUrl}/v1/runs/${id}/proof`, {
    headers: { authorization: `Bearer ${suite.stack.token}` },
  });
  expect(res.status).toBe(200);
  return JSON.parse((await unpackTarGz(Buffer.from(await res.arrayBuffer()))).get('manifest.json')!.toString());
}

/** The `state` events of a finished run's event stream. */
async function stateEvents(id: string): Promise<RunStateView[]> {
  const text = (await suite.stack.api('GET', `/v1/runs/${id}/events`)).text;
  return [...text.matchAll(/^event: state\ndata: (.*)$/gm)].map((m) => JSON.parse(m[1]));
}

const unverified = (kind: string, by: string, comment: string) => ({
  kind,
  by,
  comment,
  channel: 'temporal',
  verified: false,
});

describe('decisions say how they came', () => {
  let carol: string;
  let apiApproved: { id: string; sig: string };

  beforeAll(() => {
    carol = suite.stack.tokens.create('carol', 'approver');
  });

  it('approve sent straight to Temporal with by "alice" and a garbage sig → state, events, proof manifest and CLI show alice unverified, via Temporal', async () => {
    const [a] = await awaitingApproval(1);
    await viaTemporal(a, 'approve', { comment: 'lgtm', by: 'alice', sig: randomBytes(64).toString('base64') });
    const done = await suite.stack.waitFor(a, ['succeeded']);
    expect(done.decisions).toEqual([expect.objectContaining(unverified('approve', 'alice', 'lgtm'))]);
    expect(done.decisions[0]).not.toHaveProperty('sig');
    expect((await stateEvents(a)).at(-1)!.decisions).toEqual([
      expect.objectContaining(unverified('approve', 'alice', 'lgtm')),
    ]);
    const manifest = await manifestOf(a);
    expect(manifest.decisions).toEqual([expect.objectContaining(unverified('approve', 'alice', 'lgtm'))]);
    expect(manifest.approval).toMatchObject(unverified('approve', 'alice', 'lgtm'));
    expect(formatRun(done as RunStateView)).toMatch(
      /^decision {3}approve by alice \(unverified, via Temporal\) at .*: lgtm$/m,
    );
  });

  it('approve through the API → channel api, verified, by the token name (carol), in the state and the proof', async () => {
    const [b] = await awaitingApproval(1);
    expect(
      (await suite.stack.api('POST', `/v1/runs/${b}/approve`, { token: carol, body: { comment: 'ship it' } })).status,
    ).toBe(202);
    const done = await suite.stack.waitFor(b, ['succeeded']);
    const verified = { kind: 'approve', by: 'carol', comment: 'ship it', channel: 'api', verified: true };
    expect(done.decisions).toEqual([expect.objectContaining(verified)]);
    expect((await manifestOf(b)).approval).toMatchObject(verified);
    expect(formatRun(done as RunStateView)).toMatch(/^decision {3}approve by carol at .*: ship it$/m);
    // What someone with Temporal access can read of it: the signature as the workflow recorded it.
    const raw = await suite.stack.client.workflow.getHandle(b).query(stateQuery);
    apiApproved = { id: b, sig: raw.decisions[0].sig! };
    expect(apiApproved.sig).toMatch(/^[A-Za-z0-9+/]{86}==$/);
  });

  it.each([
    ["run B's API signature replayed on run A (same kind, by and comment)", () => apiApproved.sig, 'approve'],
    ["run B's API approve signature sent with a reject on run A", () => apiApproved.sig, 'reject'],
    [
      'a signature by another ed25519 key over exactly the right text',
      (id: string) => {
        const { privateKey, publicKey } = generateKeyPairSync('ed25519');
        const pem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
        return signDecision({ privateKey, publicKeyPem: pem, keyId: keyIdOf(pem) }, id, {
          kind: 'approve',
          by: 'carol',
          comment: 'ship it',
          iteration: 1,
        });
      },
      'approve',
    ],
  ] as const)('%s → the decision is recorded as temporal, by carol unverified', async (_attack, forge, signal) => {
    expect(apiApproved).toBeDefined();
    const [a] = await awaitingApproval(1);
    await viaTemporal(a, signal, { comment: 'ship it', by: 'carol', sig: forge(a) });
    const done = await suite.stack.waitFor(a, [signal === 'approve' ? 'succeeded' : 'rejected']);
    expect(done.decisions).toEqual([expect.objectContaining(unverified(signal, 'carol', 'ship it'))]);
    if (signal === 'approve')
      expect((await manifestOf(a)).approval).toMatchObject(unverified('approve', 'carol', 'ship it'));
  });

  it("an API request for changes replayed through Temporal in the run's next iteration → the second one is unverified", async () => {
    const id = await suite.stack.submit(spec(suite.repo, 'echo 2 > src/value.txt', { limits: { iterations: 3 } }));
    await suite.stack.waitFor(id, ['awaiting_approval']);
    expect(
      (
        await suite.stack.api('POST', `/v1/runs/${id}/request-changes`, {
          token: carol,
          body: { comment: 'add a note' },
        })
      ).status,
    ).toBe(202);
    for (let i = 0; i < 300 && (await suite.stack.state(id)).iteration < 2; i++)
      await new Promise((r) => setTimeout(r, 300));
    await suite.stack.waitFor(id, ['awaiting_approval']);
    const { sig } = (await suite.stack.client.workflow.getHandle(id).query(stateQuery)).decisions[0];
    await suite.stack.client.workflow
      .getHandle(id)
      .signal('requestChanges', { comment: 'add a note', by: 'carol', sig });
    let state = await suite.stack.state(id);
    for (let i = 0; i < 100 && state.decisions.length < 2; i++)
      state = await new Promise((r) => setTimeout(r, 300)).then(() => suite.stack.state(id));
    expect(state.decisions).toEqual([
      expect.objectContaining({ kind: 'requestChanges', by: 'carol', iteration: 1, channel: 'api', verified: true }),
      expect.objectContaining({ ...unverified('requestChanges', 'carol', 'add a note'), iteration: 2 }),
    ]);
    await suite.stack.client.workflow.getHandle(id).cancel();
  });

  it('cancel: a cancelRequested sent to Temporal in the name of "admin" is unverified; the API cancel by its token is verified', async () => {
    const ci = suite.stack.tokens.create('ci-bot', 'submitter');
    const id = await suite.stack.submit(spec(suite.repo, 'echo started; sleep 60'));
    await suite.stack.waitFor(id, ['agent']);
    await suite.stack.client.workflow.getHandle(id).signal(cancelRequestedSignal, { comment: 'not me', by: 'admin' });
    expect(
      (await suite.stack.api('POST', `/v1/runs/${id}/cancel`, { token: ci, body: { comment: 'wrong repo' } })).status,
    ).toBe(202);
    const cancelled = await suite.stack.waitFor(id, ['cancelled']);
    expect(cancelled.decisions).toEqual([
      expect.objectContaining(unverified('cancel', 'admin', 'not me')),
      expect.objectContaining({ kind: 'cancel', by: 'ci-bot', comment: 'wrong repo', channel: 'api', verified: true }),
    ]);
  });
});
