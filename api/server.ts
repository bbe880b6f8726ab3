import type { Client } from '@temporalio/client';
import express, { type NextFunction, type Request, type Response } from 'express';
import type { Server } from 'node:http';
import * as path from 'node:path';
import type { Logger } from 'pino';
import type { Config } from '../config';
import { openArtifactStore } from '../store/openArtifacts';
import { RunLog } from '../store/runLog';
import { authenticate, principalOf } from './auth';
import { AuthFailureLimiter } from './authLimiter';
import { ApiError } from './errors';
import { campaignsRouter } from './campaigns';
import { fleetRouter } from './fleet';
import { forgesRouter } from './forges';
import { forgeRegistryRouter } from './forgeRegistry';
import { keysRouter } from './keys';
import { proofsRouter } from './proofs';
import { repoDefaultsRouter } from './repoDefaults';
import { reposRouter } from './repoRoutes';
import { metricsRouter } from './metrics';
import { openApiDocument } from './openapi';
import { runsRouter } from './runs';
import { StreamSlots } from './streamSlots';
import { schedulesRouter } from './schedules';
import { budgetsRouter, spendRouter } from './spend';
import { cors, securityHeaders } from './security';
import type { TokenStore } from './tokens';
import { SpecRejected } from '../admission/prepareRun';

export interface ApiOptions {
  client: Client;
  config: Config;
  tokens: TokenStore;
  logger: Logger;
}

/**
 * The HTTP API (docs/reference.md, "HTTP API"). Bodies are read as text and parsed by each route, so every format
 * errors alike.
 */
export function createApi({ client, config, tokens, logger }: ApiOptions): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', false);
  app.use(securityHeaders());
  app.use(cors(config.corsOrigins));

  app.get('/healthz', (_req, res) => {
    res.json({ ok: true });
  });
  // No secrets in it, so no token: clients can generate code from it before they have one.
  const openApi = openApiDocument(config.publicUrl);
  app.get('/v1/openapi.json', (_req, res) => {
    res.json(openApi);
  });

  // The web page (web/, built into dist/web): static files, no token needed to load them; its API calls carry one.
  app.use(express.static(path.join(__dirname, '..', 'web'), { index: 'index.html', redirect: false }));
  const auth = authenticate(tokens, new AuthFailureLimiter());
  app.use(express.text({ type: () => true, limit: '512kb' }));
  app.use('/metrics', auth, metricsRouter(client, config));
  // Before the token check: a forge signs its deliveries with the repo's webhook secret instead.
  app.use('/v1/forges', forgesRouter({ client, config, logger }));
  app.use('/v1', auth);
  const store = openArtifactStore(config);
  const streams = new StreamSlots({ perToken: config.streamsPerToken, total: config.streamsTotal });
  app.use('/v1/runs', runsRouter({ client, config, store, runLog: new RunLog(config.home), streams }));
  app.use('/v1/repos/:name/defaults', repoDefaultsRouter({ client, config }));
  app.use('/v1/proofs', proofsRouter(config, store));
  app.use('/v1/schedules', schedulesRouter(client, config));
  app.use('/v1/campaigns', campaignsRouter(client, config, store, streams));
  app.use('/v1/fleet', fleetRouter(client, config));
  // Who the token is, so the web page shows only what its role may do.
  app.get('/v1/me', (req, res) => {
    res.json(principalOf(req));
  });
  app.use('/v1/keys', keysRouter(config));
  app.use('/v1/repos', reposRouter(config));
  app.use('/v1/forges', forgeRegistryRouter(config));
  app.use('/v1/spend', spendRouter(config));
  app.use('/v1/budgets', budgetsRouter({ client, config, tokens, logger }));

  app.use((req: Request, _res: Response, next: NextFunction) => {
    next(new ApiError('not_found', `no route ${req.method} ${req.path}`));
  });

  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    let apiError: ApiError;
    if (err instanceof ApiError) apiError = err;
    else if (err instanceof SpecRejected) apiError = new ApiError('bad_request', err.message, err.issues);
    else if ((err as { type?: string }).type === 'entity.too.large')
      apiError = new ApiError('too_large', 'the body is larger than 512 KB');
    else if (
      (err as { type?: string }).type === 'encoding.unsupported' ||
      (err as { type?: string }).type === 'charset.unsupported'
    )
      apiError = new ApiError('unsupported_media_type', 'send the body as UTF-8 text');
    else {
      logger.error({ err, method: req.method, path: req.path }, 'request failed');
      apiError = new ApiError('internal', `internal error: ${(err as Error).message?.split('\n')[0] ?? 'unknown'}`);
    }
    res.status(apiError.status).json(apiError.toJSON());
  });
  return app;
}

/**
 * Stops the API: requests in flight get `graceMs` to finish; event streams, which never end by themselves, are then
 * cut.
 */
export function closeServer(server: Server, graceMs = 3000): Promise<void> {
  return new Promise((resolve) => {
    const cut = setTimeout(() => server.closeAllConnections(), graceMs);
    server.close(() => {
      clearTimeout(cut);
      resolve();
    });
  });
}
