import { appendFileSync, existsSync, mkdirSync, readFileSync, rmdirSync, rmSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { z } from 'zod';

// The proof log (docs/proof.md, "The proof log"): every proof the server signs, in order, each naming the digest of
// the one before it inside its signed provenance. The file is an index; the chain is in the proofs themselves, so a
// proof removed or replaced afterwards breaks it where anyone walking the log (`nightshift verify --log`) looks.

export const ProofLogEntrySchema = z.object({
  seq: z.number().int().positive(),
  runId: z.string(),
  /** sha256 of the proof bundle (its artifact id). */
  proof: z.string(),
  /** The proof before it, as this one names it. */
  previous: z.string().optional(),
  at: z.iso.datetime(),
});
export type ProofLogEntry = z.infer<typeof ProofLogEntrySchema>;

const LOCK_STALE_MS = 60_000;
const LOCK_WAIT_MS = 30_000;

const logFile = (home: string) => path.join(home, 'proofs', 'log.jsonl');

export function readProofLog(home: string): ProofLogEntry[] {
  const file = logFile(home);
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => ProofLogEntrySchema.parse(JSON.parse(l)));
}

/**
 * Append the run's proof to the log: `sign` makes the bundle knowing its place (the previous proof's digest) and
 * stores it, returning its digest. One writer at a time across the workers sharing the home (a lock directory); a run
 * already in the log (a retried activity) gets its recorded proof back, so no run is logged twice.
 */
export async function appendProof(
  home: string,
  runId: string,
  sign: (position: { seq: number; previous?: string }) => Promise<string>,
): Promise<ProofLogEntry> {
  const release = await lock(home);
  try {
    const entries = readProofLog(home);
    const logged = entries.find((e) => e.runId === runId);
    if (logged) return logged;
    const last = entries[entries.length - 1];
    const position = { seq: (last?.seq ?? 0) + 1, ...(last ? { previous: last.proof } : {}) };
    const proof = await sign(position);
    const entry: ProofLogEntry = { ...position, runId, proof, at: new Date().toISOString() };
    appendFileSync(logFile(home), JSON.stringify(entry) + '\n');
    return entry;
  } finally {
    release();
  }
}

/** mkdir is atomic: the lock is the directory. One left by a killed writer is taken over once it is stale. */
async function lock(home: string): Promise<() => void> {
  const dir = path.join(home, 'proofs');
  mkdirSync(dir, { recursive: true });
  const lockDir = path.join(dir, 'log.lock');
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    try {
      mkdirSync(lockDir);
      return () => rmdirSync(lockDir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const age = Date.now() - (statSync(lockDir, { throwIfNoEntry: false })?.mtimeMs ?? Date.now());
    if (age > LOCK_STALE_MS) rmSync(lockDir, { recursive: true, force: true });
    else if (Date.now() > deadline)
      throw new Error(`the proof log is locked (${lockDir}) for over ${LOCK_WAIT_MS / 1000}s`);
    else await new Promise((r) => setTimeout(r, 50));
  }
}
