/**
 * Every Redis connection Tributary makes: one Redis server (REDIS_URL) or a
 * Redis Cluster (REDIS_CLUSTER_NODES), through ioredis's `Redis` or
 * `Cluster`.
 *
 * A Cluster has the same command interface as a Redis connection and routes
 * each command to the master owning its key's slot, so it is handed around
 * typed as `Redis`. What a Cluster cannot do for its callers is covered in
 * replication/redis-topology.ts (re-exported here):
 * - commands with no key (SCAN, CLIENT) go to an arbitrary node: `masters()`
 *   lists every master to SCAN, `nodeForKey()` is the master owning a key;
 * - a blocking command whose connection must also be addressed by CLIENT
 *   ID / CLIENT UNBLOCK needs a plain connection to the owner:
 *   `blockingConnectionForKey()`.
 * Multi-key commands, MULTI and Lua scripts must keep their keys in one slot
 * (hash tags); that is the callers' part (docs/deploy.md, "Redis Cluster").
 */
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import type { Config, RedisClusterNode } from '../config/config.ts';

// What the engine needs of a Cluster lives with it (replication imports nothing above it).
export { blockingConnectionForKey, isCluster, keySlot, masters, nodeForKey } from '../replication/redis-topology.ts';

/** The settings that say where Redis is. */
export type RedisSettings = Pick<Config, 'redisUrl' | 'redisClusterNodes'>;

export interface RedisClientOptions {
  /** null: commands wait through reconnects (BullMQ requires it on its connections). */
  maxRetriesPerRequest?: number | null;
  lazyConnect?: boolean;
  connectTimeout?: number;
  /** Delay before reconnect attempt n (for a Cluster: before it retries reaching the cluster). */
  retryStrategy?: (attempt: number) => number | null;
}

/** Username, password and TLS shared by every node: from the first seed that carries any. */
function clusterCredentials(nodes: RedisClusterNode[]): Pick<RedisOptions, 'username' | 'password' | 'tls'> {
  const withAuth = nodes.find((n) => n.username !== undefined || n.password !== undefined);
  return {
    ...(withAuth?.username !== undefined ? { username: withAuth.username } : {}),
    ...(withAuth?.password !== undefined ? { password: withAuth.password } : {}),
    ...(nodes.some((n) => n.tls) ? { tls: {} } : {}),
  };
}

/**
 * A new connection (a Cluster client when cluster nodes are configured),
 * typed as `Redis`: see the module comment.
 */
export function createRedisClient(settings: RedisSettings, opts: RedisClientOptions = {}): Redis {
  const { retryStrategy, lazyConnect, ...rest } = opts;
  // No CLIENT SETINFO in the handshake (duplicates inherit this): Redis 7.0 does not know it, and ioredis 5.11
  // can send a SUBSCRIBE amid that handshake, after which the ready check fails and the reconnect does not
  // subscribe again (redis/ioredis#2037): a gateway then silently missed job-control messages.
  const perConnection = { disableClientInfo: true, ...rest };
  if (!settings.redisClusterNodes?.length) {
    return new Redis(settings.redisUrl, { ...perConnection, ...(lazyConnect !== undefined ? { lazyConnect } : {}), ...(retryStrategy ? { retryStrategy } : {}) });
  }
  const clusterOpts: ClusterOptions = {
    ...(lazyConnect !== undefined ? { lazyConnect } : {}),
    ...(retryStrategy ? { clusterRetryStrategy: (n: number) => retryStrategy(n) } : {}),
    redisOptions: { ...clusterCredentials(settings.redisClusterNodes), ...perConnection },
  };
  const cluster = new Cluster(settings.redisClusterNodes.map((n) => ({ host: n.host, port: n.port })), clusterOpts);
  return cluster as unknown as Redis;
}

/** "Redis at host:port" or "Redis Cluster at host:port,host:port", for messages (no credentials). */
export function describeRedis(settings: RedisSettings): string {
  if (settings.redisClusterNodes?.length) return `Redis Cluster at ${settings.redisClusterNodes.map((n) => `${n.host}:${n.port}`).join(',')}`;
  const u = new URL(settings.redisUrl);
  return `Redis at ${u.hostname}:${u.port || 6379}`;
}

/** A redis:// URL naming where Redis is, without credentials (for a cluster: its first seed, database 0), as shown to legacy callers. */
export function redisAddressUrl(settings: RedisSettings): string {
  const first = settings.redisClusterNodes?.[0];
  if (!first) {
    const u = new URL(settings.redisUrl);
    u.username = '';
    u.password = '';
    return u.toString();
  }
  const host = first.host.includes(':') ? `[${first.host}]` : first.host;
  return `${first.tls ? 'rediss' : 'redis'}://${host}:${first.port}/0`;
}
