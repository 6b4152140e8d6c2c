/**
 * changeserver (Apigee Transicator) compatibility: the change routes the
 * gateway mounts on its own port, the legacy listener (CHANGESERVER_PORT,
 * Transicator's 9000) with /health, /ready and /markdown, the OpenAPI
 * document, and the start hook that creates the capture job for
 * CHANGESERVER_SOURCE_URL.
 *
 * Marked down (legacy and management listeners only; the gateway's own /ready is untouched):
 *   up --GET /markdown--> down ; down: /health as before, /markdown 200, everything else 503 Status;
 *   at exit the App drops the configured feed's capture slot (see App.close).
 */
import express, { type Request, type Response, type Router } from 'express';
import type { GraphQLExecutor } from '../executor.ts';
import { localOf, mountRoutes, openApiFor, requestServers, withServers, type OpenApiServers, type RestDialect, type ServerDoc } from '../rest-route.ts';
import { errorResponse, ChangeserverCode, graphqlErrorResponse, restErrorResponse, serialize } from './changeserver.mapping.ts';
import { changeserverRoutes, type ChangeserverRouteOptions } from './changeserver.routes.ts';

export const changeserverDialect: RestDialect = {
  error: (err) => restErrorResponse(err),
  graphqlError: (errors) => graphqlErrorResponse(errors),
  serialize: (value) => serialize(value),
};

export interface ChangeserverRouterOptions extends ChangeserverRouteOptions {
  /** Told about unexpected failures (answered 500 INTERNAL_SERVER_ERROR). */
  onInternalError?(err: unknown): void;
}

/** /changes and /feeds/:name/changes, for the gateway's port and the legacy listener. */
export function changeserverRouter(executor: GraphQLExecutor, opts: ChangeserverRouterOptions = {}): Router {
  return mountRoutes(express.Router(), changeserverRoutes(opts), executor, {
    dialect: changeserverDialect,
    onInternalError: opts.onInternalError ? (err) => opts.onInternalError!(err) : undefined,
  });
}

/** The document; `servers` default to none (the served copy lists the listeners that answer). */
export function changeserverOpenApi(servers?: ServerDoc[]): Record<string, unknown> {
  return openApiFor(changeserverRoutes({ feed: 'configured' }), {
    title: 'changeserver API (Tributary compatibility)',
    version: '0.0.1',
    description: 'Apigee Transicator\'s change feed API served from Tributary feeds. See docs/compat.md, "changeserver".',
    servers,
  });
}

/** Marked down or not; shared by the API listener and the management listener. */
export interface ChangeserverMarkdown {
  down: boolean;
}

export interface ChangeserverListenerOptions extends ChangeserverRouterOptions {
  /** Failed health checks, e.g. ["redis: timeout"]; empty = healthy. */
  failedChecks(): Promise<string[]>;
  /** Prefix of the API routes (CHANGESERVER_BASE_PATH), e.g. "/cs"; /health, /ready and /markdown stay unprefixed. */
  basePath?: string;
  /**
   * false when a management port (CHANGESERVER_MGMT_PORT) serves /health,
   * /ready and /markdown: the API listener then answers them 404, as
   * Transicator did. Default true.
   */
  management?: boolean;
  /** Shared markdown state (one per changeserver, across its listeners). Default: a fresh one. */
  markdown?: ChangeserverMarkdown;
  /** Called once, on the first GET /markdown. */
  onMarkdown?(): void;
  /** `servers` of the served OpenAPI document (base path included). Default: the address it was fetched from. */
  servers?: OpenApiServers;
}

const MARKED_DOWN = 'Marked down';

/** goscaffold's health states: a JSON 503 carries one, as Transicator's did. */
type HealthState = 'Failed' | 'NotReady';

function sendStatus(req: Request, res: Response, status: number, reason?: string, state: HealthState = 'NotReady'): void {
  res.status(status);
  if (reason === undefined) { res.end(); return; }
  if (String(req.headers.accept ?? '').includes('application/json')) res.json({ status: state, reason });
  else res.type('text/plain').send(reason);
}

/** Management paths are GET only: other methods answer 405 in the dialect, not 404. */
function methodNotAllowed(req: Request, res: Response): void {
  const out = errorResponse(405, ChangeserverCode.MethodNotAllowed, `method ${req.method} not allowed on ${req.path}`);
  res.status(405).set('Allow', 'GET, HEAD').type('application/json').send(serialize(out.json));
}

function notFound(_req: Request, res: Response): void {
  const out = errorResponse(404, ChangeserverCode.NotFound, 'no such path');
  res.status(404).type('application/json').send(serialize(out.json));
}

type ManagementOptions = Pick<ChangeserverListenerOptions, 'failedChecks' | 'onMarkdown'> & { markdown: ChangeserverMarkdown };

