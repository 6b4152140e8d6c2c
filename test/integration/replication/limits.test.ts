/**
 * Issue 3, "Limits" and "testConnection", end to end through real jobs:
 * - ReplChanBufferSize bounds what capture appends ahead of apply: with the
 *   destination table locked by the test, the feed stops growing near the
 *   bound, and everything converges once the lock is released.
 * - MsgsLimit, BytesLimit and MsgBytesLimit are rate limits on capture.
 * - Gtid / startPosition: MariaDB GTID list and file:pos (GraphQL and the
 *   Udup REST `Config.Gtid`), PostgreSQL LSN: rows committed before the
 *   position are not captured, rows after it are.
 * - testConnection names what capture lacks on the machine's default servers
 *   (when reachable), is ok on the private servers, and names missing
 *   privileges for a restricted user.
 */
import { Redis } from 'ioredis';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { gql, startTestGateway, type TestGateway } from '../../support/gateway.ts';
import { mariaDatabase, pgDatabase, uniq, waitFor, type DbHandle } from '../../support/databases.ts';
import { createJob, endpoint, expectConverged, feedLength, getJob, ITEMS, qname, waitJob } from '../../support/replication.ts';
import { feedKeys } from '../../../src/replication/feed/feed-keys.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const idsOf = async (db: DbHandle, table: string) => (await db.query<{ id: number }>(`SELECT id FROM ${table} ORDER BY id`)).map((r) => Number(r.id));

/** Resolves once the job's capture task runs and has fixed its start position. */
async function captureStarted(url: string, id: string): Promise<unknown> {
  await waitJob(url, id, (j) => j.tasks.some((t: any) => t.kind === 'capture' && t.status === 'running'), 30_000, 'capture running');
  const r = await waitFor(async () => (await gql(url, `query($id: ID!) { job(id: $id) { startPosition } }`, { id })).body.data.job.startPosition, (p) => p !== null, 30_000, 'start position');
  // The reader connects right after the position is fixed.
  await sleep(700);
  return r;
}

/** Polls the feed's length and returns the seconds from the first entry to `n` entries. */
async function timeToFeedLength(redis: Redis, stream: string, n: number, timeoutMs: number): Promise<{ seconds: number; samples: [number, number][] }> {
  const t0 = Date.now();
  let first: number | undefined;
  const samples: [number, number][] = [];
  while (Date.now() - t0 < timeoutMs) {
    const len = await feedLength(redis, stream);
    const now = Date.now();
    if (len > 0 && first === undefined) first = now;
    if (samples.length === 0 || samples.at(-1)![1] !== len) samples.push([now - t0, len]);
    if (len >= n) return { seconds: (now - first!) / 1000, samples };
    await sleep(50);
  }
  throw new Error(`feed ${stream} did not reach ${n} entries in ${timeoutMs} ms; samples ${JSON.stringify(samples.slice(-5))}`);
}

