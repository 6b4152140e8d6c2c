/**
 * Cross-instance pub/sub: type-graphql's PubSub interface backed by Redis
 * pub/sub (@graphql-yoga/redis-event-target), so an event published by any
 * worker or gateway reaches subscribers on every gateway instance.
 */
import { createPubSub, type PubSub } from '@graphql-yoga/subscription';
import { createRedisEventTarget } from '@graphql-yoga/redis-event-target';
import { createRedisClient, type RedisSettings } from '../store/redis-client.ts';

/** Every pub/sub topic, in one place. Per-entity topics are `${Topic}:${id}`. */
export enum Topic {
  TaskEvents = 'task-events',
  JobEvents = 'job-events',
  ClusterEvents = 'cluster-events',
  FeedAppended = 'feed-appended',
  CachedQueryResult = 'cached-query-result',
  SinkEvents = 'sink-events',
}

export function topicFor(topic: Topic, id: string): string {
  return `${topic}:${id}`;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AppPubSub = PubSub<Record<string, [unknown]>>;

export interface RedisPubSub {
  pubSub: AppPubSub;
  publish(topic: string, payload: unknown): void;
  close(): Promise<void>;
}

/** On a Redis Cluster, PUBLISH reaches subscribers on every node (classic pub/sub is cluster-wide). */
export function createRedisPubSub(redis: RedisSettings, prefix: string): RedisPubSub {
  const publishClient = createRedisClient(redis, { maxRetriesPerRequest: null });
  const subscribeClient = createRedisClient(redis, { maxRetriesPerRequest: null });
  publishClient.on('error', () => {});
  subscribeClient.on('error', () => {});
  // The event target calls publish/subscribe/unsubscribe without handling their promises: a command still
  // queued when the clients disconnect at shutdown rejects ("Connection is closed") and would crash the process.
  for (const [client, names] of [[publishClient, ['publish']], [subscribeClient, ['subscribe', 'unsubscribe']]] as const) {
    for (const name of names) {
      const raw = (client as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>)[name]!.bind(client);
      (client as unknown as Record<string, unknown>)[name] = (...a: unknown[]) => { const p = raw(...a); p.catch(() => undefined); return p; };
    }
  }
  const eventTarget = createRedisEventTarget({ publishClient, subscribeClient });
  void prefix; // channels are the topic names; deployments sharing one Redis should use separate DB numbers
  const pubSub = createPubSub({ eventTarget }) as unknown as AppPubSub;
  let closing: Promise<void> | undefined;
  return {
    pubSub,
    publish(topic, payload) { if (!closing) pubSub.publish(topic, payload as never); },
    close() {
      closing ??= (async () => { publishClient.disconnect(); subscribeClient.disconnect(); })();
      return closing;
    },
  };
}
