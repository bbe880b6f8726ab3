import { z } from 'zod';
import { parseNetworkRule } from './network';
import { TASK_ID } from './plan';

/** "90s", "45m", "72h", "2d" or a number of seconds → milliseconds. */
export function parseDuration(value: string | number): number {
  if (typeof value === 'number') return value * 1000;
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(value.trim());
  if (!m) throw new Error(`not a duration: "${value}" (use e.g. 90s, 45m, 72h, 2d)`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 'ms' | 's' | 'm' | 'h' | 'd'];
  return Math.round(Number(m[1]) * unit);
}

/** "512m", "4g", "1024k" or a number of bytes → bytes. */
export function parseBytes(value: string | number): number {
  if (typeof value === 'number') return value;
  const m = /^(\d+(?:\.\d+)?)([kmg]?)b?$/i.exec(value.trim());
  if (!m) throw new Error(`not a size: "${value}" (use e.g. 512m, 4g)`);
  const unit = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[m[2].toLowerCase() as '' | 'k' | 'm' | 'g'];
  return Math.round(Number(m[1]) * unit);
}

/** A field parsed by `parse` (duration or size): the output is a number (ms or bytes), errors name the field. */
function measured(parse: (v: string | number) => number) {
  return z.union([z.string(), z.number().positive()]).transform((v, ctx) => {
    try {
      return parse(v);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: (err as Error).message });
      return z.NEVER;
    }
  });
}
const duration = measured(parseDuration);
const bytes = measured(parseBytes);

/** Sandbox drivers: bubblewrap on the worker's host, or a container on a Docker-API engine. */
export const SANDBOX_DRIVERS = ['bwrap', 'docker'] as const;
export type SandboxDriverName = (typeof SANDBOX_DRIVERS)[number];

const nonEmpty = z.string().trim().min(1, 'must not be empty');

/** A toolchain's name, as the admin declares it (NIGHTSHIFT_TOOLCHAINS) and a spec asks for it (sandbox.toolchains). */
export const TOOLCHAIN_NAME = /^[a-z0-9][a-z0-9_-]{0,31}$/;

/** Where a sandbox may connect: `host[:port]` rules (spec/network.ts), none by default. */
const networkRules = z
  .array(
    z.string().superRefine((entry, ctx) => {
      try {
        parseNetworkRule(entry);
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: (err as Error).message });
      }
    }),
  )
  .default([]);

/** A path inside the repo: relative, no "..". */
const repoPath = z
  .string()
  .refine(
    (p) => !p.startsWith('/') && !p.split('/').includes('..') && p.trim() !== '',
    'a path inside the workspace (relative, no "..")',
  );

/** A check that runs in the sandbox after every agent iteration. */
export const CheckSchema = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'letters, digits, "_", "." and "-" only (at most 64)'),
  run: nonEmpty,
  /** A JUnit XML report the check writes, relative to the workspace; its counts go into the run and the proof. */
  junit: repoPath.optional(),
  timeout: duration.optional(),
  /**
   * A hold-out test set on the server (`<NIGHTSHIFT_HOLDOUT_DIR>/NAME`, docs/holdout.md): laid over a fresh checkout
   * for this check only, in a sandbox of its own; the agent never sees it.
   */
  holdout: z
    .string()
    .regex(/^[A-Za-z0-9_.-]{1,64}$/, 'the name of a hold-out set: letters, digits, "_", "." and "-" only (at most 64)')
    .refine((n) => n !== '.' && n !== '..', 'the name of a hold-out set, not "." or ".."')
    .optional(),
  /**
   * Compare the check's tests with the base's, and run it with a canary test that must fail (docs/checks.md). Off
   * for a check that runs no tests (a build, a linter): it saves the runs at the base.
   */
  baseline: z.boolean().optional(),
  /**
   * Test files (globs, picomatch) this task may change: their changed versions judge it. Every other test file the
   * change touches runs at the base's version against the agent's code (docs/checks.md, "The base's tests judge the
   * change").
   */
  allowTestChanges: z.array(z.string().trim().min(1, 'a glob of test files')).optional(),
});

/**
 * Commands that prepare the run's environment (install dependencies) before the agent's first iteration, on a
 * checkout of the base, with a network of their own; what they leave is cached (docs/environments.md).
 */