describe('limits, start position and testConnection', () => {
  let gw: TestGateway; let redis: Redis;
  const handles: DbHandle[] = [];
  const jobs: string[] = [];
  beforeAll(async () => {
    gw = await startTestGateway();
    redis = new Redis(inject('redisUrl'), { lazyConnect: true });
    await redis.connect();
  });
  afterAll(async () => {
    for (const id of jobs) await gql(gw.url, `mutation { deleteJob(id: "${id}") }`).catch(() => undefined);
    redis?.disconnect();
    await gw?.close();
    for (const h of handles) await h.close().catch(() => undefined);
  });
  const track = <T extends { id: string }>(j: T): T => { jobs.push(j.id); return j; };
  const stop = async (id: string) => { await gql(gw.url, `mutation { stopJob(id: "${id}") { status } }`); };

  it('ReplChanBufferSize bounds capture ahead of a blocked apply, then converges', async () => {
    const src = await mariaDatabase(inject('mariaUrl'), uniq('buf_src')); handles.push(src);
    const dst = await pgDatabase(inject('pgUrl'), uniq('buf_dst')); handles.push(dst);
    await src.query(ITEMS.create(src));
    await src.query(ITEMS.fill(src, 10));
    const name = uniq('bufsize');
    const job = track(await createJob(gw.url, { name, type: 'SYNCHRONOUS', source: endpoint(src), destination: endpoint(dst), tables: [{ schema: src.database }], parallelWorkers: 1, replChanBufferSize: 5 }));
    const dstTable = qname(dst, src.database, 'items');
    await waitJob(gw.url, job.id, (j) => j.progress.phase === 'streaming', 60_000, 'snapshot done');
    await expectConverged(src, 'items', dst, dstTable, 30_000);
    const stream = feedKeys(gw.config.queuePrefix, name).stream;

    // Hold a lock that blocks the applier's writes (reads still pass).
    const locker = new pg.Client({ host: dst.host, port: dst.port, user: dst.user, database: dst.database });
    await locker.connect();
    try {
      await locker.query('BEGIN');
      await locker.query(`LOCK TABLE ${dstTable} IN EXCLUSIVE MODE`);
      const before = await feedLength(redis, stream);
      // 60 single-row transactions: one feed entry each.
      for (let i = 0; i < 60; i++) await src.query(`INSERT INTO items (id, name, qty) VALUES (${1000 + i}, 'buffered ${i}', ${i})`);
      await sleep(2500);
      const held = await feedLength(redis, stream) - before;
      await sleep(1500);
      const heldLater = await feedLength(redis, stream) - before;
      const captured = (await getJob(gw.url, job.id)).metrics.changesCaptured;
      console.log(`ReplChanBufferSize=5: feed grew by ${held} then ${heldLater} of 60 transactions while apply was blocked; changesCaptured ${captured}`);
      // The bound is 5 transactions appended but not applied; the apply's own in-flight batch may hold a few more.
      expect(held).toBeGreaterThanOrEqual(1);
      expect(held).toBeLessThanOrEqual(8);
      expect(heldLater).toBe(held);
      expect(captured).toBeLessThanOrEqual(10 + 8);
      expect((await dst.query(`SELECT count(*)::int AS n FROM ${dstTable}`))[0].n).toBe(10);
    } finally {
      await locker.query('ROLLBACK').catch(() => undefined);
      await locker.end();
    }
    await expectConverged(src, 'items', dst, dstTable, 60_000);
    expect((await feedLength(redis, stream))).toBeGreaterThanOrEqual(60);
    await stop(job.id);
  });

  it('MsgsLimit caps captured changes per second', async () => {
    const src = await mariaDatabase(inject('mariaUrl'), uniq('rate_src')); handles.push(src);
    await src.query(ITEMS.create(src));
    const name = uniq('msgs');
    const job = track(await createJob(gw.url, { name, type: 'SUBSCRIBE', source: endpoint(src), tables: [{ schema: src.database }], snapshot: false, msgsLimit: 200 }));
    await captureStarted(gw.url, job.id);
    const N = 1000;
    const started = Date.now();
    for (let t = 0; t < N / 50; t++) {
      const v = Array.from({ length: 50 }, (_, i) => `(${t * 50 + i + 1}, 'r', ${i})`);
      await src.query(`INSERT INTO items (id, name, qty) VALUES ${v.join(', ')}`);
    }
    const writeSeconds = (Date.now() - started) / 1000;
    const { seconds, samples } = await timeToFeedLength(redis, feedKeys(gw.config.queuePrefix, name).stream, N, 30_000);
    const rate = N / seconds;
    console.log(`MsgsLimit=200: ${N} changes (written in ${writeSeconds.toFixed(2)} s) captured in ${seconds.toFixed(2)} s = ${rate.toFixed(0)}/s; feed length samples ${JSON.stringify(samples.slice(0, 12))}`);
    // Token bucket with a one-second burst: at least (N - 200) / 200 s, and not much slower than that.
    expect(seconds).toBeGreaterThanOrEqual(0.8 * (N - 200) / 200);
    expect(seconds).toBeLessThan(3 * N / 200);
    const j = await waitJob(gw.url, job.id, (x) => x.metrics.changesCaptured >= N, 10_000, 'captured metric');
    expect(j.metrics.changesCaptured).toBe(N);
    await stop(job.id);
  });

  for (const limit of ['bytesLimit', 'msgBytesLimit'] as const) {
    it(`${limit} caps captured bytes per second`, async () => {
      const src = await mariaDatabase(inject('mariaUrl'), uniq('bytes_src')); handles.push(src);
      await src.query(ITEMS.create(src));
      const name = uniq(limit.toLowerCase());
      const perSecond = 50_000;
      const job = track(await createJob(gw.url, { name, type: 'SUBSCRIBE', source: endpoint(src), tables: [{ schema: src.database }], snapshot: false, [limit]: perSecond }));
      await captureStarted(gw.url, job.id);
      // 200 rows of a little over 1,000 bytes each, 10 per transaction: > 200 kB in all.
      const N = 200;
      for (let t = 0; t < N / 10; t++) {
        const v = Array.from({ length: 10 }, (_, i) => `(${t * 10 + i + 1}, 'b', ${i}, REPEAT('x', 1000))`);
        await src.query(`INSERT INTO items (id, name, qty, note) VALUES ${v.join(', ')}`);
      }
      const { seconds } = await timeToFeedLength(redis, feedKeys(gw.config.queuePrefix, name).stream, N, 30_000);
      const minBytes = N * 1000;
      console.log(`${limit}=${perSecond}: ${N} changes (>= ${minBytes} bytes) captured in ${seconds.toFixed(2)} s`);
      expect(seconds).toBeGreaterThanOrEqual(0.8 * (minBytes - perSecond) / perSecond);
      expect(seconds).toBeLessThan(4 * minBytes / perSecond);
      await stop(job.id);
    });
  }

  describe('start position (Gtid)', () => {
    async function mariaMarks(src: DbHandle): Promise<{ file: string; gtid: string }> {
      const [st] = await src.query<{ File: string; Position: number }>('SHOW MASTER STATUS');
      const [g] = await src.query<{ g: string }>('SELECT @@gtid_binlog_pos AS g');
      return { file: `${st!.File}:${st!.Position}`, gtid: g!.g };
    }

    for (const form of ['gtid', 'file'] as const) {
      it(`MariaDB ${form === 'gtid' ? 'GTID list' : 'file:pos'}: rows before the position are not captured, rows after are`, async () => {
        const src = await mariaDatabase(inject('mariaUrl'), uniq('gtid_src')); handles.push(src);
        const dst = await pgDatabase(inject('pgUrl'), uniq('gtid_dst')); handles.push(dst);
        await src.query(ITEMS.create(src));
        await src.query(`INSERT INTO items (id, name) VALUES (1, 'before'), (2, 'before')`);
        const marks = await mariaMarks(src);
        await src.query(`INSERT INTO items (id, name) VALUES (3, 'after')`);
        await src.query(`UPDATE items SET name = 'after-upd' WHERE id = 1`);
        await src.query(`INSERT INTO items (id, name) VALUES (4, 'after')`);
        const job = track(await createJob(gw.url, { name: uniq(`start_${form}`), type: 'SYNCHRONOUS', source: endpoint(src), destination: endpoint(dst), tables: [{ schema: src.database }], snapshot: false, startPosition: marks[form] }));
        const dstTable = qname(dst, src.database, 'items');
        // Row 2 was committed before the position and never changed after it: it must not arrive.
        await waitFor(() => idsOf(dst, dstTable), (ids) => ids.length >= 3, 30_000, 'rows after the position')
          .catch(async (err) => { throw new Error(`${(err as Error).message}; job ${JSON.stringify(await getJob(gw.url, job.id))}`); });
        await sleep(1000);
        expect(await idsOf(dst, dstTable)).toEqual([1, 3, 4]);
        expect((await dst.query(`SELECT name FROM ${dstTable} WHERE id = 1`))[0].name).toBe('after-upd');
        const info = (await gql(gw.url, `query($id: ID!) { job(id: $id) { startPosition } }`, { id: job.id })).body.data.job.startPosition;
        if (form === 'gtid') expect(info.gtid).toBe(marks.gtid); else expect(`${info.file}:${info.pos}`).toBe(marks.file);
        // Streaming goes on after the start.
        await src.query(`INSERT INTO items (id, name) VALUES (5, 'streamed')`);
        await waitFor(() => idsOf(dst, dstTable), (ids) => ids.includes(5), 30_000, 'streamed row');
        await stop(job.id);
      });
    }

    it('MariaDB via Udup REST Config.Gtid', async () => {
      const src = await mariaDatabase(inject('mariaUrl'), uniq('udgtid_src')); handles.push(src);
      await src.query(ITEMS.create(src));
      await src.query(`INSERT INTO items (id, name) VALUES (1, 'pre-position'), (2, 'pre-position')`);
      const marks = await mariaMarks(src);
      await src.query(`INSERT INTO items (id, name) VALUES (3, 'post-position'), (4, 'post-position')`);
      const u = new URL(inject('mariaUrl'));
      const conn = { Host: u.hostname, Port: Number(u.port), User: 'root', Password: '' };
      const name = uniq('udup-gtid');
      // A subscribe job (capture into the feed only): the feed shows exactly what was captured.
      const body = {
        Name: name, Type: 'subscribe',
        Tasks: [{ Type: 'Src', Driver: 'MySQL', Config: { Gtid: marks.gtid, ReplicateDoDb: [{ TableSchema: src.database }], ConnectionConfig: conn } }],
      };
      const res = await fetch(`${gw.url}/v1/jobs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      expect(res.status, await res.clone().text()).toBe(200);
      const found = (await gql(gw.url, `query($n: String) { jobs(name: $n) { edges { node { id spec startPosition } } } }`, { n: name })).body.data.jobs.edges;
      expect(found).toHaveLength(1);
      const job = track(found[0].node);
      expect(job.spec.startPosition).toBe(marks.gtid);
      expect(job.spec.snapshot).toBe(false);
      const got = await fetch(`${gw.url}/v1/job/${job.id}`).then((r) => r.json()) as any;
      expect(got.Tasks.find((t: any) => t.Type === 'Src').Config.Gtid).toBe(marks.gtid);
      const stream = feedKeys(gw.config.queuePrefix, name).stream;
      await waitFor(() => feedLength(redis, stream), (n) => n >= 2, 30_000, 'feed entries');
      await sleep(1000);
      const entries = await redis.xrange(stream, '-', '+');
      const text = entries.map(([, fields]) => fields.join(' ')).join('\n');
      // One transaction of two rows: one feed entry holding both changes.
      expect(entries).toHaveLength(1);
      expect(await feedLength(redis, stream)).toBe(2);
      expect(text).toContain('post-position');
      expect(text).not.toContain('pre-position');
      await stop(job.id);
    });

    it('PostgreSQL LSN: transactions committed before the LSN are not captured, later ones are', async () => {
      const src = await pgDatabase(inject('pgUrl'), uniq('lsn_src')); handles.push(src);
      const dst = await pgDatabase(inject('pgUrl'), uniq('lsn_dst')); handles.push(dst);
      await src.query(ITEMS.create(src));
      // The slot only exists once the job runs, so the position lies ahead: 64 MB of WAL from now.
      const [{ lsn }] = await src.query<{ lsn: string }>(`SELECT (pg_current_wal_lsn() + 67108864)::text AS lsn`);
      const job = track(await createJob(gw.url, { name: uniq('start_lsn'), type: 'SYNCHRONOUS', source: endpoint(src), destination: endpoint(dst), tables: [{ schema: 'public' }], snapshot: false, startPosition: lsn }));
      const start = await captureStarted(gw.url, job.id) as { lsn: string };
      expect(start.lsn).toBe(lsn.toUpperCase());
      await src.query(`INSERT INTO items (id, name) VALUES (1, 'before'), (2, 'before')`);
      // Move the WAL past the position: switch segments until the insert position passes it.
      await waitFor(async () => {
        await src.query('SELECT pg_switch_wal()');
        await src.query(`CREATE TEMP TABLE IF NOT EXISTS walpad (x int); INSERT INTO walpad VALUES (1)`).catch(() => undefined);
        return (await src.query<{ past: boolean }>(`SELECT pg_current_wal_lsn() > $1::pg_lsn AS past`, [lsn]))[0]!.past;
      }, (past) => past, 60_000, 'WAL past the start position');
      await src.query(`INSERT INTO items (id, name) VALUES (3, 'after')`);
      await src.query(`UPDATE items SET name = 'after-upd' WHERE id = 1`);
      const dstTable = qname(dst, 'public', 'items');
      await waitFor(() => idsOf(dst, dstTable), (ids) => ids.length >= 2, 30_000, 'rows after the position')
        .catch(async (err) => { throw new Error(`${(err as Error).message}; job ${JSON.stringify(await getJob(gw.url, job.id))}`); });
      await sleep(1000);
      expect(await idsOf(dst, dstTable)).toEqual([1, 3]);
      expect((await dst.query(`SELECT name FROM ${dstTable} WHERE id = 1`))[0].name).toBe('after-upd');
      await stop(job.id);
    });
  });

  describe('testConnection', () => {
    const check = async (input: Record<string, unknown>) => {
      const r = await gql(gw.url, `mutation($i: ConnectionInput!) { testConnection(input: $i) { ok reachable missing error details } }`, { i: input });
      expect(r.body.errors, JSON.stringify(r.body.errors)).toBeUndefined();
      return r.body.data.testConnection as { ok: boolean; reachable: boolean; missing: string[]; error: string | null; details: Record<string, string> };
    };
    const reachable = async (fn: () => Promise<unknown>) => { try { await fn(); return true; } catch { return false; } };

    it('private servers: ok', async () => {
      const m = new URL(inject('mariaUrl')); const p = new URL(inject('pgUrl'));
      const maria = await check({ kind: 'MYSQL', host: m.hostname, port: Number(m.port), user: 'root', password: '' });
      expect(maria).toMatchObject({ ok: true, reachable: true, missing: [] });
      const pgc = await check({ kind: 'POSTGRES', host: p.hostname, port: Number(p.port), user: 'postgres', password: '', database: 'postgres' });
      expect(pgc).toMatchObject({ ok: true, reachable: true, missing: [] });
    });

    it("the machine's default MariaDB (3306, no binlog): names what capture lacks", async (ctx) => {
      const ok = await reachable(async () => { const c = await mysql.createConnection({ host: '127.0.0.1', port: 3306, user: 'root', password: '', connectTimeout: 2000 }); await c.end(); });
      if (!ok) { ctx.skip(); return; }
      const r = await check({ kind: 'MYSQL', host: '127.0.0.1', port: 3306, user: 'root', password: '' });
      console.log(`default MariaDB: ${JSON.stringify(r.missing)} ${JSON.stringify(r.details)}`);
      expect(r.ok).toBe(false);
      expect(r.reachable).toBe(true);
      expect(r.missing).toContain('log_bin');
      if (r.details.binlog_format !== 'ROW') expect(r.missing).toContain('binlog_format=ROW');
      expect(r.missing).not.toContain('REPLICATION SLAVE');
    });

    it("the machine's default PostgreSQL (5432, wal_level=replica): names what capture lacks", async (ctx) => {
      const ok = await reachable(async () => { const c = new pg.Client({ host: '127.0.0.1', port: 5432, user: 'postgres', database: 'postgres', connectionTimeoutMillis: 2000 }); await c.connect(); await c.end(); });
      if (!ok) { ctx.skip(); return; }
      const r = await check({ kind: 'POSTGRES', host: '127.0.0.1', port: 5432, user: 'postgres', password: '', database: 'postgres' });
      console.log(`default PostgreSQL: ${JSON.stringify(r.missing)} ${JSON.stringify(r.details)}`);
      expect(r.reachable).toBe(true);
      if (r.details.wal_level !== 'logical') {
        expect(r.ok).toBe(false);
        expect(r.missing).toContain('wal_level=logical');
      }
      expect(r.missing).not.toContain('REPLICATION attribute');
    });

    it('a restricted MariaDB user: missing privileges are named', async () => {
      const m = new URL(inject('mariaUrl'));
      const admin = await mysql.createConnection({ host: m.hostname, port: Number(m.port), user: 'root', password: '' });
      const user = uniq('lim'); const db = uniq('limdb');
      try {
        await admin.query(`CREATE DATABASE ${db}`);
        await admin.query(`CREATE USER '${user}'@'%' IDENTIFIED BY 'pw-${user}'`);
        const none = await check({ kind: 'MYSQL', host: m.hostname, port: Number(m.port), user, password: `pw-${user}`, database: db });
        expect(none.ok).toBe(false);
        expect(none.missing).toEqual(expect.arrayContaining(['REPLICATION SLAVE', 'BINLOG MONITOR', 'SELECT']));
        expect(none.missing).not.toContain('log_bin');
        await admin.query(`GRANT SELECT ON ${db}.* TO '${user}'@'%'`);
        await admin.query(`GRANT REPLICATION SLAVE ON *.* TO '${user}'@'%'`);
        const some = await check({ kind: 'MYSQL', host: m.hostname, port: Number(m.port), user, password: `pw-${user}`, database: db });
        expect(some.missing).toEqual(['BINLOG MONITOR']);
        await admin.query(`GRANT BINLOG MONITOR ON *.* TO '${user}'@'%'`);
        const all = await check({ kind: 'MYSQL', host: m.hostname, port: Number(m.port), user, password: `pw-${user}`, database: db });
        expect(all).toMatchObject({ ok: true, missing: [] });
      } finally {
        await admin.query(`DROP USER IF EXISTS '${user}'@'%'`);
        await admin.query(`DROP DATABASE IF EXISTS ${db}`);
        await admin.end();
      }
    });

    it('a PostgreSQL role without REPLICATION: named', async () => {
      const p = new URL(inject('pgUrl'));
      const admin = new pg.Client({ connectionString: inject('pgUrl') });
      await admin.connect();
      const role = uniq('lim');
      try {
        await admin.query(`CREATE ROLE ${role} LOGIN PASSWORD 'pw'`);
        const r = await check({ kind: 'POSTGRES', host: p.hostname, port: Number(p.port), user: role, password: 'pw', database: 'postgres' });
        expect(r).toMatchObject({ ok: false, reachable: true });
        expect(r.missing).toEqual(['REPLICATION attribute']);
        await admin.query(`ALTER ROLE ${role} REPLICATION`);
        const r2 = await check({ kind: 'POSTGRES', host: p.hostname, port: Number(p.port), user: role, password: 'pw', database: 'postgres' });
        expect(r2).toMatchObject({ ok: true, missing: [] });
      } finally {
        await admin.query(`DROP ROLE IF EXISTS ${role}`);
        await admin.end();
      }
    });
  });
});
