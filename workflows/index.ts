export { specRun } from './specRun';
export { fleetRegistry } from './fleet';
