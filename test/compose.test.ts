// docker-compose.temporal.yml cannot run here (no Docker engine); this keeps it in step with what the tests run, and
// checks the dev server the tests run is a build without the SQLite driver's interrupt bug.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { parse } from 'yaml';
import { findGo, findTemporal, TEMPORAL_SERVER_VERSION } from '../temporal/cli';
import { HISTORY_SHARDS, POSTGRES_MAJOR } from '../temporal/cluster';
import { MATCHING_CONFIG } from '../temporal/devServer';
import { SEARCH_ATTRIBUTES } from '../workflows/searchAttributes';

const compose = parse(readFileSync(path.resolve(__dirname, '..', '..', 'docker-compose.temporal.yml'), 'utf8'));

test("the compose file runs the server and UI versions of the dev server the tests use, and the PostgreSQL cluster's settings", () => {
  const version = execFileSync(findTemporal()!, ['--version'], { encoding: 'utf8' });
  const server = /Server (\d+\.\d+\.\d+)/.exec(version)![1];
  const ui = /UI (\d+\.\d+\.\d+)/.exec(version)![1];
  expect(compose.services.temporal.image).toBe(`temporalio/auto-setup:${server}`);
  expect(compose.services['search-attributes'].image).toBe(`temporalio/admin-tools:${server}`);
  expect(compose.services['temporal-ui'].image).toBe(`temporalio/ui:${ui}`);
  // …and those of the cluster `nightshift cluster` runs here without Docker.
  expect(TEMPORAL_SERVER_VERSION).toBe(server);
  expect(compose.services.postgresql.image).toBe(`postgres:${POSTGRES_MAJOR}`);
  expect(compose.services.temporal.environment.NUM_HISTORY_SHARDS).toBe(HISTORY_SHARDS);
});

test("the compose file's server matches tasks as the dev server and the cluster do: by priority, one partition a queue", () => {
  const mounted = compose.services.temporal.volumes.find((v: string) =>
    v.endsWith(`:${compose.services.temporal.environment.DYNAMIC_CONFIG_FILE_PATH}:ro`),
  );
  const file = parse(readFileSync(path.resolve(__dirname, '..', '..', mounted.split(':')[0]), 'utf8'));
  expect(file).toEqual(Object.fromEntries(Object.entries(MATCHING_CONFIG).map(([key, value]) => [key, [{ value }]])));
});

test('the compose file registers every search attribute the workflow uses, and listens on loopback only', () => {
  const command = compose.services['search-attributes'].command.join(' ');
  for (const key of SEARCH_ATTRIBUTES) {
    expect(command).toContain(`--name ${key.name} --type ${key.type === 'TEXT' ? 'Text' : 'Keyword'}`);
  }
  for (const service of Object.values(compose.services) as { ports?: string[] }[]) {
    for (const port of service.ports ?? []) expect(port).toMatch(/^127\.0\.0\.1:/);
  }
  expect(compose.services.temporal.environment.DB).toBe('postgres12');
});

test('Temporal Web, which can approve and cancel any run, runs only with OIDC sign-in, and only when asked for', () => {
  const ui = compose.services['temporal-ui'];
  expect(ui.profiles).toEqual(['ui']);
  expect(ui.environment).toMatchObject({ TEMPORAL_AUTH_ENABLED: 'true', TEMPORAL_AUTH_TYPE: 'oidc' });
  // Required at `up`: compose refuses to start the UI without a provider and a client.
  for (const name of ['TEMPORAL_AUTH_PROVIDER_URL', 'TEMPORAL_AUTH_CLIENT_ID', 'TEMPORAL_AUTH_CLIENT_SECRET'])
    expect(ui.environment[name]).toMatch(/^\$\{TEMPORAL_UI_OIDC_\w+:\?.+\}$/);
});

test('the tests\' dev server embeds modernc.org/sqlite v1.40.1 or later: an older one answers every query with "interrupted (9)" after a cancelled one', () => {
  const info = execFileSync(findGo()!, ['version', '-m', findTemporal()!], { encoding: 'utf8' });
  const version = /^\s*dep\s+modernc\.org\/sqlite\s+v(\d+)\.(\d+)\.(\d+)/m.exec(info)!.slice(1).map(Number);
  const [major, minor, patch] = version;
  expect({ version: version.join('.'), fixed: major > 1 || minor > 40 || (minor === 40 && patch >= 1) }).toEqual({
    version: version.join('.'),
    fixed: true,
  });
});
