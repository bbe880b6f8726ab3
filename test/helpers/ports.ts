export { freePort } from '../../temporal/ports';