/** /health and /markdown, then (marked down: 503 for everything else) /ready. */
function mountManagement(app: Router, opts: ManagementOptions): void {
  const check = (state: HealthState) => async (req: Request, res: Response) => {
    const failed = await opts.failedChecks();
    if (failed.length) sendStatus(req, res, 503, failed.join('; '), state);
    else sendStatus(req, res, 200);
  };
  app.get('/health', check('Failed'));
  app.all('/health', methodNotAllowed);
  app.get('/markdown', (req, res) => {
    if (!opts.markdown.down) { opts.markdown.down = true; opts.onMarkdown?.(); }
    sendStatus(req, res, 200);
  });
  app.all('/markdown', methodNotAllowed);
  app.use((req, res, next) => { if (opts.markdown.down) sendStatus(req, res, 503, MARKED_DOWN); else next(); });
  app.get('/ready', check('NotReady'));
  app.all('/ready', methodNotAllowed);
}

/**
 * The legacy listener's router: health, readiness, markdown (unless a
 * management port serves them), the change routes and the OpenAPI document
 * under the base path.
 */
export function changeserverListenerRouter(executor: GraphQLExecutor, opts: ChangeserverListenerOptions): Router {
  const markdown = opts.markdown ?? { down: false };
  const app = express.Router();
  if (opts.management ?? true) mountManagement(app, { failedChecks: opts.failedChecks, onMarkdown: opts.onMarkdown, markdown });
  else app.use((req, res, next) => { if (markdown.down) sendStatus(req, res, 503, MARKED_DOWN); else next(); });
  const api = express.Router();
  let openApi: Record<string, unknown> | undefined;
  const servers = opts.servers ?? requestServers(opts.basePath);
  api.get('/openapi.json', (req, res) => {
    const doc = withServers(openApi ??= changeserverOpenApi(), servers({ headers: req.headers, local: localOf(req) }));
    res.type('application/json').send(serialize(doc));
  });
  api.use(changeserverRouter(executor, opts));
  if (opts.basePath) app.use(opts.basePath, api);
  else app.use(api);
  app.use(notFound);
  return app;
}

/** The management listener's router (CHANGESERVER_MGMT_PORT): /health, /ready and /markdown only. */
export function changeserverManagementRouter(opts: ManagementOptions): Router {
  const app = express.Router();
  mountManagement(app, opts);
  app.use(notFound);
  return app;
}

/** Connection input for createJob from a postgres:// or mysql:// / mariadb:// URL. */
export function connectionFromUrl(url: string): Record<string, unknown> {
  const u = new URL(url);
  const postgres = u.protocol === 'postgres:' || u.protocol === 'postgresql:';
  if (!postgres && u.protocol !== 'mysql:' && u.protocol !== 'mariadb:') throw new Error(`unsupported source URL scheme ${u.protocol}`);
  const database = decodeURIComponent(u.pathname.replace(/^\//, ''));
  return {
    kind: postgres ? 'POSTGRES' : 'MYSQL',
    host: u.hostname.replace(/^\[|\]$/g, ''),
    port: u.port ? Number(u.port) : postgres ? 5432 : 3306,
    user: decodeURIComponent(u.username) || (postgres ? 'postgres' : 'root'),
    password: decodeURIComponent(u.password),
    ...(database ? { database } : {}),
  };
}

const CREATE_SOURCE_JOB = `mutation ChangeserverSource($input: JobInput!) { createJob(input: $input) { id name feedName status } }`;

export type EnsureSourceOutcome = 'created' | 'exists';

/**
 * Start hook: when CHANGESERVER_SOURCE_URL is set, make sure a SUBSCRIBE job
 * captures it into CHANGESERVER_FEED. The job is named after the feed;
 * CONFLICT (that job, or another job owning the feed, exists) means there is
 * nothing to do, so several gateways starting at once are fine. Runs through
 * the GraphQL executor without a token: with API tokens defined it fails with
 * UNAUTHENTICATED and the job must be created by an operator.
 */
export async function ensureChangeserverSource(executor: GraphQLExecutor, feed: string, sourceUrl: string): Promise<EnsureSourceOutcome> {
  const input = { name: feed, type: 'SUBSCRIBE', feedName: feed, source: { ...connectionFromUrl(sourceUrl), name: `${feed}-source` } };
  const r = await executor({ query: CREATE_SOURCE_JOB, variables: { input } });
  if (!r.errors?.length) return 'created';
  if (r.errors[0]!.extensions?.code === 'CONFLICT') return 'exists';
  throw new Error(`cannot create the changeserver capture job: ${r.errors[0]!.message}`);
}

export { changeserverRoutes } from './changeserver.routes.ts';
