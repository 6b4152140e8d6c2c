/**
 * Every Redis connection Tributary makes: one Redis server (REDIS_URL) or a
 * Redis Cluster (REDIS_CLUSTER_NODES), through ioredis's `Redis` or
 * `Cluster`.
 *
 * A Cluster has the same command interface as a Redis connection and routes
 * each command to the master owning its key's slot, so it is handed around
 * typed as `Redis`. What a Cluster cannot do for its callers is covered here:
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

export function isCluster(redis: Redis | Cluster): redis is Cluster {
  return (redis as Cluster).isCluster === true;
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

/** The connections to SCAN to see every key: each master of a Cluster, else the connection itself. */
export function masters(redis: Redis | Cluster): Redis[] {
  return isCluster(redis) ? redis.nodes('master') : [redis];
}

const CRC16_TABLE = (() => {
  const t = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i << 8;
    for (let k = 0; k < 8; k++) c = c & 0x8000 ? ((c << 1) ^ 0x1021) & 0xffff : (c << 1) & 0xffff;
    t[i] = c;
  }
  return t;
})();

/** Redis Cluster hash slot of a key (CRC16/XMODEM of the key, or of its first non-empty `{tag}`, mod 16384). */
export function keySlot(key: string): number {
  let bytes = Buffer.from(key, 'utf8');
  const open = bytes.indexOf(0x7b); // {
  if (open >= 0) {
    const close = bytes.indexOf(0x7d, open + 1); // }
    if (close > open + 1) bytes = bytes.subarray(open + 1, close);
  }
  let crc = 0;
  for (const b of bytes) crc = ((crc << 8) & 0xffff) ^ CRC16_TABLE[((crc >> 8) ^ b) & 0xff]!;
  return crc % 16384;
}

/** `host:port` of the master owning `key`'s slot, from the Cluster's slot map; undefined while it is unknown. */
function ownerOf(cluster: Cluster, key: string): string | undefined {
  return cluster.slots[keySlot(key)]?.[0];
}

/**
 * The connection that talks to the server holding `key`: a Cluster's pooled
 * connection to the owning master (undefined while the slot map is unknown),
 * else the connection itself. For keyless commands about that server
 * (CLIENT UNBLOCK of a connection blocked on the key).
 */
export function nodeForKey(redis: Redis | Cluster, key: string): Redis | undefined {
  if (!isCluster(redis)) return redis;
  const owner = ownerOf(redis, key);
  return owner === undefined ? undefined : redis.nodes('master').find((n) => `${n.options.host}:${n.options.port}` === owner);
}

/**
 * A new dedicated connection for blocking reads of `key`: a duplicate of a
 * plain connection, or, on a Cluster, a plain connection to the master
 * owning the key (so CLIENT ID, the blocking command and CLIENT UNBLOCK all
 * reach that one server). That connection does not follow slot moves or
 * failovers: its commands fail (MOVED, connection errors; one retry per
 * command) and the caller drops it and asks again. Throws while the
 * Cluster's slot map is unknown.
 */
export function blockingConnectionForKey(redis: Redis | Cluster, key: string): Redis {
  if (!isCluster(redis)) return redis.duplicate();
  const owner = ownerOf(redis, key);
  if (owner === undefined) throw new Error(`no Redis Cluster node known for slot ${keySlot(key)} yet`);
  const sep = owner.lastIndexOf(':');
  return new Redis({
    ...redis.options.redisOptions,
    host: owner.slice(0, sep), port: Number(owner.slice(sep + 1)),
    maxRetriesPerRequest: 1, lazyConnect: false,
  });
}
