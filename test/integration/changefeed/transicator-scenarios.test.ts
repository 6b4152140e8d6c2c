/**
 * Issue 4: the scenarios of changeserver's own API tests (Transicator's
 * changeserver/changes_api_test.go), rewritten against real capture: a
 * SUBSCRIBE job on a private PostgreSQL database fills the feed served at
 * `/changes` (CHANGESERVER_FEED), and the same scenarios run on a feed from a
 * MariaDB source. Then cleanup by retention leading to SNAPSHOT_TOO_OLD,
 * the error model (415, 500), the management port / base path options and
 * the slot dropped at exit after /markdown.
 *
 * Like the original, the scenarios of one suite share state and run in
 * order: each starts from the last sequence the previous one saw.
 */
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { Redis } from 'ioredis';
import pg from 'pg';
import { startTestGateway, type TestGateway } from '../../support/gateway.ts';
import { mariaDatabase, pgDatabase, uniq, waitFor, type DbHandle } from '../../support/databases.ts';
import { getChanges, sleep, subscribeJob } from '../../support/changefeed.ts';
import { getJob } from '../../support/replication.ts';
import { compareSequences, makeSequence, parseSequence } from '../../../src/replication/sequence.ts';
import { feedKeys } from '../../../src/replication/feed/feed-keys.ts';

const ZERO = '0.0.0';
const PARAMS = ['scope', 'selector'] as const;

type Params = Record<string, string | number | (string | number)[]>;

interface Source {
  db: DbHandle;
  /** Inserts one row with test sequence `n` in scope `scope` (null = no scope). */
  insert(n: number, scope: string | null): Promise<unknown>;
}

/** The test sequence a change carries in its `seq` column. */
const seqOf = (c: any): number => Number(c.newRow.seq.value);

/** A SUBSCRIBE job whose capture has taken its start position (slot / binlog position): later commits are captured. */
async function captureFrom(gw: TestGateway, feed: string, db: DbHandle): Promise<void> {
  const job = await subscribeJob(gw.url, feed, db, db.kind === 'postgres' ? 'public' : db.database);
  await waitFor(() => getJob(gw.url, job.id), (j) => j.progress.phase === 'streaming', 60_000, 'capture streaming');
}

/**
 * The changes_api_test scenarios on one feed. `path` is where the feed is
 * served; `pgSnapshot` whether the source is PostgreSQL (snapshot filter).
 */
