/**
 * HTTP and WebSocket wiring: Express 5 + Apollo Server at /graphql,
 * graphql-ws on the same path and port, GraphiQL at /graphiql, REST compat
 * routers, /health, /ready and /metrics.
 *
 * Phases:  starting -> started -> draining -> stopped
 * /ready answers 200 only while `started`. close() drains HTTP (stops
 * accepting, lets in-flight requests finish), then closes graphql-ws
 * sockets, then stops Apollo. It is idempotent.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express, { type Express, type NextFunction, type Request, type Response, type Router } from 'express';
import { ApolloServer, type ApolloServerPlugin } from '@apollo/server';
import { expressMiddleware } from '@as-integrations/express5';
import { ApolloServerPluginDrainHttpServer } from '@apollo/server/plugin/drainHttpServer';
import { ApolloServerPluginLandingPageDisabled } from '@apollo/server/plugin/disabled';
import { GraphQLError, type GraphQLSchema, parse, validate, specifiedRules, type ExecutionArgs } from 'graphql';
import { WebSocketServer } from 'ws';
import { serveGraphqlWs } from './ws-transport.ts';
import { sharedSubscribe } from './shared-subscribe.ts';
import { CloseCode } from 'graphql-ws';
import type { Logger } from '../observability/logger.ts';
import type { Metrics } from '../observability/metrics.ts';
import type { Services } from '../services/services.ts';
import type { GraphQLContext } from '../resolvers/context.ts';
import { AuthError } from '../auth/authenticator.ts';
import type { Principal } from '../auth/roles.ts';
import { ErrorCode } from '../errors.ts';
import { formatError } from './graphql-errors.ts';
import { aliasLimitRule, checkComplexity, depthLimitRule, MAX_ALIASES } from './graphql-limits.ts';
import type { RequestRateLimiter } from './rate-limit.ts';
import { graphiqlRouter } from './graphiql.ts';
import type { GraphQLExecutor } from '../rest-compat/executor.ts';

export type GatewayPhase = 'starting' | 'started' | 'draining' | 'stopped';

export interface ReadinessCheck { name: string; check: () => Promise<void> }

export interface GatewayOptions {
  schema: GraphQLSchema;
  services: Services;
  logger: Logger;
  metrics: Metrics;
  host: string;
  port: number;
  maxBodyBytes: number;
  /** Dependencies /ready and /health probe (PostgreSQL, Redis). */
  checks: ReadinessCheck[];
  /** REST compat routers, built with the executor this gateway provides. */
  restRouters?: (executor: GraphQLExecutor) => Router[];
  /** Routers that authorize callers themselves (the /admin/queues dashboard), mounted before GraphiQL. */
  adminRouters?: Router[];
  /** Per-token rate limit for /graphql, graphql-ws subscribes and every REST route; absent = off. */
  rateLimiter?: RequestRateLimiter;
  /** Aliased fields per operation. Default MAX_ALIASES (50). */
  maxAliases?: number;
  /** Active subscriptions on one graphql-ws connection. Default 100. */
  maxSubscriptionsPerConnection?: number;
}

export class Gateway {
  phase: GatewayPhase = 'starting';
  private readonly app: Express;
  readonly httpServer: http.Server;
  private readonly apollo: ApolloServer<GraphQLContext>;
  private readonly wss: WebSocketServer;
  private wsCleanup?: { dispose: () => void | Promise<void> };
  private closing?: Promise<void>;
  readonly executor: GraphQLExecutor;

