/**
 * What callers of a Redis Cluster must do themselves (store/redis-client.ts
 * makes the connections): commands with no key (SCAN, CLIENT) go to an
 * arbitrary node, so `masters()` lists every master to SCAN and
 * `nodeForKey()` is the master owning a key; a blocking command whose
 * connection must also be addressed by CLIENT ID / CLIENT UNBLOCK needs a
 * plain connection to the owner: `blockingConnectionForKey()`.
 */
import { Redis, type Cluster } from 'ioredis';

export function isCluster(redis: Redis | Cluster): redis is Cluster {
  return (redis as Cluster).isCluster === true;
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