function scenarios(ctx: () => { base: string; path: string; src: Source; postgres: boolean }) {
  let n = 0; // last test sequence inserted
  let last = ZERO; // last change sequence seen
  let veryFirst = ZERO;
  const get = (params: Params, headers?: Record<string, string>) => getChanges(ctx().base, ctx().path, params, headers);
  /** Polls until `ok` (Transicator's Eventually). */
  const eventually = (params: Params, ok: (body: any) => boolean, label: string) =>
    waitFor(() => get(params), (r) => r.status === 200 && ok(r.body), 30_000, label).then((r) => r.body);
  const insert = async (scope: string | null) => { n++; await ctx().src.insert(n, scope); return n; };

  it('an empty database returns 0.0.0 as first and last sequence', async () => {
    for (const p of PARAMS) {
      const r = await get({ [p]: 'foo' });
      expect(r.status).toBe(200);
      expect(r.body).toEqual({ firstSequence: ZERO, lastSequence: ZERO, changes: [] });
    }
  });

  it('the first change: firstSequence = lastSequence = its sequence', async () => {
    const want = await insert('foo');
    for (const p of PARAMS) {
      const body = await eventually({ since: ZERO, [p]: 'foo' }, (b) => b.changes.length > 0, 'first change');
      expect(body.changes.map(seqOf)).toEqual([want]);
      const c = body.changes[0];
      expect(c.sequence).toMatch(/^[0-9a-f]+\.[0-9a-f]+\.[0-9a-f]+$/);
      expect(body.firstSequence).toBe(c.sequence);
      expect(body.lastSequence).toBe(c.sequence);
      last = veryFirst = c.sequence;
    }
  });

  it('scope equals selector; the next change; timestamp is the commit time in seconds', async () => {
    const t0 = Math.floor(Date.now() / 1000);
    const want = await insert('foo');
    const bodies = [];
    for (const p of PARAMS) {
      const body = await eventually({ since: last, [p]: 'foo' }, (b) => b.changes.length > 0, 'next change');
      expect(body.changes.map(seqOf)).toEqual([want]);
      expect(body.lastSequence).toBe(body.changes[0].sequence);
      expect(body.firstSequence).toBe(veryFirst);
      bodies.push(body);
    }
    expect(bodies[1]).toEqual(bodies[0]);
    const c = bodies[0].changes[0];
    expect(c.timestamp).toBeGreaterThanOrEqual(t0 - 1);
    expect(c.timestamp).toBeLessThanOrEqual(Math.ceil(Date.now() / 1000));
    expect(Object.keys(c)).toEqual(['operation', 'table', 'sequence', 'commitSequence', 'changeSequence', 'commitIndex', 'txid', 'timestamp', 'newRow']);
    expect(c.newRow.seq).toEqual({ value: String(want), type: 20 });
    expect(c.newRow._change_selector).toEqual({ value: 'foo', type: ctx().postgres ? 25 : 1043 });
    last = c.sequence;
  });

  it('snapshot filter: changes visible in the snapshot are hidden', async () => {
    const { src, postgres } = ctx();
    const a = await insert('foo');
    let snap = '';
    const b = ++n;
    if (postgres) {
      // In one transaction: insert, then read the snapshot, which cannot see its own transaction.
      const client = new pg.Client({ host: src.db.host, port: src.db.port, user: src.db.user, database: src.db.database });
      await client.connect();
      try {
        await client.query('BEGIN');
        await client.query(`INSERT INTO cs_test (seq, _change_selector) VALUES ($1, 'foo')`, [b]);
        snap = (await client.query(`SELECT txid_current_snapshot()::text AS s`)).rows[0].s;
        await client.query('COMMIT');
      } finally { await client.end(); }
    } else {
      await src.insert(b, 'foo');
      snap = '1:1:'; // a PostgreSQL snapshot means nothing to MariaDB transaction ids: nothing is hidden
    }
    let end = last;
    for (const p of PARAMS) {
      const all = await eventually({ since: last, [p]: 'foo' }, (x) => x.changes.length >= 2, 'two changes');
      expect(all.changes.map(seqOf)).toEqual([a, b]);
      end = all.changes[1].sequence;
      const filtered = await get({ since: last, [p]: 'foo', snapshot: snap });
      expect(filtered.status).toBe(200);
      expect(filtered.body.changes.map(seqOf)).toEqual(postgres ? [b] : [a, b]);
    }
    last = end;
  });

  it('a group of changes: unmatched scope, out of range, limit 0, 1 and over the maximum', async () => {
    const orig = last;
    const want = [await insert('foo'), await insert('foo'), await insert('foo'), await insert('foo')];
    for (const p of PARAMS) {
      const body = await eventually({ since: orig, [p]: 'foo' }, (b) => b.changes.length === 4, 'four changes');
      expect(body.changes.map(seqOf)).toEqual(want);
      last = body.changes[3].sequence;
      expect((await get({ since: orig, [p]: 'bar' })).body.changes).toEqual([]);
      const s = parseSequence(last);
      const outOfRange = makeSequence(s.hi, s.lo + 10n, s.index);
      const oor = await get({ since: outOfRange, [p]: 'foo' });
      expect(oor.status).toBe(200);
      expect(oor.body.changes).toEqual([]);
      const zero = await get({ since: orig, [p]: 'foo', limit: 0 });
      expect(zero.status).toBe(200);
      expect(zero.body.changes).toEqual([]);
      expect(zero.body.firstSequence).toBe(veryFirst);
      expect(zero.body.lastSequence).toBe(last);
      const one = await get({ since: orig, [p]: 'foo', limit: 1 });
      expect(one.body.changes.map(seqOf)).toEqual([want[0]]);
      expect(one.body.lastSequence).toBe(one.body.changes[0].sequence);
      const over = await get({ since: orig, [p]: 'foo', limit: 100001 }, { accept: 'application/json' });
      expect(over.status).toBe(400);
      expect(over.type).toBe('application/json');
      expect(over.body).toEqual({ code: 'PARAMETER_INVALID', error: 'A parameter has an invalid value', description: 'limit too high, exceeds max 100000' });
      expect((await get({ since: orig, [p]: 'foo', limit: 100000 })).status).toBe(200);
    }
  });

  it('several scopes: merged in sequence order; lastSequence is the highest unless the limit cut the list', async () => {
    const orig = last;
    const foo: number[] = []; const bar: number[] = [];
    for (let i = 0; i < 3; i++) { foo.push(await insert('foo')); bar.push(await insert('bar')); }
    for (const p of PARAMS) {
      const bars = await eventually({ since: orig, [p]: 'bar' }, (b) => b.changes.length === 3, 'three bar changes');
      const highest = bars.lastSequence;
      expect(highest).toBe(bars.changes[2].sequence);
      const both = await get({ since: orig, [p]: ['foo', 'bar'], limit: 10 });
      expect(both.body.changes.map(seqOf)).toEqual([foo[0], bar[0], foo[1], bar[1], foo[2], bar[2]]);
      const seqs = both.body.changes.map((c: any) => c.sequence);
      expect([...seqs].sort(compareSequences)).toEqual(seqs);
      expect(both.body.lastSequence).toBe(highest);
      for (const [scope, ids] of [['foo', foo], ['bar', bar]] as const) {
        const one = await get({ since: orig, [p]: scope, limit: 10 });
        expect(one.body.changes.map(seqOf)).toEqual(ids);
        expect(one.body.lastSequence).toBe(highest);
        const two = await get({ since: orig, [p]: scope, limit: 2 });
        expect(two.body.changes.map(seqOf)).toEqual(ids.slice(0, 2));
        expect(two.body.lastSequence).toBe(two.body.changes[1].sequence);
      }
      const five = await get({ since: orig, [p]: ['foo', 'bar'], limit: 5 });
      expect(five.body.changes).toHaveLength(5);
      expect(five.body.lastSequence).toBe(five.body.changes[4].sequence);
      // Nothing matching: lastSequence is still the highest, so the caller knows it is up to date.
      const none = await get({ since: orig, [p]: 'notfound' });
      expect(none.body).toMatchObject({ changes: [], lastSequence: highest });
      const upToDate = await get({ since: highest, [p]: ['foo', 'bar'], block: 1 });
      expect(upToDate.body).toMatchObject({ changes: [], lastSequence: highest });
      expect(upToDate.ms).toBeGreaterThanOrEqual(900);
      last = highest;
    }
  });

  /** A long poll that must not answer before the insert, then answers with exactly it. */
  async function longPoll(params: Params, scope: string) {
    const first = await get({ ...params });
    expect(first.body.changes).toEqual([]);
    let answered = false;
    const pending = get({ ...params, block: 30 }).then((r) => { answered = true; return r; });
    await sleep(700); // Consistently: nothing before the insert
    expect(answered).toBe(false);
    const t0 = Date.now();
    const want = await insert(scope);
    const r = await pending;
    expect(r.status).toBe(200);
    expect(r.body.changes.map(seqOf)).toEqual([want]);
    last = r.body.changes[0].sequence;
    return Date.now() - t0;
  }

  it('long polling: empty past the end, then woken by a matching insert', async () => {
    const s = parseSequence(last);
    for (const p of PARAMS) {
      const oor = await get({ since: makeSequence(s.hi, s.lo + 10n, s.index), [p]: 'foo', block: 1 });
      expect(oor.body.changes).toEqual([]);
    }
    const ms: number[] = [];
    for (const p of PARAMS) ms.push(await longPoll({ since: last, [p]: 'foo' }, 'foo'));
    console.log(`long poll wake-up after insert (ms): ${ms.join(', ')}`);
    for (const x of ms) expect(x).toBeLessThan(3000);
  });

  it('long polling with a snapshot (no since)', async () => {
    if (!ctx().postgres) return; // a PostgreSQL snapshot: nothing to hide on MariaDB, the first call would not be empty
    for (const p of PARAMS) {
      const [{ s }] = await ctx().src.db.query(`SELECT txid_current_snapshot()::text AS s`);
      await longPoll({ snapshot: s, [p]: 'foo' }, 'foo');
    }
  });

  it('long polling with two selectors', async () => {
    for (const p of PARAMS) await longPoll({ since: last, [p]: ['foo', 'bar'] }, 'bar');
  });

  it('invalid characters in a scope, alone or among valid ones, are PARAMETER_INVALID', async () => {
    for (const p of PARAMS) {
      for (const params of [{ [p]: 'snaptests;select now()' }, { [p]: ['abc123', 'snaptests;select now()'] }, { [p]: 'UPPER' }]) {
        const r = await get(params, { accept: 'application/json' });
        expect(r.status).toBe(400);
        expect(r.type).toBe('application/json');
        expect(r.body.code).toBe('PARAMETER_INVALID');
        expect(r.body.error).toBe('A parameter has an invalid value');
      }
    }
    const missing = await get({ since: last });
    expect(missing.status).toBe(400);
    expect(missing.body).toEqual({ code: 'MISSING_PARAMETER', error: 'A required parameter is missing', description: 'scope' });
  });

  it('content negotiation: JSON by default and for wildcards, protobuf on request, 415 otherwise', async () => {
    const dflt = await get({ scope: 'foo', limit: 1 });
    expect(dflt.type).toContain('application/json');
    for (const accept of ['*/*', 'application/*', 'application/json', 'text/html, */*;q=0.1']) {
      const r = await get({ scope: 'foo', limit: 1 }, { accept });
      expect(r.status, accept).toBe(200);
      expect(r.body).toEqual(dflt.body);
    }
    const pb = await get({ scope: 'foo', limit: 1 }, { accept: 'application/transicator+protobuf' });
    expect(pb.status).toBe(200);
    expect(pb.type).toBe('application/transicator+protobuf');
    for (const accept of ['application/xml', 'text/html', 'text/plain', 'application/transicator+protobuf;q=0, application/json;q=0', 'image/*']) {
      const r = await get({ scope: 'foo' }, { accept });
      expect(r.status, accept).toBe(415);
      expect(r.body.code).toBe('UNSUPPORTED_FORMAT');
      expect(r.body.error).toBe('The specified media type is not supported');
    }
  });
}