export const SetupSchema = z.strictObject({
  run: z.array(nonEmpty).min(1, 'at least one command'),
  /**
   * Where setup may connect, besides the server's default (NIGHTSHIFT_SETUP_NETWORK); the agent and the checks get
   * `sandbox.network`.
   */
  network: networkRules,
  /**
   * The files the setup reads, when not the whole tree: their contents key the cache instead of the base's tree
   * (docs/environments.md).
   */
  key: z.array(repoPath).min(1).optional(),
  /** All the commands together; default: the sandbox's timeout. */
  timeout: duration.optional(),
});

export const AgentSchema = z
  .strictObject({
    kind: z.enum(['claude-code', 'codex', 'command']),
    model: z.string().optional(),
    /**
     * The model API upstream the run's gateway forwards to (default: the vendor's); the server accepts only that
     * default or one its admin lists (NIGHTSHIFT_MODEL_UPSTREAMS).
     */
    baseUrl: z.url().optional(),
    /** The model API the agent talks to through the run's gateway; claude-code → anthropic, codex → openai. */
    api: z.enum(['anthropic', 'openai']).optional(),
    command: z.array(nonEmpty).min(1).optional(),
  })
  .superRefine((agent, ctx) => {
    if (agent.kind === 'command' && !agent.command) {
      ctx.addIssue({ code: 'custom', path: ['command'], message: 'required when agent.kind is "command"' });
    }
  });

/**
 * One task of a plan (docs/plans.md): the plan's own fields are its defaults; these override them for this task.
 */
export const PlanTaskSchema = z.strictObject({
  id: z.string().regex(TASK_ID, 'a slug: lowercase letters, digits and "-", at most 40'),
  task: z.string().trim().min(1, 'must not be empty'),
  needs: z.array(z.string()).default([]),
  agent: AgentSchema.optional(),
  scope: z.strictObject({ allow: z.array(nonEmpty).default(['**']), deny: z.array(nonEmpty).default([]) }).optional(),
  checks: z
    .array(CheckSchema)
    .refine((cs) => new Set(cs.map((c) => c.name)).size === cs.length, 'check names must be unique')
    .optional(),
  /** A task awaits its own approval only when it says so; the plan awaits one for the whole. */
  approval: z.strictObject({ required: z.boolean().default(false) }).optional(),
});

/**
 * A task as an agent proposes it for `tasks: auto`, and as a person corrects the proposal: the cut of the work only.
 * What judges a task (its checks, scope, agent, approval) stays the spec's: a planner that could set them could
 * propose a plan whose tasks no check judges.
 */
export const ProposedTaskSchema = PlanTaskSchema.pick({ id: true, task: true, needs: true });

/** The task list a planning agent writes, and the body of a correction (`PUT /v1/runs/:id/tasks`). */
export const ProposedTasksSchema = z.strictObject({
  tasks: z.array(ProposedTaskSchema).min(1, 'a plan has at least one task'),
});