  constructor(private readonly opts: GatewayOptions) {
    this.app = express();
    this.app.disable('x-powered-by');
    this.httpServer = http.createServer(this.app);
    this.wss = new WebSocketServer({ server: this.httpServer, path: '/graphql', maxPayload: opts.maxBodyBytes });
    const metricsPlugin = this.metricsPlugin();
    const complexityPlugin: ApolloServerPlugin<GraphQLContext> = {
      async requestDidStart() {
        return {
          async didResolveOperation({ request, document, schema, operation, contextValue }) {
            if (operation?.operation === 'subscription') {
              throw new GraphQLError('subscriptions are served over graphql-ws (WebSocket) at /graphql, not over HTTP', { extensions: { code: ErrorCode.BadUserInput, http: { status: 400 } } });
            }
            // REST compat documents are Tributary's own (see GraphQLContext.restCompat); computing their
            // complexity was most of the CPU of a changeserver long poll.
            if (!contextValue.restCompat) checkComplexity(schema, document, request.variables, request.operationName);
          },
          // A request that failed before execution for the caller's own reasons (a variable of the wrong type:
          // Apollo answered those 500 when the error came from another graphql realm) is a 400, never a 5xx.
          async willSendResponse({ response }) {
            if (response.body.kind !== 'single') return;
            const r = response.body.singleResult;
            if (r.data === undefined && r.errors?.length && (response.http.status ?? 200) >= 500
              && r.errors.every((e) => e.extensions?.code !== ErrorCode.Internal && e.extensions?.code !== ErrorCode.Unavailable)) response.http.status = 400;
          },
          // Callers see only "internal error"; the log keeps what happened (messages masked by the logger).
          async didEncounterErrors({ errors, operationName }) {
            for (const e of errors) {
              if (formatError(e.toJSON(), e).extensions?.code === ErrorCode.Internal) opts.logger.error({ err: e.originalError ?? e, operation: operationName ?? 'anonymous', path: e.path?.join('.') }, 'GraphQL operation failed');
            }
          },
        };
      },
    };
    this.apollo = new ApolloServer<GraphQLContext>({
      schema: opts.schema,
      formatError,
      includeStacktraceInErrorResponses: false,
      // The CLI owns SIGTERM/SIGINT and drains in order (app.ts); Apollo must not stop itself first.
      stopOnTerminationSignals: false,
      introspection: true,
      validationRules: [depthLimitRule(), aliasLimitRule(opts.maxAliases ?? MAX_ALIASES)],
      plugins: [
        ApolloServerPluginDrainHttpServer({ httpServer: this.httpServer }),
        ApolloServerPluginLandingPageDisabled(),
        metricsPlugin,
        complexityPlugin,
        { serverWillStart: async () => ({ drainServer: async () => { await this.wsCleanup?.dispose(); } }) },
      ],
    });
    this.executor = async (req) => {
      let principal: Principal;
      try {
        principal = await this.opts.services.auth.authenticate(req.authorization);
      } catch (err) {
        if (err instanceof AuthError) return { errors: [{ message: err.message, extensions: { code: ErrorCode.Unauthenticated } }] };
        throw err;
      }
      const res = await this.apollo.executeOperation(
        { query: req.query, variables: req.variables, operationName: req.operationName },
        { contextValue: { principal, services: this.opts.services, restCompat: true } },
      );
      if (res.body.kind !== 'single') throw new Error('incremental delivery is not supported for REST compat');
      return res.body.singleResult as never;
    };
    this.executor.rateLimit = opts.rateLimiter;
  }

  private metricsPlugin(): ApolloServerPlugin<GraphQLContext> {
    const m = this.opts.metrics;
    return {
      async requestDidStart() {
        const start = process.hrtime.bigint();
        return {
          async willSendResponse({ operationName, operation, errors }) {
            const type = operation?.operation ?? 'unknown';
            const op = operationName ?? 'anonymous';
            m.graphqlOperations.inc({ operation: op, type, outcome: errors?.length ? 'error' : 'ok' });
            m.graphqlDuration.observe({ operation: op, type }, Number(process.hrtime.bigint() - start) / 1e9);
          },
        };
      },
    };
  }

  private async contextFor(authorization: string | undefined): Promise<GraphQLContext> {
    try {
      const principal = await this.opts.services.auth.authenticate(authorization);
      return { principal, services: this.opts.services };
    } catch (err) {
      if (err instanceof AuthError) {
        throw new GraphQLError(err.message, { extensions: { code: ErrorCode.Unauthenticated, http: { status: 401 } } });
      }
      throw err;
    }
  }

