/**
 * The feed keeps MariaDB rows as their binlog row images (feed-codec-wire.ts,
 * mysql-row-images.ts), end to end on the suite's private MariaDB and Redis:
 * a capture of every column type the fast decoder reads (signed and unsigned
 * integers, float, double, decimal, year, bit, enum, date, time, datetime,
 * timestamp, char, varchar, text, binary, varbinary, blob), inserted, updated
 * and deleted, is appended to a feed, and a reader in no way connected to the
 * capture (no local echo: what another process, a subscriber or a restarted
 * apply reads) gets exactly the changes the capture made, from entries that
 * hold images, not JSON.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { Redis } from 'ioredis';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { MysqlBinlogCapture } from '../../../src/replication/capture/mysql-binlog.capture.ts';
import { setEagerPlans } from '../../../src/replication/capture/mysql-rows-decoder.ts';
import { Operation, type CapturedTransaction, type ChangeEvent } from '../../../src/replication/change-event.ts';
import type { DbConnectionConfig } from '../../../src/replication/connection-config.ts';
import { feedImageStats, PIECE_V3_TAG } from '../../../src/replication/feed/feed-codec-wire.ts';
import { RedisChangeFeed } from '../../../src/replication/feed/redis-change-feed.ts';
import { silentLogger } from '../../../src/replication/logger.ts';
import { MYSQL_COLUMNS } from '../../support/fidelity-catalog.ts';

const u = new URL(inject('mariaUrl'));
const conn: DbConnectionConfig = { kind: 'mysql', host: u.hostname, port: Number(u.port), user: decodeURIComponent(u.username), password: decodeURIComponent(u.password) };
const db = `feed_img_${randomBytes(4).toString('hex')}`;
let admin: mysql.Connection;
let redis: Redis;

// Every type of the fidelity catalog the fast decoder plans (JSON and SET stay zongji's, and their tables JSON), and a few more.
const CASES = MYSQL_COLUMNS.filter((c) => c.id !== 'json' && c.id !== 'set');
const EXTRA = [
  { name: 'c_char', type: 'char(5)', value: fc.constantFrom("'ab'", "'é'", "''", "'abcde'") },
  { name: 'c_binary', type: 'binary(4)', value: fc.constantFrom("X'01'", "X'00000000'", "X'ffeeddcc'", "''") },
  { name: 'c_medium_u', type: 'mediumint unsigned', value: fc.integer({ min: 0, max: 16_777_215 }).map(String) },
  { name: 'c_dec_wide', type: 'decimal(65,30)', value: fc.constantFrom('0', '-1.5', '12345678901234567890123456789012345.123456789012345678901234567890') },
  { name: 'c_time0', type: 'time', value: fc.constantFrom("'-838:59:59'", "'00:00:00'", "'12:34:56'") },
  { name: 'c_ts0', type: 'timestamp NULL', value: fc.constantFrom("'1970-01-02 00:00:00'", "'2038-01-01 00:00:00'") },
  { name: 'c_longtext', type: 'longtext', value: fc.constantFrom("'long'", "''", `'${'x'.repeat(70_000)}'`) },
];
/** Columns whose decoded values are their final ones (decodedIsFinal): the reader takes such rows as decoded. */
const FINAL_TYPE = /^(tinyint|smallint|mediumint|int|bigint|double|decimal|date|datetime|char|varchar|text|longtext)\b/;
const ROWS = 300;

beforeAll(async () => {
  admin = await mysql.createConnection({ host: conn.host, port: conn.port, user: conn.user, password: conn.password, multipleStatements: true });
  await admin.query(`CREATE DATABASE ${db}`);
  redis = new Redis(inject('redisUrl'));
  // A table map's first rows are zongji's (planFor): decode here from the first, so that every row can keep its image.
  setEagerPlans(true);
});
afterAll(async () => {
  setEagerPlans(false);
  await admin.query(`DROP DATABASE IF EXISTS ${db}`);
  await admin.end();
  redis.disconnect();
});

