export { specRun } from './specRun';
