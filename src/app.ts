/**
 * The composition root: the only place that builds real objects and wires
 * them together. Roles: `serve` (gateway), `worker` (BullMQ workers), or both.
 *
 * Shutdown order (close()): stop taking HTTP and close subscriptions, stop
 * workers (running tasks commit their checkpoints), stop heartbeats, then
 * close queues, pub/sub, Redis and PostgreSQL.
 */
import { readFileSync } from 'node:fs';
import type { Redis } from 'ioredis';
import express, { type Router } from 'express';
import type { GraphQLExecutor } from './rest-compat/executor.ts';
import type { OpenApiServers, ServerDoc } from './rest-compat/rest-route.ts';
import type pg from 'pg';
import { isLoopback, type Config } from './config/config.ts';
import { createLogger, type Logger } from './observability/logger.ts';
import { Metrics } from './observability/metrics.ts';
import { createPool, ensureDatabase, migrate } from './store/database.ts';
import { resolveSecretKey, SecretBox } from './store/secrets.ts';
import { createRedisClient, describeRedis, redisAddressUrl, type RedisSettings } from './store/redis-client.ts';
import { TokenRepo } from './store/token.repo.ts';
import { Authenticator } from './auth/authenticator.ts';
import { createRedisPubSub, Topic, topicFor, type RedisPubSub } from './events/pubsub.ts';
import { QueueSet } from './queues/queue-set.ts';
import { QueueName, clusterQueueName } from './queues/queue-names.ts';
import { WorkerHost } from './queues/worker-host.ts';
import { noopProcessor } from './queues/processors/noop.processor.ts';
import { NodeRegistry } from './services/node-registry.ts';
import { TaskService } from './services/task.service.ts';
import type { Services } from './services/services.ts';
import { ConnectionRepo } from './store/connection.repo.ts';
import { JobRepo } from './store/job.repo.ts';
import { ConnectionService } from './services/connection.service.ts';
import { JobVerifyService } from './services/job-verify.service.ts';
import { JobService, JOB_CONTROL_TOPIC, type JobControlMessage } from './services/job.service.ts';
import { captureProcessor } from './queues/processors/capture.processor.ts';
import { applyProcessor } from './queues/processors/apply.processor.ts';
import { snapshotChunkProcessor, snapshotDoneProcessor } from './queues/processors/snapshot.processor.ts';
import type { ReplicationDeps } from './queues/processors/task-run.ts';
import { buildAppSchema } from './server/schema.ts';
import { Gateway } from './server/gateway.ts';
import { CachedQueryRepo } from './store/cached-query.repo.ts';
import { CachedQueryService } from './services/cached-query.service.ts';
import { cachedQueryProcessor } from './queues/processors/cached-query.processor.ts';
import { CONNECTION_SERVICE_OPENAPI_PATH, connectionServiceRouter } from './rest-compat/connection-service/index.ts';
import { UDUP_OPENAPI_PATH, udupRouter } from './rest-compat/udup/index.ts';
import { changeserverListenerRouter, changeserverManagementRouter, changeserverRouter, ensureChangeserverSource, type ChangeserverMarkdown } from './rest-compat/changeserver/index.ts';
import { ChangeFeedService } from './services/change-feed.service.ts';
import { CELLO_OPENAPI_PATH, celloRouter } from './rest-compat/cello/index.ts';
import { ClusterRepo } from './store/cluster.repo.ts';
import { ClusterService } from './services/cluster.service.ts';
import { FATE_FLOW_OPENAPI_PATH, fateFlowRouter } from './rest-compat/fate-flow/index.ts';
import { PipelineRepo } from './store/pipeline.repo.ts';
import { PipelineService } from './services/pipeline.service.ts';
import { PipelineTracking } from './services/pipeline-tracking.ts';
import { PipelineModelRegistry } from './services/pipeline-model-registry.ts';
import { DataService } from './services/data.service.ts';
import { componentProcessor } from './queues/processors/component.processor.ts';
import { dataProcessor } from './queues/processors/data.processor.ts';
import { startLegacyListener, type LegacyListener } from './server/legacy-listener.ts';
import { landingRouter } from './server/landing.ts';
import { queueDashboardRouter } from './server/queue-dashboard.ts';
import { requestRateLimiter } from './server/rate-limit.ts';
import { SinkRepo } from './store/sink.repo.ts';
import { SinkService } from './services/sink.service.ts';
import { sinkProcessor } from './queues/processors/sink.processor.ts';
import { TaskKind } from './domain/task-model.ts';
import type { LegacyVocabulary } from './services/legacy-vocabulary.ts';
import { udupVocabulary } from './rest-compat/udup/udup.dialect.ts';
import { fateVocabulary } from './rest-compat/fate-flow/fate-flow.dialect.ts';
import { celloVocabulary } from './rest-compat/cello/cello.dialect.ts';

