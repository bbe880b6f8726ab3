import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { gitIn, makeRepo, tempDir, useTestStack } from '../helpers/stack';
import { spec, VALUE_REPO } from '../helpers/specs';
import type { RunState } from '../../contracts/run';

// The agent owns everything in its workspace, `.git` included. Each case is an agent that plants git metadata a host
// git would obey (a filter, a hook, a commondir, a gitdir file, a nested repository, a symlink to write through…)
// and then does the task. The run goes all the way through (checks, review, approval, proof, delivery into the source
// repo), and the case asserts the host-side effect the payload was after did not happen: its marker file on the host
// is absent, another repository's refs and HEAD are as they were, nothing of the host's secrets is in the diff.

const VICTIM_SECRET = `victim-secret-${process.pid}`;

interface Attack {
  name: string;
  /** Shell run by the agent in /workspace; MARKER, VICTIM (a repo outside the run) and VICTIM_DIR are substituted. */
  script: string;
  /** The run loops once: the first iteration leaves the check failing, so a second layout of the workspace happens. */
  twoIterations?: boolean;
}

/** A filter, diff and merge driver and the hooks and helpers a host git would run, each touching the marker. */
const PAYLOAD_CONFIG = String.raw`[core]
	fsmonitor = touch MARKER
	pager = touch MARKER
	sshCommand = touch MARKER
	hooksPath = evil-hooks
[filter "x"]
	clean = sh -c 'touch MARKER; cat'
	smudge = sh -c 'touch MARKER; cat'
	process = touch MARKER
	required = true
[diff "x"]
	textconv = sh -c 'touch MARKER; cat'
	command = touch MARKER
[diff]
	external = touch MARKER
[merge "x"]
	driver = touch MARKER
[include]
	path = ../../evil-include.cfg
`;

const plantConfig = (file: string) => `printf '%s' '${PAYLOAD_CONFIG.replace(/'/g, `'"'"'`)}' >> ${file}`;
const attributes = `printf '* filter=x diff=x merge=x\\n' > .gitattributes`;
const hook = (dir: string) =>
  `mkdir -p ${dir} && for h in pre-commit post-commit post-checkout reference-transaction post-index-change pre-auto-gc post-rewrite; do printf '#!/bin/sh\\ntouch MARKER\\n' > ${dir}/$h; chmod +x ${dir}/$h; done`;
const doTheTask = 'printf "2\\n" > src/value.txt';

const ATTACKS: Attack[] = [
  {
    name: 'filter, diff and merge drivers in .git/config, named by .gitattributes',
    script: `${plantConfig('.git/config')}; ${attributes}; ${doTheTask}`,
  },
  {
    name: 'core.fsmonitor, core.pager, core.sshCommand and diff.external in .git/config',
    script: `${plantConfig('.git/config')}; ${doTheTask}`,
  },
  {
    name: 'hooks in .git/hooks (pre-commit, post-checkout, reference-transaction, …)',
    script: `${hook('.git/hooks')}; ${doTheTask}`,
  },
  {
    name: 'core.hooksPath pointing at hooks in the work tree',
    script: `${hook('evil-hooks')}; ${plantConfig('.git/config')}; ${doTheTask}`,
  },
  {
    name: 'config include.path to a config file the agent wrote',
    script: `${plantConfig('evil-include.cfg')}; printf '[include]\\n\\tpath = ../evil-include.cfg\\n' >> .git/config; ${attributes}; ${doTheTask}`,
  },
  {
    name: '.git/commondir pointing at a copy of .git whose config runs a filter',
    script: `mkdir .evil && cp -r .git/. .evil/ && ${plantConfig('.evil/config')} && echo ../.evil > .git/commondir; ${attributes}; ${doTheTask}`,
  },
  {
    name: '.git replaced by a gitdir: file naming another repository',
    script: `rm -rf .git && echo "gitdir: VICTIM/.git" > .git; ${doTheTask}`,
  },
  {
    name: '.git replaced by a symlink to another repository',
    script: `rm -rf .git && ln -s VICTIM/.git .git; ${doTheTask}`,
  },
  {
    name: 'objects/info/alternates naming another repository\u2019s objects',
    script: `echo VICTIM/.git/objects > .git/objects/info/alternates; ${doTheTask}`,
  },
  {
    name: 'symlinked refs, packed-refs and HEAD pointing into another repository',
    script: `for r in .git/refs/heads/*; do rm -f "$r"; ln -s VICTIM/.git/refs/heads/main "$r"; done; rm -f .git/packed-refs; ln -s VICTIM/.git/packed-refs .git/packed-refs; echo "ref: refs/heads/../../../../../../VICTIM/.git/refs/heads/main" > .git/HEAD; ${doTheTask}`,
  },
  {
    name: '.gitmodules with an update command and a submodule url naming another repository',
    script: `printf '[submodule "sub"]\\n\\tpath = sub\\n\\turl = VICTIM\\n\\tupdate = !touch MARKER\\n' > .gitmodules; mkdir sub; echo "gitdir: VICTIM/.git" > sub/.git; ${plantConfig('.git/config')}; printf '[submodule]\\n\\trecurse = true\\n' >> .git/config; ${doTheTask}`,
  },
  {
    name: 'a nested repository whose .git is a gitdir: file naming another repository',
    script: `mkdir -p notes/nested && echo "gitdir: VICTIM/.git" > notes/nested/.git && echo hi > notes/nested/f; ${doTheTask}`,
  },
  {
    name: 'a nested repository whose .git is a symlink to another repository',
    script: `mkdir -p notes/linked && ln -s VICTIM/.git notes/linked/.git && echo hi > notes/linked/f; ${doTheTask}`,
  },
  {
    name: 'a workspace directory replaced by a symlink to a host directory, then laid out again by the host',
    script: `if [ -L src ]; then rm src; mkdir src; ${doTheTask}; else rm -rf src; ln -s VICTIM_DIR src; fi`,
    twoIterations: true,
  },
  {
    name: 'commits, branch names and messages of its own, with terminal escapes and option-like names',
    script: `printf 'ref: refs/heads/--upload-pack=touch MARKER\\n' > .git/HEAD; printf '\\033]52;c;cHduZWQ=\\007 forged\\n' > .git/COMMIT_EDITMSG; ${doTheTask}`,
  },
  {
    name: 'symlinks to the host\u2019s secrets committed into the change',
    script: `ln -s HOME_KEYS/signing.key notes/key; ln -s HOME_TOKEN notes/token; ln -s /etc/shadow notes/shadow; ${doTheTask}`,
  },
  {
    name: 'a FIFO, a socket-like special file and a .git that is a FIFO',
    script: `mkfifo notes/pipe; rm -rf .git && mkfifo .git; ${doTheTask}`,
  },
];

