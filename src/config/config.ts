/**
 * Configuration: environment variables, optionally layered over a JSON config
 * file (TRIBUTARY_CONFIG=path). Validated once at start; an invalid value
 * becomes one ConfigError line naming the variable.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

const port = z.coerce.number().int().min(0).max(65535);
const optionalPort = z.preprocess((v) => (v === '' || v === undefined ? undefined : v), port.optional());

const urlWith = (protocols: string[]) =>
  z.string().refine((s) => {
    try { return protocols.includes(new URL(s).protocol); } catch { return false; }
  }, { message: `must be a URL with scheme ${protocols.map((p) => p.replace(':', '://')).join(' or ')}` });

/** Every setting, with the environment variable that sets it. */
export const ENV_VARS = {
  port: 'PORT',
  host: 'HOST',
  databaseUrl: 'DATABASE_URL',
  redisUrl: 'REDIS_URL',
  redisClusterNodes: 'REDIS_CLUSTER_NODES',
  secretKey: 'TRIBUTARY_SECRET_KEY',
  secretKeyFile: 'TRIBUTARY_SECRET_KEY_FILE',
  logLevel: 'LOG_LEVEL',
  workerConcurrency: 'WORKER_CONCURRENCY',
  workerCluster: 'WORKER_CLUSTER',
  queuePrefix: 'QUEUE_PREFIX',
  maxBodyBytes: 'MAX_BODY_BYTES',
  udupPort: 'UDUP_PORT',
  celloPort: 'CELLO_PORT',
  connectionServicePort: 'CONNECTION_SERVICE_PORT',
  changeserverPort: 'CHANGESERVER_PORT',
  fateFlowPort: 'FATEFLOW_PORT',
  changeserverFeed: 'CHANGESERVER_FEED',
  changeserverSource: 'CHANGESERVER_SOURCE_URL',
  changeserverMgmtPort: 'CHANGESERVER_MGMT_PORT',
  changeserverBasePath: 'CHANGESERVER_BASE_PATH',
  feedMaxChanges: 'FEED_MAX_CHANGES',
  feedMaxAgeSeconds: 'FEED_MAX_AGE_SECONDS',
  subscriberBufferEvents: 'SUBSCRIBER_BUFFER_EVENTS',
  subscriberStallSeconds: 'SUBSCRIBER_STALL_SECONDS',
  taskLockMs: 'TASK_LOCK_MS',
  taskMaxRepeatedFailures: 'TASK_MAX_REPEATED_FAILURES',
  lagWarnSeconds: 'LAG_WARN_SECONDS',
  clusterConsensusPlugins: 'CLUSTER_CONSENSUS_PLUGINS',
  rateLimitPerSecond: 'RATE_LIMIT_PER_SECOND',
  graphqlMaxAliases: 'GRAPHQL_MAX_ALIASES',
  maxSubscriptionsPerConnection: 'MAX_SUBSCRIPTIONS_PER_CONNECTION',
  maxLongPollWaiters: 'MAX_LONG_POLL_WAITERS',
  clusterConsensusModes: 'CLUSTER_CONSENSUS_MODES',
  sinkAllowedHosts: 'SINK_ALLOWED_HOSTS',
} as const;

/** One Redis Cluster seed node (REDIS_CLUSTER_NODES entry). */
export interface RedisClusterNode {
  host: string;
  port: number;
  username?: string;
  password?: string;
  /** `rediss://` entry: TLS to every node. */
  tls: boolean;
}

/**
 * `host:port`, `[v6]:port`, or a `redis://` / `rediss://` URL with a port,
 * optional credentials and no database but 0. A string is the error (it
 * never repeats the entry, which may hold a password).
 */
function parseClusterNode(entry: string): RedisClusterNode | string {
  if (!/^rediss?:\/\//.test(entry)) {
    const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9_.-]+):(\d{1,5})$/.exec(entry);
    return m ? { host: m[1]!.replace(/^\[|\]$/g, ''), port: Number(m[2]), tls: false } : 'is not host:port or a redis:// URL';
  }
  let u: URL;
  try { u = new URL(entry); } catch { return 'is not a valid URL'; }
  if (!u.hostname || !u.port) return 'needs a host and a port';
  if (u.pathname !== '' && u.pathname !== '/' && u.pathname !== '/0') return 'names a database: Redis Cluster has only database 0';
  return {
    host: u.hostname.replace(/^\[|\]$/g, ''), port: Number(u.port), tls: u.protocol === 'rediss:',
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}), ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
  };
}

/** Comma-separated (environment) or a JSON array (config file) of cluster seed nodes. */
const clusterNodes = z.preprocess(
  (v) => (typeof v === 'string' ? v.split(',').map((x) => x.trim()).filter(Boolean) : v),
  z.array(z.string()).min(1, 'must name at least one node').transform((entries, ctx): RedisClusterNode[] => entries.map((e, i) => {
    const node = parseClusterNode(e);
    if (typeof node === 'string') { ctx.addIssue({ code: 'custom', message: `entry ${i + 1} ${node}` }); return { host: '', port: 0, tls: false }; }
    return node;
  })),
);

/** A list from a JSON array (config file) or a comma-separated string (environment). */
const labelList = (dflt: string[]) => z.preprocess(
  (v) => (typeof v === 'string' ? v.split(',').map((x) => x.trim()).filter(Boolean) : v),
  z.array(z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/)).default(dflt),
);