export const VERSION: string = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

export class StartupError extends Error {
  override readonly name = 'StartupError';
}

export interface AppOptions {
  config: Config;
  serve: boolean;
  worker: boolean;
  logger?: Logger;
}

async function connectRedis(settings: RedisSettings): Promise<Redis> {
  const redis = createRedisClient(settings, { maxRetriesPerRequest: null, lazyConnect: true, connectTimeout: 5000, retryStrategy: (n) => Math.min(n * 200, 2000) });
  redis.on('error', () => { /* reconnects; readiness reports it */ });
  try {
    await Promise.race([
      redis.connect().then(() => redis.ping()),
      new Promise((_, reject) => setTimeout(() => reject(new Error('no answer within 5 s')), 5000)),
    ]);
  } catch (err) {
    redis.disconnect();
    throw new StartupError(`${describeRedis(settings)} is unreachable: ${(err as Error).message}`);
  }
  return redis;
}

export class App {
  readonly logger: Logger;
  gateway?: Gateway;
  workerHost?: WorkerHost;
  services!: Services;
  pool!: pg.Pool;
  redis!: Redis;
  secrets!: SecretBox;
  private pubsub?: RedisPubSub;
  private queues?: QueueSet;
  private nodes?: NodeRegistry;
  private closing?: Promise<void>;
  private clusters?: ClusterService;
  private legacyListeners: LegacyListener[] = [];
  /** Ports of the running legacy listeners by API name, for the OpenAPI documents' `servers`. */
  private legacyPorts = new Map<string, number>();
  private changeserverListener?: LegacyListener;
  private changeserverMgmtListener?: LegacyListener;
  /** changeserver's /markdown state; marked down = drop the configured feed's capture slot at close. */
  private readonly changeserverMarkdown: ChangeserverMarkdown = { down: false };
  private stopControl = new AbortController();

  constructor(private readonly opts: AppOptions) {
    this.logger = opts.logger ?? createLogger(opts.config.logLevel);
  }

  get role(): string {
    return this.opts.serve && this.opts.worker ? 'start' : this.opts.serve ? 'serve' : 'worker';
  }

