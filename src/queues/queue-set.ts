/**
 * BullMQ queues by name, sharing one ioredis connection for producers.
 * Workers get their own connections (BullMQ requires maxRetriesPerRequest
 * null for blocking commands).
 */
import { Queue, type ConnectionOptions } from 'bullmq';
import type { Redis } from 'ioredis';
import { createRedisClient, type RedisSettings } from '../store/redis-client.ts';
import { bullPrefix, QueueName } from './queue-names.ts';

export interface QueueSetOptions {
  /** Where Redis is: one server or a Redis Cluster (the hash-tagged prefix keeps each queue's keys in one slot). */
  redis: RedisSettings;
  prefix: string;
}

export class QueueSet {
  private readonly queues = new Map<string, Queue>();
  readonly connection: Redis;
  readonly prefix: string;
  private closing?: Promise<void>;

  constructor(private readonly opts: QueueSetOptions) {
    this.connection = createRedisClient(opts.redis, { maxRetriesPerRequest: null, lazyConnect: false });
    this.connection.on('error', () => { /* reconnects; surfaced by health checks */ });
    this.prefix = bullPrefix(opts.prefix);
  }

  get(name: string = QueueName.Tasks): Queue {
    let q = this.queues.get(name);
    if (!q) {
      q = new Queue(name, { connection: this.connection as unknown as ConnectionOptions, prefix: this.prefix });
      q.on('error', () => { /* reconnects */ });
      this.queues.set(name, q);
    }
    return q;
  }

  names(): string[] { return [...this.queues.keys()]; }

  /** A fresh connection for a Worker or QueueEvents. */
  newConnection(): Redis {
    const r = createRedisClient(this.opts.redis, { maxRetriesPerRequest: null });
    r.on('error', () => { /* reconnects */ });
    return r;
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      await Promise.all([...this.queues.values()].map((q) => q.close().catch(() => undefined)));
      this.connection.disconnect();
    })();
    return this.closing;
  }
}
