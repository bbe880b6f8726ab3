import { loadConfig } from '../../config';
import { tempDir } from '../helpers/repos';

test('a bad duration or size in the environment is refused in one line naming its variable', () => {
  const home = tempDir('config-home');
  expect(() => loadConfig({ NIGHTSHIFT_HOME: home, NIGHTSHIFT_DRIVER_WAIT: 'soon' })).toThrow(
    new Error('NIGHTSHIFT_DRIVER_WAIT: not a duration: "soon" (use e.g. 90s, 45m, 72h, 2d)'),
  );
  expect(() => loadConfig({ NIGHTSHIFT_HOME: home, NIGHTSHIFT_SHUTDOWN_GRACE: '-5s' })).toThrow(
    new Error('NIGHTSHIFT_SHUTDOWN_GRACE: not a duration: "-5s" (use e.g. 90s, 45m, 72h, 2d)'),
  );
  expect(() => loadConfig({ NIGHTSHIFT_HOME: home, NIGHTSHIFT_ENV_CACHE_SIZE: 'lots' })).toThrow(
    new Error('NIGHTSHIFT_ENV_CACHE_SIZE: not a size: "lots" (use e.g. 512m, 4g)'),
  );
  // Set, each is read; unset, the defaults.
  expect(loadConfig({ NIGHTSHIFT_HOME: home, NIGHTSHIFT_DRIVER_WAIT: '3s' }).driverWaitMs).toBe(3000);
  expect(loadConfig({ NIGHTSHIFT_HOME: home })).toMatchObject({ driverWaitMs: 60_000, envCacheBytes: 10 * 1024 ** 3 });
});