  /** Connect stores, migrate, build services, start the gateway and/or workers. Throws StartupError with one clear line. */
  async start(): Promise<void> {
    const { config } = this.opts;
    this.redis = await connectRedis(config);
    try {
      await ensureDatabase(config.databaseUrl);
    } catch (err) {
      throw new StartupError((err as Error).message);
    }
    this.pool = createPool(config.databaseUrl);
    try {
      const m = await migrate(this.pool);
      if (m.applied.length) this.logger.info({ applied: m.applied }, 'migrations applied');
    } catch (err) {
      throw new StartupError((err as Error).message);
    }
    const key = resolveSecretKey(config.secretKey, config.secretKeyFile);
    if (key.generated) this.logger.warn({ file: config.secretKeyFile }, 'TRIBUTARY_SECRET_KEY is not set: generated a key file to encrypt stored secrets; keep it safe');
    this.secrets = new SecretBox(key.key);

    const tokens = new TokenRepo(this.pool);
    const auth = new Authenticator(tokens);
    if (this.opts.serve) {
      const open = await auth.isOpen();
      if (open && !isLoopback(config.host)) {
        throw new StartupError(`refusing to listen on ${config.host} with no API token defined: create one with "npx tributary token create --role admin" or listen on 127.0.0.1`);
      }
      if (open) this.logger.warn('no API token is defined: listening on loopback only, every caller acts as admin');
    }

    this.pubsub = createRedisPubSub(config, config.queuePrefix);
    this.queues = new QueueSet({ redis: config, prefix: config.queuePrefix });
    this.nodes = new NodeRegistry({ redis: this.redis, prefix: config.queuePrefix, role: this.role, version: VERSION, cluster: config.workerCluster });
    const metrics = new Metrics(async () => {
      const out: Record<string, Record<string, number>> = {};
      // The shared queue always: worker autoscaling reads its depth from here (deploy/k8s/worker-hpa.yaml).
      for (const name of new Set<string>([QueueName.Tasks, ...this.queues!.names()])) {
        out[name] = await this.queues!.get(name).getJobCounts('waiting', 'active', 'delayed', 'failed', 'prioritized');
      }
      return out;
    }, async () => (this.services ? this.services.jobs.stats() : []));

    // The legacy APIs' words, owned by their REST compat modules, for what GraphQL still says in them.
    const legacy: LegacyVocabulary = { udup: udupVocabulary, fate: fateVocabulary, cello: celloVocabulary };
    const connections = new ConnectionService(new ConnectionRepo(this.pool, this.secrets));
    const jobRepo = new JobRepo(this.pool, this.secrets);
    const feedPrefix = config.queuePrefix;
    const jobs = new JobService(jobRepo, connections, this.queues, this.pubsub.pubSub, this.redis, feedPrefix);
    const cachedQueryRepo = new CachedQueryRepo(this.pool);
    const cachedQueries = new CachedQueryService({ connections, jobs, repo: cachedQueryRepo, queues: this.queues, pubSub: this.pubsub.pubSub });
    this.clusters = new ClusterService({
      repo: new ClusterRepo(this.pool), queues: this.queues, nodes: this.nodes, jobs, pubSub: this.pubsub.pubSub, logger: this.logger,
      redisUrl: redisAddressUrl(config), consensusPlugins: config.clusterConsensusPlugins, consensusModes: config.clusterConsensusModes, cello: legacy.cello,
      apiUrl: () => {
        const a = this.address();
        const host = a ? (a.host.includes(':') ? `[${a.host}]` : a.host) : config.host;
        return `http://${host}:${a?.port ?? config.port}`;
      },
    });
    jobs.placement = (owner, hint) => this.clusters!.placementFor(owner, hint);
    const pipelineRepo = new PipelineRepo(this.pool, connections.repo);
    const pipelineTracking = new PipelineTracking(jobRepo, pipelineRepo, legacy.fate);
    const pipelines = new PipelineService(jobRepo, pipelineRepo, this.queues, this.pubsub.pubSub, legacy.fate, pipelineTracking);
    const sinkRepo = new SinkRepo(this.pool, this.secrets);
    this.services = {
      sinks: new SinkService({
        repo: sinkRepo, queues: this.queues, pubSub: this.pubsub.pubSub, publish: (topic, payload) => this.pubsub!.publish(topic, payload),
        redis: this.redis, feedPrefix, allowedHosts: config.sinkAllowedHosts,
      }),
      pipelines,
      pipelineTracking,
      pipelineModels: new PipelineModelRegistry(pipelineRepo, pipelines, pipelineTracking, legacy.fate),
      data: new DataService(pipelines, pipelineRepo, connections.repo),
      version: VERSION,
      legacy,
      clusters: this.clusters,
      connections,
      jobs,
      verify: new JobVerifyService(jobs, connections, this.logger),
      cachedQueries,
      nodes: this.nodes,
      tasks: new TaskService(this.queues, this.pubsub.pubSub),
      tokens,
      auth,
      pubSub: this.pubsub.pubSub,
      changes: new ChangeFeedService({
        redis: this.redis, prefix: feedPrefix, jobs: jobRepo,
        subscription: { bufferEvents: config.subscriberBufferEvents, stallMs: Math.round(config.subscriberStallSeconds * 1000) },
        maxLongPollWaiters: config.maxLongPollWaiters,
      }),
    };

    await this.nodes.start();
    const createdClusters = await this.clusters.applyPool(config.clusters);
    if (createdClusters.length) this.logger.info({ clusters: createdClusters }, 'cluster pool: created configured clusters');
    if (this.opts.serve) this.clusters.resumeReleases();

    if (this.opts.worker) {
      const queueNames = config.workerCluster ? [clusterQueueName(config.workerCluster)] : [QueueName.Tasks];
      this.workerHost = new WorkerHost({
        queues: queueNames,
        prefix: this.queues.prefix,
        concurrency: config.workerConcurrency,
        nodeId: this.nodes.id,
        logger: this.logger,
        newConnection: () => this.queues!.newConnection(),
        publishTaskEvent: (e) => this.pubsub!.publish(topicFor(Topic.TaskEvents, e.taskId), e),
        lockDurationMs: config.taskLockMs,
      });
      this.workerHost.register(TaskKind.Noop, noopProcessor);
      const deps: ReplicationDeps = {
        jobs: jobRepo, connections: connections.repo, redis: this.redis, queues: this.queues, feedPrefix,
        publish: (topic, payload) => this.pubsub!.publish(topic, payload), logger: this.logger, metrics,
        retention: { maxChanges: config.feedMaxChanges, maxAgeMs: config.feedMaxAgeSeconds * 1000 },
        maxRepeatedFailures: config.taskMaxRepeatedFailures,
        lagWarnMs: config.lagWarnSeconds * 1000,
      };
      this.workerHost.register(TaskKind.Capture, captureProcessor(deps));
      this.workerHost.register(TaskKind.Apply, applyProcessor(deps));
      this.workerHost.register(TaskKind.SnapshotChunk, snapshotChunkProcessor(deps));
      this.workerHost.register(TaskKind.Snapshot, snapshotDoneProcessor(deps));
      const pipelineDeps = { ...deps, pipelines: pipelineRepo };
      this.workerHost.register(TaskKind.Component, componentProcessor(pipelineDeps));
      this.workerHost.register(TaskKind.DataLoad, dataProcessor(pipelineDeps));
      this.workerHost.register(TaskKind.DataExport, dataProcessor(pipelineDeps));
      this.workerHost.register(TaskKind.CachedQuery, cachedQueryProcessor(deps, cachedQueryRepo));
      this.workerHost.register(TaskKind.Sink, sinkProcessor({ sinks: sinkRepo, redis: this.redis, feedPrefix, publish: deps.publish, logger: this.logger, allowedHosts: config.sinkAllowedHosts }));
      void this.listenForControl().catch(() => undefined);
      this.workerHost.start();
      this.logger.info({ queues: queueNames, concurrency: config.workerConcurrency, node: this.nodes.id }, 'workers started');
    }

    if (this.opts.serve) {
      const schema = await buildAppSchema(this.pubsub.pubSub);
      this.gateway = new Gateway({
        schema, services: this.services, logger: this.logger, metrics,
        host: config.host, port: config.port, maxBodyBytes: config.maxBodyBytes,
        rateLimiter: requestRateLimiter({ redis: this.redis, prefix: config.queuePrefix, perSecond: config.rateLimitPerSecond, logger: this.logger }),
        maxAliases: config.graphqlMaxAliases, maxSubscriptionsPerConnection: config.maxSubscriptionsPerConnection,
        restRouters: (executor) => [
          fateFlowRouter(executor, { onInternalError: (err) => this.logger.error({ err }, 'fate-flow request failed'), servers: this.openApiServers('fate-flow') }),
          connectionServiceRouter(executor, { onInternalError: (err) => this.logger.error({ err }, 'connection service request failed'), servers: this.openApiServers('connection-service') }),
          celloRouter(executor, { servers: this.openApiServers('cello') }), udupRouter(executor, { servers: this.openApiServers('udup') }), this.changeserverGatewayRouter(executor),
        ],
        adminRouters: [queueDashboardRouter({
          auth, queue: (name) => this.queues!.get(name),
          // Every queue: the shared pool and one per cluster (released clusters' queues are obliterated).
          queueNames: async () => [QueueName.Tasks, ...(await new ClusterRepo(this.pool).list({}, 0, 10_000)).rows.map((c) => clusterQueueName(c.name))],
          taskLabels: () => jobRepo.taskLabels(),
        }), landingRouter({
          version: VERSION,
          tokensRequired: async () => !(await auth.isOpen()),
          openApi: [['Udup (/v1)', UDUP_OPENAPI_PATH], ['Cello (/v2)', CELLO_OPENAPI_PATH], ['FATE Flow', FATE_FLOW_OPENAPI_PATH], ['Connection Service', CONNECTION_SERVICE_OPENAPI_PATH]],
          elsewhere: () => this.changeserverLinks(),
        })],
        checks: [
          { name: 'postgres', check: async () => { await this.pool.query('SELECT 1'); } },
          { name: 'redis', check: async () => { await this.redis.ping(); } },
        ],
      });
      try {
        const addr = await this.gateway.start();
        this.logger.info({ host: addr.address, port: addr.port }, 'gateway listening');
      } catch (err) {
        throw new StartupError(`cannot listen on ${config.host}:${config.port}: ${(err as Error).message}`);
      }
      await this.startChangeserver();
      // Each legacy API can also answer on its own historical port (Udup's 8190 is the main port already).
      const legacy: [string, number | undefined, (executor: GraphQLExecutor) => Router][] = [
        ['udup', config.udupPort, (ex) => udupRouter(ex, { servers: this.openApiServers('udup') })],
        ['fate-flow', config.fateFlowPort, (ex) => fateFlowRouter(ex, { servers: this.openApiServers('fate-flow') })],
        ['cello', config.celloPort, (ex) => celloRouter(ex, { servers: this.openApiServers('cello') })],
        ['connection-service', config.connectionServicePort, (ex) => connectionServiceRouter(ex, { servers: this.openApiServers('connection-service') })],
      ];
      for (const [name, port, router] of legacy) {
        if (port === undefined || port === config.port) continue;
        const listener = await startLegacyListener({ name, host: config.host, port, router: router(this.gateway.executor), logger: this.logger });
        this.legacyListeners.push(listener);
        this.legacyPorts.set(name, listener.address.port);
      }
    }
  }

