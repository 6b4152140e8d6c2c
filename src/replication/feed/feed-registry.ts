/**
 * Finding and opening change feeds by name. A feed exists once something was
 * appended to it (its meta hash holds the resume position and sentinel).
 */
import type { Cluster, Redis } from 'ioredis';
import { DEFAULT_FEED_PREFIX, feedNameFromMetaKey, metaKeyPattern, validateFeedName } from './feed-keys.ts';
import { RedisChangeFeed, type RedisChangeFeedOptions } from './redis-change-feed.ts';
import { masters } from '../redis-topology.ts';

export { FeedParameterError } from './feed-errors.ts';
export { validateFeedName, FEED_NAME_RE } from './feed-keys.ts';

/**
 * Names of all feeds under `prefix`, sorted. SCANs (never KEYS) so a large
 * keyspace is walked without blocking Redis; on Redis Cluster every master is
 * scanned, since SCAN only sees one node's keys.
 */
export async function listFeeds(redis: Redis | Cluster, prefix: string = DEFAULT_FEED_PREFIX): Promise<string[]> {
  const nodes = masters(redis);
  const names = new Set<string>();
  const match = metaKeyPattern(prefix);
  for (const node of nodes) {
    let cursor = '0';
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', match, 'COUNT', 500);
      for (const key of keys) {
        const name = feedNameFromMetaKey(prefix, key);
        if (name !== undefined) names.add(name);
      }
      cursor = next;
    } while (cursor !== '0');
  }
  return [...names].sort();
}

/** Opens (without creating anything in Redis) the feed called `name`; throws FeedParameterError for a bad name. */
export function openFeed(redis: Redis, name: string, opts: Omit<RedisChangeFeedOptions, 'redis' | 'name'> = {}): RedisChangeFeed {
  validateFeedName(name);
  return new RedisChangeFeed({ ...opts, redis, name });
}
