import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  closeSync,
  copyFileSync,
  existsSync,
  linkSync,
  lstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { findGo, runGoBuild, toolsDir } from '../../temporal/cli';
import { stopProcess } from '../../temporal/devServer';
import { freePort } from './ports';
import { tempDir } from './repos';

export const GITEA_VERSION = '1.27.3';
const GITEA_MODULE = `code.gitea.io/gitea@v${GITEA_VERSION}`;
/** SQLite is behind a build tag; unlock_notify keeps concurrent writers from failing with "database is locked". */
const BUILD_TAGS = 'sqlite sqlite_unlock_notify';
/** Gitea refuses to run as root: under root the tests run it as this user, which scripts/setup.sh --docker creates. */
export const GITEA_USER = 'nightshift-gitea';
/** What Gitea reads from its source at run time when built without `bindata` (STATIC_ROOT_PATH). */
const STATIC_DIRS = ['options', 'templates', 'public'];

/** A built Gitea: the binary, and its module source (STATIC_ROOT_PATH: locales, templates, label sets). */
export interface GiteaInstall {
  binary: string;
  staticRoot: string;
}

/** Find Gitea in the tools dir or build it from its Go module (about 5 minutes and 160 MB the first time). */
export async function ensureGitea(progress: (line: string) => void = () => {}): Promise<GiteaInstall> {
  const binary = path.join(toolsDir(), 'gitea');
  const staticRoot = path.join(toolsDir(), '..', `gitea-src-${GITEA_VERSION}`);
  if (existsSync(binary) && existsSync(path.join(staticRoot, 'options', 'locale'))) return { binary, staticRoot };
  const go = findGo();
  if (!go)
    throw new Error(
      `Gitea ${GITEA_VERSION} is not built and Go is missing to build it: install Go (https://go.dev/dl)`,
    );
  if (!existsSync(path.join(staticRoot, 'go.mod'))) copyModuleSource(go, staticRoot, progress);
  if (existsSync(binary)) return { binary, staticRoot };
  progress(`building Gitea ${GITEA_VERSION} into ${binary}; about 5 minutes and 160 MB the first time`);
  const started = Date.now();
  const building = `${binary}.building-${process.pid}`;
  mkdirSync(toolsDir(), { recursive: true });
  const ldflags = `-s -w -X main.Version=${GITEA_VERSION} -X "main.Tags=${BUILD_TAGS}"`;
  await runGoBuild(
    go,
    ['build', '-x', '-tags', BUILD_TAGS, '-ldflags', ldflags, '-o', building, '.'],
    { cwd: staticRoot, env: { ...process.env, CGO_ENABLED: '1' } },
    progress,
  );
  renameSync(building, binary);
  progress(
    `built Gitea ${GITEA_VERSION} in ${Math.round((Date.now() - started) / 1000)}s (${Math.round(statSync(binary).size / 1e6)} MB)`,
  );
  return { binary, staticRoot };
}

/** The module's source, writable (the module cache is read-only), kept: Gitea reads its locales from it at run time. */
function copyModuleSource(go: string, dest: string, progress: (line: string) => void): void {
  progress(`downloading the source of Gitea ${GITEA_VERSION} (${GITEA_MODULE})`);
  const r = spawnSync(go, ['mod', 'download', '-json', GITEA_MODULE], { encoding: 'utf8', timeout: 600_000 });
  const dir = r.status === 0 ? (JSON.parse(r.stdout) as { Dir?: string }).Dir : undefined;
  if (!dir)
    throw new Error(
      `go mod download ${GITEA_MODULE} failed: ${(r.stderr || r.stdout || String(r.error)).trim().split('\n').slice(-3).join(' ')}`,
    );
  const copying = `${dest}.copying-${process.pid}`;
  execFileSync('cp', ['-R', dir, copying]);
  execFileSync('chmod', ['-R', 'u+w', copying]);
  renameSync(copying, dest);
}