  /**
   * changeserver: its own listener on CHANGESERVER_PORT (with /health, /ready
   * and /markdown, scoped to that listener), and the SUBSCRIBE job capturing
   * CHANGESERVER_SOURCE_URL into CHANGESERVER_FEED when none exists yet.
   */
  private async startChangeserver(): Promise<void> {
    const { config } = this.opts;
    const executor = this.gateway!.executor;
    const onInternalError = (err: unknown) => this.logger.error({ err }, 'changeserver request failed');
    const failedChecks = async () => {
      const failed: string[] = [];
      await this.pool.query('SELECT 1').catch((err: Error) => failed.push(`postgres: ${err.message}`));
      await this.redis.ping().catch((err: Error) => failed.push(`redis: ${err.message}`));
      return failed;
    };
    const markdown = this.changeserverMarkdown;
    const onMarkdown = () => this.logger.warn({ feed: config.changeserverFeed }, 'changeserver marked down: its capture slot is dropped at exit');
    const withMgmt = config.changeserverMgmtPort !== undefined;
    if (config.changeserverPort !== undefined) {
      const router = changeserverListenerRouter(executor, {
        feed: config.changeserverFeed, failedChecks, onInternalError, basePath: config.changeserverBasePath, management: !withMgmt, markdown, onMarkdown,
        servers: this.openApiServers('changeserver', config.changeserverBasePath),
      });
      try {
        this.changeserverListener = await startLegacyListener({ name: 'changeserver', host: config.host, port: config.changeserverPort, router, logger: this.logger });
        this.legacyListeners.push(this.changeserverListener);
        this.legacyPorts.set('changeserver', this.changeserverListener.address.port);
      } catch (err) {
        throw new StartupError(`cannot listen on ${config.host}:${config.changeserverPort} (CHANGESERVER_PORT): ${(err as Error).message}`);
      }
    }
    if (withMgmt) {
      const router = changeserverManagementRouter({ failedChecks, markdown, onMarkdown });
      try {
        this.changeserverMgmtListener = await startLegacyListener({ name: 'changeserver-management', host: config.host, port: config.changeserverMgmtPort!, router, logger: this.logger });
        this.legacyListeners.push(this.changeserverMgmtListener);
      } catch (err) {
        throw new StartupError(`cannot listen on ${config.host}:${config.changeserverMgmtPort} (CHANGESERVER_MGMT_PORT): ${(err as Error).message}`);
      }
    }
    if (config.changeserverSource && config.changeserverFeed) {
      try {
        const outcome = await ensureChangeserverSource(executor, config.changeserverFeed, config.changeserverSource);
        this.logger.info({ feed: config.changeserverFeed, outcome }, 'changeserver capture job');
      } catch (err) {
        this.logger.warn({ err, feed: config.changeserverFeed }, 'changeserver capture job not created');
      }
    }
  }

