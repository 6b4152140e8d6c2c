/**
 * Tributary on a real Redis Cluster: three private masters (startRedisCluster)
 * and a gateway + workers App plus a second worker process configured with
 * REDIS_CLUSTER_NODES only (REDIS_URL points at a closed port, so nothing can
 * fall back to a single server). Covers what breaks on a cluster when keys,
 * scans or blocking connections ignore slots: `nodes` (heartbeats in
 * different slots), a noop task through BullMQ followed over graphql-ws
 * (pub/sub), a PostgreSQL SUBSCRIBE job whose feed lives on another master
 * than the queues, read back through `changes`, a graphql-ws `changes`
 * subscription, a long poll and `feeds`; then no master may have counted a
 * CROSSSLOT error.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { Redis, type Cluster } from 'ioredis';
import { startRedisCluster, type PrivateRedisCluster } from '../../../src/devtools/private-servers.ts';
import { App } from '../../../src/app.ts';
import { createLogger } from '../../../src/observability/logger.ts';
import { createRedisClient, keySlot } from '../../../src/store/redis-client.ts';
import { feedKeys, inflightKey } from '../../../src/replication/feed/feed-keys.ts';
import { RedisChangeFeed } from '../../../src/replication/feed/redis-change-feed.ts';
import { Operation, type CapturedTransaction } from '../../../src/replication/change-event.ts';
import { makeSequence } from '../../../src/replication/sequence.ts';
import { TailWatcher } from '../../../src/replication/feed/tail-watcher.ts';
import { bullPrefix } from '../../../src/queues/queue-names.ts';
import { startTestGateway, gql, type TestGateway } from '../../support/gateway.ts';
import { pgDatabase, uniq, waitFor, type DbHandle } from '../../support/databases.ts';
import { subscribeJob, untilCapturing } from '../../support/changefeed.ts';

const wsClient = (gw: TestGateway): Client => createClient({ url: gw.wsUrl, webSocketImpl: WebSocket, lazy: true, retryAttempts: 0 });

/** Collects subscription payloads until `until` holds; rejects on errors or timeout. */
function collect<T>(client: Client, query: string, variables: Record<string, unknown>, until: (v: T[]) => boolean, timeoutMs = 30_000): Promise<T[]> {
  return new Promise((resolve, reject) => {
    const out: T[] = [];
    const timer = setTimeout(() => { dispose(); reject(new Error(`timeout; got ${out.length}: ${JSON.stringify(out).slice(0, 500)}`)); }, timeoutMs);
    const dispose = client.subscribe<T>({ query, variables }, {
      next: (v) => {
        if (v.errors) { clearTimeout(timer); dispose(); reject(new Error(JSON.stringify(v.errors))); return; }
        out.push(v.data as T);
        if (until(out)) { clearTimeout(timer); dispose(); resolve(out); }
      },
      error: (e) => { clearTimeout(timer); reject(e instanceof Error ? e : new Error(JSON.stringify(e))); },
      complete: () => { clearTimeout(timer); resolve(out); },
    });
  });
}

