/**
 * BullMQ queues by name, sharing one ioredis connection for producers.
 * Workers get their own connections (BullMQ requires maxRetriesPerRequest
 * null for blocking commands).
 */
import { Queue, type ConnectionOptions } from 'bullmq';
import { Redis } from 'ioredis';
import { bullPrefix, QueueName } from './queue-names.ts';

export interface QueueSetOptions {
  redisUrl: string;
  prefix: string;
}

export class QueueSet {
  private readonly queues = new Map<string, Queue>();
  readonly connection: Redis;
  readonly prefix: string;
  private closing?: Promise<void>;

  constructor(private readonly opts: QueueSetOptions) {
    this.connection = new Redis(opts.redisUrl, { maxRetriesPerRequest: null, lazyConnect: false });
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
    const r = new Redis(this.opts.redisUrl, { maxRetriesPerRequest: null });
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
