/**
 * MariaDB binlog capture, snapshot reader and capture check against the
 * suite's private MariaDB (row binlog, GTID strict mode). Every test works in
 * its own database (cap_test_<random>) so suites sharing the server don't clash.
 */
import mysql from 'mysql2/promise';
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { Operation, type CapturedTransaction, type ChangeEvent, type Row } from '../../../src/replication/change-event.ts';
import type { DbConnectionConfig } from '../../../src/replication/connection-config.ts';
import { FatalError, RetriableError } from '../../../src/replication/errors.ts';
import { silentLogger } from '../../../src/replication/logger.ts';
import { compareSequences } from '../../../src/replication/sequence.ts';
import { MysqlBinlogCapture, type MysqlCaptureOptions } from '../../../src/replication/capture/mysql-binlog.capture.ts';
import { checkMysqlCapture, parseGrants } from '../../../src/replication/capture/mysql-check.ts';
import { DdlKind, parseDdl } from '../../../src/replication/capture/mysql-ddl.ts';
import { repairTime, shortestFloat32 } from '../../../src/replication/capture/mysql-values.ts';
import { MysqlSnapshotReader } from '../../../src/replication/snapshot/mysql.snapshot.ts';
import { CopyTextFallback } from '../../../src/replication/snapshot/snapshot-reader.ts';
import type { ChunkBounds } from '../../../src/replication/table-info.ts';
import { parseCover } from '../../../src/replication/snapshot/snapshot-cover.ts';

function connFromUrl(url: string): DbConnectionConfig {
  const u = new URL(url);
  return { kind: 'mysql', host: u.hostname, port: Number(u.port), user: decodeURIComponent(u.username), password: decodeURIComponent(u.password) };
}

const conn = connFromUrl(inject('mariaUrl'));
const db = `cap_test_${randomBytes(4).toString('hex')}`;
let admin: mysql.Connection;

async function sql(text: string, params: unknown[] = []): Promise<unknown> {
  const [rows] = await admin.query(text, params);
  return rows;
}

async function portOpen(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, host);
    s.setTimeout(1000, () => { s.destroy(); resolve(false); });
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}

function newCapture(opts: Partial<MysqlCaptureOptions> = {}): MysqlBinlogCapture {
  return new MysqlBinlogCapture({
    connection: conn, jobId: 'cap-test', tables: { schemas: [{ schema: db }] }, logger: silentLogger,
    progressIntervalMs: 0, ...opts,
  });
}

/** Run a capture until `until` holds (or `timeoutMs` passes) and return what it delivered. */
async function collect(
  opts: Partial<MysqlCaptureOptions>, until: (txs: CapturedTransaction[]) => boolean, timeoutMs = 20_000,
  onTx?: (tx: CapturedTransaction) => Promise<void>,
): Promise<CapturedTransaction[]> {
  const cap = newCapture(opts);
  const txs: CapturedTransaction[] = [];
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), timeoutMs);
  try {
    await cap.run(async (tx) => {
      txs.push(tx);
      await onTx?.(tx);
      if (until(txs)) ac.abort();
    }, ac.signal);
  } finally {
    clearTimeout(timer);
    await cap.close();
  }
  return txs;
}

const events = (txs: CapturedTransaction[]): ChangeEvent[] => txs.flatMap((t) => t.events);

beforeAll(async () => {
  admin = await mysql.createConnection({
    host: conn.host, port: conn.port, user: conn.user, password: conn.password, multipleStatements: true,
    supportBigNumbers: true, bigNumberStrings: true, dateStrings: true,
  });
  await sql(`CREATE DATABASE \`${db}\``);
});

afterAll(async () => {
  await sql(`DROP DATABASE IF EXISTS \`${db}\``).catch(() => undefined);
  await sql(`DROP USER IF EXISTS 'capcheck_${db}'@'%'`).catch(() => undefined);
  await admin?.end();
});