describe('changeserver API scenarios on a PostgreSQL source', () => {
  const FEED = uniq('tscs');
  let gw: TestGateway; let db: DbHandle;
  let legacy = '';
  beforeAll(async () => {
    gw = await startTestGateway({ changeserverFeed: FEED, changeserverPort: 0 } as never);
    legacy = `http://127.0.0.1:${gw.app.changeserverAddress()!.port}`;
    db = await pgDatabase(inject('pgUrl'), uniq('tscs_pg'));
    await db.query(`CREATE TABLE cs_test (seq bigint PRIMARY KEY, _change_selector text)`);
    await captureFrom(gw, FEED, db);
  });
  afterAll(async () => { await gw?.close(); await db?.close(); });
  scenarios(() => ({
    base: legacy, path: '/changes', postgres: true,
    src: { db, insert: (n, scope) => db.query(`INSERT INTO cs_test (seq, _change_selector) VALUES ($1, $2)`, [n, scope]) },
  }));
});

describe('changeserver API scenarios on a MariaDB source', () => {
  const FEED = uniq('tscs_m');
  let gw: TestGateway; let db: DbHandle;
  beforeAll(async () => {
    gw = await startTestGateway();
    db = await mariaDatabase(inject('mariaUrl'), uniq('tscs_maria'));
    await db.query(`CREATE TABLE cs_test (seq bigint PRIMARY KEY, _change_selector varchar(32))`);
    await captureFrom(gw, FEED, db);
  });
  afterAll(async () => { await gw?.close(); await db?.close(); });
  scenarios(() => ({
    base: gw.url, path: `/feeds/${FEED}/changes`, postgres: false,
    src: { db, insert: (n, scope) => db.query(`INSERT INTO cs_test (seq, _change_selector) VALUES (?, ?)`, [n, scope]) },
  }));
});