  async start(): Promise<AddressInfo> {
    const { app, opts } = this;
    app.use((req, res, next) => {
      const start = process.hrtime.bigint();
      res.on('finish', () => {
        // The matched route's pattern (`/v1/job/:id`), or the mount point of the app that answered (`/graphql`,
        // `/admin/queues`); everything else is one series, so unknown URLs cannot grow the registry.
        const route = req.route?.path ? `${req.baseUrl}${String(req.route.path)}` : req.baseUrl ? req.baseUrl : res.statusCode === 404 ? 'unmatched' : 'other';
        opts.metrics.httpRequests.observe({ method: req.method, route, status: String(res.statusCode) }, Number(process.hrtime.bigint() - start) / 1e9);
      });
      next();
    });
    app.get('/health', async (_req, res) => {
      const failed = await this.failedChecks();
      if (failed.length) res.status(503).json({ status: 'unhealthy', reason: failed.join('; ') });
      else res.status(200).json({ status: 'ok' });
    });
    app.get('/ready', async (_req, res) => {
      if (this.phase !== 'started') { res.status(503).json({ status: 'not ready', reason: this.phase }); return; }
      const failed = await this.failedChecks();
      if (failed.length) res.status(503).json({ status: 'not ready', reason: failed.join('; ') });
      else res.status(200).json({ status: 'ready' });
    });
    app.get('/metrics', async (_req, res) => {
      res.type(opts.metrics.registry.contentType).send(await opts.metrics.registry.metrics());
    });
    for (const router of opts.adminRouters ?? []) app.use(router);
    app.use(graphiqlRouter());

    await this.apollo.start();
    this.wsCleanup = serveGraphqlWs<Record<string, unknown>, { principal?: Principal }>({
      schema: opts.schema,
      // One execution per change event and identical subscription (same document, variables, principal).
      subscribe: sharedSubscribe,
      context: async (ctx) => ({ principal: ctx.extra.principal!, services: opts.services }),
      onConnect: async (ctx) => {
        const raw = ctx.connectionParams?.authorization ?? ctx.connectionParams?.Authorization ?? ctx.extra.request.headers.authorization;
        try {
          (ctx.extra as { principal?: Principal }).principal = await opts.services.auth.authenticate(typeof raw === 'string' ? raw : undefined);
          return true;
        } catch (err) {
          if (err instanceof AuthError) {
            ctx.extra.socket.close(CloseCode.Unauthorized, err.message);
            return false;
          }
          return false;
        }
      },
      onSubscribe: async (ctx, id, payload) => {
        // graphql-ws keeps this connection's subscriptions (this one included, reserved as null) and drops
        // one as soon as the client completes it, before its stream has finished closing.
        const active = Object.keys(ctx.subscriptions).filter((k) => k !== id).length;
        const maxSubs = opts.maxSubscriptionsPerConnection ?? 100;
        if (active >= maxSubs) {
          return [new GraphQLError(`this connection already has ${active} active subscriptions (the limit is ${maxSubs}): complete one, or open another connection`, { extensions: { code: ErrorCode.LimitExceeded, limit: maxSubs } })];
        }
        const raw = ctx.connectionParams?.authorization ?? ctx.connectionParams?.Authorization ?? ctx.extra.request.headers.authorization;
        const limited = await opts.rateLimiter?.(typeof raw === 'string' ? raw : undefined, ctx.extra.request.socket.remoteAddress);
        if (limited) return [new GraphQLError(limited.message, { extensions: { code: ErrorCode.RateLimited, retryAfterMs: limited.retryAfterMs } })];
        let document;
        try { document = parse(payload.query); } catch (err) {
          return [new GraphQLError((err as Error).message, { extensions: { code: ErrorCode.GraphqlParseFailed } })];
        }
        const errors = validate(opts.schema, document, [...specifiedRules, depthLimitRule(), aliasLimitRule(opts.maxAliases ?? MAX_ALIASES)]);
        if (errors.length) return errors.map((e) => new GraphQLError(e.message, { extensions: { code: e.extensions.code ?? ErrorCode.GraphqlValidationFailed } }));
        try { checkComplexity(opts.schema, document, payload.variables ?? undefined, payload.operationName); } catch (err) { return [err as GraphQLError]; }
        return undefined as unknown as ExecutionArgs;
      },
      // Errors inside results (resolvers, a subscription failing mid-stream) get the same shaping as over HTTP.
      onNext: (_ctx, _id, _payload, _args, result) => {
        if (!result.errors?.length) return undefined;
        return { ...result, errors: result.errors.map((e) => formatError(e.toJSON(), e)) } as never;
      },
      onError: (_ctx, _id, _payload, errors) => errors.map((e) => {
        const f = formatError(e, e);
        return new GraphQLError(f.message, { extensions: f.extensions });
      }),
    }, this.wss);

    if (opts.rateLimiter) {
      const limiter = opts.rateLimiter;
      app.use('/graphql', (req, res, next) => {
        limiter(req.headers.authorization, req.socket.remoteAddress).then((limited) => {
          if (!limited) { next(); return; }
          res.status(429).setHeader('Retry-After', String(Math.ceil(limited.retryAfterMs / 1000)));
          res.json({ errors: [{ message: limited.message, extensions: { code: ErrorCode.RateLimited, retryAfterMs: limited.retryAfterMs } }] });
        }, next);
      });
    }
    app.use('/graphql', express.json({ limit: opts.maxBodyBytes }), expressMiddleware(this.apollo, {
      context: async ({ req }) => this.contextFor(req.headers.authorization),
    }));
    for (const router of opts.restRouters?.(this.executor) ?? []) app.use(router);

    // Body-parser and other errors before Apollo: answer in GraphQL's shape, never a stack trace.
    app.use((err: Error & { type?: string; status?: number }, req: Request, res: Response, next: NextFunction) => {
      if (res.headersSent) { next(err); return; }
      const tooLarge = err.type === 'entity.too.large';
      const status = tooLarge ? 413 : err.status && err.status < 500 ? err.status : 500;
      const code = tooLarge ? ErrorCode.PayloadTooLarge : status < 500 ? ErrorCode.BadUserInput : ErrorCode.Internal;
      const message = tooLarge ? `request body exceeds ${opts.maxBodyBytes} bytes` : status < 500 ? `malformed request: ${err.message}` : 'internal error';
      if (status >= 500) opts.logger.error({ err, path: req.path }, 'request failed');
      res.status(status).json({ errors: [{ message, extensions: { code } }] });
    });

    await new Promise<void>((resolve, reject) => {
      this.httpServer.once('error', reject);
      this.httpServer.listen(opts.port, opts.host, () => resolve());
    });
    this.phase = 'started';
    return this.httpServer.address() as AddressInfo;
  }

  private async failedChecks(): Promise<string[]> {
    const results = await Promise.all(this.opts.checks.map(async (c) => {
      try {
        await Promise.race([c.check(), new Promise((_, rej) => setTimeout(() => rej(new Error('timeout')), 2000))]);
        return undefined;
      } catch (err) {
        return `${c.name}: ${(err as Error).message}`;
      }
    }));
    return results.filter((r): r is string => !!r);
  }

  /** Drain HTTP, close subscriptions, stop Apollo. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.phase = 'draining';
      await this.apollo.stop().catch((err) => this.opts.logger.warn({ err }, 'apollo stop failed'));
      for (const client of this.wss.clients) client.terminate();
      await new Promise<void>((resolve) => this.wss.close(() => resolve()));
      this.httpServer.closeAllConnections?.();
      this.phase = 'stopped';
    })();
    return this.closing;
  }
}