  /**
   * `servers` of a dialect's OpenAPI document: the gateway's address, which
   * serves every dialect, then the API's own legacy listener when one runs.
   * A wildcard listen address is shown as the host the caller used.
   */
  private openApiServers(api: string, basePath = ''): OpenApiServers {
    const envOf: Record<string, string> = { udup: 'UDUP_PORT', cello: 'CELLO_PORT', 'connection-service': 'CONNECTION_SERVICE_PORT', 'fate-flow': 'FATEFLOW_PORT', changeserver: 'CHANGESERVER_PORT' };
    return (req) => {
      const asked = (req.headers.host ?? '').replace(/:\d+$/, '') || req.local.address;
      const host = (h: string) => (h === '0.0.0.0' || h === '::' || h === '' ? asked : h.includes(':') ? `[${h}]` : h);
      const gateway = this.address() ?? { host: this.opts.config.host, port: this.opts.config.port };
      const out: ServerDoc[] = [{ url: `http://${host(gateway.host)}:${gateway.port}${basePath}`, description: 'Tributary gateway (serves all five APIs)' }];
      const legacy = this.legacyPorts.get(api);
      if (legacy !== undefined) out.push({ url: `http://${host(this.opts.config.host)}:${legacy}${basePath}`, description: `${api}'s own port (${envOf[api]})` });
      return out;
    };
  }