describe('cleanup (retention by age) leading to SNAPSHOT_TOO_OLD', () => {
  const FEED = uniq('tscs_clean');
  let gw: TestGateway; let db: DbHandle;
  beforeAll(async () => {
    // Changes older than 3 s are dropped by the capture's retention, which then runs every second.
    gw = await startTestGateway({ changeserverFeed: FEED, feedMaxAgeSeconds: 3 } as never);
    db = await pgDatabase(inject('pgUrl'), uniq('tscs_clean'));
    await db.query(`CREATE TABLE cs_test (seq bigint PRIMARY KEY, _change_selector text)`);
    await captureFrom(gw, FEED, db);
  });
  afterAll(async () => { await gw?.close(); await db?.close(); });

  it('a since older than retention is SNAPSHOT_TOO_OLD; an emptied feed still reports its last sequence', async () => {
    const get = (params: Params) => getChanges(gw.url, '/changes', params, { accept: 'application/json' });
    await db.query(`INSERT INTO cs_test VALUES (1, 'clean')`);
    const first = await waitFor(() => get({ scope: 'clean' }), (r) => r.body.changes?.length === 1, 10_000, 'first clean change');
    const origFirst = first.body.changes[0].sequence;
    expect((await get({ scope: 'clean', since: origFirst })).status).toBe(200);
    await db.query(`INSERT INTO cs_test VALUES (2, 'clean')`);
    const second = await waitFor(() => get({ scope: 'clean', since: origFirst }), (r) => r.body.changes?.length === 1, 10_000, 'second clean change');
    const newLast = second.body.changes[0].sequence;
    // Once retention removed the change after origFirst, reading from origFirst would miss it.
    const tooOld = await waitFor(() => get({ scope: 'clean', since: origFirst }), (r) => r.status === 400, 15_000, 'SNAPSHOT_TOO_OLD');
    expect(tooOld.type).toBe('application/json');
    expect(tooOld.body.code).toBe('SNAPSHOT_TOO_OLD');
    expect(tooOld.body.error).toBe('The client is operating on an old snapshot');
    await waitFor(() => get({ scope: 'clean' }), (r) => r.status === 200 && r.body.changes.length === 0, 15_000, 'feed emptied');
    const empty = await get({ scope: 'clean' });
    expect(empty.body).toEqual({ firstSequence: newLast, lastSequence: newLast, changes: [] });
    // Reading on from the last sequence is fine: nothing after it was dropped.
    expect((await get({ scope: 'clean', since: newLast })).status).toBe(200);
  });
});

