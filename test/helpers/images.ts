import type Docker from 'dockerode';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { runCli } from './cli';
import { SANDBOX_IMAGE } from './sandboxes';

const GO_ROOT = '/usr/local/go';
const PYTHON = 'python3-pytest';

/**
 * The docker tests' image with the host's Go and Debian's pytest (`nightshift image build --toolchain
 * go=/usr/local/go --toolchain python=debian:python3-pytest`), tagged by its recipe: built when the engine lacks it,
 * then kept between runs (about 100 s to build); an older recipe's image is removed.
 */
export async function toolchainImage(docker: Docker): Promise<string> {
  const base = await docker.getImage(SANDBOX_IMAGE).inspect();
  const go = execFileSync(`${GO_ROOT}/bin/go`, ['version'], { encoding: 'utf8' });
  const recipe = createHash('sha256').update(`${base.Id}\0${go}\0${PYTHON}`).digest('hex').slice(0, 12);
  const tag = `nightshift-test-eco-${recipe}:latest`;
  const present = await docker
    .getImage(tag)
    .inspect()
    .then(
      () => true,
      () => false,
    );
  if (present) return tag;
  const built = await runCli(
    ['image', 'build', '--toolchain', `go=${GO_ROOT}`, '--toolchain', `python=debian:${PYTHON}`, '--tag', tag],
    { DOCKER_HOST: process.env.NIGHTSHIFT_TEST_DOCKER_HOST },
    400_000,
  );
  if (built.code !== 0) throw new Error(`nightshift image build failed: ${built.stderr || built.stdout}`);
  for (const old of await docker.listImages({ filters: { reference: ['nightshift-test-eco-*'] } }))
    if (!(old.RepoTags ?? []).some((t) => t.endsWith(tag)))
      await docker
        .getImage(old.Id)
        .remove({ force: true })
        .catch(() => undefined);
  return tag;
}