interface Outcome {
  marker: string;
  victimDir: string;
  diff: string;
  done: RunState;
  branch: string;
  title: string;
}

describe.each(['bwrap', 'docker'])('%s: what the agent writes in git is data to the host', (driver) => {
  const made = useTestStack(VALUE_REPO, { env: { NIGHTSHIFT_MAX_SANDBOXES: '6' } });
  let victim: string;
  let victimRefs: string;
  const outcomes = new Map<string, Promise<Outcome>>();

  /** One attack as a whole run: submitted, awaited, approved, delivered. */
  async function attack({ name, script, twoIterations }: Attack, markers: string): Promise<Outcome> {
    const { stack, repo } = made;
    const id = name
      .replace(/[^a-z]+/gi, '-')
      .slice(0, 40)
      .replace(/-$/, '');
    const marker = path.join(markers, id);
    const victimDir = path.join(markers, `${id}-dir`);
    mkdirSync(victimDir, { recursive: true });
    const agent = script
      .replace(/MARKER/g, marker)
      .replace(/VICTIM_DIR/g, victimDir)
      .replace(/VICTIM/g, victim)
      .replace(/HOME_KEYS/g, path.join(stack.config.home, 'keys'))
      .replace(/HOME_TOKEN/g, path.join(stack.config.home, 'token'));
    const title = `attack ${id}`;
    const branch = `attack/${driver}-${id}`;
    // A copy of .git holds git's binary index and objects: allowed here, so the run reaches delivery, where the host's
    // git is what is tried.
    const runId = await stack.submit(
      spec(repo, agent, {
        title,
        branch,
        scope: { allow: ['**'] },
        review: { maxDiffLines: 100_000, allowBinaries: ['.evil/**'] },
        sandbox: { driver },
        limits: { iterations: twoIterations ? 2 : 1 },
      }),
    );
    // All of a driver's attacks are queued at once: the last waits for the others' sandbox slots.
    const waiting = await stack.waitFor(runId, ['awaiting_approval'], 400_000);
    expect(waiting.iteration).toBe(twoIterations ? 2 : 1);
    const diff = (await stack.api('GET', `/v1/runs/${runId}/diff`)).text;
    expect((await stack.api('POST', `/v1/runs/${runId}/approve`, { body: { comment: 'ok' } })).status).toBe(202);
    const done = await stack.waitFor(runId, ['succeeded'], 300_000);
    return { marker, victimDir, diff, done, branch, title };
  }

  beforeAll(() => {
    victim = makeRepo({ 'secret.txt': `${VICTIM_SECRET}\n`, 'README.md': 'another team\u2019s repo\n' });
    victimRefs = refsOf(victim);
    const markers = tempDir(`markers-${driver}`);
    // All at once: each test below awaits its own.
    for (const a of ATTACKS) {
      const outcome = attack(a, markers);
      outcome.catch(() => undefined); // reported by its test
      outcomes.set(a.name, outcome);
    }
  });

  test.each(ATTACKS)(
    '$name',
    async ({ name }) => {
      const { stack, repo } = made;
      const { marker, victimDir, diff, done, branch, title } = await outcomes.get(name)!;
      // The payload never ran on the host, wherever git would have run it.
      expect(existsSync(marker)).toBe(false);
      // Another repository is untouched, and nothing of it or of the server's secrets reached the change.
      expect(refsOf(victim)).toBe(victimRefs);
      expect(readdirSync(victimDir)).toEqual([]);
      const signingKey = readFileSync(path.join(stack.config.home, 'keys', 'signing.key'), 'utf8').split('\n')[1];
      for (const secret of [VICTIM_SECRET, stack.token, signingKey]) expect(diff).not.toContain(secret);
      expect(diff).not.toMatch(/Subproject commit/);
      // What was delivered is the worker's own commit of the files: the task done, under Nightshift's name and message.
      expect(gitIn(repo, 'show', `${done.finalCommit}:src/value.txt`)).toBe('2\n');
      expect(gitIn(repo, 'log', '-1', '--format=%an <%ae>%n%s', done.finalCommit!)).toMatch(
        new RegExp(`^Nightshift <nightshift@localhost>\\n${title} \\(iteration \\d\\)`),
      );
      expect(gitIn(repo, 'rev-parse', `refs/heads/${branch}`).trim()).toBe(done.finalCommit);
    },
    720_000,
  );
});

/** A repository's refs, HEAD and object count: any write shows. */
function refsOf(repo: string): string {
  return [
    gitIn(repo, 'for-each-ref'),
    gitIn(repo, 'symbolic-ref', 'HEAD'),
    gitIn(repo, 'rev-parse', 'HEAD'),
    gitIn(repo, 'count-objects', '-v'),
  ].join('\n');
}