  /** Port of the changeserver listener (CHANGESERVER_PORT), when it runs. */
  changeserverAddress(): { port: number } | undefined {
    return this.changeserverListener ? { port: this.changeserverListener.address.port } : undefined;
  }

  /** Port of the changeserver management listener (CHANGESERVER_MGMT_PORT), when it runs. */
  changeserverMgmtAddress(): { port: number } | undefined {
    return this.changeserverMgmtListener ? { port: this.changeserverMgmtListener.address.port } : undefined;
  }

  /** The changeserver routes on the gateway's own port, under CHANGESERVER_BASE_PATH when set. */
  /** Where the changeserver API answers, for the landing page. */
  private changeserverLinks(): [string, string][] {
    const { config } = this.opts;
    const base = config.changeserverBasePath ?? '';
    const a = this.changeserverListener?.address;
    if (a) return [[`changeserver (port ${a.port})`, `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${a.port}${base}/openapi.json`]];
    return [['changeserver: on this port at ' + (base || '') + '/changes; its own port and OpenAPI document with CHANGESERVER_PORT (docs/compat.md)', '/docs/compat.md']];
  }

  private changeserverGatewayRouter(executor: GraphQLExecutor): Router {
    const { config } = this.opts;
    const router = changeserverRouter(executor, { feed: config.changeserverFeed, onInternalError: (err) => this.logger.error({ err }, 'changeserver request failed') });
    return config.changeserverBasePath ? express.Router().use(config.changeserverBasePath, router) : router;
  }