export const SpecSchema = z.strictObject({
  title: nonEmpty.max(200),
  task: z.string().default(''),
  repo: nonEmpty,
  base: z.string().optional(),
  branch: z
    .string()
    .regex(/^[A-Za-z0-9._/-]+$/, 'a git branch name (letters, digits, ".", "_", "/", "-")')
    .refine(
      (b) => !b.includes('..') && !b.startsWith('/') && !b.endsWith('/') && !b.endsWith('.lock'),
      'not a valid git branch name',
    )
    .optional(),
  agent: AgentSchema,
  scope: z
    .strictObject({
      allow: z.array(nonEmpty).default(['**']),
      deny: z.array(nonEmpty).default([]),
    })
    .prefault({}),
  setup: SetupSchema.optional(),
  checks: z
    .array(CheckSchema)
    .default([])
    .refine((cs) => new Set(cs.map((c) => c.name)).size === cs.length, 'check names must be unique'),
  /**
   * The files that decide how the checks run (docs/checks.md): the agent may not change them; the checks run the
   * base's.
   */
  harness: z
    .strictObject({
      /** Globs added to the default list of protected files (picomatch, dotfiles match). */
      protect: z.array(nonEmpty).default([]),
      /** Let the agent change the harness: no finding, and the checks run the agent's version. */
      allowChanges: z.boolean().default(false),
    })
    .prefault({}),
  review: z
    .strictObject({
      agent: z.boolean().default(false),
      maxDiffLines: z.number().int().positive().default(600),
      /**
       * Globs of files that may hold binary content (images, fonts); an archive or an executable never may
       * (docs/checks.md).
       */
      allowBinaries: z.array(nonEmpty).default([]),
      /**
       * Globs of non-test files that may read the environment by computed names, the process's arguments, /proc or the
       * stack.
       */
      allowEnvironmentReads: z.array(nonEmpty).default([]),
    })
    .prefault({}),
  approval: z
    .strictObject({
      required: z.boolean().default(true),
      timeout: duration.prefault('72h'),
    })
    .prefault({}),
  deliver: z
    .strictObject({
      push: z.boolean().default(false),
      /**
       * Open a pull request for the pushed branch (`true`, or its settings); implies push. On a registered forge repo
       * it is the default, and `false` opts out (admission/prepareRun.ts settles it: the workflow never sees `false`).
       */
      pr: z
        .preprocess(
          (v) => (v === true ? {} : v),
          z
            .union([
              z.literal(false),
              z.strictObject({
                repo: z
                  .string()
                  .regex(/^[\w.-]+\/[\w.-]+$/, 'owner/name on GitHub')
                  .optional(),
                base: z.string().min(1).optional(),
                draft: z.boolean().default(false),
              }),
            ])
            .optional(),
        )
        .optional(),
    })
    .prefault({}),
  sandbox: z
    .strictObject({
      driver: z.enum(SANDBOX_DRIVERS).default('bwrap'),
      network: networkRules,
      /**
       * The server's toolchains (NIGHTSHIFT_TOOLCHAINS) every sandbox of the run gets on its PATH: `[go]`. Admission
       * refuses a name the server does not offer.
       */
      toolchains: z
        .array(z.string().regex(TOOLCHAIN_NAME, 'a toolchain name (lowercase letters, digits, - and _)'))
        .max(16)
        .refine((names) => new Set(names).size === names.length, 'names a toolchain twice')
        .default([]),
      cpus: z.number().positive().max(64).default(2),
      memory: bytes.prefault('4g'),
      disk: bytes.prefault('10g'),
      /** Files and directories the workspace, HOME and tmp may hold together. */
      files: z.number().int().positive().max(10_000_000).default(500_000),
      timeout: duration.prefault('45m'),
      /**
       * The image the sandbox starts from (docker driver only; docs/images.md): one the server's admin allows
       * (NIGHTSHIFT_DOCKER_IMAGES). Unset = the server's default image.
       */
      image: z
        .string()
        .trim()
        .regex(/^[A-Za-z0-9][A-Za-z0-9._/:@-]{0,254}$/, 'an image name (name[:tag])')
        .optional(),
    })
    .prefault({}),
  secrets: z.array(z.string().regex(/^[A-Z_][A-Z0-9_]*$/, 'an environment variable name')).default([]),
  /** A plan: the work cut into dependent tasks, each a run of its own, approved as one (docs/plans.md). */
  /** `auto`: the spec's agent proposes the tasks, a person approves them before any runs (docs/plans.md). */
  tasks: z
    .union([z.literal('auto'), z.array(PlanTaskSchema).min(1, 'a plan has at least one task')], {
      error: '"auto" (the agent proposes the tasks) or a list of tasks',
    })
    .optional(),
  limits: z
    .strictObject({
      iterations: z.number().int().min(1).max(20).default(3),
      /** Model tokens (input + output) for the whole run, enforced by the gateway. */
      tokens: z.number().int().positive().optional(),
      /** Model cost in USD for the whole run, from the server's price table. */
      costUsd: z.number().positive().optional(),
      /**
       * When the tokens or the cost are spent: `ask` (the run checkpoints, frees its sandbox and waits in
       * `awaiting_budget` for a person to raise the budget, docs/budgets.md), or `fail` the run.
       */
      onExceed: z.enum(['ask', 'fail']).default('ask'),
    })
    .prefault({}),
});

/** A validated spec with every default filled in: what the workflow receives. */
export type Spec = z.output<typeof SpecSchema>;
export type Check = z.output<typeof CheckSchema>;
export type Setup = z.output<typeof SetupSchema>;
export type PlanTask = z.output<typeof PlanTaskSchema>;
export type ProposedTask = z.output<typeof ProposedTaskSchema>;

/** The sandbox section of a spec that sets none (teardown and benchmarks need one without a spec). */
export const DEFAULT_SANDBOX: Spec['sandbox'] = SpecSchema.shape.sandbox.parse(undefined);
