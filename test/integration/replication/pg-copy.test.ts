/**
 * The pipelined COPY (src/replication/apply/pg-copy.ts) against a real
 * PostgreSQL: the query, its data and CopyDone go out in one write, with
 * statements before and after the COPY in the same simple query; a COPY
 * that fails before it begins, or half-way through its data, rejects with
 * the server's error and leaves the connection usable.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { ColumnType, Row } from '../../../src/replication/change-event.ts';
import { COPY_DONE, copyFrames, copyIn, copyParts, copySql, copyText, putCopyRows } from '../../../src/replication/apply/pg-copy.ts';
import { pgSites } from '../../../src/replication/apply/pg-sql.ts';

const SCHEMA = `pgcopy_${randomBytes(3).toString('hex')}`;
const REF = { schema: SCHEMA, table: 't' };
const COLUMNS: ColumnType[] = [
  { name: 'id', kind: 'int', sourceType: 'integer', size: 4, pgOid: 23 },
  { name: 'v', kind: 'text', sourceType: 'text', family: 'text', pgOid: 25 },
  { name: 'b', kind: 'binary', sourceType: 'bytea', pgOid: 17 },
];
const ODD = 'tab\there, new\nline, cr\r, back\\slash, 😀, \\N';

let pool: pg.Pool;

beforeAll(async () => {
  pool = new pg.Pool({ connectionString: inject('pgUrl'), max: 2 });
  await pool.query(`CREATE SCHEMA ${SCHEMA}`);
  await pool.query(`CREATE TABLE ${SCHEMA}.t (id int PRIMARY KEY, v text, b bytea)`);
  await pool.query(`CREATE TABLE ${SCHEMA}.log (n bigint)`);
});

afterAll(async () => {
  await pool.query(`DROP SCHEMA ${SCHEMA} CASCADE`);
  await pool.end();
});

const rowsOf = (from: number, n: number): Row[] =>
  Array.from({ length: n }, (_, i) => ({ id: from + i, v: i % 7 === 0 ? null : `${ODD} ${from + i}`, b: Buffer.from([0, 1, 255, i & 255]).toString('base64') }));

async function framed(rows: Row[]): Promise<Buffer[]> {
  const sink = { buf: Buffer.alloc(16), len: 0 };
  putCopyRows(sink, rows, pgSites(REF, COLUMNS));
  return [sink.buf.subarray(0, sink.len), COPY_DONE];
}

describe('pipelined COPY', () => {
  it('writes the same text copyText makes, in CopyData messages of at most about 64 KiB', async () => {
    const rows = rowsOf(0, 6000);
    const sink = { buf: Buffer.alloc(16), len: 0 };
    putCopyRows(sink, rows, pgSites(REF, COLUMNS));
    const texts: Buffer[] = [];
    let frames = 0;
    for (let at = 0; at < sink.len; frames++) {
      expect(sink.buf[at]).toBe(0x64);
      const n = sink.buf.readUInt32BE(at + 1);
      expect(n - 4).toBeLessThan(64 * 1024 + 1024);
      texts.push(sink.buf.subarray(at + 5, at + 1 + n));
      at += 1 + n;
    }
    expect(frames).toBeGreaterThan(5);
    expect(Buffer.concat(texts).toString('utf8')).toBe(copyText(rows, pgSites(REF, COLUMNS)).join(''));
  });

  it('runs statements before and after the COPY in one query, values intact', async () => {
    const c = await pool.connect();
    try {
      await c.query('BEGIN');
      await copyIn(c, `TRUNCATE ${SCHEMA}.t; ${copySql(REF, COLUMNS)}; INSERT INTO ${SCHEMA}.log SELECT count(*) FROM ${SCHEMA}.t`, await framed(rowsOf(0, 2500)));
      await c.query('COMMIT');
      const log = await c.query(`SELECT n FROM ${SCHEMA}.log`);
      expect(log.rows).toEqual([{ n: '2500' }]);
      const r = await c.query(`SELECT id, v, b FROM ${SCHEMA}.t WHERE id IN (1, 7) ORDER BY id`);
      expect(r.rows).toEqual([
        { id: 1, v: `${ODD} 1`, b: Buffer.from([0, 1, 255, 1]) },
        { id: 7, v: null, b: Buffer.from([0, 1, 255, 7]) },
      ]);
    } finally {
      c.release();
    }
  });

  it('prepared chunks (strings and bytes) travel the same way', async () => {
    const c = await pool.connect();
    try {
      const text = copyText(rowsOf(10_000, 10), pgSites(REF, COLUMNS));
      await copyIn(c, copySql(REF, COLUMNS), [...copyFrames([text[0]!.slice(0, 0), Buffer.from(text[0]!, 'utf8')]), COPY_DONE]);
      expect((await c.query(`SELECT count(*)::int AS n FROM ${SCHEMA}.t WHERE id >= 10000`)).rows).toEqual([{ n: 10 }]);
    } finally {
      c.release();
    }
  });

  it('several COPYs in one query take their data in turn', async () => {
    const c = await pool.connect();
    try {
      const sink = { buf: Buffer.alloc(16), len: 0 };
      const ends: number[] = [];
      putCopyRows(sink, rowsOf(20_000, 300), pgSites(REF, COLUMNS)); ends.push(sink.len);
      putCopyRows(sink, rowsOf(30_000, 5), pgSites(REF, COLUMNS)); ends.push(sink.len);
      await copyIn(c, `BEGIN; ${copySql(REF, COLUMNS)}; SELECT 1; ${copySql(REF, COLUMNS)}; COMMIT`, copyParts(sink, ends));
      const r = await c.query(`SELECT min(id), max(id), count(*)::int AS n FROM ${SCHEMA}.t WHERE id >= 20000`);
      expect(r.rows).toEqual([{ min: 20_000, max: 30_004, n: 305 }]);
    } finally {
      c.release();
    }
  });

  it('a COPY that never begins (no such table) rejects, and its data is dropped: the connection goes on', async () => {
    const c = await pool.connect();
    try {
      const err = await copyIn(c, `COPY ${SCHEMA}.nope (id) FROM STDIN`, await framed(rowsOf(0, 100))).catch((e: unknown) => e);
      expect((err as { code?: string }).code).toBe('42P01');
      expect((await c.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    } finally {
      c.release();
    }
  });

  it('a COPY that fails half-way through many megabytes (a duplicate key) rejects; the transaction rolls back to its savepoint', async () => {
    const c = await pool.connect();
    try {
      await c.query('BEGIN');
      await c.query(`TRUNCATE ${SCHEMA}.t`);
      await c.query(`INSERT INTO ${SCHEMA}.t (id, v) VALUES (5, 'there')`);
      // id 5 comes early: the server fails while most of the data is still on its way.
      const err = await copyIn(c, `SAVEPOINT s; ${copySql(REF, COLUMNS)}; INSERT INTO ${SCHEMA}.log VALUES (-1)`, await framed(rowsOf(0, 60_000))).catch((e: unknown) => e);
      expect((err as { code?: string }).code).toBe('23505');
      await c.query('ROLLBACK TO SAVEPOINT s');
      await c.query(`INSERT INTO ${SCHEMA}.t (id, v) VALUES (6, 'after')`);
      await c.query('COMMIT');
      const r = await c.query(`SELECT id, v FROM ${SCHEMA}.t ORDER BY id`);
      expect(r.rows).toEqual([{ id: 5, v: 'there' }, { id: 6, v: 'after' }]);
      expect((await c.query(`SELECT count(*)::int AS n FROM ${SCHEMA}.log WHERE n = -1`)).rows).toEqual([{ n: 0 }]);
    } finally {
      c.release();
    }
  });

  it('a value that cannot be converted throws before anything is sent', () => {
    const sink = { buf: Buffer.alloc(16), len: 0 };
    expect(() => putCopyRows(sink, [{ id: 'not a number', v: null, b: null }], pgSites(REF, COLUMNS))).toThrow();
  });
});
