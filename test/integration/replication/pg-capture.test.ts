/**
 * PostgreSQL capture (pgoutput), snapshot reader and connection check against
 * the suite's private PostgreSQL (wal_level=logical). Everything happens in a
 * database of its own so other suites on the same server are not disturbed.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import pg from 'pg';
import { Operation, type CapturedTransaction, type ChangeEvent, type Row } from '../../../src/replication/change-event.ts';
import type { DbConnectionConfig, TableFilter } from '../../../src/replication/connection-config.ts';
import { FatalError, ReplicationError, RetriableError } from '../../../src/replication/errors.ts';
import { silentLogger } from '../../../src/replication/logger.ts';
import { lsnToBigInt, makeSequence, sequenceFromLsn } from '../../../src/replication/sequence.ts';
import { PgLogicalCapture, pgCaptureName } from '../../../src/replication/capture/pg-logical.capture.ts';
import { checkPgCapture, PgCaptureRequirement } from '../../../src/replication/capture/pg-check.ts';
import { PgSnapshotReader } from '../../../src/replication/snapshot/pg.snapshot.ts';
import { parseCover } from '../../../src/replication/snapshot/snapshot-cover.ts';

const pgUrl = new URL(inject('pgUrl'));
const dbName = `capdb_${Math.random().toString(36).slice(2, 10)}`;
const conn: DbConnectionConfig = {
  kind: 'postgres', host: pgUrl.hostname, port: Number(pgUrl.port), user: decodeURIComponent(pgUrl.username), password: '', database: dbName,
};
let db: pg.Client;
const captures: PgLogicalCapture[] = [];

function capture(jobId: string, tables: TableFilter, extra: { selectorColumn?: string } = {}): PgLogicalCapture {
  const c = new PgLogicalCapture({ connection: conn, jobId, tables, logger: silentLogger, ...extra });
  captures.push(c);
  return c;
}

/** Run until `enough(txs)` or a timeout; returns what the handler saw. */
async function collect(c: PgLogicalCapture, enough: (txs: CapturedTransaction[]) => boolean, timeoutMs = 20_000): Promise<CapturedTransaction[]> {
  const txs: CapturedTransaction[] = [];
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), timeoutMs);
  await c.run(async (tx) => {
    txs.push(tx);
    if (enough(txs)) ac.abort();
  }, ac.signal);
  clearTimeout(timer);
  return txs;
}

const events = (txs: CapturedTransaction[]): ChangeEvent[] => txs.flatMap((t) => t.events);