const schema = z.object({
  port: port.default(8190),
  host: z.string().min(1).default('127.0.0.1'),
  databaseUrl: urlWith(['postgres:', 'postgresql:']).default('postgres://127.0.0.1:5432/tributary'),
  redisUrl: urlWith(['redis:', 'rediss:']).default('redis://127.0.0.1:6379'),
  /**
   * Redis Cluster seed nodes: set, every connection is an ioredis Cluster
   * client (REDIS_URL is not used). Username and password come from the
   * first entry that has them, TLS from any `rediss://` entry.
   */
  redisClusterNodes: clusterNodes.optional(),
  secretKey: z.string().min(16, 'must be at least 16 characters').optional(),
  secretKeyFile: z.string().default('.tributary/secret.key'),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  workerConcurrency: z.coerce.number().int().min(1).max(1000).default(16),
  workerCluster: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'must match [A-Za-z0-9_-]{1,64}').optional(),
  queuePrefix: z.string().regex(/^[A-Za-z0-9_:-]{1,64}$/).default('tributary'),
  maxBodyBytes: z.coerce.number().int().min(1024).default(10 * 1024 * 1024),
  udupPort: optionalPort,
  celloPort: optionalPort,
  connectionServicePort: optionalPort,
  changeserverPort: optionalPort,
  fateFlowPort: optionalPort,
  changeserverFeed: z.string().regex(/^[A-Za-z0-9_.-]{1,128}$/).optional(),
  changeserverSource: urlWith(['postgres:', 'postgresql:', 'mysql:', 'mariadb:']).optional(),
  /** changeserver management port (Transicator's mgmtPort): /health, /ready and /markdown answer only there. */
  changeserverMgmtPort: optionalPort,
  /** Prefix of the changeserver API paths (Transicator's -prefix), e.g. "/cs": /cs/changes, /cs/feeds/{name}/changes. */
  changeserverBasePath: z.string().regex(/^(\/[A-Za-z0-9._~-]+)+\/?$/, 'must be a path such as /changeserver').transform((s) => s.replace(/\/$/, '')).optional(),
  feedMaxChanges: z.coerce.number().int().min(1).default(1_000_000),
  feedMaxAgeSeconds: z.coerce.number().int().min(1).default(7 * 24 * 3600),
  /** Changes held per live subscriber before it counts as stalled. */
  subscriberBufferEvents: z.coerce.number().int().min(1).max(10_000_000).default(10_000),
  /** How long a stalled subscriber's buffer may stay full before it is closed (SUBSCRIBER_TOO_SLOW). */
  subscriberStallSeconds: z.coerce.number().min(0.1).max(3600).default(10),
  /**
   * BullMQ task lock lifetime (ms). A task of a worker that died moves to
   * another worker about this long after its last lock renewal; shorter
   * means faster recovery and more Redis traffic (renewal every half lock).
   */
  taskLockMs: z.coerce.number().int().min(1000).max(600_000).default(10_000),
  /** A task failing this many times in a row with the same error at the same position fails its job (connection losses excepted). */
  taskMaxRepeatedFailures: z.coerce.number().int().min(1).max(1_000_000).default(10),
  lagWarnSeconds: z.coerce.number().min(0.1).max(86_400).default(30),
  clusters: z.array(z.object({
    name: z.string(), size: z.number().int().min(1), consensus_plugin: z.string().optional(), consensus_mode: z.string().optional(),
  })).default([]),
  /** Cluster labels old Cello callers send (kept as labels and filters only). */
  clusterConsensusPlugins: labelList(['pbft', 'noops', 'solo', 'kafka', 'raft', 'etcdraft']),
  clusterConsensusModes: labelList(['batch', 'classic', 'sieve']),
  /** Requests per second per token (per client address in open mode), counted in Redis across gateways; 0 = off. */
  rateLimitPerSecond: z.coerce.number().int().min(0).max(1_000_000).default(100),
  /** Aliased fields per GraphQL operation. */
  graphqlMaxAliases: z.coerce.number().int().min(1).max(100_000).default(50),
  /** Active subscriptions on one graphql-ws connection. */
  maxSubscriptionsPerConnection: z.coerce.number().int().min(1).max(100_000).default(100),
  /** Long polls (changeserver `block`, GraphQL `changes(block:)`) waiting at once in one gateway. */
  maxLongPollWaiters: z.coerce.number().int().min(1).max(1_000_000).default(10_000),
  /**
   * Hosts that webhook and broker sinks may reach (comma-separated; `*.example.com` matches subdomains).
   * Empty (the default) allows any host.
   */
  sinkAllowedHosts: z.preprocess(
    (v) => (typeof v === 'string' ? v.split(',').map((x) => x.trim().toLowerCase()).filter(Boolean) : v),
    z.array(z.string().regex(/^(\*\.)?[a-z0-9_.:-]{1,253}$/)).default([]),
  ),
});

export type Config = z.infer<typeof schema>;

/** Reads config from an env map (default process.env) and an optional file. Throws ConfigError. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, overrides: Partial<Record<keyof Config, unknown>> = {}): Config {
  let fromFile: Record<string, unknown> = {};
  const file = env.TRIBUTARY_CONFIG;
  if (file) {
    try {
      fromFile = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    } catch (err) {
      throw new ConfigError(`TRIBUTARY_CONFIG: cannot read ${file}: ${(err as Error).message}`);
    }
  }
  const raw: Record<string, unknown> = { ...fromFile };
  for (const [key, name] of Object.entries(ENV_VARS)) {
    const v = env[name];
    if (v !== undefined && v !== '') raw[key] = v;
  }
  Object.assign(raw, Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined)));
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const key = String(issue.path[0] ?? '');
    const envName = (ENV_VARS as Record<string, string>)[key] ?? key;
    throw new ConfigError(`invalid configuration: ${envName}: ${issue.message}`);
  }
  return parsed.data;
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}
