export { specRun } from './specRun';
export { planRun } from './planRun';
export { fleetRegistry } from './fleet';
export { repoFile } from './repoConfig';
export { forgeEvent } from './forgeEvent';
export { campaignRun } from './campaignRun';
export { repoSelector } from './repoSelector';