beforeAll(async () => {
  const admin = new pg.Client({ connectionString: pgUrl.toString() });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${dbName}`);
  await admin.end();
  db = new pg.Client({ host: conn.host, port: conn.port, user: conn.user, database: dbName });
  await db.connect();
  await db.query(`CREATE SCHEMA s1`);
});

afterAll(async () => {
  for (const c of captures) {
    await c.drop().catch(() => undefined);
    await c.close();
  }
  await db?.end();
  const admin = new pg.Client({ connectionString: pgUrl.toString() });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
  await admin.query(`DROP ROLE IF EXISTS cap_plain_${dbName}`);
  await admin.end();
});

describe('PgLogicalCapture: transactions', () => {
  it('delivers multi-statement transactions whole, in commit order, with before/after, scope and Transicator sequences', async () => {
    await db.query(`CREATE TABLE s1.orders (id int PRIMARY KEY, note text, amount numeric(10,2), _change_selector text)`);
    const c = capture('Job-A.1', { schemas: [{ schema: 's1', tables: ['orders'] }] });
    const prepared = await c.prepare();
    expect(c.slotName).toBe('tributary_job_a_1');
    expect(prepared.snapshotName).toMatch(/^[0-9A-F-]+$/);
    const ident = await db.query(`SELECT relreplident FROM pg_class WHERE oid = 's1.orders'::regclass`);
    expect(ident.rows[0].relreplident).toBe('f');

    const a = new pg.Client({ host: conn.host, port: conn.port, user: conn.user, database: dbName });
    await a.connect();
    await a.query('BEGIN');
    const xidA = (await a.query(`SELECT txid_current()::text AS x`)).rows[0].x as string;
    await a.query(`INSERT INTO s1.orders VALUES (1, 'first', 10.50, 'tenantA')`);
    await db.query(`INSERT INTO s1.orders VALUES (2, 'second', 20, 'tenantB')`); // autocommit: commits before A
    await a.query(`UPDATE s1.orders SET note = 'first!', amount = 11 WHERE id = 1`);
    const lsnBefore = lsnToBigInt((await db.query('SELECT pg_current_wal_insert_lsn()::text AS l')).rows[0].l);
    await a.query('COMMIT');
    const lsnAfter = lsnToBigInt((await db.query('SELECT pg_current_wal_insert_lsn()::text AS l')).rows[0].l);
    await a.end();
    await db.query(`BEGIN; UPDATE s1.orders SET note = 'two' WHERE id = 2; DELETE FROM s1.orders WHERE id = 2; COMMIT`);

    const txs = await collect(c, (t) => t.length >= 3);
    expect(txs).toHaveLength(3);
    expect(txs.map((t) => t.events.map((e) => e.op))).toEqual([
      [Operation.Insert],
      [Operation.Insert, Operation.Update],
      [Operation.Update, Operation.Delete],
    ]);
    const txA = txs[1]!;
    expect(txA.txid).toBe(String(BigInt(xidA) & 0xffffffffn));
    const commitLsn = BigInt(txA.commitSequence);
    // The commit record starts at (or, with other sessions writing WAL, after) the insert position seen before COMMIT.
    expect(commitLsn >= lsnBefore && commitLsn < lsnAfter).toBe(true);
    expect(lsnToBigInt((txA.resume as { lsn: string }).lsn) <= lsnAfter).toBe(true);
    // Commit order, strictly increasing commit LSNs, resume after the commit.
    expect(BigInt(txs[0]!.commitSequence) < commitLsn && commitLsn < BigInt(txs[2]!.commitSequence)).toBe(true);
    expect(lsnToBigInt((txA.resume as { lsn: string }).lsn) > commitLsn).toBe(true);
    for (const tx of txs) {
      tx.events.forEach((e, i) => {
        const n = BigInt(tx.commitSequence);
        expect(e.sequence).toBe(makeSequence(n >> 32n, n & 0xffffffffn, i));
        expect(e.sequence).toMatch(/^[0-9a-f]+\.[0-9a-f]+\.[0-9a-f]+$/);
        expect(e.index).toBe(i);
        expect(e.txid).toBe(tx.txid);
        expect(e.commitTime).toBe(tx.commitTime);
      });
    }
    const [ins, upd] = txA.events as [ChangeEvent, ChangeEvent];
    expect(ins).toMatchObject({ schema: 's1', table: 'orders', key: ['id'], before: null, scope: 'tenantA' });
    expect(ins.after).toEqual({ id: 1, note: 'first', amount: '10.50', _change_selector: 'tenantA' });
    expect(upd.before).toEqual({ id: 1, note: 'first', amount: '10.50', _change_selector: 'tenantA' });
    expect(upd.after).toEqual({ id: 1, note: 'first!', amount: '11.00', _change_selector: 'tenantA' });
    expect(Math.abs(txA.commitTime - Date.now())).toBeLessThan(60_000);
    const del = txs[2]!.events[1]!;
    expect(del.before).toEqual({ id: 2, note: 'two', amount: '20.00', _change_selector: 'tenantB' });
    expect(del.after).toBeNull();
    expect(del.beforeKeyOnly).toBeUndefined();
  });

  it('re-delivers what was not acknowledged, with identical sequences, after an abrupt stop and a killed walsender', async () => {
    await db.query(`CREATE TABLE s1.bulk (id int PRIMARY KEY, v text)`);
    const filter = { schemas: [{ schema: 's1', tables: ['bulk'] }] };
    const c1 = capture('restart-job', filter);
    await c1.prepare();
    const TX = 20;
    const ROWS = 100;
    for (let t = 0; t < TX; t++) {
      await db.query(`INSERT INTO s1.bulk SELECT g, 'row ' || g FROM generate_series(${t * ROWS + 1}, ${(t + 1) * ROWS}) g`);
    }
    // Run 1: handle 5 transactions, then stop abruptly while the 6th is in the handler (never acknowledged).
    const handled: CapturedTransaction[] = [];
    const ac = new AbortController();
    const started = Date.now();
    await c1.run(async (tx) => {
      if (handled.length === 5) {
        ac.abort();
        await new Promise((r) => setTimeout(r, 50));
        throw new Error('crashed before durable');
      }
      handled.push(tx);
    }, ac.signal);
    await c1.close();
    expect(handled).toHaveLength(5);

    // Run 2 (a new process would build a new capture): the walsender is killed after 5 more.
    const c2 = capture('restart-job', filter);
    const second: CapturedTransaction[] = [];
    const failure = await c2.run(async (tx) => {
      second.push(tx);
      if (second.length === 5) {
        await db.query(`SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = $1`, [c2.slotName]);
      }
    }, new AbortController().signal).then(() => undefined, (e: unknown) => e);
    expect(failure).toBeInstanceOf(RetriableError);
    await c2.close();

    // Run 3: the rest. prepare() on an existing slot keeps it: no new slot, no exported snapshot.
    const c3 = capture('restart-job', filter);
    const again = await c3.prepare();
    expect(again.snapshotName).toBeUndefined();
    const resumeOf = (tx: CapturedTransaction): bigint => lsnToBigInt((tx.resume as { lsn: string }).lsn);
    const confirmed = lsnToBigInt((again.position as { lsn: string }).lsn);
    // The 5th of run 2 was in its handler when the walsender died: never acknowledged.
    expect(confirmed >= resumeOf(handled[4]!) && confirmed <= resumeOf(second[3]!)).toBe(true);
    const third = await collect(c3, (t) => t.length > 0 && t[t.length - 1]!.events.some((e) => e.after?.id === TX * ROWS));
    const elapsed = Date.now() - started;

    const all = [...handled, ...second, ...third];
    const bySeq = new Map<string, CapturedTransaction>();
    for (const tx of all) {
      const prev = bySeq.get(tx.commitSequence);
      if (prev) expect(tx.events.map((e) => e.sequence)).toEqual(prev.events.map((e) => e.sequence));
      bySeq.set(tx.commitSequence, tx);
    }
    // Nothing lost: every row once among the distinct transactions, and at least once overall.
    const ids = [...bySeq.values()].flatMap((t) => t.events.map((e) => e.after!.id as number)).sort((x, y) => x - y);
    expect(ids).toEqual(Array.from({ length: TX * ROWS }, (_, i) => i + 1));
    expect(bySeq.size).toBe(TX);
    // Acknowledged transactions are not re-sent: run 2 starts at the 6th; run 3 right after what was confirmed.
    const order = [...bySeq.keys()].sort((x, y) => (BigInt(x) < BigInt(y) ? -1 : 1));
    expect(second[0]!.commitSequence).toBe(order[5]);
    expect(BigInt(third[0]!.commitSequence) > confirmed).toBe(true);
    expect(BigInt(third[0]!.commitSequence) <= BigInt(second[4]!.commitSequence)).toBe(true);
    console.info(`[pg-capture] ${TX * ROWS} rows over 3 runs with restarts in ${elapsed} ms`);
  });
});

describe('PgLogicalCapture: identity and throughput', () => {
  it('without REPLICA IDENTITY FULL, before holds only the key and says so', async () => {
    await db.query(`CREATE TABLE s1.keyonly (id int PRIMARY KEY, v text)`);
    const c = new PgLogicalCapture({
      connection: conn, jobId: 'keyonly-job', tables: { schemas: [{ schema: 's1', tables: ['keyonly'] }] }, logger: silentLogger, replicaIdentityFull: false,
    });
    captures.push(c);
    await c.prepare();
    await db.query(`INSERT INTO s1.keyonly VALUES (1, 'a'), (2, 'b')`);
    await db.query(`UPDATE s1.keyonly SET v = 'a2' WHERE id = 1`);
    await db.query(`UPDATE s1.keyonly SET id = 20 WHERE id = 2`);
    await db.query(`DELETE FROM s1.keyonly WHERE id = 1`);
    const es = events(await collect(c, (t) => events(t).length >= 5)).slice(2);
    expect(es.map((e) => [e.op, e.before, e.after, e.beforeKeyOnly])).toEqual([
      [Operation.Update, { id: 1 }, { id: 1, v: 'a2' }, true],
      [Operation.Update, { id: 2 }, { id: 20, v: 'b' }, true],
      [Operation.Delete, { id: 1 }, null, true],
    ]);
  });

  it('streams ten thousand rows in commit order (throughput probe)', async () => {
    await db.query(`CREATE TABLE s1.tp (id int PRIMARY KEY, v text, n numeric(12,2), ts timestamptz)`);
    const c = capture('throughput-job', { schemas: [{ schema: 's1', tables: ['tp'] }] });
    await c.prepare();
    await db.query(`INSERT INTO s1.tp SELECT g, md5(g::text), g / 3.0, now() FROM generate_series(1, 10000) g`);
    for (let i = 0; i < 200; i++) await db.query(`UPDATE s1.tp SET v = 'u' WHERE id = $1`, [i + 1]);
    const started = Date.now();
    let rows = 0;
    let last = -1n;
    const whole = (t: CapturedTransaction[]) => t.filter((x) => !x.partial).length;
    const txs = await collect(c, (t) => {
      const tx = t[t.length - 1]!;
      rows += tx.events.length;
      const n = BigInt(tx.commitSequence);
      // The pieces of one large transaction share its commit sequence; transactions follow in commit order.
      if (n !== last) expect(n > last).toBe(true);
      last = n;
      return whole(t) >= 201;
    }, 60_000);
    const ms = Date.now() - started;
    expect(whole(txs)).toBe(201);
    // The 10,000-row transaction came in pieces of 5,000 changes before its commit, and its (here empty) end with it.
    expect(txs.filter((x) => x.partial).map((x) => x.events.length)).toEqual([5000, 5000]);
    expect(txs[2]!.partial).toBeUndefined();
    expect(txs[2]!.events).toEqual([]);
    expect(txs[0]!.events.map((e) => e.index).slice(-1)).toEqual([4999]);
    expect(txs[1]!.events[0]!.index).toBe(5000);
    expect(rows).toBe(10_200);
    console.info(`[pg-capture] ${rows} rows in ${txs.length} transactions in ${ms} ms (${Math.round((rows * 1000) / ms)} rows/s)`);
  });
});

describe('PgLogicalCapture: types and schema changes', () => {
  it('maps every kind exactly, and the snapshot reader produces identical values', async () => {
    await db.query(`CREATE TYPE s1.mood AS ENUM ('sad', 'ok', 'happy')`);
    await db.query(`CREATE TABLE s1.types (
      id int8 PRIMARY KEY, i2 int2, i4 int4, i8 int8, n65 numeric(65,30), nfree numeric, f4 real, f8 double precision, fnan float8,
      txt text, vc varchar(20), ch char(5), by bytea, d date, t time(3), ts timestamp, tstz timestamptz, js json, jb jsonb,
      b bool, u uuid, bt bit(8), vb varbit(16), mood s1.mood, arr int[], iv interval, nul text)`);
    const c = capture('types-job', { schemas: [{ schema: 's1', tables: ['types'] }] });
    await c.prepare();
    await db.query(`INSERT INTO s1.types VALUES (
      9223372036854775807, -32768, 2147483647, -9223372036854775808,
      '12345678901234567890123456789012345.123456789012345678901234567890', '-0.000000000000000000000000000001',
      1.5, 0.1, 'NaN', 'emoji 😀 héllo 中文', 'varchar', 'ab', '\\x00ff10', '2024-02-29', '13:14:15.123', '2024-02-29 23:59:59.123456',
      '2024-02-29 23:59:59.123456+05:30', '{"b": 1, "a": [1, 2]}', '{"b": 1, "a": [1, 2]}', true, 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11',
      B'10101010', B'101', 'happy', '{1,2,3}', '1 day 02:03:04', NULL)`);
    await db.query(`INSERT INTO s1.types (id, tstz, ts, t) VALUES (1, '2000-01-01 00:00:00+00', '1999-12-31 23:59:59', '00:00:00.5')`);
    const txs = await collect(c, (t) => events(t).length >= 2);
    const [big, small] = events(txs) as [ChangeEvent, ChangeEvent];
    expect(big.after).toEqual({
      id: '9223372036854775807', i2: -32768, i4: 2147483647, i8: '-9223372036854775808',
      n65: '12345678901234567890123456789012345.123456789012345678901234567890', nfree: '-0.000000000000000000000000000001',
      f4: 1.5, f8: 0.1, fnan: 'NaN', txt: 'emoji 😀 héllo 中文', vc: 'varchar', ch: 'ab   ', by: Buffer.from([0, 255, 16]).toString('base64'),
      d: '2024-02-29', t: '13:14:15.123000', ts: '2024-02-29 23:59:59.123456', tstz: '2024-02-29T18:29:59.123456Z',
      js: '{"b": 1, "a": [1, 2]}', jb: '{"a": [1, 2], "b": 1}', b: true, u: 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
      bt: '10101010', vb: '101', mood: 'happy', arr: '{1,2,3}', iv: '1 day 02:03:04', nul: null,
    });
    expect(small.after).toMatchObject({ id: 1, tstz: '2000-01-01T00:00:00.000000Z', ts: '1999-12-31 23:59:59', t: '00:00:00.500000' });
    const col = (name: string) => big.columns.find((x) => x.name === name)!;
    expect(col('n65')).toMatchObject({ kind: 'decimal', precision: 65, scale: 30, sourceType: 'numeric(65,30)' });
    expect(col('vc')).toMatchObject({ kind: 'text', length: 20 });
    expect(col('ch')).toMatchObject({ kind: 'text', length: 5, fixed: true });
    expect(col('t')).toMatchObject({ kind: 'time', fsp: 3 });
    expect(col('ts')).toMatchObject({ kind: 'datetime', fsp: 6 });
    expect(col('tstz')).toMatchObject({ kind: 'timestamptz', fsp: 6 });
    expect(col('mood')).toMatchObject({ kind: 'enum', values: ['sad', 'ok', 'happy'] });
    expect(col('bt')).toMatchObject({ kind: 'bit', size: 8 });
    expect(col('i8')).toMatchObject({ kind: 'int', size: 8 });
    expect(col('id')).toMatchObject({ kind: 'int', nullable: false });
    expect(Object.fromEntries(big.columns.map((x) => [x.name, x.kind]))).toMatchObject({
      f4: 'float', by: 'binary', d: 'date', js: 'json', jb: 'json', b: 'bool', u: 'uuid', vb: 'bit', arr: 'other', iv: 'other', txt: 'text',
    });

    const reader = new PgSnapshotReader({ connection: conn, logger: silentLogger });
    try {
      const [info] = await reader.listTables({ schemas: [{ schema: 's1', tables: ['types'] }] });
      expect(info!.key).toEqual(['id']);
      expect(info!.columns).toEqual(big.columns);
      const rows: Row[] = [];
      for await (const batch of reader.readChunk(info!, { index: 0 }, 1)) rows.push(...batch);
      expect(rows).toEqual([small.after, big.after]);
    } finally {
      await reader.close();
    }
  });

  it('emits synthetic DDL for added/dropped columns, truncate, and new tables under FOR ALL TABLES', async () => {
    await db.query(`CREATE TABLE s1.evolve (id int PRIMARY KEY, a text)`);
    const c = capture('ddl-job', { schemas: [{ schema: 's1', tables: ['evolve'] }] });
    await c.prepare();
    const all = capture('all-tables-job', { schemas: [] });
    await all.prepare();
    await db.query(`INSERT INTO s1.evolve VALUES (1, 'x')`);
    await db.query(`ALTER TABLE s1.evolve ADD COLUMN extra numeric(5,2)`);
    await db.query(`INSERT INTO s1.evolve VALUES (2, 'y', 1.25)`);
    await db.query(`ALTER TABLE s1.evolve DROP COLUMN a`);
    await db.query(`UPDATE s1.evolve SET extra = 2 WHERE id = 1`);
    await db.query(`TRUNCATE s1.evolve`);
    await db.query(`CREATE TABLE s1.fresh (k text PRIMARY KEY, n int NOT NULL)`);
    await db.query(`INSERT INTO s1.fresh VALUES ('k1', 1)`);
    await db.query(`INSERT INTO s1.evolve VALUES (3, 3)`);

    const summary = (es: ChangeEvent[]) => es.map((e) => (e.op === Operation.Ddl ? e.ddl : `${e.op} ${e.table}`));
    const got = events(await collect(c, (t) => events(t).some((e) => e.after?.id === 3)));
    expect(summary(got)).toEqual([
      'insert evolve',
      'ALTER TABLE "s1"."evolve" ADD COLUMN "extra" numeric(5,2)',
      'insert evolve',
      'ALTER TABLE "s1"."evolve" DROP COLUMN "a"',
      'update evolve',
      'TRUNCATE "s1"."evolve"',
      'insert evolve',
    ]);
    const upd = got[4]!;
    expect(upd.columns.map((x) => x.name)).toEqual(['id', 'extra']);
    expect(upd.after).toEqual({ id: 1, extra: '2.00' });

    const gotAll = events(await collect(all, (t) => events(t).some((e) => e.after?.id === 3)));
    const freshIdx = gotAll.findIndex((e) => e.table === 'fresh');
    expect(gotAll[freshIdx]!.ddl).toBe('CREATE TABLE "s1"."fresh" ("k" text NOT NULL, "n" integer NOT NULL, PRIMARY KEY ("k"))');
    expect(gotAll[freshIdx + 1]).toMatchObject({ op: Operation.Insert, table: 'fresh', key: ['k'], after: { k: 'k1', n: 1 } });
    // Tables that existed when the run began produce no CREATE.
    expect(gotAll.filter((e) => e.ddl?.startsWith('CREATE')).map((e) => e.table)).toEqual(['fresh']);
    await all.drop();
    await all.drop(); // idempotent
    const left = await db.query(`SELECT count(*)::int AS n FROM pg_replication_slots WHERE slot_name = $1`, [pgCaptureName('all-tables-job')]);
    expect(left.rows[0].n).toBe(0);
  });
});

describe('PgSnapshotReader', () => {
  it('reads the exported snapshot: rows committed after slot creation are in the stream, not the snapshot', async () => {
    await db.query(`CREATE TABLE s1.snap (id int PRIMARY KEY, v text)`);
    await db.query(`INSERT INTO s1.snap SELECT g, 'v' || g FROM generate_series(1, 1000) g`);
    const c = capture('snap-job', { schemas: [{ schema: 's1', tables: ['snap'] }] });
    const prepared = await c.prepare();
    await db.query(`INSERT INTO s1.snap SELECT g, 'late' FROM generate_series(1001, 1010) g`);
    await db.query(`UPDATE s1.snap SET v = 'changed' WHERE id = 1`);
    const reader = new PgSnapshotReader({ connection: conn, logger: silentLogger });
    try {
      const [info] = await reader.listTables({ schemas: [{ schema: 's1', tables: ['snap'] }] });
      expect(info!.estimatedRows).toBeGreaterThan(0);
      const chunks = await reader.planChunks(info!, 300);
      expect(chunks).toHaveLength(4);
      const rows: Row[] = [];
      for (const chunk of chunks) {
        for await (const batch of reader.readChunk(info!, chunk, 128, { snapshotName: prepared.snapshotName })) rows.push(...batch);
      }
      expect(rows.map((r) => r.id)).toEqual(Array.from({ length: 1000 }, (_, i) => i + 1));
      expect(rows[0]).toEqual({ id: 1, v: 'v1' });
      // A snapshot that cannot be imported falls back to a fresh one (logged).
      let fresh = 0;
      for await (const batch of reader.readChunk(info!, { index: 0 }, 500, { snapshotName: '00000009-00000009-1' })) fresh += batch.length;
      expect(fresh).toBe(1010);
    } finally {
      await reader.close();
    }
    const streamed = events(await collect(c, (t) => events(t).length >= 11));
    expect(streamed.map((e) => `${e.op}:${e.after!.id}`)).toEqual([
      ...Array.from({ length: 10 }, (_, i) => `insert:${1001 + i}`), 'update:1',
    ]);
    expect(streamed[10]!.before).toEqual({ id: 1, v: 'v1' });
    expect(prepared.position.kind).toBe('postgres');
    // The stream starts after the slot's consistent point, which the snapshot is consistent with.
    expect(BigInt(streamed[0]!.commitSequence) >= lsnToBigInt((prepared.position as { lsn: string }).lsn)).toBe(true);
    expect(streamed[0]!.sequence).toBe(sequenceFromLsn(streamed[0]!.sequence.split('.').slice(0, 2).join('/'), 0));
  });

  it('a keyless chunk reports what it holds of the stream: nothing on the exported snapshot, exactly the earlier transactions on a fresh one', async () => {
    await db.query(`CREATE TABLE s1.klcover (x int, y text)`);
    const c = capture('klcover-job', { schemas: [{ schema: 's1', tables: ['klcover'] }] });
    const prepared = await c.prepare();
    await db.query(`INSERT INTO s1.klcover VALUES (1, 'before the read')`);
    const reader = new PgSnapshotReader({ connection: conn, logger: silentLogger });
    const covers: Record<string, string> = {};
    try {
      const [info] = await reader.listTables({ schemas: [{ schema: 's1', tables: ['klcover'] }] });
      const read = async (name: string, snapshotName: string) => {
        const rows: Row[] = [];
        for await (const b of reader.readChunk(info!, { index: 0 }, 100, { snapshotName, onCover: (cv) => { covers[name] = cv; } })) rows.push(...b);
        return rows.map((r) => r.x);
      };
      expect(await read('exported', prepared.snapshotName!)).toEqual([]);
      // The export cannot be imported (the capture restarted during the snapshot): a fresh snapshot.
      expect(await read('fresh', '00000009-00000009-1')).toEqual([1]);
    } finally {
      await reader.close();
    }
    await db.query(`INSERT INTO s1.klcover VALUES (2, 'after the read')`);
    const streamed = events(await collect(c, (t) => events(t).length >= 2));
    expect(streamed.map((e) => e.after!.x)).toEqual([1, 2]);
    const exported = parseCover(covers.exported)!;
    const fresh = parseCover(covers.fresh)!;
    expect(streamed.map((e) => exported.holds(e))).toEqual([false, false]);
    expect(streamed.map((e) => fresh.holds(e))).toEqual([true, false]);
  });

  it('chunks composite keys with row comparison, and reads key-less tables as one chunk', async () => {
    await db.query(`CREATE TABLE s1.comp (a int, b text, v int, PRIMARY KEY (a, b))`);
    await db.query(`INSERT INTO s1.comp SELECT g % 7, 'k' || g, g FROM generate_series(1, 2000) g`);
    await db.query(`CREATE TABLE s1.nokey (x int, y text)`);
    await db.query(`INSERT INTO s1.nokey SELECT g, 'y' FROM generate_series(1, 1500) g`);
    await db.query(`ANALYZE s1.comp`);
    const reader = new PgSnapshotReader({ connection: conn, logger: silentLogger });
    try {
      const tables = await reader.listTables({ schemas: [{ schema: 's1', tables: ['comp', 'nokey'] }] });
      const comp = tables.find((t) => t.table === 'comp')!;
      const nokey = tables.find((t) => t.table === 'nokey')!;
      expect(comp.key).toEqual(['a', 'b']);
      expect(comp.estimatedRows).toBe(2000);
      expect(nokey.key).toEqual([]);
      expect(nokey.estimatedRows).toBe(1500);
      const chunks = await reader.planChunks(comp, 250);
      expect(chunks).toHaveLength(9);
      expect(chunks[1]!.after).toEqual(chunks[0]!.upTo);
      const seen: string[] = [];
      const started = Date.now();
      for (const ch of chunks) {
        for await (const batch of reader.readChunk(comp, ch, 100)) seen.push(...batch.map((r) => `${r.a}|${r.b}`));
      }
      const elapsed = Date.now() - started;
      expect(seen).toHaveLength(2000);
      expect(new Set(seen).size).toBe(2000);
      expect(await reader.planChunks(nokey, 100)).toEqual([{ index: 0 }]);
      let n = 0;
      for await (const batch of reader.readChunk(nokey, { index: 0 }, 400)) {
        expect(batch.length).toBeLessThanOrEqual(400);
        n += batch.length;
      }
      expect(n).toBe(1500);
      expect((await reader.position()).kind).toBe('postgres');
      console.info(`[pg-snapshot] 2000 rows in ${chunks.length} composite-key chunks in ${elapsed} ms`);
    } finally {
      await reader.close();
    }
  });
});

describe('checkPgCapture', () => {
  it('is ok on the private server', async () => {
    const r = await checkPgCapture(conn);
    expect(r.missing).toEqual([]);
    expect(r.ok).toBe(true);
    expect(r.details.wal_level).toBe('logical');
  });

  it('reports a missing REPLICATION attribute for a plain user', async () => {
    const role = `cap_plain_${dbName}`;
    await db.query(`CREATE ROLE ${role} LOGIN PASSWORD 'plainpw'`);
    const r = await checkPgCapture({ ...conn, user: role, password: 'plainpw' });
    expect(r.ok).toBe(false);
    expect(r.missing).toEqual([PgCaptureRequirement.Replication]);
  });

  it('reports wal_level against the machine PostgreSQL on 5432 (skipped if unreachable)', async (ctx) => {
    const local: DbConnectionConfig = { kind: 'postgres', host: '127.0.0.1', port: 5432, user: 'postgres', password: '', database: 'postgres' };
    let r;
    try {
      r = await checkPgCapture(local);
    } catch (err) {
      ctx.skip(`machine PostgreSQL unreachable: ${(err as Error).message}`);
      return;
    }
    expect(r.missing).toContain(PgCaptureRequirement.WalLevel);
    expect(r.ok).toBe(false);
  });

  it('fails with a classified error naming the target but never the password when unreachable', async () => {
    const err = await checkPgCapture({ ...conn, port: 1, password: 's3cret-pw' }).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(ReplicationError);
    expect((err as ReplicationError).retriable).toBe(true);
    expect((err as Error).message).toContain(`127.0.0.1:1`);
    expect((err as Error).message).not.toContain('s3cret-pw');
  });

  it('refuses to run without a slot (fatal)', async () => {
    const c = capture('never-prepared', { schemas: [{ schema: 's1', tables: ['orders'] }] });
    const err = await c.run(async () => undefined, new AbortController().signal).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(FatalError);
  });
});
