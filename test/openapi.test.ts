import { execFileSync } from 'node:child_process';
import type { Express } from 'express';
import pino from 'pino';
import { createApi } from '../api/server';
import { openApiPath } from '../api/openapi';
import { startTestStack, type TestStack } from './helpers/stack';

let stack: TestStack;
beforeAll(async () => {
  stack = await startTestStack({ worker: false });
});
afterAll(async () => {
  await stack?.stop();
});

interface Layer {
  route?: { path: string; methods: Record<string, boolean> };
  rawPath?: string;
  handle: { stack?: Layer[] };
}

/**
 * swagger-parser's validation of `doc`: "valid", or its error. In a child node, which can require() the parser's
 * ES-module dependency; jest on Node 20 cannot.
 */
function validateOpenApi(doc: unknown): string {
  const script = `require('@apidevtools/swagger-parser').validate(JSON.parse(require('fs').readFileSync(0, 'utf8'))).then(() => console.log('valid'), (e) => console.log(e.message))`;
  return execFileSync(process.execPath, ['-e', script], {
    input: JSON.stringify(doc),
    encoding: 'utf8',
    cwd: __dirname,
  }).trim();
}

/** Every "METHOD /path" the app routes, nested routers included, read from express's own router stack. */
function registeredRoutes(app: Express): string[] {
  const found: string[] = [];
  const walk = (layers: Layer[], prefix: string) => {
    for (const layer of layers) {
      if (layer.route) {
        const path = (prefix + layer.route.path).replace(/(.)\/$/, '$1');
        for (const [method, on] of Object.entries(layer.route.methods))
          if (on && method !== '_all') found.push(`${method.toUpperCase()} ${openApiPath(path)}`);
      } else if (layer.handle.stack) {
        walk(
          layer.handle.stack,
          prefix + (typeof layer.rawPath === 'string' && layer.rawPath !== '/' ? layer.rawPath : ''),
        );
      }
    }
  };
  walk((app as unknown as { router: { stack: Layer[] } }).router.stack, '');
  return found.sort();
}

function documentedRoutes(doc: { paths: Record<string, Record<string, unknown>> }): string[] {
  return Object.entries(doc.paths)
    .flatMap(([path, ops]) => Object.keys(ops).map((method) => `${method.toUpperCase()} ${path}`))
    .sort();
}

test('GET /v1/openapi.json needs no token and is a valid OpenAPI 3.1 document', async () => {
  const res = await stack.api('GET', '/v1/openapi.json', { token: null });
  expect(res.status).toBe(200);
  expect(res.body.openapi).toBe('3.1.0');
  expect(res.body.servers).toEqual([{ url: stack.config.publicUrl }]);
  expect(validateOpenApi(res.body)).toBe('valid');
  // The validator is not lenient: a response without its description is refused.
  const broken = structuredClone(res.body);
  delete broken.paths['/v1/runs'].post.responses['202'].description;
  expect(validateOpenApi(broken)).toMatch(/description/);
  expect(res.text).not.toContain(stack.token);
});

test('the document and the app list the same routes, both ways', async () => {
  const doc = (await stack.api('GET', '/v1/openapi.json', { token: null })).body;
  const app = createApi({
    client: stack.client,
    config: stack.config,
    tokens: stack.tokens,
    logger: pino({ level: 'silent' }),
  });
  const registered = registeredRoutes(app);
  // The walk itself must see nested routers, or the comparison below proves nothing.
  expect(registered).toEqual(
    expect.arrayContaining(['GET /healthz', 'POST /v1/runs/{id}/approve', 'DELETE /v1/schedules/{id}', 'GET /metrics']),
  );
  const documented = documentedRoutes(doc);
  expect({ undocumented: registered.filter((r) => !documented.includes(r)) }).toEqual({ undocumented: [] });
  expect({ documentedButMissing: documented.filter((r) => !registered.includes(r)) }).toEqual({
    documentedButMissing: [],
  });
});

test('the spec body is the spec schema: fields, enums and defaults as a client sends them', async () => {
  const doc = (await stack.api('GET', '/v1/openapi.json', { token: null })).body;
  const submit = doc.paths['/v1/runs'].post;
  expect(Object.keys(submit.requestBody.content).sort()).toEqual([
    'application/json',
    'application/yaml',
    'text/markdown',
  ]);
  const specSchema = submit.requestBody.content['application/json'].schema;
  expect(specSchema.required.sort()).toEqual(['agent', 'repo', 'title']);
  expect(specSchema.properties.agent.properties.kind.enum).toEqual(['claude-code', 'codex', 'command']);
  expect(Object.keys(specSchema.properties.harness.properties)).toEqual(['protect', 'allowChanges']);
  expect(specSchema.additionalProperties).toBe(false);
  // Roles and errors: what a phone client needs to know before it calls.
  expect(submit['x-nightshift-role']).toBe('submitter');
  expect(Object.keys(submit.responses).sort()).toEqual(['202', '400', '401', '403', '413', '429']);
  expect(doc.paths['/v1/runs/{id}/approve'].post['x-nightshift-role']).toBe('approver');
  expect(doc.paths['/healthz'].get.security).toEqual([]);
  expect(doc.paths['/metrics'].get.responses['200'].content).toHaveProperty(['text/plain']);
  expect(doc.components.schemas.Error.properties.error.properties.code.enum).toContain('too_many_requests');
});