describe('changeserver errors and options', () => {
  const FEED = uniq('tscs_opt');
  let gw: TestGateway; let db: DbHandle; let redis: Redis;
  let api = ''; let mgmt = '';
  beforeAll(async () => {
    gw = await startTestGateway({ changeserverFeed: FEED, changeserverPort: 0, changeserverMgmtPort: 0, changeserverBasePath: '/cs/' } as never);
    api = `http://127.0.0.1:${gw.app.changeserverAddress()!.port}`;
    mgmt = `http://127.0.0.1:${gw.app.changeserverMgmtAddress()!.port}`;
    db = await pgDatabase(inject('pgUrl'), uniq('tscs_opt'));
    await db.query(`CREATE TABLE cs_test (seq bigint PRIMARY KEY, _change_selector text)`);
    await captureFrom(gw, FEED, db);
    redis = new Redis(inject('redisUrl'));
  });
  afterAll(async () => { redis?.disconnect(); await gw?.close(); await db?.close(); });

  it('a feed that cannot be decoded is 500 INTERNAL_SERVER_ERROR with no internals', async () => {
    // A feed whose stream holds an entry this version cannot read (no "e" field).
    const keys = feedKeys(gw.config.queuePrefix, 'broken-feed');
    await redis.hset(keys.meta, 'lastId', '1-0');
    await redis.xadd(keys.stream, '1-0', 'x', 'garbage');
    const r = await getChanges(gw.url, '/cs/feeds/broken-feed/changes', { scope: 'a' });
    expect(r.status).toBe(500);
    expect(r.body).toEqual({ code: 'INTERNAL_SERVER_ERROR', error: 'An error occurred in the server' });
  });

  it('base path: the API answers under CHANGESERVER_BASE_PATH on both ports; OpenAPI names it', async () => {
    await db.query(`INSERT INTO cs_test VALUES (1, 'opt')`);
    const viaApi = await waitFor(() => getChanges(api, '/cs/changes', { scope: 'opt' }), (r) => r.body.changes?.length === 1, 15_000, 'change on the api port');
    const viaGateway = await getChanges(gw.url, '/cs/changes', { scope: 'opt' });
    expect(viaGateway.body).toEqual(viaApi.body);
    expect((await getChanges(api, `/cs/feeds/${FEED}/changes`, { scope: 'opt' })).body).toEqual(viaApi.body);
    const unprefixed = await getChanges(api, '/changes', { scope: 'opt' });
    expect(unprefixed.status).toBe(404);
    expect(unprefixed.body.code).toBe('NOT_FOUND');
    const doc = await (await fetch(`${api}/cs/openapi.json`)).json() as any;
    expect(doc.openapi).toMatch(/^3\./);
    // The gateway serves these routes too; the changeserver listener is listed after it.
    expect(doc.servers.map((x: any) => x.url)).toEqual([`${gw.url}/cs`, `${api}/cs`]);
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/changes', '/feeds/{name}/changes']));
    expect(JSON.stringify(doc.paths['/changes'].get)).toContain('PARAMETER_INVALID');
  });

  it('management port: /health, /ready and /markdown answer only there; markdown closes the API port', async () => {
    for (const p of ['/health', '/ready', '/markdown']) expect((await fetch(`${api}${p}`)).status, p).toBe(404);
    expect((await fetch(`${mgmt}/health`)).status).toBe(200);
    expect((await fetch(`${mgmt}/ready`)).status).toBe(200);
    expect((await fetch(`${mgmt}/cs/changes?scope=opt`)).status).toBe(404);
    expect((await fetch(`${mgmt}/markdown`)).status).toBe(200);
    const ready = await fetch(`${mgmt}/ready`, { headers: { accept: 'application/json' } });
    expect(ready.status).toBe(503);
    expect(await ready.json()).toEqual({ status: 'NotReady', reason: 'Marked down' });
    expect((await fetch(`${mgmt}/health`)).status).toBe(200);
    expect((await getChanges(api, '/cs/changes', { scope: 'opt' })).status).toBe(503);
    // The gateway's own port is not the changeserver's: unaffected.
    expect((await getChanges(gw.url, '/cs/changes', { scope: 'opt' })).status).toBe(200);
  });
});

