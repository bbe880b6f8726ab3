export { specRun } from './specRun';
export { fleetRegistry } from './fleet';
export { repoFile } from './repoConfig';
export { forgeEvent } from './forgeEvent';
