/**
 * Issue 4: the changeserver (Transicator) API over real capture. A SUBSCRIBE
 * job on a private PostgreSQL database (and one on MariaDB) fills a feed;
 * the seed's documented parameters and ChangeList shape are checked on the
 * gateway port and on the legacy CHANGESERVER_PORT listener.
 */
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import protobuf from 'protobufjs';
import pg from 'pg';
import { readFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import { gql, startTestGateway, type TestGateway } from '../../support/gateway.ts';
import { mariaDatabase, pgDatabase, uniq, waitFor, type DbHandle } from '../../support/databases.ts';
import { getChanges, sleep, subscribeJob, untilCapturing } from '../../support/changefeed.ts';
import { openFeed } from '../../../src/replication/feed/feed-registry.ts';
import { compareSequences } from '../../../src/replication/sequence.ts';

const FEED = 'csfeed';
const PROTO = 'application/transicator+protobuf';
const protoRoot = () => protobuf.parse(readFileSync(new URL('../../../src/rest-compat/changeserver/transicator.proto', import.meta.url), 'utf8'), { keepCase: true }).root;

/** timestamptz and timestamp of some rows as PostgreSQL prints them with TimeZone UTC (a session of its own). */
async function utcText(db: DbHandle, ids: number[]): Promise<[string, string][]> {
  const client = new pg.Client({ host: db.host, port: db.port, user: db.user, database: db.database });
  await client.connect();
  try {
    await client.query(`SET TimeZone = 'UTC'`);
    const r = await client.query(`SELECT at::text AS at, ts::text AS ts FROM orders WHERE id = ANY($1) ORDER BY id`, [ids]);
    return r.rows.map((x: { at: string; ts: string }) => [x.at, x.ts]);
  } finally {
    await client.end();
  }
}

describe('changeserver on a PostgreSQL subscribe job', () => {
  let gw: TestGateway; let src: DbHandle; let legacy: string;
  const ins = (id: number, scope: string | null, note = `n${id}`) =>
    src.query(`INSERT INTO orders (id, note, amount, flag, data, at, _change_selector) VALUES ($1, $2, $3, true, '\\x0102ff', '2024-05-06 07:08:09.123456+00', $4)`, [id, note, id * 1.5, scope]);

  beforeAll(async () => {
    gw = await startTestGateway({ changeserverFeed: FEED, changeserverPort: 0 } as never, { worker: true });
    legacy = `http://127.0.0.1:${gw.app.changeserverAddress()!.port}`;
    src = await pgDatabase(inject('pgUrl'), uniq('cs_pg'));
    await src.query(`CREATE TABLE orders (id int primary key, note text, amount numeric(10,2), flag bool, data bytea, at timestamptz, _change_selector text, ts timestamp, big int8)`);
    await src.query(`ALTER TABLE orders REPLICA IDENTITY FULL`);
    await subscribeJob(gw.url, FEED, src, 'public');
    await untilCapturing(src, 'orders', gw.url, FEED, (n) => `INSERT INTO orders (id, note, _change_selector) VALUES (${-n}, 'probe', 'probe')`);
    for (const [id, scope] of [[1, 'a'], [2, 'b'], [3, 'a'], [4, null], [5, 'b'], [6, 'a']] as const) await ins(id, scope);
    await waitFor(() => getChanges(gw.url, '/changes', { scope: ['a', 'b'] }), (r) => r.body.changes?.length === 5, 30_000, 'five scoped changes');
  });
  afterAll(async () => { await gw?.close(); await src?.close(); });

  it('answers the ChangeList model with the seed\'s field names and Value objects', async () => {
    const r = await getChanges(gw.url, '/changes', { scope: 'a' });
    expect(r.status).toBe(200);
    expect(r.type).toContain('application/json');
    expect(Object.keys(r.body).sort()).toEqual(['changes', 'firstSequence', 'lastSequence']);
    expect(r.body.changes.map((c: any) => c.newRow.id.value)).toEqual(['1', '3', '6']);
    const c = r.body.changes[0];
    for (const k of ['operation', 'table', 'sequence', 'commitSequence', 'changeSequence', 'commitIndex', 'txid', 'newRow']) expect(c).toHaveProperty(k);
    expect(c.operation).toBe(1);
    expect(c.table).toBe('public.orders');
    expect(c.sequence).toMatch(/^[0-9a-f]+\.[0-9a-f]+\.[0-9a-f]+$/);
    expect(typeof c.commitSequence).toBe('number');
    expect(typeof c.txid).toBe('number');
    expect(c.oldRow).toBeUndefined();
    expect(c.newRow.id).toEqual({ value: '1', type: 23 });
    expect(c.newRow.note).toEqual({ value: 'n1', type: 25 });
    expect(c.newRow.amount).toEqual({ value: '1.50', type: 1700 });
    expect(c.newRow.flag).toEqual({ value: 'true', type: 16 });
    expect(c.newRow.data).toEqual({ value: '\\x0102ff', type: 17 });
    expect(c.newRow.at.type).toBe(1184);
    expect(c.newRow._change_selector).toEqual({ value: 'a', type: 25 });
    // Sequences sort; firstSequence <= every change <= lastSequence.
    expect(compareSequences(r.body.firstSequence, c.sequence)).toBeLessThanOrEqual(0);
    expect(compareSequences(r.body.changes[2].sequence, r.body.lastSequence)).toBeLessThanOrEqual(0);
  });

  it('ORs several scopes in sequence order; selector is an alias; a scope is required', async () => {
    const both = await getChanges(gw.url, '/changes', { scope: ['b', 'a'] });
    expect(both.body.changes.map((c: any) => c.newRow.id.value)).toEqual(['1', '2', '3', '5', '6']);
    const seqs = both.body.changes.map((c: any) => c.sequence);
    expect([...seqs].sort(compareSequences)).toEqual(seqs);
    const alias = await getChanges(gw.url, '/changes', { selector: 'a', scope: 'b' });
    expect(alias.body.changes.map((c: any) => c.newRow.id.value)).toEqual(['1', '2', '3', '5', '6']);
    const onlySelector = await getChanges(gw.url, '/changes', { selector: 'b' });
    expect(onlySelector.body.changes.map((c: any) => c.newRow.id.value)).toEqual(['2', '5']);
    const none = await getChanges(gw.url, '/changes', {});
    expect(none.status).toBe(400);
    expect(none.body).toEqual({ code: 'MISSING_PARAMETER', error: 'A required parameter is missing', description: 'scope' });
    const bad = await getChanges(gw.url, '/changes', { scope: 'Not Valid!' });
    expect(bad.status).toBe(400);
    expect(bad.body.code).toBe('PARAMETER_INVALID');
  });

  it('since is exclusive; limit defaults, caps and reports an intermediate lastSequence', async () => {
    const all = (await getChanges(gw.url, '/changes', { scope: ['a', 'b'] })).body.changes;
    const after = await getChanges(gw.url, '/changes', { scope: ['a', 'b'], since: all[1].sequence });
    expect(after.body.changes.map((c: any) => c.sequence)).toEqual(all.slice(2).map((c: any) => c.sequence));
    const two = await getChanges(gw.url, '/changes', { scope: ['a', 'b'], limit: 2 });
    expect(two.body.changes).toHaveLength(2);
    expect(two.body.lastSequence).toBe(two.body.changes[1].sequence);
    expect((await getChanges(gw.url, '/changes', { scope: 'a', limit: 100000 })).status).toBe(200);
    const over = await getChanges(gw.url, '/changes', { scope: 'a', limit: 100001 });
    expect(over.status).toBe(400);
    expect(over.body.code).toBe('PARAMETER_INVALID');
    expect(over.body.error).toBe('A parameter has an invalid value');
    expect(over.body.description).toContain('100000');
    expect((await getChanges(gw.url, '/changes', { scope: 'a', limit: 'x' })).body.code).toBe('PARAMETER_INVALID');
    expect((await getChanges(gw.url, '/changes', { scope: 'a', since: 'junk' })).body.code).toBe('PARAMETER_INVALID');
    // Default limit 100: 120 more rows in scope c, one transaction.
    await src.query(`INSERT INTO orders (id, note, _change_selector) SELECT g, 'bulk', 'c' FROM generate_series(1000, 1119) g`);
    await waitFor(() => getChanges(gw.url, '/changes', { scope: 'c', limit: 1000 }), (r) => r.body.changes?.length === 120, 30_000, 'bulk rows');
    const dflt = await getChanges(gw.url, '/changes', { scope: 'c' });
    expect(dflt.body.changes).toHaveLength(100);
    expect(new Set(dflt.body.changes.map((c: any) => c.commitSequence)).size).toBe(1);
    expect(dflt.body.changes.map((c: any) => c.commitIndex)).toEqual([...Array(100).keys()]);
  });

  it('carries updates and deletes with their old rows', async () => {
    const before = await getChanges(gw.url, '/changes', { scope: 'a', limit: 1000 });
    await src.query(`UPDATE orders SET note = 'changed' WHERE id = 1`);
    await src.query(`DELETE FROM orders WHERE id = 3`);
    const r = await waitFor(() => getChanges(gw.url, '/changes', { scope: 'a', since: before.body.lastSequence }), (x) => x.body.changes?.length === 2, 30_000, 'update and delete');
    const [u, d] = r.body.changes;
    expect(u.operation).toBe(2);
    expect(u.newRow.note.value).toBe('changed');
    expect(u.oldRow.note.value).toBe('n1');
    expect(d.operation).toBe(3);
    expect(d.newRow).toBeUndefined();
    expect(d.oldRow.id).toEqual({ value: '3', type: 23 });
  });

  it('long poll: wakes within about a second of an insert, and answers empty after `block` seconds', async () => {
    const tail = (await getChanges(gw.url, '/changes', { scope: ['a', 'b', 'c', 'probe'], limit: 100000 })).body.lastSequence;
    const idle = await getChanges(gw.url, '/changes', { scope: 'zz', since: tail, block: 2 });
    expect(idle.status).toBe(200);
    expect(idle.body.changes).toEqual([]);
    expect(idle.ms).toBeGreaterThanOrEqual(1900);
    expect(idle.ms).toBeLessThan(3500);
    // Issue 14 item 16: Transicator treated a negative block as 0 (answer at once), not 400.
    const negative = await getChanges(gw.url, '/changes', { scope: 'zz', since: tail, block: -1 });
    expect(negative.status).toBe(200);
    expect(negative.body.changes).toEqual([]);
    expect(negative.ms).toBeLessThan(1000);
    const latencies: number[] = [];
    let since = tail;
    for (let i = 0; i < 3; i++) {
      const pending = getChanges(gw.url, '/changes', { scope: 'lp', since, block: 10 });
      await sleep(300);
      // A change out of scope does not answer the poll.
      await src.query(`INSERT INTO orders (id, note, _change_selector) VALUES (${2000 + i * 2}, 'other', 'other')`);
      await sleep(300);
      const t0 = Date.now();
      await src.query(`INSERT INTO orders (id, note, _change_selector) VALUES (${2001 + i * 2}, 'poll', 'lp')`);
      const r = await pending;
      latencies.push(Date.now() - t0);
      expect(r.body.changes.map((c: any) => c.newRow.id.value)).toEqual([String(2001 + i * 2)]);
      since = r.body.changes[0].sequence;
    }
    console.log(`long-poll wake-up after insert (ms): ${latencies.join(', ')}`);
    for (const ms of latencies) expect(ms).toBeLessThan(1500);
  });

  it('snapshot hides changes visible in it', async () => {
    const tail = (await getChanges(gw.url, '/changes', { scope: 'snap', limit: 10 })).body.lastSequence;
    await src.query(`INSERT INTO orders (id, note, _change_selector) VALUES (3001, 'before', 'snap')`);
    const [{ s }] = await src.query(`SELECT txid_current_snapshot()::text AS s`);
    await src.query(`INSERT INTO orders (id, note, _change_selector) VALUES (3002, 'after', 'snap')`);
    await waitFor(() => getChanges(gw.url, '/changes', { scope: 'snap', since: tail }), (r) => r.body.changes?.length === 2, 30_000, 'snap rows');
    const r = await getChanges(gw.url, '/changes', { scope: 'snap', since: tail, snapshot: s });
    expect(r.status).toBe(200);
    expect(r.body.changes.map((c: any) => c.newRow.id.value)).toEqual(['3002']);
    expect((await getChanges(gw.url, '/changes', { scope: 'snap', snapshot: '5:3:' })).body.code).toBe('PARAMETER_INVALID');
  });

  it('protobuf: Accept application/transicator+protobuf decodes to the same list', async () => {
    const json = await getChanges(gw.url, '/changes', { scope: ['a', 'b'] });
    const pb = await getChanges(gw.url, '/changes', { scope: ['a', 'b'] }, { accept: PROTO });
    expect(pb.status).toBe(200);
    expect(pb.type).toBe(PROTO);
    const root = protobuf.parse(readFileSync(new URL('../../../src/rest-compat/changeserver/transicator.proto', import.meta.url), 'utf8'), { keepCase: true }).root;
    const list = root.lookupType('common.ChangeListPb').toObject(root.lookupType('common.ChangeListPb').decode(pb.body as Uint8Array), { longs: String, bytes: String, oneofs: true, arrays: true }) as any;
    expect(list.firstSequence).toBe(json.body.firstSequence);
    expect(list.lastSequence).toBe(json.body.lastSequence);
    expect(list.changes).toHaveLength(json.body.changes.length);
    for (const [i, c] of list.changes.entries()) {
      const j = json.body.changes[i];
      expect(c.operation).toBe(j.operation);
      expect(c.table).toBe(j.table);
      expect(c.sequence).toBe(j.sequence);
      expect(c.commitSequence).toBe(String(j.commitSequence));
      expect(c.commitIndex ?? 0).toBe(j.commitIndex);
      expect(c.transactionIDEpoch).toBe(String(j.txid));
      expect(c.newColumns.length > 0).toBe(!!j.newRow);
      expect(c.oldColumns.length > 0).toBe(!!j.oldRow);
      if (!j.newRow) continue;
      const cols = Object.fromEntries(c.newColumns.map((col: any) => [col.name, col]));
      expect(cols.id.type).toBe(23);
      expect(Number(cols.id.value.int)).toBe(Number(j.newRow.id.value));
      expect(cols._change_selector.value.string).toBe(j.newRow._change_selector.value);
      if (j.newRow.flag?.value === 'true') expect(cols.flag.value.bool).toBe(true);
      if (j.newRow.data?.value) expect(Buffer.from(cols.data.value.bytes, 'base64').toString('hex')).toBe('0102ff');
    }
    const ts = list.changes.map((c: any) => c.newColumns.find((x: any) => x.name === 'at')).find((x: any) => x?.value)!;
    // 2024-05-06 07:08:09.123456 UTC in microseconds since 2000-01-01.
    expect(ts.value.timestamp).toBe(String(BigInt(Date.UTC(2024, 4, 6, 7, 8, 9) - Date.UTC(2000, 0, 1)) * 1000n + 123456n));
    expect((await getChanges(gw.url, '/changes', { scope: 'a' }, { accept: 'text/html' })).status).toBe(415);
    expect((await getChanges(gw.url, '/changes', { scope: 'a' }, { accept: 'text/html, */*;q=0.1' })).type).toContain('json');
  });

  it('JSON timestamps are PostgreSQL\'s text (UTC offset, fraction without trailing zeros), as the server prints them', async () => {
    const rows: [number, string, string][] = [
      [4001, '2024-01-02 03:04:05+00', '2024-01-02 03:04:05.123'],
      [4002, '2024-01-02 05:04:05.5+02', '2024-01-02 03:04:05'],
      [4003, '2024-01-02 03:04:05.123456+00', '2024-01-02 03:04:05.000001'],
      [4004, 'infinity', '-infinity'],
    ];
    for (const [id, at, ts] of rows) await src.query(`INSERT INTO orders (id, at, ts, _change_selector) VALUES ($1, $2, $3, 'ts')`, [id, at, ts]);
    const r = await waitFor(() => getChanges(gw.url, '/changes', { scope: 'ts' }), (x) => x.body.changes?.length === rows.length, 30_000, 'timestamp rows');
    expect(r.body.changes.map((c: any) => [c.newRow.at, c.newRow.ts])).toEqual([
      [{ value: '2024-01-02 03:04:05+00', type: 1184 }, { value: '2024-01-02 03:04:05.123', type: 1114 }],
      [{ value: '2024-01-02 03:04:05.5+00', type: 1184 }, { value: '2024-01-02 03:04:05', type: 1114 }],
      [{ value: '2024-01-02 03:04:05.123456+00', type: 1184 }, { value: '2024-01-02 03:04:05.000001', type: 1114 }],
      [{ value: 'infinity', type: 1184 }, { value: '-infinity', type: 1114 }],
    ]);
    // The same text PostgreSQL itself prints with TimeZone UTC.
    expect(r.body.changes.map((c: any) => [c.newRow.at.value, c.newRow.ts.value])).toEqual(await utcText(src, rows.map(([id]) => id)));
  });

  it('protobuf: bigints beyond 2^53 decode exactly from ValuePb.int', async () => {
    const values = ['9007199254740993', '9223372036854775807', '-9223372036854775808', '-9007199254740993'];
    for (const [i, v] of values.entries()) await src.query(`INSERT INTO orders (id, big, _change_selector) VALUES ($1, $2, 'big')`, [5001 + i, v]);
    const json = await waitFor(() => getChanges(gw.url, '/changes', { scope: 'big' }), (x) => x.body.changes?.length === values.length, 30_000, 'bigint rows');
    expect(json.body.changes.map((c: any) => c.newRow.big)).toEqual(values.map((value) => ({ value, type: 20 })));
    const pb = await getChanges(gw.url, '/changes', { scope: 'big' }, { accept: PROTO });
    const type = protoRoot().lookupType('common.ChangeListPb');
    const list = type.toObject(type.decode(pb.body as Uint8Array), { longs: String, oneofs: true, arrays: true }) as any;
    expect(list.changes.map((c: any) => c.newColumns.find((x: any) => x.name === 'big').value)).toEqual(values.map((v) => ({ int: v, value: 'int' })));
  });

  it('serves any feed under /feeds/{name}/changes; an unknown feed is 404 in the Error shape', async () => {
    const a = await getChanges(gw.url, `/feeds/${FEED}/changes`, { scope: 'a' });
    const b = await getChanges(gw.url, '/changes', { scope: 'a' });
    expect(a.body).toEqual(b.body);
    const missing = await getChanges(gw.url, '/feeds/no-such-feed/changes', { scope: 'a' });
    expect(missing.status).toBe(404);
    expect(missing.body.code).toBe('NOT_FOUND');
    expect(missing.body.error).toBeTypeOf('string');
  });

  it('GraphQL: the changes query and feeds', async () => {
    const r = await gql(gw.url, `query($f: String!) { changes(feed: $f, scopes: ["a", "b"], limit: 3) { firstSequence lastSequence changes { sequence operation op schema table scope newRow columnTypes { name kind pgType } commitIndex txid } } feeds { name firstSequence lastSequence length jobName } }`, { f: FEED });
    expect(r.body.errors).toBeUndefined();
    const list = r.body.data.changes;
    expect(list.changes).toHaveLength(3);
    expect(list.changes[0]).toMatchObject({ operation: 1, op: 'insert', schema: 'public', table: 'orders', scope: 'a', newRow: { id: 1 } });
    expect(list.changes[0].columnTypes.find((c: any) => c.name === 'amount')).toEqual({ name: 'amount', kind: 'decimal', pgType: 1700 });
    const feed = r.body.data.feeds.find((f: any) => f.name === FEED);
    expect(feed.jobName).toBe(FEED);
    expect(feed.length).toBeGreaterThan(100);
    const tables = async (t: string[]) => (await gql(gw.url, `query($t: [String!]) { changes(feed: "${FEED}", scopes: ["a"], tables: $t) { changes { sequence } } }`, { t })).body.data.changes.changes.length;
    expect(await tables(['orders'])).toBeGreaterThan(0);
    expect(await tables(['public.orders'])).toBeGreaterThan(0);
    expect(await tables(['other.orders', 'nothing'])).toBe(0);
    const bad = await gql(gw.url, `{ changes(feed: "${FEED}", scopes: ["a"], limit: 100001) { lastSequence } }`);
    expect(bad.body.errors?.[0]?.extensions?.code).toBe('PARAMETER_INVALID');
  });

  it('legacy listener: health, ready, markdown; the gateway\'s own /ready is unaffected', async () => {
    expect((await fetch(`${legacy}/health`)).status).toBe(200);
    expect((await fetch(`${legacy}/ready`)).status).toBe(200);
    const viaLegacy = await getChanges(legacy, '/changes', { scope: 'a' });
    expect(viaLegacy.status).toBe(200);
    expect(viaLegacy.body.changes.length).toBeGreaterThan(0);
    // Issue 14 item 16: a known management path with another method is 405, not 404.
    const post = await fetch(`${legacy}/markdown`, { method: 'POST' });
    expect(post.status).toBe(405);
    expect(((await post.json()) as { code: string }).code).toBe('METHOD_NOT_ALLOWED');
    expect((await fetch(`${legacy}/ready`)).status).toBe(200);
    expect((await fetch(`${legacy}/markdown`)).status).toBe(200);
    const ready = await fetch(`${legacy}/ready`, { headers: { accept: 'application/json' } });
    expect(ready.status).toBe(503);
    // Issue 14 item 15: goscaffold's JSON status body carries the state.
    expect(await ready.json()).toEqual({ status: 'NotReady', reason: 'Marked down' });
    expect((await getChanges(legacy, '/changes', { scope: 'a' })).status).toBe(503);
    expect((await fetch(`${legacy}/health`)).status).toBe(200);
    expect((await fetch(`${gw.url}/ready`)).status).toBe(200);
    expect((await getChanges(gw.url, '/changes', { scope: 'a' })).status).toBe(200);
  });

  it('SNAPSHOT_TOO_OLD once retention dropped changes after `since`', async () => {
    const first = (await getChanges(gw.url, '/changes', { scope: ['a', 'b'], limit: 1 })).body.changes[0].sequence;
    const redis = new Redis(inject('redisUrl'));
    const feed = openFeed(redis, FEED, { prefix: gw.config.queuePrefix });
    try {
      expect(await feed.trim({ maxChanges: 5 })).toBeGreaterThan(0);
    } finally {
      await feed.close();
      redis.disconnect();
    }
    const r = await getChanges(gw.url, '/changes', { scope: 'a', since: first });
    expect(r.status).toBe(400);
    expect(r.body.code).toBe('SNAPSHOT_TOO_OLD');
    expect(r.body.error).toBe('The client is operating on an old snapshot');
    const fresh = await getChanges(gw.url, '/changes', { scope: ['a', 'b', 'c', 'lp', 'snap', 'other'] });
    expect(fresh.status).toBe(200);
    expect(fresh.body.changes.length).toBeLessThanOrEqual(5);
    // Issue 14 item 12: since=0.0.0 means "from the start" in Transicator, never too old.
    const zero = await getChanges(gw.url, '/changes', { scope: ['a', 'b', 'c', 'lp', 'snap', 'other'], since: '0.0.0' });
    expect(zero.status).toBe(200);
    expect(zero.body.changes.map((c: any) => c.sequence)).toEqual(fresh.body.changes.map((c: any) => c.sequence));
  });
});

describe('changeserver on a MariaDB subscribe job', () => {
  let gw: TestGateway; let src: DbHandle;
  const feed = uniq('csmaria');
  beforeAll(async () => {
    gw = await startTestGateway();
    src = await mariaDatabase(inject('mariaUrl'), uniq('cs_maria'));
    await src.query(`CREATE TABLE items (id int primary key, name varchar(40), code char(3), price decimal(10,2), qty smallint unsigned, big bigint unsigned, ratio double, made datetime(3), blob_ varbinary(8), _change_selector varchar(32), stamp timestamp(6) NULL, sbig bigint)`);
    await subscribeJob(gw.url, feed, src, src.database);
    await untilCapturing(src, 'items', gw.url, feed, (n) => `INSERT INTO items (id, name, _change_selector) VALUES (${-n}, 'probe', 'probe')`);
  });
  afterAll(async () => { await gw?.close(); await src?.close(); });

  it('maps MariaDB columns to the closest PostgreSQL type OIDs', async () => {
    await src.query(`INSERT INTO items VALUES (1, 'one', 'abc', 12.34, 65535, 18446744073709551615, 0.5, '2024-01-02 03:04:05.678', x'00ff', 'm1', NULL, NULL)`);
    await src.query(`INSERT INTO items (id, name, _change_selector) VALUES (2, 'two', 'm2')`);
    const r = await waitFor(() => getChanges(gw.url, `/feeds/${feed}/changes`, { scope: ['m1', 'm2'] }), (x) => x.body.changes?.length === 2, 30_000, 'maria rows');
    const [c, c2] = r.body.changes;
    expect(c.table).toBe(`${src.database}.items`);
    expect(c.operation).toBe(1);
    const row = c.newRow;
    expect(row.id).toEqual({ value: '1', type: 23 });
    expect(row.name).toEqual({ value: 'one', type: 1043 });
    expect(row.code).toEqual({ value: 'abc', type: 1042 });
    expect(row.price).toEqual({ value: '12.34', type: 1700 });
    expect(row.qty).toEqual({ value: '65535', type: 23 });
    expect(row.big).toEqual({ value: '18446744073709551615', type: 1700 });
    expect(row.ratio).toEqual({ value: '0.5', type: 701 });
    expect(row.made.type).toBe(1114);
    expect(row.made.value).toBe('2024-01-02 03:04:05.678');
    expect(row.blob_).toEqual({ value: '\\x00ff', type: 17 });
    expect(c2.newRow.price).toEqual({ value: null, type: 1700 });
    expect(compareSequences(c.sequence, c2.sequence)).toBeLessThan(0);
    const pb = await getChanges(gw.url, `/feeds/${feed}/changes`, { scope: 'm1' }, { accept: PROTO });
    expect(pb.status).toBe(200);
  });

  it('DATETIME and TIMESTAMP in PostgreSQL\'s text form: UTC offset on TIMESTAMP, fraction without trailing zeros', async () => {
    await src.query(`SET time_zone = '+00:00'; INSERT INTO items (id, made, stamp, _change_selector) VALUES
      (11, '2024-01-02 03:04:05.678', '2024-01-02 03:04:05.120000', 'dt'), (12, '2024-01-02 03:04:05.100', '2024-01-02 03:04:05.000001', 'dt'),
      (13, '2024-01-02 03:04:05.000', '2024-01-02 03:04:05', 'dt')`);
    await src.query(`SET time_zone = '+02:00'; INSERT INTO items (id, stamp, _change_selector) VALUES (14, '2024-01-02 05:04:05.5', 'dt')`);
    const r = await waitFor(() => getChanges(gw.url, `/feeds/${feed}/changes`, { scope: 'dt' }), (x) => x.body.changes?.length === 4, 30_000, 'maria timestamp rows');
    expect(r.body.changes.map((c: any) => [c.newRow.made, c.newRow.stamp])).toEqual([
      [{ value: '2024-01-02 03:04:05.678', type: 1114 }, { value: '2024-01-02 03:04:05.12+00', type: 1184 }],
      [{ value: '2024-01-02 03:04:05.1', type: 1114 }, { value: '2024-01-02 03:04:05.000001+00', type: 1184 }],
      [{ value: '2024-01-02 03:04:05', type: 1114 }, { value: '2024-01-02 03:04:05+00', type: 1184 }],
      [{ value: null, type: 1114 }, { value: '2024-01-02 03:04:05.5+00', type: 1184 }],
    ]);
  });

  it('protobuf: BIGINT beyond 2^53 in ValuePb.int, BIGINT UNSIGNED above int64 in ValuePb.uint, exactly', async () => {
    await src.query(`INSERT INTO items (id, big, sbig, _change_selector) VALUES (21, 18446744073709551615, 9007199254740993, 'bg'), (22, 9223372036854775807, -9223372036854775808, 'bg')`);
    const json = await waitFor(() => getChanges(gw.url, `/feeds/${feed}/changes`, { scope: 'bg' }), (x) => x.body.changes?.length === 2, 30_000, 'maria bigint rows');
    expect(json.body.changes.map((c: any) => [c.newRow.big.value, c.newRow.sbig.value])).toEqual([['18446744073709551615', '9007199254740993'], ['9223372036854775807', '-9223372036854775808']]);
    const pb = await getChanges(gw.url, `/feeds/${feed}/changes`, { scope: 'bg' }, { accept: PROTO });
    const type = protoRoot().lookupType('common.ChangeListPb');
    const list = type.toObject(type.decode(pb.body as Uint8Array), { longs: String, oneofs: true, arrays: true }) as any;
    const value = (c: any, name: string) => c.newColumns.find((x: any) => x.name === name).value;
    expect(list.changes.map((c: any) => [value(c, 'big'), value(c, 'sbig')])).toEqual([
      [{ uint: '18446744073709551615', value: 'uint' }, { int: '9007199254740993', value: 'int' }],
      [{ int: '9223372036854775807', value: 'int' }, { int: '-9223372036854775808', value: 'int' }],
    ]);
  });
});

describe('CHANGESERVER_SOURCE_URL', () => {
  it('creates a SUBSCRIBE job for the configured feed at start, once', async () => {
    const src = await pgDatabase(inject('pgUrl'), uniq('cs_auto'));
    await src.query(`CREATE TABLE t (id int primary key, _change_selector text)`);
    const u = new URL(inject('pgUrl'));
    u.pathname = `/${src.database}`;
    const feed = uniq('autofeed');
    const gw = await startTestGateway({ changeserverFeed: feed, changeserverSource: u.toString() } as never);
    try {
      const r = await gql(gw.url, `query($n: ID!) { job(id: $n) { name type feedName source { kind database } } }`, { n: feed });
      expect(r.body.data.job).toMatchObject({ name: feed, type: 'SUBSCRIBE', feedName: feed, source: { kind: 'POSTGRES', database: src.database } });
      // A second gateway with the same settings finds the job and creates nothing.
      const gw2 = await startTestGateway({ changeserverFeed: feed, changeserverSource: u.toString(), databaseUrl: gw.config.databaseUrl, queuePrefix: gw.config.queuePrefix, secretKey: gw.config.secretKey } as never, { worker: false });
      await gw2.close();
      expect((await gql(gw.url, `{ jobs { totalCount } }`)).body.data.jobs.totalCount).toBe(1);
      await untilCapturing(src, 't', gw.url, feed, (n) => `INSERT INTO t VALUES (${n}, 'probe')`);
      const c = await getChanges(gw.url, '/changes', { scope: 'probe' });
      expect(c.body.changes.length).toBeGreaterThan(0);
    } finally {
      await gw.close();
      await src.close();
    }
  });
});
