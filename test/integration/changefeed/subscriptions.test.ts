/**
 * Issue 4: live change subscriptions over graphql-ws against real capture.
 * Replay-then-live with no gap or duplicate while rows keep arriving; a slow
 * subscriber is closed with SUBSCRIBER_TOO_SLOW while a fast one carries on;
 * and fan-out across two gateway instances sharing Redis and PostgreSQL.
 */
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { startTestGateway, type TestGateway } from '../../support/gateway.ts';
import { pgDatabase, uniq, waitFor, type DbHandle } from '../../support/databases.ts';
import { getChanges, sleep, subscribeJob, untilCapturing } from '../../support/changefeed.ts';
import { compareSequences } from '../../../src/replication/sequence.ts';

const SUB = `subscription($feed: String!, $scopes: [String!]!, $since: String) {
  changes(feed: $feed, scopes: $scopes, since: $since) { sequence operation table scope newRow }
}`;

interface Received { sequences: string[]; ids: number[]; errors: unknown[]; done: boolean }

function follow(client: Client, variables: Record<string, unknown>): Received & { stop(): void } {
  const r: Received = { sequences: [], ids: [], errors: [], done: false };
  const stop = client.subscribe<{ changes: { sequence: string; newRow: { id: number } } }>({ query: SUB, variables }, {
    next: (m) => {
      if (m.errors) r.errors.push(...m.errors);
      if (m.data) { r.sequences.push(m.data.changes.sequence); r.ids.push(m.data.changes.newRow.id); }
    },
    error: (e) => { r.errors.push(e); r.done = true; },
    complete: () => { r.done = true; },
  });
  return Object.assign(r, { stop });
}

const wsClient = (gw: TestGateway) => createClient({ url: gw.wsUrl, webSocketImpl: WebSocket, lazy: true, retryAttempts: 0 });

async function setup(gw: TestGateway, feed: string, extraCols = ''): Promise<DbHandle> {
  const src = await pgDatabase(inject('pgUrl'), uniq('sub_pg'));
  await src.query(`CREATE TABLE events (id int primary key, note text${extraCols}, _change_selector text)`);
  await subscribeJob(gw.url, feed, src, 'public');
  await untilCapturing(src, 'events', gw.url, feed, (n) => `INSERT INTO events (id, note, _change_selector) VALUES (${-n}, 'probe', 'probe')`);
  return src;
}

