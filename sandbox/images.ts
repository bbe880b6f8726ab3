import type Docker from 'dockerode';
import { CA_BUNDLE, HOME_DIR, SANDBOX_UID, startingEnv, WORKSPACE_DIR } from './layout';

// The image contract (docs/images.md): what the docker driver relies on in an image, checked by one short container
// run per image id (at worker start, and again when a run asks for an image the worker has not checked yet).

/** One image as a worker found it: its id, the PATH its sandboxes get, and what it lacks (empty = offered). */
export interface ImageCheck {
  name: string;
  /** The image id (`sha256:…`), when the engine has the image. */
  id?: string;
  /** The image's own PATH (its ENV), else the sandbox's base PATH. */
  path: string;
  /** Each missing piece in words ("no git"); empty when the image holds everything the driver relies on. */
  missing: string[];
  /** The toolchains its label `nightshift.toolchains` says it holds (`nightshift image build` writes it). */
  toolchains: string[];
}

/** The label naming an image's toolchains, comma-separated: the admin's word (the image is on the admin's list). */
export const TOOLCHAINS_LABEL = 'nightshift.toolchains';

/** The toolchain names an image's labels give. */
function labelledToolchains(labels: Record<string, string> | undefined): string[] {
  return (labels?.[TOOLCHAINS_LABEL] ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

const BASE_PATH = startingEnv([]).PATH;

/**
 * The pieces, each checked with the shell's builtins or the tool itself, as the sandbox's user with the sandbox's
 * PATH; a missing one prints `missing: <words>`. /bin/sh itself is the container's command: without it the container
 * does not start.
 */
const CONTRACT_SCRIPT = (cliPaths: string[]) =>
  [
    `u=; while IFS=: read -r n _ uid gid _ h _; do [ "$uid:$gid" = "${SANDBOX_UID}:${SANDBOX_UID}" ] && u="$n:$h"; done < /etc/passwd`,
    `[ "$u" = "sandbox:${HOME_DIR}" ] || echo "missing: no sandbox user (uid ${SANDBOX_UID}, gid ${SANDBOX_UID}, HOME ${HOME_DIR} in /etc/passwd)"`,
    `[ -d ${WORKSPACE_DIR} ] || echo "missing: no ${WORKSPACE_DIR}"`,
    `command -v sleep > /dev/null || echo "missing: no sleep"`,
    `git --version > /dev/null 2>&1 || echo "missing: no git"`,
    `node --version > /dev/null 2>&1 || echo "missing: no node"`,
    ...cliPaths.map((p) => `[ -d '${p}' ] || echo 'missing: no agent CLIs at ${p}'`),
    `[ -s ${CA_BUNDLE} ] || echo "missing: no CA bundle at ${CA_BUNDLE}"`,
    'exit 0',
  ].join('\n');

/** Per image id: an image's content never changes under its id, so neither does the answer. */
const checked = new Map<string, Promise<Omit<ImageCheck, 'name' | 'toolchains'>>>();

/** How a worker checks: the agent CLIs' directories every sandbox sees, and the ulimits its engine can set. */
export interface CheckSettings {
  cliPaths: string[];
  ulimits: Docker.HostConfig['Ulimits'];
}

/** What `name` lacks of the contract (and its PATH), from the engine's copy; one container run per image id. */
export async function checkImage(docker: Docker, name: string, settings: CheckSettings): Promise<ImageCheck> {
  let info: Docker.ImageInspectInfo;
  try {
    info = await docker.getImage(name).inspect();
  } catch {
    return {
      name,
      path: BASE_PATH,
      missing: ['not on this engine (build it, or fix NIGHTSHIFT_DOCKER_IMAGES)'],
      toolchains: [],
    };
  }
  const id = info.Id.startsWith('sha256:') ? info.Id : `sha256:${info.Id}`;
  let result = checked.get(id);
  if (!result) {
    result = runCheck(docker, id, info, settings);
    checked.set(id, result);
    // An engine that failed to answer is asked again next time; an image's own answer is kept.
    result.catch(() => checked.delete(id));
  }
  return { name, ...(await result), toolchains: labelledToolchains(info.Config?.Labels) };
}

async function runCheck(
  docker: Docker,
  id: string,
  info: Docker.ImageInspectInfo,
  { cliPaths, ulimits }: CheckSettings,
): Promise<Omit<ImageCheck, 'name' | 'toolchains'>> {
  const path = info.Config?.Env?.find((e) => e.startsWith('PATH='))?.slice('PATH='.length) || BASE_PATH;
  const missing: string[] = [];
  if (info.Config?.Entrypoint?.length) missing.push('an ENTRYPOINT (the driver runs its own commands; remove it)');
  const container = await docker.createContainer({
    Image: id,
    Entrypoint: [],
    Cmd: ['/bin/sh', '-c', CONTRACT_SCRIPT(cliPaths)],
    User: `${SANDBOX_UID}:${SANDBOX_UID}`,
    Env: [`PATH=${path}`, 'HOME=/tmp', 'LANG=C.UTF-8'],
    Tty: true,
    NetworkDisabled: true,
    Labels: { 'nightshift.image-check': id },
    HostConfig: {
      NetworkMode: 'none',
      CapDrop: ['ALL'],
      SecurityOpt: ['no-new-privileges'],
      ReadonlyRootfs: true,
      Ulimits: ulimits,
    },
  });
  try {
    try {
      await container.start();
    } catch (err) {
      return { id, path, missing: [...missing, `no /bin/sh (the container did not start: ${firstLine(err)})`] };
    }
    await withTimeout(container.wait(), 60_000, 'the image check did not end within 60 s');
    const out = String(await container.logs({ stdout: true, stderr: true }));
    for (const line of out.split(/\r?\n/))
      if (line.startsWith('missing: ')) missing.push(line.slice('missing: '.length).trim());
    return { id, path, missing };
  } finally {
    await container.remove({ force: true }).catch(() => undefined);
  }
}

function firstLine(err: unknown): string {
  return ((err as Error).message ?? String(err)).split('\n')[0].slice(0, 200);
}

function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(message)), ms)));
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