describe('Redis Cluster (3 masters)', () => {
  let rc: PrivateRedisCluster;
  let cluster: Cluster;
  let masters: Redis[] = [];
  let gw: TestGateway;
  let worker: App | undefined;
  let src: DbHandle | undefined;
  const owner = (key: string): string => cluster.slots[keySlot(key)]![0]!;

  beforeAll(async () => {
    rc = await startRedisCluster();
    masters = rc.masters.map((m) => new Redis(m.port, '127.0.0.1'));
    await Promise.all(masters.map((m) => m.config('RESETSTAT')));
    gw = await startTestGateway({ redisUrl: 'redis://127.0.0.1:1', redisClusterNodes: rc.nodes, rateLimitPerSecond: 1000 } as never);
    cluster = createRedisClient(gw.config) as unknown as Cluster;
    await cluster.ping();
    worker = new App({ config: gw.config, serve: false, worker: true, logger: createLogger('silent') });
    await worker.start();
  });

  afterAll(async () => {
    await worker?.close();
    await gw?.close();
    await src?.close();
    cluster?.disconnect();
    for (const m of masters) m.disconnect();
    await rc?.stop();
  });

  it('a feed append counts into a job\'s in-flight counter in another slot with a command of its own', async () => {
    const name = uniq('rccount');
    const feed = new RedisChangeFeed({ redis: cluster as unknown as Redis, name, prefix: gw.config.queuePrefix });
    let job = uniq('job');
    while (owner(inflightKey(gw.config.queuePrefix, job)) === owner(feedKeys(gw.config.queuePrefix, name).stream)) job = uniq('job');
    const counter = inflightKey(gw.config.queuePrefix, job);
    const cols = [{ name: 'id', kind: 'int' as const, sourceType: 'integer' }];
    const t = (n: number): CapturedTransaction => ({
      txid: String(n), commitSequence: String(n * 0x100), commitTime: Date.now(), resume: { kind: 'postgres', lsn: `0/${(n * 0x100 + 0x80).toString(16)}` },
      events: [{ source: 'postgres', sequence: makeSequence(0, n * 0x100, 0), txid: String(n), commitSequence: String(n * 0x100), index: 0, op: Operation.Insert,
        schema: 'public', table: 't', key: ['id'], before: null, after: { id: n }, columns: cols, commitTime: Date.now() }],
    });
    try {
      expect(await feed.append(t(1), { countInto: counter })).toBe(1);
      expect(await feed.appendMany([t(2), t(3)], { countInto: counter })).toBe(2);
      await waitFor(async () => Number(await cluster.get(counter) ?? 0), (n) => n === 3, 5000);
    } finally {
      await feed.destroy().catch(() => undefined);
      await feed.close();
      await cluster.del(counter);
    }
  });

  it('connects through the cluster seeds only', () => {
    expect(gw.config.redisClusterNodes?.length).toBe(3);
    expect((gw.app.redis as unknown as Cluster).isCluster).toBe(true);
    expect(cluster.nodes('master')).toHaveLength(3);
  });

  it('computes the same key slots as the server', async () => {
    const keys = ['foo', 'tributary:node:5b0c', `${gw.config.queuePrefix}:feed:{orders}:stream`, '{tributary}:tasks:id', 'a{}{b}', 'a{{b}}c', 'ключ{é}', ''];
    for (const key of keys) expect(keySlot(key), key).toBe(Number(await cluster.call('CLUSTER', 'KEYSLOT', key)));
  });

  it('lists both processes in `nodes` although their heartbeat keys hash to different slots', async () => {
    const ids = [gw.app.services.nodes.id, worker!.services.nodes.id];
    expect(keySlot(`${gw.config.queuePrefix}:node:${ids[0]}`)).not.toBe(keySlot(`${gw.config.queuePrefix}:node:${ids[1]}`));
    const r = await gql(gw.url, '{ nodes(first: 10) { totalCount edges { node { id role } } } }');
    expect(r.body.errors).toBeUndefined();
    const nodes = r.body.data.nodes.edges.map((e: { node: { id: string; role: string } }) => e.node);
    expect(nodes).toEqual(expect.arrayContaining([{ id: ids[0], role: 'start' }, { id: ids[1], role: 'worker' }]));
  });

  it('runs a noop task through BullMQ (hash-tagged prefix) and streams its events over graphql-ws', async () => {
    const r = await gql(gw.url, 'mutation { runNoop(steps: 3, stepMs: 100, message: "cluster") { taskId } }');
    expect(r.body.errors).toBeUndefined();
    const client = wsClient(gw);
    try {
      const events = await collect<{ taskEvents: { state: string; result: { message: string } | null; nodeId: string } }>(
        client, 'subscription($t: String!) { taskEvents(taskId: $t) { state result nodeId } }', { t: r.body.data.runNoop.taskId },
        (v) => v.some((e) => e.taskEvents.state === 'completed'));
      const last = events.at(-1)!.taskEvents;
      expect(last.state).toBe('completed');
      expect(last.result?.message).toBe('cluster');
    } finally {
      await client.dispose();
    }
    const queueKeys = await cluster.nodes('master').find((n) => `${n.options.host}:${n.options.port}` === owner(`${bullPrefix(gw.config.queuePrefix)}:tasks:id`))!
      .keys(`${bullPrefix(gw.config.queuePrefix)}:tasks:*`);
    expect(queueKeys.length).toBeGreaterThan(0);
  });

  it('captures a PostgreSQL SUBSCRIBE job into a feed on another master, read by query, subscription and long poll', async () => {
    const prefix = gw.config.queuePrefix;
    const queueOwner = owner(`${bullPrefix(prefix)}:tasks:id`);
    let feed = uniq('rcfeed');
    while (owner(feedKeys(prefix, feed).stream) === queueOwner) feed = uniq('rcfeed');

    src = await pgDatabase(inject('pgUrl'), uniq('rc_pg'));
    await src.query('CREATE TABLE events (id int primary key, note text, _change_selector text)');
    await subscribeJob(gw.url, feed, src, 'public');
    await untilCapturing(src, 'events', gw.url, feed, (n) => `INSERT INTO events (id, note, _change_selector) VALUES (${-n}, 'probe', 'probe')`);

    // Live over graphql-ws while rows are committed.
    const client = wsClient(gw);
    let live: Promise<{ changes: { sequence: string; newRow: { id: number } } }[]>;
    try {
      live = collect(client, 'subscription($f: String!) { changes(feed: $f, scopes: ["c"]) { sequence newRow } }', { f: feed }, (v) => v.length >= 50);
      await new Promise((r) => setTimeout(r, 300));
      for (let id = 1; id <= 50; id++) await src.query(`INSERT INTO events (id, note, _change_selector) VALUES ($1, 'row', 'c')`, [id]);
      const got = await live;
      expect(got.map((m) => m.changes.newRow.id)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    } finally {
      await client.dispose();
    }

    // The same changes through the `changes` query (MULTI on the feed's meta and stream: one slot).
    const q = await waitFor(() => gql(gw.url, 'query($f: String!) { changes(feed: $f, scopes: ["c"], limit: 1000) { changes { sequence newRow } lastSequence } }', { f: feed }),
      (r) => r.body.data?.changes.changes.length === 50, 30_000, 'changes query');
    const listed = q.body.data.changes.changes as { sequence: string; newRow: { id: number } }[];
    expect(listed.map((c) => c.newRow.id)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));

    // A long poll at the tail wakes when the next change arrives (blocking XREAD on the stream's own master).
    const t0 = Date.now();
    const poll = gql(gw.url, 'query($f: String!, $s: String) { changes(feed: $f, scopes: ["c"], since: $s, block: 20) { changes { newRow } } }', { f: feed, s: listed.at(-1)!.sequence });
    await new Promise((r) => setTimeout(r, 500));
    await src.query(`INSERT INTO events (id, note, _change_selector) VALUES (51, 'row', 'c')`);
    const woke = await poll;
    expect(woke.body.errors).toBeUndefined();
    expect(woke.body.data.changes.changes.map((c: { newRow: { id: number } }) => c.newRow.id)).toEqual([51]);
    expect(Date.now() - t0).toBeLessThan(10_000);

    // `feeds` SCANs every master for feed metas.
    const feeds = await gql(gw.url, '{ feeds { name jobName length } }');
    expect(feeds.body.errors).toBeUndefined();
    expect(feeds.body.data.feeds).toEqual(expect.arrayContaining([expect.objectContaining({ name: feed, jobName: feed })]));
    expect(feeds.body.data.feeds.find((f: { name: string }) => f.name === feed).length).toBeGreaterThanOrEqual(51);
  });

  it('wakes a tail waiter at once after CLIENT UNBLOCK, for streams on every master', async () => {
    // A waiter that has seen less than the blocking read restarts it with CLIENT UNBLOCK; sent to the
    // wrong node it is lost and the waiter wakes only when the 10 s slice ends.
    const seen = new Set<string>();
    for (let i = 0; seen.size < 3 && i < 100; i++) {
      const key = `${gw.config.queuePrefix}:feed:{unblock-${i}}:stream`;
      if (seen.has(owner(key))) continue;
      seen.add(owner(key));
      const first = (await gw.app.redis.xadd(key, '*', 'e', '1'))!;
      const watcher = new TailWatcher({ redis: gw.app.redis, key, sliceMs: 10_000 });
      try {
        const tail = watcher.wait(first, 15_000);
        await new Promise((r) => setTimeout(r, 300)); // blocking from `first` now
        const t0 = Date.now();
        expect(await watcher.wait('0-0', 15_000)).toBe(true);
        expect(Date.now() - t0, `wake for ${key} on ${owner(key)}`).toBeLessThan(2000);
        await gw.app.redis.xadd(key, '*', 'e', '2');
        expect(await tail).toBe(true);
      } finally {
        await watcher.close();
      }
    }
    expect(seen.size).toBe(3);
  });

  it('left keys on more than one master and no slot error (CROSSSLOT, MOVED, ASK) on any', async () => {
    const sizes = await Promise.all(masters.map((m) => m.dbsize()));
    expect(sizes.filter((n) => n > 0).length).toBeGreaterThanOrEqual(2);
    for (const m of masters) {
      // Expected on redis-server 7.0: ERR for ioredis's CLIENT SETINFO on connect (7.2+ knows it), NOSCRIPT
      // for a first EVALSHA, and XREADs ended by CLIENT UNBLOCK, which 7.0 counts as failed calls.
      const errors = [...(await m.info('errorstats')).matchAll(/errorstat_([A-Z]+):count=\d+/g)].map((x) => x[1]);
      expect(errors.filter((e) => e !== 'ERR' && e !== 'NOSCRIPT'), `errorstats of master ${m.options.port}`).toEqual([]);
      const failed = [...(await m.info('commandstats')).matchAll(/cmdstat_([a-z|]+):.*?rejected_calls=(\d+),failed_calls=(\d+)/g)]
        .filter((x) => x[2] !== '0' || x[3] !== '0').map((x) => x[1]);
      expect(failed.filter((c) => c !== 'xread' && c !== 'evalsha'), `commands with failed calls on master ${m.options.port}`).toEqual([]);
    }
  });
});