describe('after /markdown the capture slot is dropped at exit', () => {
  it('closing a marked-down changeserver stops its capture and drops the slot; a plain close keeps it', async () => {
    const db = await pgDatabase(inject('pgUrl'), uniq('tscs_md'));
    const slots = async () => (await db.query(`SELECT slot_name FROM pg_replication_slots WHERE database = $1`, [db.database])).map((r: any) => r.slot_name);
    const feed = uniq('tscs_md');
    // The worker gateway runs the capture; serve-only gateways carry the changeserver listener.
    const worker = await startTestGateway();
    try {
      await db.query(`CREATE TABLE cs_test (seq bigint PRIMARY KEY, _change_selector text)`);
      await captureFrom(worker, feed, db);
      expect(await slots()).toHaveLength(1);
      const shared = { databaseUrl: worker.config.databaseUrl, queuePrefix: worker.config.queuePrefix, secretKey: worker.config.secretKey, changeserverFeed: feed, changeserverPort: 0 };
      const plain = await startTestGateway(shared as never, { worker: false });
      await plain.close();
      expect(await slots()).toHaveLength(1);

      const cs = await startTestGateway(shared as never, { worker: false });
      const legacy = `http://127.0.0.1:${cs.app.changeserverAddress()!.port}`;
      expect((await fetch(`${legacy}/markdown`)).status).toBe(200);
      expect(await slots()).toHaveLength(1); // not before exit
      await cs.close();
      expect(await slots()).toEqual([]);
      const job = await waitFor(async () => (await fetch(`${worker.url}/graphql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query: `{ job(id: "${feed}") { status } }` }) }).then((r) => r.json() as any)).data.job, (j) => j.status === 'CANCELED', 10_000, 'job canceled');
      expect(job.status).toBe('CANCELED');
      await sleep(1500); // no worker re-creates the slot
      expect(await slots()).toEqual([]);
      // The feed stays readable.
      expect((await getChanges(worker.url, `/feeds/${feed}/changes`, { scope: 'x' })).status).toBe(200);
    } finally {
      await worker.close();
      await db.close();
    }
  });
});
