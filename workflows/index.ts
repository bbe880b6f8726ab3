export { specRun } from './specRun';
export { fleetRegistry } from './fleet';
export { repoFile } from './repoFile';
export { forgeEvent } from './forgeEvent';