describe('MysqlBinlogCapture: transactions', () => {
  it('groups multi-statement transactions with before/after, monotonic sequences, identical on re-read, resume re-reads nothing', async () => {
    await sql(`CREATE TABLE \`${db}\`.orders (id INT PRIMARY KEY, name VARCHAR(20), qty INT, _change_selector VARCHAR(10))`);
    await sql(`CREATE TABLE \`${db}\`.other (k VARCHAR(10) PRIMARY KEY, v INT)`);
    const prep = newCapture();
    const { position: start } = await prep.prepare();
    await prep.close();
    expect(start.kind).toBe('mysql');

    await sql(`BEGIN; INSERT INTO \`${db}\`.orders VALUES (1,'a',1,'s1'),(2,'b',2,'s2'),(3,'c',3,'s1');
      UPDATE \`${db}\`.orders SET qty = 10 WHERE id = 1; DELETE FROM \`${db}\`.orders WHERE id = 2; COMMIT`);
    await sql(`BEGIN; UPDATE \`${db}\`.orders SET name = CONCAT(name, '!'); COMMIT`);
    await sql(`INSERT INTO \`${db}\`.other VALUES ('x', 1)`);

    const txs = await collect({ from: start }, (t) => t.length >= 3);
    expect(txs).toHaveLength(3);
    const [t1, t2, t3] = txs as [CapturedTransaction, CapturedTransaction, CapturedTransaction];
    expect(t1.events.map((e) => e.op)).toEqual([Operation.Insert, Operation.Insert, Operation.Insert, Operation.Update, Operation.Delete]);
    expect(t1.events.map((e) => e.index)).toEqual([0, 1, 2, 3, 4]);
    expect(t1.events[0]).toMatchObject({ schema: db, table: 'orders', key: ['id'], before: null, after: { id: 1, name: 'a', qty: 1, _change_selector: 's1' }, scope: 's1' });
    expect(t1.events[3]).toMatchObject({ before: { id: 1, qty: 1 }, after: { id: 1, qty: 10 } });
    expect(t1.events[4]).toMatchObject({ before: { id: 2, name: 'b' }, after: null, scope: 's2' });
    expect(t2.events.map((e) => [e.op, e.before?.name, e.after?.name])).toEqual([[Operation.Update, 'a', 'a!'], [Operation.Update, 'c', 'c!']]);
    expect(t3.events[0]).toMatchObject({ table: 'other', key: ['k'], after: { k: 'x', v: 1 } });
    expect(t3.events[0]!.scope).toBeUndefined();
    for (const t of txs) {
      expect(t.txid).toMatch(/^\d+$/);
      expect(t.events.every((e) => e.txid === t.txid && e.commitSequence === t.commitSequence && e.commitTime === t.commitTime)).toBe(true);
      expect(t.resume).toMatchObject({ kind: 'mysql' });
      expect((t.resume as { gtid?: string }).gtid).toMatch(/^\d+-\d+-\d+/);
      expect(Math.abs(t.commitTime - Date.now())).toBeLessThan(120_000);
      // For lag only (commit-clock.ts): within the binlog's second, outside what the feed stores as the change.
      expect(t.commitEstimate! - t.commitTime).toBeGreaterThanOrEqual(0);
      expect(t.commitEstimate! - t.commitTime).toBeLessThanOrEqual(999);
    }
    const all = events(txs);
    for (let i = 1; i < all.length; i++) expect(compareSequences(all[i - 1]!.sequence, all[i]!.sequence)).toBe(-1);
    expect(BigInt(t1.commitSequence) < BigInt(t2.commitSequence) && BigInt(t2.commitSequence) < BigInt(t3.commitSequence)).toBe(true);
    expect(Number(t2.txid)).toBe(Number(t1.txid) + 1);

    // Restart from the earlier position, by GTID and by file/pos: identical transactions (but for the
    // receipt-based commit estimate, which is metadata for lag and never part of the feed payload).
    const payload = (list: CapturedTransaction[]) => list.map(({ commitEstimate: _c, ...t }) => t);
    const again = await collect({ from: start }, (t) => t.length >= 3);
    expect(payload(again)).toEqual(payload(txs));
    const { gtid: _g, ...filePos } = start as { kind: 'mysql'; file: string; pos: number; gtid?: string };
    const byFilePos = await collect({ from: filePos }, (t) => t.length >= 3);
    expect(payload(byFilePos)).toEqual(payload(txs));

    // Resume after t1 (GTID and file/pos): the next delivered is t2.
    const afterT1 = await collect({ from: t1.resume }, (t) => t.length >= 1);
    expect(payload(afterT1.slice(0, 1))).toEqual(payload([t2]));
    const { gtid: _g2, ...t1FilePos } = t1.resume as { kind: 'mysql'; file: string; pos: number; gtid?: string };
    const afterT1Pos = await collect({ from: t1FilePos }, (t) => t.length >= 1);
    expect(payload(afterT1Pos.slice(0, 1))).toEqual(payload([t2]));

    // Resume after the last one re-reads nothing; a new commit is the first thing seen.
    const nothing = await collect({ from: t3.resume }, () => false, 1500);
    expect(nothing).toEqual([]);
    await sql(`INSERT INTO \`${db}\`.other VALUES ('y', 2)`);
    const next = await collect({ from: t3.resume }, (t) => t.length >= 1);
    expect(next[0]!.events[0]!.after).toEqual({ k: 'y', v: 2 });
    expect(compareSequences(t3.events[0]!.sequence, next[0]!.events[0]!.sequence)).toBe(-1);
  });

  it('applies backpressure: one handler at a time, in order, while the handler is slow', async () => {
    await sql(`CREATE TABLE \`${db}\`.bp (id INT PRIMARY KEY, v INT)`);
    const prep = newCapture();
    const { position } = await prep.prepare();
    await prep.close();
    const n = 120;
    for (let i = 0; i < n; i++) await sql(`INSERT INTO \`${db}\`.bp VALUES (?, ?)`, [i, i]);
    let active = 0;
    let maxActive = 0;
    const cap = newCapture({ from: position, maxQueuedTransactions: 4 });
    const txs: CapturedTransaction[] = [];
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), 60_000);
    await cap.run(async (tx) => {
      active++;
      maxActive = Math.max(maxActive, active);
      txs.push(tx);
      expect(cap.stats().queued).toBeLessThanOrEqual(4);
      await new Promise((r) => setTimeout(r, 2));
      active--;
      if (txs.length >= n) ac.abort();
    }, ac.signal);
    clearTimeout(timer);
    expect(cap.stats()).toMatchObject({ transactions: n, events: n });
    expect(cap.stats().pauses).toBeGreaterThan(0);
    await cap.close();
    expect(maxActive).toBe(1);
    expect(txs.map((t) => t.events[0]!.after!.id)).toEqual([...Array(n).keys()]);
  });

  it('hands a batch over within a moment while other databases keep the binlog busy (onBatch)', async () => {
    // Transactions of tables outside the capture are filtered out, yet keep the queue from emptying:
    // a batch must not wait for a quiet binlog (it did, and a job on a busy server stalled).
    const other = `${db}_other`;
    await sql(`CREATE DATABASE \`${other}\``);
    await sql(`CREATE TABLE \`${other}\`.noise (id INT PRIMARY KEY AUTO_INCREMENT, v INT)`);
    await sql(`CREATE TABLE \`${db}\`.batched (id INT PRIMARY KEY)`);
    const prep = newCapture();
    const { position } = await prep.prepare();
    await prep.close();
    await sql(`INSERT INTO \`${db}\`.batched VALUES (1)`);
    // 20,000 autocommit transactions in another database, each its own binlog transaction.
    await sql(`CREATE PROCEDURE \`${other}\`.burst(n INT) BEGIN DECLARE i INT DEFAULT 0; WHILE i < n DO INSERT INTO \`${other}\`.noise (v) VALUES (i); SET i = i + 1; END WHILE; END`);
    await sql(`CALL \`${other}\`.burst(20000)`);
    await sql(`INSERT INTO \`${db}\`.batched VALUES (2)`);
    const calls: number[][] = [];
    const cap = newCapture({ from: position });
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), 60_000);
    const seen = () => calls.flat().length >= 2 && ac.abort();
    try {
      await cap.run(async (tx) => { calls.push(tx.events.map((e) => Number(e.after!.id))); seen(); }, ac.signal, {
        onBatch: async (txs) => { calls.push(txs.flatMap((t) => t.events.map((e) => Number(e.after!.id)))); seen(); },
      });
    } finally {
      clearTimeout(timer);
      await cap.close();
      await sql(`DROP DATABASE \`${other}\``);
    }
    expect(calls.flat()).toEqual([1, 2]);
    // Row 1 went out on its own, long before the burst was read through.
    expect(calls[0]).toEqual([1]);
  });

  it('delivers a transaction that arrives while the one before it is handed over, with no write after it', async () => {
    // Ours, then another database's (filtered out, empty): the pump ends its loop on the empty one and
    // hands ours over; a transaction arriving meanwhile must not wait for some later binlog event.
    const other = `${db}_other2`;
    await sql(`CREATE DATABASE \`${other}\``);
    await sql(`CREATE TABLE \`${other}\`.noise (id INT PRIMARY KEY)`);
    await sql(`CREATE TABLE \`${db}\`.tail (id INT PRIMARY KEY)`);
    const prep = newCapture();
    const { position } = await prep.prepare();
    await prep.close();
    await sql(`INSERT INTO \`${db}\`.tail VALUES (1); INSERT INTO \`${other}\`.noise VALUES (1)`);
    const got: number[] = [];
    const cap = newCapture({ from: position });
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), 15_000);
    let tookAt = 0;
    try {
      const take = async (txs: CapturedTransaction[]) => {
        for (const t of txs) for (const e of t.events) got.push(Number(e.after!.id));
        if (got.length === 1) {
          // While the first is being handed over, the last write of this test arrives.
          await sql(`INSERT INTO \`${db}\`.tail VALUES (2)`);
          await new Promise((r) => setTimeout(r, 300));
          tookAt = Date.now();
        }
        if (got.length >= 2) ac.abort();
      };
      await cap.run((tx) => take([tx]), ac.signal, { onBatch: take });
    } finally {
      clearTimeout(timer);
      await cap.close();
      await sql(`DROP DATABASE \`${other}\``);
    }
    expect(got).toEqual([1, 2]);
    expect(Date.now() - tookAt).toBeLessThan(5000);
  });

  it('reports throughput for a bulk transaction and many small ones', async () => {
    await sql(`CREATE TABLE \`${db}\`.bulk (id INT PRIMARY KEY, s VARCHAR(40), d DECIMAL(12,2))`);
    const prep = newCapture();
    const { position } = await prep.prepare();
    await prep.close();
    const rows = 5000;
    const values = Array.from({ length: rows }, (_, i) => `(${i}, 'row-${i}', ${i}.25)`).join(',');
    await sql(`INSERT INTO \`${db}\`.bulk VALUES ${values}`);
    for (let i = 0; i < 500; i++) await sql(`UPDATE \`${db}\`.bulk SET s = 'x' WHERE id = ?`, [i]);
    const t0 = performance.now();
    const txs = await collect({ from: position }, (t) => t.length >= 501, 60_000);
    const ms = performance.now() - t0;
    expect(txs[0]!.events).toHaveLength(rows);
    expect(txs[0]!.events[rows - 1]!.after).toEqual({ id: rows - 1, s: `row-${rows - 1}`, d: `${rows - 1}.25` });
    console.log(`[mysql-capture] ${rows} rows in 1 tx + 500 single-row txs captured in ${ms.toFixed(0)} ms (${((rows + 500) / (ms / 1000)).toFixed(0)} rows/s incl. connect)`);
  });
});

