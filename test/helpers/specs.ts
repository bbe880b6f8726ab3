export { spec, VALUE_REPO } from '../../testbed/specs';