  /**
   * After /markdown, Transicator dropped its replication slot at exit: the
   * instance was leaving for good. Here: stop the SUBSCRIBE job writing
   * CHANGESERVER_FEED and drop its slot and publication (the feed and the
   * canceled job stay readable).
   */
  private async dropMarkedDownCapture(): Promise<void> {
    const feed = this.opts.config.changeserverFeed;
    if (!this.changeserverMarkdown.down || !feed || !this.services) return;
    const job = await this.services.jobs.repo.byFeed(feed);
    if (!job) return;
    await this.services.jobs.dropCapture(job.id);
    this.logger.info({ feed, job: job.name }, 'changeserver marked down: capture stopped and its slot dropped');
  }

  /** Pause/stop/delete reach the node running a job's tasks through pub/sub. */
  private async listenForControl(): Promise<void> {
    const it = this.pubsub!.pubSub.subscribe(JOB_CONTROL_TOPIC)[Symbol.asyncIterator]();
    this.stopControl.signal.addEventListener('abort', () => { it.return?.(); }, { once: true });
    for (;;) {
      const n = await it.next();
      if (n.done) return;
      const msg = n.value as JobControlMessage;
      if (msg?.action === 'abort') this.workerHost?.abortJob(msg.jobId);
    }
  }

  address(): { host: string; port: number } | undefined {
    const a = this.gateway?.httpServer.address();
    return a && typeof a === 'object' ? { host: a.address, port: a.port } : undefined;
  }

  /** Idempotent; every step catches its own failure. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      // Every step is bounded: a connection that never answers must not keep the process from exiting.
      const step = async (name: string, fn: () => Promise<unknown> | unknown, limitMs = 15_000) => {
        const t0 = Date.now();
        let timer: NodeJS.Timeout | undefined;
        const limit = new Promise<'timeout'>((resolve) => { timer = setTimeout(() => resolve('timeout'), limitMs); });
        try {
          const r = await Promise.race([Promise.resolve().then(fn), limit]);
          if (r === 'timeout') this.logger.warn({ step: name, limitMs }, 'shutdown step did not finish in time; going on');
        } catch (err) {
          this.logger.warn({ err, step: name }, 'shutdown step failed');
        } finally {
          clearTimeout(timer);
        }
        const ms = Date.now() - t0;
        if (ms > 500) this.logger.warn({ step: name, ms }, 'slow shutdown step');
      };
      // Ends live change subscriptions and answers pending long polls, so no listener waits on them.
      await step('change feeds', () => this.services?.changes?.close());
      await step('legacy listeners', () => Promise.all(this.legacyListeners.map((l) => l.close())));
      await step('changeserver markdown', () => this.dropMarkedDownCapture());
      await step('gateway', () => this.gateway?.close());
      await step('clusters', () => this.clusters?.close());
      this.stopControl.abort();
      await step('workers', () => this.workerHost?.close(), 60_000);
      await step('heartbeat', () => this.nodes?.close());
      await step('queues', () => this.queues?.close());
      await step('pubsub', () => this.pubsub?.close());
      await step('redis', () => this.redis?.disconnect());
      await step('postgres', () => this.pool?.end());
    })();
    return this.closing;
  }
}
