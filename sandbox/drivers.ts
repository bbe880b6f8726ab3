import { existsSync } from 'node:fs';
import type { SandboxDriverName } from '../spec/schema';
import { BwrapDriver, bwrapAvailable } from './bwrap';
import { cgroupsUnavailable } from './cgroup';
import { DockerDriver } from './docker';
import type { ImageCheck } from './images';
import type { SandboxDriver } from './sandbox';
import type { Toolchains } from './toolchains';

export interface DriverSettings {
  /** DOCKER_HOST; unset = /var/run/docker.sock when it exists. */
  dockerHost?: string;
  dockerImage: string;
  /** The images a spec may name (config/images.ts), the default among them. */
  dockerImages?: string[];
  home: string;
  /** The toolchains offered (NIGHTSHIFT_TOOLCHAINS): bwrap binds them. */
  toolchains?: Toolchains;
}

export interface DriverStatus {
  name: SandboxDriverName;
  usable: boolean;
  /** The version or engine when usable; why not, with the fix, when not. */
  detail: string;
  /** The docker driver's images, each with what it lacks of the image contract (offered when nothing). */
  images?: ImageCheck[];
}

const DEFAULT_DOCKER_SOCKET = '/var/run/docker.sock';

/** Whether bubblewrap sandboxes can run here, and why not. */
async function probeBwrap(): Promise<DriverStatus> {
  const version = await bwrapAvailable();
  if (!version)
    return { name: 'bwrap', usable: false, detail: 'bubblewrap is not installed (apt-get install bubblewrap)' };
  if (process.env.NIGHTSHIFT_CGROUPS === 'off')
    return { name: 'bwrap', usable: true, detail: `${version}, without cgroup limits (NIGHTSHIFT_CGROUPS=off)` };
  const why = await cgroupsUnavailable();
  if (why)
    return {
      name: 'bwrap',
      usable: false,
      detail: `${why}: run the worker as root, or NIGHTSHIFT_CGROUPS=off to go without memory/process/CPU limits`,
    };
  return { name: 'bwrap', usable: true, detail: `${version}, cgroup v1 limits` };
}

/** Whether container sandboxes can run here (engine reachable, image present), and why not. */
async function probeDocker(
  settings: DriverSettings,
  worker: string,
  cliPaths: string[],
): Promise<{ status: DriverStatus; driver?: DockerDriver }> {
  const host =
    settings.dockerHost ?? (existsSync(DEFAULT_DOCKER_SOCKET) ? `unix://${DEFAULT_DOCKER_SOCKET}` : undefined);
  if (!host) {
    return {
      status: {
        name: 'docker',
        usable: false,
        detail: `no Docker API: set DOCKER_HOST (e.g. podman --runtime runc system service --time=0 unix:///run/podman.sock) or start Docker (${DEFAULT_DOCKER_SOCKET})`,
      },
    };
  }
  let driver: DockerDriver;
  try {
    driver = new DockerDriver({
      host,
      image: settings.dockerImage,
      images: settings.dockerImages,
      cliPaths,
      worker,
      home: settings.home,
    });
  } catch (err) {
    return { status: { name: 'docker', usable: false, detail: (err as Error).message } };
  }
  const why = await driver.unavailable();
  if (why) return { status: { name: 'docker', usable: false, detail: why } };
  // The image contract, one short container per image (cached per id): an image lacking a piece is not offered, and
  // without its default image the driver is not either.
  const images = await driver.checkImages();
  const [broken] = images;
  if (broken.missing.length)
    return {
      status: {
        name: 'docker',
        usable: false,
        detail: `image ${broken.name}: ${broken.missing.join(', ')} (docs/images.md, "The image contract")`,
        images,
      },
    };
  const version = await driver.docker.version();
  const engine = version.Components?.[0]?.Name ?? 'Docker Engine';
  return {
    status: {
      name: 'docker',
      usable: true,
      detail: `${engine} ${version.Version} at ${host}, image ${settings.dockerImage}`,
      images,
    },
    driver,
  };
}

/**
 * The drivers usable on this machine, and the status of each (for the worker's log and `doctor`). `bwrapMounts`: host
 * directories every bwrap sandbox sees read-only (the worker passes the agent CLIs'); every docker image must hold them
 * at the same places (the image contract, docs/images.md).
 */
export async function probeDrivers(
  settings: DriverSettings,
  worker: string,
  bwrapMounts: { host: string; target: string }[] = [],
): Promise<{ drivers: Partial<Record<SandboxDriverName, SandboxDriver>>; statuses: DriverStatus[] }> {
  const bwrap = await probeBwrap();
  const docker = await probeDocker(
    settings,
    worker,
    bwrapMounts.map((m) => m.target),
  );
  const drivers: Partial<Record<SandboxDriverName, SandboxDriver>> = {};
  if (bwrap.usable) drivers.bwrap = new BwrapDriver(bwrapMounts, settings.toolchains);
  if (docker.driver) drivers.docker = docker.driver;
  return { drivers, statuses: [bwrap, docker.status] };
}
