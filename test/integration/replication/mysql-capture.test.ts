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
import { checkMysqlCapture } from '../../../src/replication/capture/mysql-check.ts';
import { MysqlSnapshotReader } from '../../../src/replication/snapshot/mysql.snapshot.ts';

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
    }
    const all = events(txs);
    for (let i = 1; i < all.length; i++) expect(compareSequences(all[i - 1]!.sequence, all[i]!.sequence)).toBe(-1);
    expect(BigInt(t1.commitSequence) < BigInt(t2.commitSequence) && BigInt(t2.commitSequence) < BigInt(t3.commitSequence)).toBe(true);
    expect(Number(t2.txid)).toBe(Number(t1.txid) + 1);

    // Restart from the earlier position, by GTID and by file/pos: identical transactions.
    const again = await collect({ from: start }, (t) => t.length >= 3);
    expect(again).toEqual(txs);
    const { gtid: _g, ...filePos } = start as { kind: 'mysql'; file: string; pos: number; gtid?: string };
    const byFilePos = await collect({ from: filePos }, (t) => t.length >= 3);
    expect(byFilePos).toEqual(txs);

    // Resume after t1 (GTID and file/pos): the next delivered is t2.
    const afterT1 = await collect({ from: t1.resume }, (t) => t.length >= 1);
    expect(afterT1[0]).toEqual(t2);
    const { gtid: _g2, ...t1FilePos } = t1.resume as { kind: 'mysql'; file: string; pos: number; gtid?: string };
    const afterT1Pos = await collect({ from: t1FilePos }, (t) => t.length >= 1);
    expect(afterT1Pos[0]).toEqual(t2);

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
    const txs = await collect({ from: position, maxQueuedTransactions: 4 }, (t) => t.length >= n, 60_000, async () => {
      active++;
      maxActive = Math.max(maxActive, active);
      await new Promise((r) => setTimeout(r, 2));
      active--;
    });
    expect(maxActive).toBe(1);
    expect(txs.map((t) => t.events[0]!.after!.id)).toEqual([...Array(n).keys()]);
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