/** Under root: the unprivileged user's ids (Gitea will not run as root); otherwise none, Gitea runs as us. */
function runAs(): { uid: number; gid: number; name: string } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const id = (flag: string) => spawnSync('id', [flag, GITEA_USER], { encoding: 'utf8' });
  const [uid, gid] = [id('-u'), id('-g')];
  if (uid.status !== 0 || gid.status !== 0)
    throw new Error(
      `Gitea refuses to run as root and the user ${GITEA_USER} is missing: run scripts/setup.sh --docker (it creates it)`,
    );
  return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()), name: GITEA_USER };
}

/**
 * Under root, the tools dir sits in root's closed home: the binary (hard-linked) and its static files get a copy the
 * Gitea user can reach, in a root-owned dir under the temp dir, made once per build.
 */
function reachableInstall(install: GiteaInstall): GiteaInstall {
  const dir = path.join(os.tmpdir(), `nightshift-gitea-${GITEA_VERSION}`);
  try {
    mkdirSync(dir, { mode: 0o755 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  const st = lstatSync(dir);
  if (!st.isDirectory() || st.uid !== 0 || (st.mode & 0o022) !== 0)
    throw new Error(`${dir} is not a root-owned directory closed to others: remove it`);
  for (const sub of STATIC_DIRS) {
    if (existsSync(path.join(dir, sub))) continue;
    const copying = path.join(dir, `${sub}.copying-${process.pid}`);
    execFileSync('cp', ['-R', path.join(install.staticRoot, sub), copying]);
    execFileSync('chmod', ['-R', 'a+rX', copying]);
    try {
      renameSync(copying, path.join(dir, sub));
    } catch {
      rmSync(copying, { recursive: true, force: true }); // another test file got there first
    }
  }
  const binary = path.join(dir, 'gitea');
  const src = statSync(install.binary);
  const same = existsSync(binary) && statSync(binary).size === src.size && statSync(binary).mtimeMs === src.mtimeMs;
  if (!same) {
    const linking = `${binary}.linking-${process.pid}`;
    try {
      linkSync(install.binary, linking);
    } catch {
      copyFileSync(install.binary, linking);
      chmodSync(linking, 0o755);
      utimesSync(linking, src.atime, src.mtime);
    }
    renameSync(linking, binary);
  }
  return { binary, staticRoot: dir };
}

export interface GiteaUser {
  name: string;
  /** An access token with every scope. */
  token: string;
  /** The users createUser makes have one (the admin's is random and unknown). */
  password?: string;
}

export interface GiteaRepo {
  owner: string;
  name: string;
  /** owner/name */
  fullName: string;
  /** http://127.0.0.1:PORT/owner/name.git */
  cloneUrl: string;
  /** The initial commit on main. */
  head: string;
}

export interface GiteaServer {
  /** http://127.0.0.1:PORT */
  url: string;
  /** url + /api/v1 */
  apiUrl: string;
  admin: GiteaUser;
  /** Gitea's stdout and stderr. */
  logFile: string;
  process: ChildProcess;
  /** A call to Gitea's API as `token` (default the admin's); throws with the status and Gitea's message unless 2xx. */
  api<T = any>(method: string, apiPath: string, opts?: { token?: string; body?: unknown }): Promise<T>;
  createUser(name: string): Promise<GiteaUser>;
  /** A repo of `owner` whose `main` holds `files` (default a README) in one commit pushed through smart HTTP. */
  createRepo(
    owner: string,
    name: string,
    opts?: { files?: Record<string, string>; private?: boolean },
  ): Promise<GiteaRepo>;
  /**
   * A commit of `files` on top of `parent` (default main) as `user` (default the admin), pushed to `branch`; its sha.
   */
  push(
    repo: GiteaRepo,
    branch: string,
    files: Record<string, string>,
    opts?: { parent?: string; user?: GiteaUser; message?: string },
  ): Promise<string>;
  addCollaborator(repo: string, user: string, permission: 'read' | 'write' | 'admin'): Promise<void>;
  /** A Gitea-type (JSON) webhook on `repo` (owner/name); its id. */
  addWebhook(repo: string, hook: { url: string; secret: string; events: string[] }): Promise<number>;
  stop(): Promise<void>;
}

/**
 * A real Gitea on a free loopback port: SQLite, its own work dir, offline, an admin with an all-scopes token.
 * Under root it runs as GITEA_USER.
 */
export async function startGitea(): Promise<GiteaServer> {
  const owner = runAs();
  const built = await ensureGitea();
  const install = owner ? reachableInstall(built) : built;
  const work = tempDir('gitea');
  if (owner) {
    // The suite's dir (0700, root's) must let the Gitea user through to its work dir below.
    chmodSync(path.dirname(work), statSync(path.dirname(work)).mode | 0o111);
    chownSync(work, owner.uid, owner.gid);
  }
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const config = path.join(work, 'app.ini');
  writeFileSync(
    config,
    appIni({ work, port, staticRoot: install.staticRoot, runUser: owner?.name ?? os.userInfo().username }),
    { mode: 0o600 },
  );
  if (owner) chownSync(config, owner.uid, owner.gid);
  const logFile = path.join(work, 'gitea.log');
  const gitea = (args: string[]) =>
    runGitea(install.binary, ['--config', config, '--work-path', work, ...args], { work, owner, logFile });

  await gitea(['migrate']);
  // A random password (none in argv); the admin works with the token Gitea prints.
  const created = await gitea([
    'admin',
    'user',
    'create',
    '--admin',
    '--username',
    'nsadmin',
    '--random-password',
    '--email',
    'nsadmin@example.com',
    '--must-change-password=false',
    '--access-token',
    '--access-token-scopes',
    'all',
  ]);
  const token = /Access token was successfully created\.\.\. (\w+)/.exec(created)?.[1];
  if (!token) throw new Error('gitea admin user create printed no access token');
  const admin: GiteaUser = { name: 'nsadmin', token };

  const log = openSync(logFile, 'a');
  const child = spawn(install.binary, ['web', '--config', config, '--work-path', work], {
    stdio: ['ignore', log, log],
    env: giteaEnv(work, owner),
    uid: owner?.uid,
    gid: owner?.gid,
  });
  closeSync(log);
  await waitForGitea(child, url, logFile);
  return giteaServer({ url, admin, logFile, child, work });
}

function appIni(o: { work: string; port: number; staticRoot: string; runUser: string }): string {
  const secret = () => randomBytes(32).toString('hex');
  return `APP_NAME = Nightshift test Gitea
RUN_USER = ${o.runUser}
RUN_MODE = prod
WORK_PATH = ${o.work}

[server]
PROTOCOL = http
HTTP_ADDR = 127.0.0.1
HTTP_PORT = ${o.port}
DOMAIN = 127.0.0.1
ROOT_URL = http://127.0.0.1:${o.port}/
LOCAL_ROOT_URL = http://127.0.0.1:${o.port}/
APP_DATA_PATH = ${o.work}/data
STATIC_ROOT_PATH = ${o.staticRoot}
OFFLINE_MODE = true
DISABLE_SSH = true
START_SSH_SERVER = false
LFS_START_SERVER = false

[database]
DB_TYPE = sqlite3
PATH = ${o.work}/data/gitea.db
SQLITE_JOURNAL_MODE = WAL

[repository]
ROOT = ${o.work}/repos
DEFAULT_BRANCH = main

[security]
INSTALL_LOCK = true
SECRET_KEY = ${secret()}
INTERNAL_TOKEN = ${secret()}
; webhook deliveries to loopback (the tests' listeners); [webhook] ALLOWED_HOST_LIST is deprecated since 1.27
ALLOWED_HOST_LIST = loopback

[oauth2]
ENABLED = false

[service]
DISABLE_REGISTRATION = true
ENABLE_NOTIFY_MAIL = false
DEFAULT_KEEP_EMAIL_PRIVATE = true

[mailer]
ENABLED = false

[indexer]
ISSUE_INDEXER_TYPE = db
REPO_INDEXER_ENABLED = false

[queue]
TYPE = channel

[session]
PROVIDER = memory

[cache]
ADAPTER = memory

[actions]
ENABLED = false

[packages]
ENABLED = false

[cron.update_checker]
ENABLED = false

[log]
MODE = console
LEVEL = Warn
`;
}

/** Gitea's environment: not ours (no secrets of the test process), a HOME in its work dir. */
function giteaEnv(work: string, owner?: { name: string }): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    HOME: work,
    USER: owner?.name ?? os.userInfo().username,
    GITEA_WORK_DIR: work,
    LANG: 'C.UTF-8',
  };
}

/** A Gitea CLI command (as the Gitea user); its stdout, or an error quoting its output. */
function runGitea(
  binary: string,
  args: string[],
  o: { work: string; owner?: { uid: number; gid: number; name: string }; logFile: string },
): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(binary, args, {
      env: giteaEnv(o.work, o.owner),
      uid: o.owner?.uid,
      gid: o.owner?.gid,
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 120_000,
    });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (err += c));
    child.on('error', reject);
    child.on('close', (code) => {
      const shown = `${out}${err}`.replace(/(created\.\.\. |random password is )\S+/g, '$1***');
      writeFileSync(o.logFile, `$ gitea ${args.join(' ')}\n${shown}`, { flag: 'a' });
      if (code === 0) resolve(out);
      else reject(new Error(`gitea ${args[4] ?? args[0]} failed (exit ${code}): ${lastLines(shown)}`));
    });
  });
}