describe('values: every kind, capture equals snapshot', () => {
  it.each(['NO_LOG', 'FULL'])('maps each MariaDB type to the JSON-safe representation, identically on both paths (binlog_row_metadata=%s)', async (rowMetadata) => {
    const types = `types_${rowMetadata.toLowerCase()}`;
    await sql(`CREATE TABLE \`${db}\`.${types} (
      id INT UNSIGNED PRIMARY KEY, ti TINYINT(1), si SMALLINT, mi MEDIUMINT UNSIGNED, bi BIGINT, ubi BIGINT UNSIGNED, yr YEAR,
      dec1 DECIMAL(65,30), dec2 DECIMAL(10,3), f FLOAT, d DOUBLE,
      c CHAR(3), vc VARCHAR(50), tx TEXT, lt LONGTEXT,
      bn BINARY(4), vb VARBINARY(16), bl BLOB, mb MEDIUMBLOB,
      dt DATE, tm TIME, tm6 TIME(6), dtm DATETIME, dtm6 DATETIME(6), ts TIMESTAMP(6) NULL DEFAULT NULL, ts0 TIMESTAMP NULL DEFAULT NULL,
      j JSON, e ENUM('small','medium','large'), st SET('r','g','b'), b1 BIT(1), b4 BIT(4), b64 BIT(64), u UUID, ip INET6
    ) DEFAULT CHARSET=utf8mb4`);
    const prep = newCapture();
    const { position } = await prep.prepare();
    await prep.close();
    await sql(`SET GLOBAL binlog_row_metadata = ${rowMetadata}`);
    const cols = 'id,ti,si,mi,bi,ubi,yr,dec1,dec2,f,d,c,vc,tx,lt,bn,vb,bl,mb,dt,tm,tm6,dtm,dtm6,ts,ts0,j,e,st,b1,b4,b64,u,ip';
    await sql(`SET SESSION sql_mode = ''; SET SESSION time_zone = '+02:00'`);
    await sql(`INSERT INTO \`${db}\`.${types} (${cols}) VALUES
      (1, 2, -32768, 16777215, -9223372036854775808, 18446744073709551615, 0,
       '-12345678901234567890123456789012345.123456789012345678901234567890', 12.340, 0.1, 0.1,
       'ab', 'héllo 😀 wörld', 'text 🎉', REPEAT('x', 300),
       x'0102', x'00ff10', x'deadbeef00', x'',
       '0000-00-00', '-12:00:00', '838:59:59.999999', '0000-00-00 00:00:00', '2024-02-29 23:59:59.000001', '2024-06-01 12:00:00.5', '2024-06-01 02:00:00',
       '{"a": [1, 2.50, "x"], "b": null}', 'medium', 'r,b', b'1', b'0101', b'1000000000000000000000000000000000000000000000000000000000000001',
       '6CCD780C-BABA-1026-9564-5B8C656024DB', '2001:db8::1'),
      (2, NULL, 0, 0, 9007199254740993, 9007199254740991, 2155,
       0, -0.001, 3.4e38, -1.7976931348623157e308,
       '', '', '', '',
       x'00000000', x'', x'', NULL,
       '2024-01-31', '-00:00:01', '-00:01:00.000000', '9999-12-31 23:59:59', '1000-01-01 00:00:00.000000', NULL, '1970-01-01 02:00:01',
       'null', '', '', b'0', b'0000', b'0', NULL, NULL),
      (3, -5, 7, 1, 1, 0, 1901, 1, 1, -1.5, 1e-300, 'xyz', 'a''b"c\\\\d', 'multi\\nline', '', x'ffffffff', x'01', x'02', x'03',
       '1999-12-31', '00:00:00', '-838:59:59.000000', '2000-01-01 00:00:00', '2000-01-01 00:00:00.123400', '2038-01-19 03:14:07.999999', NULL,
       '[]', 'large', 'r,g,b', b'1', b'1111', b'1111111111111111111111111111111111111111111111111111111111111111', '00000000-0000-0000-0000-000000000000', '::')`);
    // Back to the suite's default (FULL): other files share this server.
    await sql(`SET SESSION time_zone = SYSTEM; SET GLOBAL binlog_row_metadata = FULL`);
    await sql(`UPDATE \`${db}\`.${types} SET vc = CONCAT(vc, '!') WHERE id = 3`);

    const txs = await collect({ from: position }, (t) => t.length >= 2);
    const inserted = txs[0]!.events;
    expect(inserted).toHaveLength(3);
    const byId = new Map<number, Row>(inserted.map((e) => [e.after!.id as number, e.after!]));
    byId.set(3, txs[1]!.events[0]!.after!);
    expect(txs[1]!.events[0]!.before!.vc).toBe('a\'b"c\\d');

    const r1 = byId.get(1)!;
    expect(r1).toMatchObject({
      id: 1, ti: 2, si: -32768, mi: 16777215, bi: '-9223372036854775808', ubi: '18446744073709551615', yr: 0,
      dec1: '-12345678901234567890123456789012345.123456789012345678901234567890', dec2: '12.340', f: 0.1, d: 0.1,
      c: 'ab', vc: 'héllo 😀 wörld', tx: 'text 🎉', lt: 'x'.repeat(300),
      bn: Buffer.from([1, 2, 0, 0]).toString('base64'), vb: Buffer.from([0, 0xff, 0x10]).toString('base64'),
      bl: Buffer.from('deadbeef00', 'hex').toString('base64'), mb: '',
      dt: '0000-00-00', tm: '-12:00:00', tm6: '838:59:59.999999', dtm: '0000-00-00 00:00:00', dtm6: '2024-02-29 23:59:59.000001',
      ts: '2024-06-01T10:00:00.500000Z', ts0: '2024-06-01T00:00:00Z',
      j: '{"a": [1, 2.50, "x"], "b": null}', e: 'medium', st: 'r,b', b1: '1', b4: '0101',
      b64: '1000000000000000000000000000000000000000000000000000000000000001',
      u: '6ccd780c-baba-1026-9564-5b8c656024db', ip: '2001:db8::1',
    });
    expect(byId.get(2)).toMatchObject({
      ti: null, bi: '9007199254740993', ubi: 9007199254740991, yr: 2155, dec1: '0.000000000000000000000000000000', dec2: '-0.001',
      f: 3.4e38, d: -1.7976931348623157e308, c: '', bn: 'AAAAAA==', vb: '', mb: null,
      tm: '-00:00:01', tm6: '-00:01:00.000000', dtm: '9999-12-31 23:59:59', dtm6: '1000-01-01 00:00:00.000000', ts: null, ts0: '1970-01-01T00:00:01Z',
      j: 'null', e: '', st: '', b1: '0', b4: '0000', b64: '0'.repeat(64), u: null, ip: null,
    });
    expect(byId.get(3)).toMatchObject({ ti: -5, f: -1.5, d: 1e-300, vc: 'a\'b"c\\d!', tx: 'multi\nline', tm6: '-838:59:59.000000', ts: '2038-01-19T01:14:07.999999Z', j: '[]', st: 'r,g,b' });

    const cols0 = inserted[0]!.columns;
    const col = (n: string) => cols0.find((c) => c.name === n)!;
    expect(col('id')).toMatchObject({ kind: 'int', sourceType: 'int(10) unsigned', unsigned: true, size: 4 });
    expect(col('ti')).toMatchObject({ kind: 'int', sourceType: 'tinyint(1)', size: 1 });
    expect(col('dec1')).toMatchObject({ kind: 'decimal', precision: 65, scale: 30 });
    expect(col('vc')).toMatchObject({ kind: 'text', length: 50 });
    expect(col('c')).toMatchObject({ kind: 'text', length: 3, fixed: true });
    expect(col('bn')).toMatchObject({ kind: 'binary', length: 4, fixed: true });
    expect(col('dtm6')).toMatchObject({ kind: 'datetime', fsp: 6 });
    expect(col('ts')).toMatchObject({ kind: 'timestamptz', fsp: 6 });
    expect(col('j')).toMatchObject({ kind: 'json' });
    expect(col('e')).toMatchObject({ kind: 'enum', values: ['small', 'medium', 'large'] });
    expect(col('st')).toMatchObject({ kind: 'set', values: ['r', 'g', 'b'] });
    expect(col('b64')).toMatchObject({ kind: 'bit', size: 64 });
    expect(col('u')).toMatchObject({ kind: 'uuid' });
    expect(col('f')).toMatchObject({ kind: 'float', size: 4 });
    expect(JSON.parse(JSON.stringify(inserted))).toEqual(inserted);

    // The snapshot reads the same rows through the same conversion.
    const reader = new MysqlSnapshotReader({ connection: conn });
    try {
      const [info] = await reader.listTables({ schemas: [{ schema: db, tables: [types] }] });
      expect(info!.columns).toEqual(cols0);
      const chunks = await reader.planChunks(info!, 2);
      const snap: Row[] = [];
      for (const ch of chunks) for await (const batch of reader.readChunk(info!, ch, 10)) snap.push(...batch);
      expect(snap).toEqual([byId.get(1), byId.get(2), byId.get(3)]);
    } finally {
      await reader.close();
    }
  });
});