describe('MariaDB row images in the feed', () => {
  it('a reader without the capture gets exactly the captured changes, from image entries', async () => {
    await roundTrip('w', [...CASES.map((c) => ({ name: `c_${c.id}`, type: c.type, value: c.value })), ...EXTRA]);
  });

  it('the same for a table of columns whose decoded values are final (rows taken as decoded)', async () => {
    const all = [...CASES.map((c) => ({ name: `c_${c.id}`, type: c.type, value: c.value })), ...EXTRA];
    const final = all.filter((c) => FINAL_TYPE.test(c.type) && !/^tinyint\(1\)|^year/.test(c.type));
    expect(final.length).toBeGreaterThan(8);
    const asDecoded = feedImageStats.readAsDecoded;
    await roundTrip('f', final);
    // Every image read back: an insert's, a delete's, an update's two.
    expect(feedImageStats.readAsDecoded - asDecoded).toBe(ROWS + 2 * ROWS + ROWS / 3);
  });
});

async function roundTrip(table: string, columns: { name: string; type: string; value: fc.Arbitrary<string> }[]): Promise<void> {
  {
    const NAMES = columns.map((c) => c.name);
    const cols = columns.map((c) => `${c.name} ${c.type}`).join(', ');
    await admin.query(`CREATE TABLE ${db}.${table} (id int PRIMARY KEY, ${cols}) CHARACTER SET utf8mb4`);
    const capture = new MysqlBinlogCapture({ connection: conn, jobId: 'feed-img', tables: { schemas: [{ schema: db }] }, logger: silentLogger, progressIntervalMs: 0 });
    const { position } = await capture.prepare();
    await capture.close();

    const values = fc.tuple(...columns.map((c) => fc.option(c.value, { nil: null, freq: 6 })));
    const draw = (seed: number) => fc.sample(values, { seed, numRuns: ROWS });
    const lit = (v: string | null) => v ?? 'NULL';
    await admin.query(`INSERT INTO ${db}.${table} (id, ${NAMES.join(', ')}) VALUES ${draw(3).map((vals, i) => `(${i + 1}, ${vals.map(lit).join(', ')})`).join(', ')}`);
    const updates = draw(5).map((vals, i) => `UPDATE ${db}.${table} SET ${NAMES.map((n, k) => `${n} = ${lit(vals[k]!)}`).join(', ')} WHERE id = ${i + 1}`);
    await admin.query(`START TRANSACTION; ${updates.join('; ')}; COMMIT`);
    await admin.query(`DELETE FROM ${db}.${table} WHERE id % 3 = 0`);

    const reader = new MysqlBinlogCapture({ connection: conn, jobId: 'feed-img', tables: { schemas: [{ schema: db }] }, logger: silentLogger, progressIntervalMs: 0, from: position });
    const txs: CapturedTransaction[] = [];
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), 30_000);
    const want = ROWS + ROWS + ROWS / 3;
    try {
      await reader.run(async (tx) => {
        txs.push(tx);
        if (txs.reduce((n, t) => n + t.events.length, 0) >= want) ac.abort();
      }, ac.signal);
    } finally {
      clearTimeout(timer);
      await reader.close();
    }
    const captured: ChangeEvent[] = txs.flatMap((t) => t.events);
    expect(captured.map((e) => e.op)).toEqual([
      ...Array<Operation>(ROWS).fill(Operation.Insert), ...Array<Operation>(ROWS).fill(Operation.Update), ...Array<Operation>(ROWS / 3).fill(Operation.Delete),
    ]);

    const name = `img-${randomUUID()}`;
    const writer = new RedisChangeFeed({ redis, name, prefix: db });
    const plain = new RedisChangeFeed({ redis, name, prefix: db });
    try {
      const images0 = feedImageStats.images;
      for (const tx of txs) await writer.append(tx);
      // One image per insert and delete, two per update.
      expect(feedImageStats.images - images0).toBe(ROWS + 2 * ROWS + ROWS / 3);
      const read: ChangeEvent[] = [];
      for (let since: string | null = null; read.length < captured.length;) {
        const got = await plain.read(since, 1000);
        if (got.length === 0) break;
        read.push(...got);
        since = got.at(-1)!.sequence;
      }
      expect(read).toEqual(captured);
      // Every entry holds images (a binary piece), none the rows' JSON.
      const entries = await redis.xrangeBuffer(writer.keys.stream, '-', '+');
      expect(entries.length).toBeGreaterThan(0);
      for (const [, fields] of entries) {
        const at = fields.findIndex((f, i) => i % 2 === 0 && f.toString() === 'b');
        expect(fields[at + 1]![0]).toBe(PIECE_V3_TAG);
      }
    } finally {
      await writer.destroy().catch(() => undefined);
      await writer.close(); await plain.close();
    }
  }
}