function lastLines(text: string, n = 8): string {
  return text.trim().split('\n').slice(-n).join('\n');
}

/** Until Gitea answers /api/v1/version; a Gitea that exits or stays silent fails quoting its log. */
async function waitForGitea(child: ChildProcess, url: string, logFile: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(
        `Gitea stopped at start (exit ${child.exitCode ?? child.signalCode}): ${lastLines(readFileSync(logFile, 'utf8'))}`,
      );
    }
    const up = await fetch(`${url}/api/v1/version`, { signal: AbortSignal.timeout(2000) }).then(
      (r) => r.ok,
      () => false,
    );
    if (up) return;
    if (Date.now() > deadline) {
      await stopProcess(child);
      throw new Error(`Gitea did not answer on ${url} within 60s: ${lastLines(readFileSync(logFile, 'utf8'))}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

function giteaServer(s: {
  url: string;
  admin: GiteaUser;
  logFile: string;
  child: ChildProcess;
  work: string;
}): GiteaServer {
  const apiUrl = `${s.url}/api/v1`;
  const api = async <T>(
    method: string,
    apiPath: string,
    opts: { token?: string; body?: unknown; basic?: string } = {},
  ): Promise<T> => {
    const auth = opts.basic
      ? `Basic ${Buffer.from(opts.basic).toString('base64')}`
      : `token ${opts.token ?? s.admin.token}`;
    const res = await fetch(`${apiUrl}${apiPath}`, {
      method,
      headers: { Authorization: auth, 'Content-Type': 'application/json', Accept: 'application/json' },
      body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
      signal: AbortSignal.timeout(30_000),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`Gitea ${method} ${apiPath}: ${res.status} ${text.slice(0, 300)}`);
    return (text ? JSON.parse(text) : undefined) as T;
  };
  // Gitea takes in a push in the background (its post-receive hook queues the branch update): wait for it to show.
  // (Asking for a branch of a repo still marked empty panics in Gitea 1.27, hence the repo first.)
  const branchAt = async (repo: string, branch: string, sha: string) => {
    const deadline = Date.now() + 20_000;
    for (;;) {
      const { empty } = await api<{ empty: boolean }>('GET', `/repos/${repo}`);
      const got = empty
        ? undefined
        : await api<{ commit: { id: string } }>('GET', `/repos/${repo}/branches/${encodeURIComponent(branch)}`).catch(
            () => undefined,
          );
      if (got?.commit.id === sha) return;
      if (Date.now() > deadline) throw new Error(`Gitea did not show ${repo}@${branch} at ${sha} within 20s`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const server: GiteaServer = {
    url: s.url,
    apiUrl,
    admin: s.admin,
    logFile: s.logFile,
    process: s.child,
    api: (method, apiPath, opts) => api(method, apiPath, opts),
    async createUser(name) {
      const password = randomBytes(12).toString('hex');
      await api('POST', '/admin/users', {
        body: { username: name, email: `${name}@example.com`, password, must_change_password: false },
      });
      // A user's token is made with that user's password (basic auth), not by an admin's token.
      const token = await api<{ sha1: string }>('POST', `/users/${name}/tokens`, {
        basic: `${name}:${password}`,
        body: { name: 'tests', scopes: ['all'] },
      });
      return { name, password, token: token.sha1 };
    },
    async createRepo(owner, name, opts = {}) {
      await api('POST', `/admin/users/${owner}/repos`, {
        body: { name, private: opts.private ?? false, auto_init: false, default_branch: 'main' },
      });
      const cloneUrl = `${s.url}/${owner}/${name}.git`;
      const head = pushCommit(cloneUrl, {
        branch: 'main',
        files: opts.files ?? { 'README.md': `# ${name}\n` },
        user: s.admin,
        message: 'Initial commit',
      });
      await branchAt(`${owner}/${name}`, 'main', head);
      return { owner, name, fullName: `${owner}/${name}`, cloneUrl, head };
    },
    async push(repo, branch, files, opts = {}) {
      const sha = pushCommit(repo.cloneUrl, {
        parent: opts.parent ?? 'main',
        branch,
        files,
        user: opts.user ?? s.admin,
        message: opts.message ?? `Change ${Object.keys(files).join(', ')}`,
      });
      await branchAt(repo.fullName, branch, sha);
      return sha;
    },
    async addCollaborator(repo, user, permission) {
      await api('PUT', `/repos/${repo}/collaborators/${user}`, { body: { permission } });
    },
    async addWebhook(repo, hook) {
      const created = await api<{ id: number }>('POST', `/repos/${repo}/hooks`, {
        body: {
          type: 'gitea',
          active: true,
          events: hook.events,
          config: { url: hook.url, content_type: 'json', secret: hook.secret },
        },
      });
      return created.id;
    },
    async stop() {
      await stopProcess(s.child);
      rmSync(s.work, { recursive: true, force: true });
    },
  };
  return server;
}