describe('DDL events', () => {
  it('emits DDL with the statement, table and refreshed columns (binlog_row_metadata=FULL)', async () => {
    await sql(`CREATE TABLE \`${db}\`.ddl1 (id INT PRIMARY KEY, a INT)`);
    const prep = newCapture();
    const { position } = await prep.prepare();
    await prep.close();
    // FULL row metadata lets rows written before a later DROP COLUMN decode by their own column names.
    await sql(`SET GLOBAL binlog_row_metadata = FULL; USE \`${db}\``);
    const stmts = [
      'ALTER TABLE ddl1 ADD COLUMN b VARCHAR(10)',
      `INSERT INTO ddl1 VALUES (1, 2, 'x')`,
      `ALTER TABLE \`${db}\`.ddl1 DROP COLUMN a`,
      `CREATE TABLE ddl2 (k BIGINT UNSIGNED PRIMARY KEY, s TEXT)`,
      'ALTER TABLE ddl2 MODIFY s VARCHAR(20)',
      'RENAME TABLE ddl2 TO ddl3',
      'TRUNCATE TABLE ddl3',
      'CREATE INDEX ix_b ON ddl1 (b)',
      'DROP TABLE ddl3',
      `CREATE DATABASE IF NOT EXISTS \`${db}_x\``,
      `CREATE TABLE \`${db}_x\`.ignored (id INT PRIMARY KEY)`,
      `DROP DATABASE \`${db}_x\``,
    ];
    for (const s of stmts) await sql(s);
    await sql('USE mysql; SET GLOBAL binlog_row_metadata = FULL');
    const txs = await collect({ from: position }, (t) => events(t).some((e) => e.ddl === 'DROP TABLE ddl3' || /DROP TABLE `?ddl3/.test(e.ddl ?? '')));
    const evs = events(txs);
    expect(evs.map((e) => [e.op, e.table])).toEqual([
      [Operation.Ddl, 'ddl1'], [Operation.Insert, 'ddl1'], [Operation.Ddl, 'ddl1'], [Operation.Ddl, 'ddl2'], [Operation.Ddl, 'ddl2'],
      [Operation.Ddl, 'ddl2'], [Operation.Ddl, 'ddl3'], [Operation.Ddl, 'ddl1'], [Operation.Ddl, 'ddl3'],
    ]);
    expect(evs.every((e) => e.schema === db)).toBe(true);
    expect(evs[0]!.ddl).toBe(stmts[0]);
    expect(evs[0]!.columns.map((c) => c.name)).toEqual(['id', 'b']); // as the table is now (a dropped later)
    // Columns are the table as it is when the event is mapped: replayed here, ddl2 is gone by then.
    expect(evs[3]).toMatchObject({ ddl: stmts[3], key: [], columns: [], before: null, after: null });
    expect(evs[5]!.ddl).toBe(stmts[5]);
    expect(evs[8]!.ddl).toMatch(/^DROP TABLE/);
    expect(evs[8]!.columns).toEqual([]);
    // The row written while column a existed keeps it (typed by a guess: the table no longer has it).
    expect(evs[1]!.after).toEqual({ id: 1, a: 2, b: 'x' });
  });

  it('live: a DDL event carries the refreshed columns and later rows use them', async () => {
    await sql(`CREATE TABLE \`${db}\`.live (id INT PRIMARY KEY)`);
    const cap = newCapture();
    await cap.prepare();
    const ac = new AbortController();
    const seen: ChangeEvent[] = [];
    let wake: (() => void) | undefined;
    const waitFor = async (pred: () => boolean) => {
      const deadline = Date.now() + 15_000;
      while (!pred() && Date.now() < deadline) await new Promise<void>((r) => { wake = r; setTimeout(r, 200); });
      expect(pred()).toBe(true);
    };
    const running = cap.run(async (tx) => { seen.push(...tx.events); wake?.(); }, ac.signal);
    try {
      await sql(`ALTER TABLE \`${db}\`.live ADD COLUMN amount DECIMAL(8,2) NOT NULL DEFAULT 0, ADD COLUMN tag ENUM('a','b')`);
      await waitFor(() => seen.some((e) => e.op === Operation.Ddl));
      await sql(`INSERT INTO \`${db}\`.live VALUES (1, 12.5, 'b')`);
      await waitFor(() => seen.some((e) => e.op === Operation.Insert));
    } finally {
      ac.abort();
      await running;
      await cap.close();
    }
    const [ddl, ins] = seen as [ChangeEvent, ChangeEvent];
    expect(ddl).toMatchObject({ op: Operation.Ddl, schema: db, table: 'live', key: ['id'] });
    expect(ddl.columns.map((c) => [c.name, c.kind, c.sourceType])).toEqual([['id', 'int', 'int(11)'], ['amount', 'decimal', 'decimal(8,2)'], ['tag', 'enum', "enum('a','b')"]]);
    expect(ins.after).toEqual({ id: 1, amount: '12.50', tag: 'b' });
    expect(ins.columns).toEqual(ddl.columns);
  });

  it('replays rows written before a column rename with their own names and exact types; the rename passes as DDL (FULL)', async () => {
    await sql(`CREATE TABLE \`${db}\`.ren (id INT PRIMARY KEY, amount DECIMAL(10,3), at DATETIME(6), note VARCHAR(10))`);
    const prep = newCapture();
    const { position } = await prep.prepare();
    await prep.close();
    await sql(`INSERT INTO \`${db}\`.ren VALUES (1, 12.5, '2024-01-02 03:04:05.678901', 'a')`);
    await sql(`UPDATE \`${db}\`.ren SET amount = 7 WHERE id = 1`);
    await sql(`ALTER TABLE \`${db}\`.ren RENAME COLUMN amount TO price, CHANGE note remark VARCHAR(10)`);
    await sql(`INSERT INTO \`${db}\`.ren VALUES (2, 1.25, NULL, 'b')`);
    // Read after the rename: information_schema already shows price and remark.
    const evs = events(await collect({ from: position }, (t) => events(t).some((e) => e.after?.id === 2)));
    const ren = evs.filter((e) => e.table === 'ren');
    expect(ren.map((e) => e.op)).toEqual([Operation.Insert, Operation.Update, Operation.Ddl, Operation.Insert]);
    expect(ren[0]!.after).toEqual({ id: 1, amount: '12.500', at: '2024-01-02 03:04:05.678901', note: 'a' });
    expect(ren[0]!.columns.map((c) => [c.name, c.sourceType])).toEqual([['id', 'int(11)'], ['amount', 'decimal(10,3)'], ['at', 'datetime(6)'], ['note', 'varchar(10)']]);
    expect(ren[1]!.before).toMatchObject({ amount: '12.500' });
    expect(ren[1]!.after).toMatchObject({ amount: '7.000' });
    expect(ren[2]!.ddl).toMatch(/RENAME COLUMN amount TO price/);
    expect(ren[3]!.after).toEqual({ id: 2, price: '1.250', at: null, remark: 'b' });
  });

  it('a column rename without FULL row metadata stops the capture quoting the statement and naming binlog_row_metadata', async () => {
    await sql(`CREATE TABLE \`${db}\`.ren2 (id INT PRIMARY KEY, a INT)`);
    await sql('SET GLOBAL binlog_row_metadata = MINIMAL');
    let err: unknown;
    const stmt = `ALTER TABLE \`${db}\`.ren2 RENAME COLUMN a TO b`;
    try {
      const prep = newCapture();
      const { position } = await prep.prepare();
      await prep.close();
      await sql(`INSERT INTO \`${db}\`.ren2 VALUES (1, 2)`);
      await sql(stmt);
      err = await collect({ from: position }, () => false, 10_000).catch((e: unknown) => e);
    } finally {
      await sql('SET GLOBAL binlog_row_metadata = FULL');
    }
    expect(err).toBeInstanceOf(FatalError);
    expect((err as Error).message).toContain(stmt);
    expect((err as Error).message).toMatch(/binlog_row_metadata=FULL/);
  });

  it('stops with a FatalError naming binlog_row_metadata when replaying rows across a later ALTER without FULL metadata', async () => {
    await sql(`CREATE TABLE \`${db}\`.drift (id INT PRIMARY KEY, a INT, b INT)`);
    const prep = newCapture();
    const { position } = await prep.prepare();
    await prep.close();
    // Rows logged without column metadata, then the table changes: the drift case. Restore the suite default after.
    await sql('SET GLOBAL binlog_row_metadata = NO_LOG');
    let err: unknown;
    try {
      await sql(`INSERT INTO \`${db}\`.drift VALUES (1, 2, 3); ALTER TABLE \`${db}\`.drift DROP COLUMN a`);
      err = await collect({ from: position }, () => false, 10_000).catch((e: unknown) => e);
    } finally {
      await sql('SET GLOBAL binlog_row_metadata = FULL');
    }
    expect(err).toBeInstanceOf(FatalError);
    expect((err as Error).message).toMatch(/binlog_row_metadata=FULL/);
  });
});

describe('MysqlSnapshotReader', () => {
  it('chunks composite keys and keyless tables, reads every row once, in key order', async () => {
    await sql(`CREATE TABLE \`${db}\`.comp (region VARCHAR(8), n INT, payload VARCHAR(20), PRIMARY KEY (region, n))`);
    await sql(`CREATE TABLE \`${db}\`.nokey (a INT, b VARCHAR(10))`);
    await sql(`CREATE TABLE \`${db}\`.binkey (k VARBINARY(4) PRIMARY KEY, v INT)`);
    const regions = ['eu', 'us', 'apac', 'é'];
    const compRows = regions.flatMap((r) => Array.from({ length: 250 }, (_, i) => [r, i, `${r}-${i}`]));
    await sql(`INSERT INTO \`${db}\`.comp VALUES ?`, [compRows]);
    await sql(`INSERT INTO \`${db}\`.nokey VALUES ?`, [Array.from({ length: 300 }, (_, i) => [i % 7, `v${i}`])]);
    await sql(`INSERT INTO \`${db}\`.binkey VALUES ?`, [Array.from({ length: 50 }, (_, i) => [Buffer.from([i, 0, 255 - i]), i])]);
    await sql(`ANALYZE TABLE \`${db}\`.comp, \`${db}\`.nokey, \`${db}\`.binkey`);

    const reader = new MysqlSnapshotReader({ connection: conn });
    try {
      const tables = await reader.listTables({ schemas: [{ schema: db, tables: ['comp', 'nokey', 'binkey'] }] });
      expect(tables.map((t) => t.table)).toEqual(['binkey', 'comp', 'nokey']);
      const [binkey, comp, nokey] = tables as [typeof tables[0] & object, typeof tables[0] & object, typeof tables[0] & object];
      expect(comp.key).toEqual(['region', 'n']);
      expect(nokey.key).toEqual([]);
      expect(comp.estimatedRows).toBeGreaterThan(500);

      const chunks = await reader.planChunks(comp, 90);
      expect(chunks).toHaveLength(Math.ceil(1000 / 90) + (1000 % 90 === 0 ? 1 : 0));
      expect(chunks[0]!.after).toBeUndefined();
      expect(chunks.at(-1)!.upTo).toBeUndefined();
      for (let i = 1; i < chunks.length; i++) expect(chunks[i]!.after).toEqual(chunks[i - 1]!.upTo);
      // Chunks travel between workers as JSON.
      const planned = JSON.parse(JSON.stringify(chunks)) as typeof chunks;
      const read: Row[] = [];
      for (const ch of planned.reverse()) {
        const part: Row[] = [];
        for await (const batch of reader.readChunk(comp, ch, 37)) {
          expect(batch.length).toBeLessThanOrEqual(37);
          part.push(...batch);
        }
        expect(part.length).toBeLessThanOrEqual(90);
        read.unshift(...part);
      }
      const expected = (await sql(`SELECT region, n, payload FROM \`${db}\`.comp ORDER BY region, n`)) as Row[];
      expect(read).toEqual(expected);

      expect(await reader.planChunks(nokey, 10)).toEqual([{ index: 0 }]);
      const all: Row[] = [];
      for await (const batch of reader.readChunk(nokey, { index: 0 }, 64)) all.push(...batch);
      expect(all).toHaveLength(300);
      expect(new Set(all.map((r) => r.b)).size).toBe(300);

      const binChunks = await reader.planChunks(binkey, 7);
      const binRows: Row[] = [];
      for (const ch of binChunks) for await (const batch of reader.readChunk(binkey, ch, 100)) binRows.push(...batch);
      expect(binRows.map((r) => r.v)).toEqual([...Array(50).keys()]);
      expect(binRows[3]!.k).toBe(Buffer.from([3, 0, 252]).toString('base64'));
    } finally {
      await reader.close();
    }
  });

  it('chunks a dense integer key by equal key ranges (MIN/MAX and the estimate), a sparse one by counting; every row read once', async () => {
    await sql(`CREATE TABLE \`${db}\`.idense (id bigint PRIMARY KEY, v int)`);
    await sql(`CREATE TABLE \`${db}\`.isparse (id int PRIMARY KEY, v int)`);
    // Dense with gaps, negative keys and keys beyond 2^53 at the top.
    const dense = Array.from({ length: 1000 }, (_, i) => i - 300).filter((k) => k % 17 !== 0);
    await sql(`INSERT INTO \`${db}\`.idense VALUES ?`, [dense.map((k) => [k, k])]);
    await sql(`INSERT INTO \`${db}\`.idense VALUES (9007199254740993, 1), (9007199254740994, 2)`);
    await sql(`INSERT INTO \`${db}\`.isparse VALUES ?`, [Array.from({ length: 500 }, (_, i) => [i * 1000, i])]);
    await sql(`ANALYZE TABLE \`${db}\`.idense, \`${db}\`.isparse`);
    const reader = new MysqlSnapshotReader({ connection: conn });
    try {
      const [idense, isparse] = await reader.listTables({ schemas: [{ schema: db, tables: ['idense', 'isparse'] }] });
      const readAll = async (t: typeof idense, chunks: ChunkBounds[]) => {
        const out: unknown[] = [];
        for (const ch of JSON.parse(JSON.stringify(chunks)) as ChunkBounds[]) for await (const b of reader.readChunk(t!, ch, 50)) out.push(...b.map((r) => String(r.id)));
        return out;
      };
      // Dense at first sight? No: the two huge keys make the span 2^53 wide, so it is counted.
      const counted = await reader.planChunks(idense!, 90, { evenRanges: true });
      expect(await readAll(idense, counted)).toEqual([...dense.map(String), '9007199254740993', '9007199254740994']);
      await sql(`DELETE FROM \`${db}\`.idense WHERE id > 1000000`);
      await sql(`ANALYZE TABLE \`${db}\`.idense`);
      const [idense2] = await reader.listTables({ schemas: [{ schema: db, tables: ['idense'] }] });
      // Counted unless asked for even ranges (verification counts).
      expect((await reader.planChunks(idense2!, 90)).slice(0, -1).map((c) => Number(c.upTo!.id)).slice(0, 3)).toEqual([dense[89], dense[179], dense[269]]);
      const spread = await reader.planChunks(idense2!, 90, { evenRanges: true });
      expect(spread.length).toBeGreaterThanOrEqual(9);
      expect(spread.length).toBeLessThanOrEqual(14);
      expect(spread[0]!.after).toBeUndefined();
      expect(spread.at(-1)!.upTo).toBeUndefined();
      for (let i = 1; i < spread.length; i++) expect(spread[i]!.after).toEqual(spread[i - 1]!.upTo);
      // Equal widths: the ranges were computed, not counted (counting 90 keys with every 17th missing gives 95 or 96).
      const bounds = spread.slice(0, -1).map((c) => Number(c.upTo!.id));
      expect(new Set(bounds.slice(1).map((b, i) => b - bounds[i]!)).size).toBe(1);
      expect(await readAll(idense2, spread)).toEqual(dense.map(String));
      // Sparse (500 keys over a span of 500,000): counted, chunks of at most 90 rows.
      const sparse = await reader.planChunks(isparse!, 90, { evenRanges: true });
      expect(sparse).toHaveLength(6);
      expect(await readAll(isparse, sparse)).toEqual(Array.from({ length: 500 }, (_, i) => String(i * 1000)));
      // An empty table: one open chunk.
      await sql(`CREATE TABLE \`${db}\`.iempty (id int PRIMARY KEY)`);
      const [iempty] = await reader.listTables({ schemas: [{ schema: db, tables: ['iempty'] }] });
      expect(await reader.planChunks({ ...iempty!, estimatedRows: 10 }, 90, { evenRanges: true })).toEqual([{ index: 0 }]);
    } finally {
      await reader.close();
    }
  });

  it('COPY text made by the server equals the row path\'s COPY text byte for byte; zero dates and NUL fall back', async () => {
    await sql(`CREATE TABLE \`${db}\`.ctext (
      id int PRIMARY KEY, ti tinyint, tu tinyint unsigned, si smallint, su smallint unsigned, mi mediumint, mu mediumint unsigned,
      i int, iu int unsigned, bi bigint, d1 decimal(12,2), d2 decimal(65,30), d3 decimal(5,0) unsigned, d4 decimal(4,4),
      v varchar(50), c char(10), t text, l varchar(20) CHARACTER SET latin1, a text CHARACTER SET ascii,
      dt0 datetime, dt3 datetime(3), dt6 datetime(6)
    ) ENGINE=InnoDB`);
    const strings = ['', 'plain', 'back\\slash', 'tab\there', 'new\nline', 'cr\rhere', '\\N', '\\\\n', 'émoji 😀 ✓', ' trailing  ', "it's \"q\"", '\\\t\n\r mix \\x41'];
    const rows = strings.map((s, i) => [
      i + 1, i % 2 ? -128 : 127, i % 2 ? 0 : 255, i % 2 ? -32768 : 32767, 65535, -8388608, 16777215,
      i % 2 ? -2147483648 : 2147483647, 4294967295, i % 2 ? '-9223372036854775808' : '9223372036854775807',
      i % 2 ? '-9999999999.99' : '0.05', i % 2 ? '-12345678901234567890123456789012345.123456789012345678901234567890' : '0.000000000000000000000000000001',
      i * 7, i % 2 ? '-0.9999' : '0.0001',
      s, s.trimEnd().slice(0, 10), s.repeat(3), i % 3 ? 'café ÿ' : s.replace(/[^\x00-\xff]/g, ''), 'ascii\t\\',
      '1000-01-01 00:00:00', '2024-02-29 23:59:59.001', i % 2 ? '9999-12-31 23:59:59.999999' : '1970-01-01 00:00:00.000001',
    ]);
    rows.push([100, ...Array(21).fill(null)]);
    await sql(`INSERT INTO \`${db}\`.ctext VALUES ?`, [rows]);
    const { copyText } = await import('../../../src/replication/apply/pg-copy.ts');
    const { pgSites } = await import('../../../src/replication/apply/pg-sql.ts');
    const { pgCopyTextSafe } = await import('../../../src/replication/apply/value-params.ts');
    const reader = new MysqlSnapshotReader({ connection: conn });
    try {
      const [info] = await reader.listTables({ schemas: [{ schema: db, tables: ['ctext'] }] });
      const chunks = await reader.planChunks(info!, 5);
      expect(chunks.length).toBeGreaterThan(2);
      let viaRows = '';
      let viaServer = Buffer.alloc(0);
      let lines = 0;
      for (const ch of chunks) {
        for await (const batch of reader.readChunk(info!, ch, 3)) viaRows += copyText(batch, pgSites(info!, info!.columns)).join('');
        for await (const b of reader.readChunkCopyText(info!, ch, 3, pgCopyTextSafe)!) { viaServer = Buffer.concat([viaServer, b.text]); lines += b.rows; }
      }
      expect(lines).toBe(rows.length);
      expect(viaServer.toString('utf8')).toBe(viaRows);
      expect(viaRows.split('\n').length).toBe(rows.length + 1);

      // Not every type: a table with a float (its text is not the server's) keeps the row path.
      await sql(`CREATE TABLE \`${db}\`.ctext2 (id int PRIMARY KEY, f double)`);
      const [info2] = await reader.listTables({ schemas: [{ schema: db, tables: ['ctext2'] }] });
      expect(reader.readChunkCopyText(info2!, { index: 0 }, 10, pgCopyTextSafe)).toBeUndefined();

      // A zero date (PostgreSQL has none) and a NUL character: the row path must see them and fail with its message.
      await sql(`CREATE TABLE \`${db}\`.ctext3 (id int PRIMARY KEY, dt datetime, v varchar(10))`);
      await sql(`SET SESSION sql_mode = ''`);
      await sql(`INSERT INTO \`${db}\`.ctext3 VALUES (1, '2024-01-01 00:00:00', 'a'), (2, '0000-00-00 00:00:00', 'b'), (3, '2024-01-01', 'x\\0y')`);
      await sql(`SET SESSION sql_mode = DEFAULT`);
      const [info3] = await reader.listTables({ schemas: [{ schema: db, tables: ['ctext3'] }] });
      const drain = async (ch: ChunkBounds) => { for await (const _ of reader.readChunkCopyText(info3!, ch, 10, pgCopyTextSafe)!) { /* read */ } };
      await expect(drain({ index: 0, upTo: { id: 1 } })).resolves.toBeUndefined();
      await expect(drain({ index: 1, after: { id: 1 }, upTo: { id: 2 } })).rejects.toBeInstanceOf(CopyTextFallback);
      await expect(drain({ index: 2, after: { id: 2 } })).rejects.toBeInstanceOf(CopyTextFallback);
    } finally {
      await reader.close();
    }
  });

  it('server COPY text under a slow reader: every line once, in key order (the read pauses and resumes); a reader that stops early ends it', async () => {
    await sql(`CREATE TABLE \`${db}\`.cslow (id int PRIMARY KEY, v varchar(20)) ENGINE=InnoDB`);
    const n = 5000;
    await sql(`INSERT INTO \`${db}\`.cslow SELECT seq, concat('v', seq) FROM \`${db}\`.seq_1_to_${n}`);
    const { pgCopyTextSafe } = await import('../../../src/replication/apply/value-params.ts');
    const reader = new MysqlSnapshotReader({ connection: conn });
    try {
      const [info] = await reader.listTables({ schemas: [{ schema: db, tables: ['cslow'] }] });
      const text: Buffer[] = [];
      let batches = 0;
      // 10-row batches, a pause every 20: the server's rows arrive far ahead of the reader.
      for await (const b of reader.readChunkCopyText(info!, { index: 0 }, 10, pgCopyTextSafe)!) {
        text.push(b.text);
        if (++batches % 20 === 0) await new Promise((r) => setTimeout(r, 5));
      }
      const lines = Buffer.concat(text).toString('utf8').split('\n');
      expect(lines.pop()).toBe('');
      expect(lines).toEqual(Array.from({ length: n }, (_, i) => `${i + 1}\tv${i + 1}`));
      // A reader that stops after two batches: the generator ends, the connection is dropped, nothing hangs.
      let taken = 0;
      for await (const _ of reader.readChunkCopyText(info!, { index: 0 }, 10, pgCopyTextSafe)!) { if (++taken === 2) break; }
      expect(taken).toBe(2);
    } finally {
      await reader.close();
    }
  });

  it('a keyless chunk reports the binlog position of its snapshot: it holds exactly the transactions before it', async () => {
    await sql(`CREATE TABLE \`${db}\`.klcover (a INT, b VARCHAR(10))`);
    const reader = new MysqlSnapshotReader({ connection: conn });
    const start = await reader.position();
    await sql(`INSERT INTO \`${db}\`.klcover VALUES (1, 'before')`);
    let cover: string | undefined;
    const read: Row[] = [];
    try {
      const [info] = await reader.listTables({ schemas: [{ schema: db, tables: ['klcover'] }] });
      for await (const b of reader.readChunk(info!, { index: 0 }, 10, { onCover: (c) => { cover = c; } })) read.push(...b);
    } finally {
      await reader.close();
    }
    expect(read.map((r) => r.a)).toEqual([1]);
    expect(cover).toMatch(/^binlog /);
    await sql(`INSERT INTO \`${db}\`.klcover VALUES (2, 'after')`);
    const txs = await collect({ from: start, tables: { schemas: [{ schema: db, tables: ['klcover'] }] } }, (t) => t.length >= 2);
    const held = parseCover(cover)!;
    expect(events(txs).map((e) => [e.after!.a, held.holds(e)])).toEqual([[1, true], [2, false]]);
  });

  it('position() is consistent with the snapshot: a capture from it sees exactly the later commits', async () => {
    await sql(`CREATE TABLE \`${db}\`.snappos (id INT PRIMARY KEY, v INT)`);
    await sql(`INSERT INTO \`${db}\`.snappos VALUES (1, 1), (2, 2)`);
    const reader = new MysqlSnapshotReader({ connection: conn });
    const pos = await reader.position();
    await reader.close();
    expect(pos).toMatchObject({ kind: 'mysql', file: expect.stringMatching(/\.\d+$/), pos: expect.any(Number), gtid: expect.stringMatching(/^\d+-\d+-\d+/) });
    await sql(`UPDATE \`${db}\`.snappos SET v = 20 WHERE id = 2`);
    const txs = await collect({ from: pos, tables: { schemas: [{ schema: db, tables: ['snappos'] }] } }, (t) => t.length >= 1);
    expect(txs[0]!.events.map((e) => [e.op, e.after])).toEqual([[Operation.Update, { id: 2, v: 20 }]]);
  });
});

describe('checkMysqlCapture', () => {
  it('reports a fully capable private server as ok', async () => {
    const res = await checkMysqlCapture(conn);
    expect(res.missing).toEqual([]);
    expect(res.ok).toBe(true);
    expect(res.details).toMatchObject({ flavor: 'mariadb', log_bin: 'ON', binlog_format: 'ROW', binlog_row_image: 'FULL', gtid_strict_mode: 'ON' });
    expect(res.details.binlog_row_metadata_note).toBeUndefined();
  });

  it('says that column renames need binlog_row_metadata=FULL when it is not (recommended, not required)', async () => {
    await sql('SET GLOBAL binlog_row_metadata = MINIMAL');
    try {
      const res = await checkMysqlCapture(conn);
      expect(res.ok).toBe(true);
      expect(res.details.binlog_row_metadata).toBe('MINIMAL');
      expect(res.details.binlog_row_metadata_note).toMatch(/binlog_row_metadata=FULL is needed to replicate column renames/);
    } finally {
      await sql('SET GLOBAL binlog_row_metadata = FULL');
    }
  });

  it('names the missing privileges of a restricted user', async () => {
    const user = `capcheck_${db}`;
    await sql(`CREATE USER '${user}'@'%' IDENTIFIED BY 'S3cret-pw'`);
    await sql(`GRANT SELECT ON \`${db}\`.* TO '${user}'@'%'`);
    const restricted: DbConnectionConfig = { ...conn, user, password: 'S3cret-pw', database: db };
    const res = await checkMysqlCapture(restricted);
    expect(res.ok).toBe(false);
    expect(res.missing).toEqual(['REPLICATION SLAVE', 'BINLOG MONITOR']);
    expect(res.details.select_schemas).toBe(db);
    const noDb = await checkMysqlCapture({ ...restricted, database: undefined });
    expect(noDb.missing).toEqual(['REPLICATION SLAVE', 'BINLOG MONITOR', 'SELECT']);

    await sql(`GRANT REPLICATION SLAVE, BINLOG MONITOR ON *.* TO '${user}'@'%'`);
    expect((await checkMysqlCapture(restricted)).missing).toEqual([]);
  });

  it('throws classified errors without the password for a wrong password or an unreachable server', async () => {
    const bad = await checkMysqlCapture({ ...conn, user: `capcheck_${db}`, password: 'wrong-Pa55word' }).catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(FatalError);
    expect((bad as Error).message).toMatch(/ER_ACCESS_DENIED_ERROR/);
    expect((bad as Error).message).not.toContain('wrong-Pa55word');
    const down = await checkMysqlCapture({ ...conn, port: 1 }).catch((e: unknown) => e);
    expect(down).toBeInstanceOf(RetriableError);
    expect((down as Error).message).toMatch(/127\.0\.0\.1:1/);
  });

  it('capture run() rejects fatal on bad credentials and retriable on an unreachable server', async () => {
    const ac = new AbortController();
    const from = { kind: 'mysql' as const, file: 'binlog.000001', pos: 4 };
    const auth = await newCapture({ connection: { ...conn, password: 'nope-nope' , user: 'nobody_here' }, from }).run(async () => undefined, ac.signal).catch((e: unknown) => e);
    expect(auth).toBeInstanceOf(FatalError);
    const down = await newCapture({ connection: { ...conn, port: 1 }, from }).run(async () => undefined, ac.signal).catch((e: unknown) => e);
    expect(down).toBeInstanceOf(RetriableError);
  });

  it('run() rejects retriable when the binlog connection is killed, and close() ends a running capture', async () => {
    await sql(`CREATE TABLE \`${db}\`.killme (id INT PRIMARY KEY)`);
    const cap = newCapture();
    await cap.prepare();
    const ac = new AbortController();
    const seen: CapturedTransaction[] = [];
    const running = cap.run(async (tx) => { seen.push(tx); }, ac.signal).catch((e: unknown) => e);
    await sql(`INSERT INTO \`${db}\`.killme VALUES (1)`);
    for (let i = 0; i < 100 && seen.length === 0; i++) await new Promise((r) => setTimeout(r, 50));
    expect(seen).toHaveLength(1);
    const dumps = (await sql(`SELECT ID FROM information_schema.PROCESSLIST WHERE COMMAND LIKE 'Binlog Dump%'`)) as { ID: number }[];
    expect(dumps.length).toBeGreaterThan(0);
    for (const d of dumps) await sql(`KILL ${Number(d.ID)}`).catch(() => undefined);
    const err = await running;
    expect(err).toBeInstanceOf(RetriableError);
    await cap.close();

    // close() while running: run() resolves.
    const cap2 = newCapture();
    await cap2.prepare();
    const running2 = cap2.run(async () => undefined, new AbortController().signal);
    await new Promise((r) => setTimeout(r, 300));
    await cap2.close();
    await expect(running2).resolves.toBeUndefined();
  });

  it("reports log_bin missing on the machine's own MariaDB at 3306 (which runs without binlog)", async (ctx) => {
    if (!(await portOpen(3306))) return ctx.skip();
    const local: DbConnectionConfig = { kind: 'mysql', host: '127.0.0.1', port: 3306, user: 'root', password: '' };
    let res;
    try {
      res = await checkMysqlCapture(local);
    } catch (err) {
      if (err instanceof FatalError) return ctx.skip(); // reachable, but not with these credentials
      throw err;
    }
    expect(res.ok).toBe(false);
    expect(res.missing).toContain('log_bin');
    const cap = newCapture({ connection: local });
    await expect(cap.prepare()).rejects.toThrow(/log_bin/);
    await cap.close();
  });
});

describe('pure helpers (no server)', () => {
  it('parses table DDL statements', () => {
    expect(parseDdl('/* c */ ALTER TABLE `a``b`.t1 ADD COLUMN x INT', 'd')).toEqual({ kind: DdlKind.AlterTable, tables: [{ schema: 'a`b', table: 't1' }] });
    expect(parseDdl('DROP TABLE IF EXISTS `s`.`t` /* generated by server */', 'd')).toEqual({ kind: DdlKind.DropTable, tables: [{ schema: 's', table: 't' }] });
    expect(parseDdl('drop table a, s2.b', 'd')!.tables).toEqual([{ schema: 'd', table: 'a' }, { schema: 's2', table: 'b' }]);
    expect(parseDdl('RENAME TABLE a TO b, x.c TO y.d', 'd')).toEqual({
      kind: DdlKind.RenameTable, tables: [{ schema: 'd', table: 'a' }, { schema: 'x', table: 'c' }], renamedTo: [{ schema: 'd', table: 'b' }, { schema: 'y', table: 'd' }],
    });
    expect(parseDdl('CREATE UNIQUE INDEX ix ON t (a)', 'd')).toMatchObject({ kind: DdlKind.CreateIndex, tables: [{ schema: 'd', table: 't' }] });
    expect(parseDdl('TRUNCATE t', 'd')).toMatchObject({ kind: DdlKind.TruncateTable });
    expect(parseDdl('CREATE TEMPORARY TABLE tmp (a INT)', 'd')).toBeUndefined();
    expect(parseDdl('CREATE DATABASE x', 'd')).toBeUndefined();
    expect(parseDdl("GRANT SELECT ON *.* TO 'u'@'%'", 'd')).toBeUndefined();
  });

  it('repairs zongji negative TIME text and rounds FLOAT to float32', () => {
    expect(repairTime('-11:63:64')).toBe('-12:00:00');
    expect(repairTime('-00:00:64.000000')).toBe('-00:01:00.000000');
    expect(repairTime('-12:00:05')).toBe('-12:00:05');
    expect(repairTime('838:59:59')).toBe('838:59:59');
    expect(shortestFloat32(0.10000000149011612)).toBe(0.1);
    expect(shortestFloat32(123456792)).toBe(123456790);
  });

  it('reads global privileges from SHOW GRANTS', () => {
    const g = parseGrants([
      "GRANT REPLICATION SLAVE, BINLOG MONITOR ON *.* TO `u`@`%` IDENTIFIED BY PASSWORD '*AB'",
      'GRANT SELECT, INSERT ON `shop`.* TO `u`@`%`',
    ]);
    expect([...g.global]).toEqual(['REPLICATION SLAVE', 'BINLOG MONITOR']);
    expect([...g.selectSchemas]).toEqual(['shop']);
  });
});
