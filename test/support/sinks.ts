/** Helpers of the sink suites: a feed written directly (synthetic transactions on `sinkt.items`), and sink GraphQL calls. */
import { expect } from 'vitest';
import { Redis } from 'ioredis';
import { Operation, type ChangeEvent } from '../../src/replication/change-event.ts';
import { openFeed } from '../../src/replication/feed/feed-registry.ts';
import { makeSequence } from '../../src/replication/sequence.ts';
import { gql } from './gateway.ts';

export const SINK_FIELDS = 'id name feed kind format status error config secretsSet tables position lagMs delivered failed deadLetterCount';

/**
 * Appends transactions to a feed: each change updates row `id` of
 * `sinkt.items` to version `v` (insert for v = 1). Returns the events, in feed order.
 */
export class FeedWriter {
  private readonly redis: Redis;
  private readonly feed;
  private tx = 0;
  readonly events: ChangeEvent[] = [];
  private readonly versions = new Map<number, number>();

  constructor(redisUrl: string, prefix: string, readonly name: string) {
    this.redis = new Redis(redisUrl, { maxRetriesPerRequest: 3 });
    this.feed = openFeed(this.redis, name, { prefix });
  }

  /** One transaction changing each of `ids` once. */
  async write(ids: number[]): Promise<ChangeEvent[]> {
    const n = ++this.tx;
    const commitTime = Date.now();
    const events = ids.map((id, i): ChangeEvent => {
      const v = (this.versions.get(id) ?? 0) + 1;
      this.versions.set(id, v);
      return {
        source: 'postgres', sequence: makeSequence(0, n, i), txid: String(1000 + n), commitSequence: String(n), index: i,
        op: v === 1 ? Operation.Insert : Operation.Update, schema: 'sinkt', table: 'items', key: ['id'],
        before: v === 1 ? null : { id, v: v - 1, note: `v${v - 1}` }, after: { id, v, note: `v${v}` },
        columns: [{ name: 'id', kind: 'int', sourceType: 'integer' }, { name: 'v', kind: 'int', sourceType: 'integer' }, { name: 'note', kind: 'text', sourceType: 'text' }],
        commitTime,
      };
    });
    await this.feed.append({ txid: String(1000 + n), commitSequence: String(n), commitTime, resume: { kind: 'postgres', lsn: `0/${n.toString(16)}` }, events });
    this.events.push(...events);
    return events;
  }

  /** `count` transactions of `perTx` changes over keys 1..keys (round robin). */
  async writeMany(count: number, perTx: number, keys: number, pauseMs = 0): Promise<void> {
    let k = 0;
    for (let t = 0; t < count; t++) {
      await this.write(Array.from({ length: perTx }, () => (k++ % keys) + 1));
      if (pauseMs) await new Promise((r) => setTimeout(r, pauseMs));
    }
  }

  get last(): string { return this.events.at(-1)!.sequence; }

  async close(): Promise<void> { await this.feed.close(); this.redis.disconnect(); }
}

export async function createSink(url: string, input: Record<string, unknown>): Promise<any> {
  const r = await gql(url, `mutation($i: CreateSinkInput!) { createSink(input: $i) { ${SINK_FIELDS} } }`, { i: input });
  expect(r.body.errors, JSON.stringify(r.body.errors)).toBeUndefined();
  return r.body.data.createSink;
}

export async function getSink(url: string, id: string): Promise<any> {
  const r = await gql(url, `query($id: ID!) { sink(id: $id) { ${SINK_FIELDS} } }`, { id });
  if (r.body.errors) throw new Error(JSON.stringify(r.body.errors));
  return r.body.data.sink;
}

/** The key a sink orders by for a change of `sinkt.items` row `id`. */
export const itemKey = (id: number) => `sinkt.items:[${id}]`;