/** One writer, single-row transactions in id order: commit order = id order. */
async function writeRows(src: DbHandle, from: number, to: number, scope: string, pauseMs = 0): Promise<void> {
  for (let id = from; id <= to; id++) {
    await src.query(`INSERT INTO events (id, note, _change_selector) VALUES ($1, 'w', $2)`, [id, scope]);
    if (pauseMs) await sleep(pauseMs);
  }
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe('change subscriptions', () => {
  let gw: TestGateway; let src: DbHandle;
  const feed = uniq('subfeed');
  const clients: Client[] = [];
  beforeAll(async () => {
    gw = await startTestGateway();
    src = await setup(gw, feed);
  });
  afterAll(async () => {
    for (const c of clients) await c.dispose();
    await gw?.close(); await src?.close();
  });

  it('replays from since, then goes live with no gap and no duplicate while rows keep arriving', async () => {
    await writeRows(src, 1, 300, 's');
    await waitFor(() => getChanges(gw.url, `/feeds/${feed}/changes`, { scope: 's', limit: 1000 }), (r) => r.body.changes?.length === 300, 30_000, 'first 300 rows');
    // since = the 50th change: the replay starts at id 51.
    const since = (await getChanges(gw.url, `/feeds/${feed}/changes`, { scope: 's', limit: 50 })).body.changes[49].sequence;
    const writer = writeRows(src, 301, 900, 's', 2); // keeps committing across the replay/live switch
    await sleep(100);
    const client = wsClient(gw); clients.push(client);
    const got = follow(client, { feed, scopes: ['s'], since });
    const other = follow(client, { feed, scopes: ['t'] }); // another scope sees none of it
    await writer;
    await waitFor(async () => got.ids.length, (n) => n >= 850, 60_000, 'all rows delivered');
    await sleep(500);
    got.stop(); other.stop();
    expect(got.errors).toEqual([]);
    expect(got.ids).toEqual(range(51, 900));
    expect(new Set(got.sequences).size).toBe(got.sequences.length);
    expect(other.ids).toEqual([]);
  });

  it('disconnect, write more, reconnect with since: the client receives exactly the missed changes', async () => {
    const tail = (await getChanges(gw.url, `/feeds/${feed}/changes`, { scope: 'probe', limit: 100000 })).body.lastSequence;
    const first = wsClient(gw);
    const a = follow(first, { feed, scopes: ['rc'], since: tail });
    await writeRows(src, 5001, 5040, 'rc');
    await waitFor(async () => a.ids.length, (n) => n === 40, 30_000, 'first 40 live');
    await first.dispose(); // the socket closes: the server ends that subscription
    await waitFor(async () => gw.app.services.changes.subscribers, (n) => n === 0, 10_000, 'server-side subscription ended');
    const resumeFrom = a.sequences.at(-1)!;
    await writeRows(src, 5041, 5100, 'rc'); // missed while disconnected
    await waitFor(() => getChanges(gw.url, `/feeds/${feed}/changes`, { scope: 'rc', since: resumeFrom, limit: 1000 }), (r) => r.body.changes?.length === 60, 30_000, 'missed rows in the feed');
    const second = wsClient(gw); clients.push(second);
    const b = follow(second, { feed, scopes: ['rc'], since: resumeFrom });
    await waitFor(async () => b.ids.length, (n) => n >= 60, 30_000, 'missed rows replayed');
    await writeRows(src, 5101, 5110, 'rc'); // and live again
    await waitFor(async () => b.ids.length, (n) => n >= 70, 30_000, 'live rows');
    await sleep(300);
    b.stop();
    expect(a.errors).toEqual([]);
    expect(b.errors).toEqual([]);
    expect(a.ids).toEqual(range(5001, 5040));
    expect(b.ids).toEqual(range(5041, 5110));
    expect(b.sequences.every((s) => compareSequences(s, resumeFrom) > 0)).toBe(true);
    expect(new Set([...a.sequences, ...b.sequences]).size).toBe(110);
  });

  it('rejects a since older than retention and a missing feed up front', async () => {
    const client = wsClient(gw); clients.push(client);
    const missing = follow(client, { feed: 'no-such-feed', scopes: ['s'] });
    const bad = follow(client, { feed, scopes: ['s'], since: 'zz' });
    await waitFor(async () => missing.done && bad.done, (v) => v, 10_000, 'errors');
    expect(JSON.stringify(missing.errors)).toContain('NOT_FOUND');
    expect(JSON.stringify(bad.errors)).toContain('PARAMETER_INVALID');
  });
});

describe('a slow subscriber', () => {
  let gw: TestGateway; let src: DbHandle;
  const feed = uniq('slowfeed');
  beforeAll(async () => {
    gw = await startTestGateway({ subscriberBufferEvents: 200, subscriberStallSeconds: 1 } as never);
    src = await setup(gw, feed, ', pad text');
  });
  afterAll(async () => { await gw?.close(); await src?.close(); });

  it('is closed with SUBSCRIBER_TOO_SLOW while a fast one receives everything', async () => {
    const ROWS = 6000; // ~4 KB each: far more than the socket buffers of a client that stops reading
    const fastClient = wsClient(gw);
    const fast = follow(fastClient, { feed, scopes: ['f'] });
    // The slow one speaks graphql-ws by hand so its socket can stop reading.
    const slow = new WebSocket(gw.wsUrl, 'graphql-transport-ws');
    const frames: any[] = [];
    slow.on('message', (d) => frames.push(JSON.parse(String(d))));
    await new Promise((r) => slow.once('open', r));
    slow.send(JSON.stringify({ type: 'connection_init', payload: {} }));
    await waitFor(async () => frames.some((f) => f.type === 'connection_ack'), (v) => v, 10_000, 'ack');
    slow.send(JSON.stringify({ id: 'slow', type: 'subscribe', payload: { query: SUB, variables: { feed, scopes: ['f'] } } }));
    await sleep(300);
    slow.pause();

    await src.query(`INSERT INTO events (id, note, pad, _change_selector) SELECT g, 'big', repeat(md5(g::text), 128), 'f' FROM generate_series(1, ${ROWS}) g`);
    await waitFor(async () => fast.ids.length, (n) => n === ROWS, 120_000, 'fast subscriber got every row');
    expect(fast.errors).toEqual([]);
    expect(fast.ids).toEqual(range(1, ROWS));

    await sleep(2500); // > stall time: the slow subscriber's buffer stayed full
    slow.resume();
    await waitFor(async () => frames.find((f) => f.id === 'slow' && f.type === 'error'), (v) => !!v, 60_000, 'slow subscriber error');
    const err = frames.find((f) => f.id === 'slow' && f.type === 'error');
    const delivered = frames.filter((f) => f.id === 'slow' && f.type === 'next').length;
    console.log(`slow subscriber: ${delivered} changes delivered before close; error: ${err.payload[0].message}`);
    expect(err.payload[0].extensions.code).toBe('SUBSCRIBER_TOO_SLOW');
    expect(err.payload[0].message).toMatch(/too slow/);
    expect(delivered).toBeLessThan(ROWS);
    // The error names the last change this subscriber was given: resuming from it loses nothing.
    const lastNext = frames.filter((f) => f.id === 'slow' && f.type === 'next').at(-1);
    expect(err.payload[0].message).toContain(`since="${lastNext.payload.data.changes.sequence}"`);
    slow.close();
    await fastClient.dispose();
  });
});

describe('fan-out across two gateway instances', () => {
  let gw1: TestGateway; let gw2: TestGateway; let src: DbHandle;
  const feed = uniq('fanfeed');
  beforeAll(async () => {
    gw1 = await startTestGateway();
    // A second, gateway-only instance on the same metadata database, Redis and prefix.
    gw2 = await startTestGateway({ databaseUrl: gw1.config.databaseUrl, queuePrefix: gw1.config.queuePrefix, secretKey: gw1.config.secretKey } as never, { worker: false });
    src = await setup(gw1, feed);
  });
  afterAll(async () => { await gw2?.close(); await gw1?.close(); await src?.close(); });

  it('subscribers on each gateway receive the same changes', async () => {
    const c1 = wsClient(gw1); const c2 = wsClient(gw2);
    const tail = (await getChanges(gw1.url, `/feeds/${feed}/changes`, { scope: 'probe', limit: 100000 })).body.lastSequence;
    const a = follow(c1, { feed, scopes: ['x'], since: tail });
    const b = follow(c2, { feed, scopes: ['x'], since: tail });
    await sleep(300);
    await writeRows(src, 1, 100, 'x', 5);
    await waitFor(async () => [a.ids.length, b.ids.length], ([x, y]) => x === 100 && y === 100, 60_000, 'both gateways');
    expect(a.ids).toEqual(range(1, 100));
    expect(b.sequences).toEqual(a.sequences);
    // The long poll on the second gateway sees them too.
    const r = await getChanges(gw2.url, `/feeds/${feed}/changes`, { scope: 'x', since: tail, limit: 1000 });
    expect(r.body.changes.map((c: any) => c.sequence)).toEqual(a.sequences);
    a.stop(); b.stop();
    await c1.dispose(); await c2.dispose();
  });
});