/**
 * One commit of `files` as `user`, on top of branch `parent` (none: a first commit), pushed to `branch` through smart
 * HTTP; its sha. The token goes in a header from the environment (git's GIT_CONFIG_*), never in argv or a URL.
 */
function pushCommit(
  cloneUrl: string,
  o: { parent?: string; branch: string; files: Record<string, string>; user: GiteaUser; message: string },
): string {
  const dir = tempDir('gitea-push');
  try {
    const env = {
      ...process.env,
      GIT_AUTHOR_NAME: o.user.name,
      GIT_AUTHOR_EMAIL: `${o.user.name}@example.com`,
      GIT_COMMITTER_NAME: o.user.name,
      GIT_COMMITTER_EMAIL: `${o.user.name}@example.com`,
      GIT_CONFIG_COUNT: '1',
      GIT_CONFIG_KEY_0: 'http.extraHeader',
      GIT_CONFIG_VALUE_0: `Authorization: Basic ${Buffer.from(`${o.user.name}:${o.user.token}`).toString('base64')}`,
      GIT_TERMINAL_PROMPT: '0',
    };
    const git = (...args: string[]) =>
      execFileSync('git', args, {
        cwd: dir,
        env,
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
        timeout: 60_000,
      });
    git('init', '-q', '-b', o.branch);
    if (o.parent) {
      git('fetch', '-q', '--depth=1', cloneUrl, o.parent);
      git('reset', '-q', '--hard', 'FETCH_HEAD');
    }
    for (const [file, content] of Object.entries(o.files)) {
      mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
      writeFileSync(path.join(dir, file), content);
    }
    git('add', '-A');
    git('-c', 'commit.gpgsign=false', 'commit', '-q', '-m', o.message);
    git('push', '-q', cloneUrl, `HEAD:refs/heads/${o.branch}`);
    return git('rev-parse', 'HEAD').trim();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
