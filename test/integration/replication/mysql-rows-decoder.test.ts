/**
 * Differential test of the fast row decoder (mysql-rows-decoder.ts) against
 * zongji's own: the same binlog range is read twice by zongji, once with the
 * override off and once with it on, and every row image must be deep-equal
 * (same keys, order, values and JS types). Tables hold every column type
 * the capture supports with edge values (min/max integers, negative and
 * fractional decimals, NULLs, multibyte text, zero and odd dates, fractional
 * seconds of 0-6 digits, negative times) plus random rows; writes are
 * made under binlog_row_metadata FULL and MINIMAL (zongji then names
 * columns from information_schema) and with MINIMAL/NOBLOB row images.
 * Tables with a type the decoder leaves to zongji (SET, geometry, latin1
 * text, a column named __proto__) must be decoded by zongji.
 * Then the whole capture is compared the same way (fastRowDecoder on/off).
 */
import mysql from 'mysql2/promise';
import ZongJi from '@vlasky/zongji';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { CapturedTransaction } from '../../../src/replication/change-event.ts';
import type { DbConnectionConfig } from '../../../src/replication/connection-config.ts';
import { silentLogger } from '../../../src/replication/logger.ts';
import { MysqlBinlogCapture } from '../../../src/replication/capture/mysql-binlog.capture.ts';
import { binlogEnd, mysqlConnectionOptions } from '../../../src/replication/capture/mysql-connection.ts';
import { setEagerPlans } from '../../../src/replication/capture/mysql-rows-decoder.ts';
import { enableFastRows, fastRowStats, installFastRowDecoder } from '../../../src/replication/capture/mysql-zongji-hooks.ts';
import { clearTableMaps, tableMapStats } from '../../../src/replication/capture/mysql-table-maps.ts';
import { mapperStats } from '../../../src/replication/capture/mysql-transaction.mapper.ts';

const u = new URL(inject('mariaUrl'));
const conn: DbConnectionConfig = { kind: 'mysql', host: u.hostname, port: Number(u.port), user: decodeURIComponent(u.username), password: decodeURIComponent(u.password) };
const db = `dec_test_${randomBytes(4).toString('hex')}`;
let admin: mysql.Connection;

const q = async (sql: string): Promise<unknown> => (await admin.query(sql))[0];

/** Seeded PRNG so a failure can be replayed (DECODER_SEED). */
let seed = Number(process.env.DECODER_SEED ?? Date.now() % 1_000_000);
const rnd = (): number => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed / 2147483648; };
const ri = (lo: number, hi: number): number => lo + Math.floor(rnd() * (hi - lo + 1));
const pick = <T>(xs: T[]): T => xs[ri(0, xs.length - 1)]!;
const digits = (n: number): string => Array.from({ length: n }, () => ri(0, 9)).join('');
const big = (bits: number, signed: boolean): string => {
  const max = 1n << BigInt(signed ? bits - 1 : bits);
  let v = 0n;
  for (let i = 0; i < bits; i += 16) v = (v << 16n) | BigInt(ri(0, 65535));
  v %= max;
  return (signed && rnd() < 0.5 ? -v - (rnd() < 0.1 ? 1n : 0n) : v).toString();
};
const dec = (p: number, s: number, unsigned = false): string => {
  const i = digits(ri(0, p - s)).replace(/^0+/, '') || '0';
  return `${!unsigned && rnd() < 0.5 ? '-' : ''}${i}${s > 0 ? '.' + digits(ri(0, s)) : ''}`;
};
const date = (): string => `${String(ri(1000, 9999)).padStart(4, '0')}-${String(ri(1, 12)).padStart(2, '0')}-${String(ri(1, 28)).padStart(2, '0')}`;
const clock = (): string => `${String(ri(0, 23)).padStart(2, '0')}:${String(ri(0, 59)).padStart(2, '0')}:${String(ri(0, 59)).padStart(2, '0')}`;
const frac = (n: number): string => (n > 0 && rnd() < 0.8 ? '.' + digits(n) : '');
const text = (n: number): string => Array.from({ length: ri(0, n) }, () => pick(['a', 'Z', ' ', 'é', 'ß', '€', '😀', '𝄞', '\\\\', "''", '"', '\\n', '中'])).join('');
const hex = (n: number): string => `x'${randomHex(ri(0, n))}'`;
const randomHex = (n: number): string => Array.from({ length: n }, () => ri(0, 255).toString(16).padStart(2, '0')).join('');
const maybeNull = (v: string): string => (rnd() < 0.1 ? 'NULL' : v);

/** [name, type, random literal, edge literals]. */
type Col = [string, string, () => string, string[]];
const FAST_COLS: Col[] = [
  ['c_ti', 'tinyint', () => String(ri(-128, 127)), ['-128', '127', '0', '-1']],
  ['c_tiu', 'tinyint unsigned', () => String(ri(0, 255)), ['0', '255']],
  ['c_si', 'smallint', () => String(ri(-32768, 32767)), ['-32768', '32767']],
  ['c_siu', 'smallint unsigned', () => String(ri(0, 65535)), ['65535']],
  ['c_mi', 'mediumint', () => String(ri(-8388608, 8388607)), ['-8388608', '8388607', '-1']],
  ['c_miu', 'mediumint unsigned', () => String(ri(0, 16777215)), ['16777215']],
  ['c_i', 'int', () => big(32, true), ['-2147483648', '2147483647', '-1']],
  ['c_iu', 'int unsigned', () => big(32, false), ['4294967295', '2147483648']],
  ['c_bi', 'bigint', () => big(64, true), ['-9223372036854775808', '9223372036854775807', '-9007199254740991', '-9007199254740992', '9007199254740991', '9007199254740992', '-1']],
  ['c_biu', 'bigint unsigned', () => big(64, false), ['18446744073709551615', '9007199254740991', '9007199254740992', '9223372036854775808']],
  ['c_d65', 'decimal(65,30)', () => dec(65, 30), ['-99999999999999999999999999999999999.999999999999999999999999999999', '0', '-0.000000000000000000000000000001']],
  ['c_d10', 'decimal(10,2)', () => dec(10, 2), ['-99999999.99', '99999999.99', '0.01', '-0.01']],
  ['c_d55', 'decimal(5,5)', () => dec(5, 5), ['-0.99999', '0.00001']],
  ['c_d18', 'decimal(18,9)', () => dec(18, 9), ['-999999999.999999999', '1.000000001']],
  ['c_d9', 'decimal(9,0)', () => dec(9, 0), ['-999999999', '999999999']],
  ['c_d4', 'decimal(4,1) unsigned', () => dec(4, 1, true), ['999.9', '0.0']],
  ['c_d20', 'decimal(20,11)', () => dec(20, 11), ['-123456789.12345678901']],
  ['c_f', 'float', () => `${rnd() < 0.5 ? '-' : ''}${digits(ri(1, 6))}${rnd() < 0.5 ? '.' + digits(ri(1, 4)) : ''}e${ri(-20, 20)}`, ['1.1', '-3.4e38', '1.17549e-38', '0', '-0']],
  ['c_dbl', 'double', () => `${rnd() < 0.5 ? '-' : ''}${digits(ri(1, 15))}${rnd() < 0.5 ? '.' + digits(ri(1, 6)) : ''}e${ri(-200, 200)}`, ['0.30000000000000004', '-1.7976931348623157e308', '5e-324']],
  ['c_date', 'date', () => `'${date()}'`, [`'0000-00-00'`, `'2024-02-29'`, `'1000-01-01'`, `'9999-12-31'`, `'2024-00-00'`]],
  ...[0, 1, 2, 3, 4, 5, 6].map((n): Col => [`c_t${n}`, `time(${n})`, () => `'${rnd() < 0.4 ? '-' : ''}${ri(0, 838)}:${String(ri(0, 59)).padStart(2, '0')}:${String(ri(0, 59)).padStart(2, '0')}${frac(n)}'`,
    [`'-838:59:59'`, `'838:59:59'`, `'-12:00:00'`, `'-00:00:01'`, `'00:00:00'`, ...(n > 0 ? [`'-00:00:00.${'5'.padEnd(n, '0')}'`, `'-01:00:00.${'0'.repeat(n - 1)}1'`] : [])]]),
  ...[0, 1, 2, 3, 4, 5, 6].map((n): Col => [`c_dt${n}`, `datetime(${n})`, () => `'${date()} ${clock()}${frac(n)}'`,
    [`'0000-00-00 00:00:00'`, `'9999-12-31 23:59:59${n ? '.' + '9'.repeat(n) : ''}'`, `'1000-01-01 00:00:00'`, `'2024-02-29 12:00:00${n ? '.' + '0'.repeat(n - 1) + '1' : ''}'`]]),
  ...[0, 1, 2, 3, 4, 5, 6].map((n): Col => [`c_ts${n}`, `timestamp(${n}) NULL`, () => `'${ri(1971, 2037)}-${String(ri(1, 12)).padStart(2, '0')}-${String(ri(1, 28)).padStart(2, '0')} ${clock()}${frac(n)}'`,
    [`'0000-00-00 00:00:00'`, `'1970-01-01 00:00:01'`, `'2038-01-19 03:14:07${n ? '.' + '9'.repeat(n) : ''}'`, `'2000-02-29 23:59:59'`]]),
  ['c_y', 'year', () => String(ri(1901, 2155)), ['0000', '1901', '2155']],
  ['c_ch', 'char(5)', () => `'${Array.from({ length: ri(0, 5) }, () => pick(['a', 'é', '😀', ' ', '中'])).join('')}'`, [`''`, `'ab'`, `'😀😀😀😀😀'`]],
  ['c_vc', 'varchar(20)', () => `'${text(8)}'`, [`''`, `'emoji 😀𝄞'`]],
  ['c_vcl', 'varchar(300)', () => `'${text(100)}'`, [`'${'é'.repeat(300)}'`]],
  ['c_vc3', 'varchar(10) CHARACTER SET utf8mb3', () => `'${text(5).replace(/😀|𝄞/g, 'x')}'`, [`'€uro'`]],
  ['c_tt', 'tinytext', () => `'${text(20)}'`, [`''`]],
  ['c_tx', 'text', () => `'${text(40)}'`, [`'tab\\tq"uote''s'`]],
  ['c_mt', 'mediumtext', () => `'${text(40)}'`, [`'${'中'.repeat(2000)}'`]],
  ['c_lt', 'longtext', () => `'${text(40)}'`, [`'line1\\nline2 \\\\ back'`]],
  ['c_js', 'json', () => `'{"k": ${ri(-5, 5)}, "s": "${text(3).replace(/\\|"|'/g, '')}"}'`, [`'[]'`, `'{"a": [1, 2.5, "x"]}'`]],
  ['c_bn', 'binary(4)', () => hex(4), [`x'00ff1020'`, `x'ff'`, `''`]],
  ['c_vb', 'varbinary(8)', () => hex(8), [`x'0102'`, `''`]],
  ['c_vbl', 'varbinary(400)', () => hex(300), [`x'${'ab'.repeat(400)}'`]],
  ['c_tb', 'tinyblob', () => hex(20), [`''`]],
  ['c_bl', 'blob', () => hex(40), [`x'000102ff'`]],
  ['c_en', `enum('a','B','c d','😀')`, () => pick([`'a'`, `'B'`, `'c d'`, `'😀'`]), [`'B'`, `''`]],
  ['c_b1', 'bit(1)', () => `b'${ri(0, 1)}'`, [`b'1'`]],
  ['c_b10', 'bit(10)', () => `b'${ri(0, 1023).toString(2)}'`, [`b'1010101010'`]],
  ['c_b64', 'bit(64)', () => `x'${randomHex(8)}'`, [`x'ffffffffffffffff'`]],
  // An integer-like name: object keys of that kind come first, whatever the column order.
  ['42', 'int', () => String(ri(-5, 5)), ['7']],
];
/** Columns whose decoded values are their final ones (decodedIsFinal): the mapper takes such rows as they are. */
const FINAL_COLS: Col[] = FAST_COLS.filter(([, t]) => !/^(float|time|timestamp|year|json|binary|varbinary|tinyblob|blob|enum|bit)\b/.test(t));
/** Each makes its table take zongji's own decoder. */
const SLOW_COLS: Col[] = [
  ['s_set', `set('a','c d','e')`, () => pick([`'a'`, `'a,c d'`, `''`, `'e'`]), [`'a,c d,e'`]],
  ['s_uuid', 'uuid', () => `'${randomHex(4)}-${randomHex(2)}-${randomHex(2)}-${randomHex(2)}-${randomHex(6)}'`, [`'F47AC10B-58CC-4372-A567-0E02B2C3D479'`]],
  ['s_inet6', 'inet6', () => `'2001:db8::${ri(1, 9999)}'`, [`'::ffff:1.2.3.4'`]],
  ['s_geo', 'point', () => `POINT(${ri(-100, 100)}, ${ri(-100, 100)})`, ['POINT(1, 2)']],
  // zongji's `row[name] = value` makes this one the row's prototype (or drops it).
  ['__proto__', 'int', () => String(ri(0, 9)), ['1']],
  ['s_lat', 'varchar(10) CHARACTER SET latin1', () => `'${pick(['é', 'abc', '€', ''])}'`, [`'ÿ'`]],
];

function createTable(name: string, cols: Col[]): string {
  return `CREATE TABLE ${name} (id int PRIMARY KEY, ${cols.map(([n, t]) => `\`${n}\` ${t}`).join(', ')})`;
}

/** Rows: one per edge value (the rest of the row random), all NULL, random ones. */
async function fill(table: string, cols: Col[], randomRows: number, firstId: number): Promise<number> {
  const rows: string[][] = [];
  const edges = Math.max(...cols.map((c) => c[3].length));
  for (let e = 0; e < edges; e++) rows.push(cols.map((c) => c[3][e] ?? c[2]()));
  rows.push(cols.map(() => 'NULL'));
  for (let r = 0; r < randomRows; r++) rows.push(cols.map((c) => maybeNull(c[2]())));
  let id = firstId;
  // One statement per row: a value MariaDB rejects shows up with its row.
  for (const r of rows) await q(`INSERT INTO ${table} VALUES (${id++}, ${r.join(', ')})`);
  // Multi-row statements too (several rows per event), then updates and deletes.
  const multi: string[] = [];
  for (let r = 0; r < 20; r++) multi.push(`(${id++}, ${cols.map((c) => maybeNull(c[2]())).join(', ')})`);
  await q(`INSERT INTO ${table} VALUES ${multi.join(', ')}`);
  const [c1, c2] = [cols[ri(0, cols.length - 1)]!, cols[ri(0, cols.length - 1)]!];
  await q(`UPDATE ${table} SET \`${c1[0]}\` = ${c1[2]()}, \`${c2[0]}\` = NULL WHERE id % 3 = 0`);
  await q(`UPDATE ${table} SET ${cols.map((c) => `\`${c[0]}\` = ${maybeNull(c[2]())}`).join(', ')} WHERE id % 5 = 1`);
  await q(`DELETE FROM ${table} WHERE id % 4 = 2`);
  return id;
}

interface RowsEv { type: string; table: string; rows: unknown[] }

/** Reads [from, to) of the binlog with zongji, the fast decoder on or off. */
async function readRange(from: { file: string; pos: number }, to: { file: string; pos: number }, fast: boolean): Promise<RowsEv[]> {
  const z = new ZongJi(mysqlConnectionOptions(conn));
  enableFastRows(z, fast);
  const out: RowsEv[] = [];
  let file = from.file;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`binlog range not read within 60 s (${out.length} row events)`)), 60_000);
    const done = (err?: Error) => { clearTimeout(timer); try { z.stop(); } catch { /* stopped */ } if (err) reject(err); else resolve(); };
    z.on('error', (err: Error) => done(err));
    z.on('binlog', (e: { getTypeName(): string; nextPosition: number; rows?: unknown[]; tableId?: number; tableMap?: Record<number, { tableName: string }> }) => {
      const t = e.getTypeName();
      if ((t === 'WriteRows' || t === 'UpdateRows' || t === 'DeleteRows') && e.rows) out.push({ type: t, table: e.tableMap![e.tableId!]!.tableName, rows: e.rows });
      if (t === 'Rotate') { file = (e as unknown as { binlogName: string }).binlogName; return; }
      if (file === to.file && e.nextPosition >= to.pos) done();
    });
    z.start({ serverId: 7000 + ri(0, 100000), filename: from.file, position: from.pos, includeSchema: { [db]: true } });
  });
  return out;
}

beforeAll(async () => {
  admin = await mysql.createConnection({ host: conn.host, port: conn.port, user: conn.user, password: conn.password, multipleStatements: true });
  await q(`CREATE DATABASE ${db}`);
  await q(`USE ${db}`);
  await q(`SET SESSION sql_mode = '', SESSION time_zone = '+00:00'`);
  expect(await installFastRowDecoder()).toBe(true);
});

afterAll(async () => {
  await q(`DROP DATABASE IF EXISTS ${db}`).catch(() => undefined);
  await admin?.end();
});

describe('fast row decoder vs zongji', () => {
  let from: { file: string; pos: number };
  let to: { file: string; pos: number };

  beforeAll(async () => {
    console.log(`DECODER_SEED=${seed}`);
    await q(createTable('fast_all', FAST_COLS));
    await q(createTable('fast_final', FINAL_COLS));
    for (const c of SLOW_COLS) await q(createTable(`slow_${c[0]}`, [FAST_COLS[0]!, c, FAST_COLS[10]!]));
    // Classic (pre-5.6) temporal codes cannot be created on a current server; zongji keeps those tables by plan (colPlan).
    from = (await binlogEnd(admin))!;
    let id = await fill('fast_all', FAST_COLS, 150, 1);
    await fill('fast_final', FINAL_COLS, 60, 1);
    for (const c of SLOW_COLS) await fill(`slow_${c[0]}`, [FAST_COLS[0]!, c, FAST_COLS[10]!], 20, 1);
    // Column names from information_schema (zongji's other table-map path), then partial row images.
    const [[{ Value: metadata }]] = await admin.query('SHOW GLOBAL VARIABLES LIKE "binlog_row_metadata"') as unknown as [[{ Value: string }]];
    await q(`SET GLOBAL binlog_row_metadata = 'MINIMAL'`);
    try {
      await q(`FLUSH TABLES`);
      id = await fill('fast_all', FAST_COLS, 40, id);
    } finally {
      await q(`SET GLOBAL binlog_row_metadata = '${metadata}'`);
    }
    for (const image of ['MINIMAL', 'NOBLOB']) {
      await q(`SET SESSION binlog_row_image = '${image}'`);
      id = await fill('fast_all', FAST_COLS, 20, id);
    }
    await q(`SET SESSION binlog_row_image = 'FULL'`);
    to = (await binlogEnd(admin))!;
  });

  it('yields deep-equal rows, decoding the all-types table itself and leaving the others to zongji', async () => {
    const slow = await readRange(from, to, false);
    const before = { ...fastRowStats };
    // Every row through the plans, single-row statements included.
    setEagerPlans(true);
    const fast = await readRange(from, to, true).finally(() => setEagerPlans(false));
    const fastRows = fastRowStats.fast - before.fast;
    const fallbackRows = fastRowStats.fallback - before.fallback;
    const count = (evs: RowsEv[], table?: (t: string) => boolean) => evs.filter((e) => !table || table(e.table)).reduce((a, e) => a + e.rows.length, 0);
    expect(count(slow)).toBeGreaterThan(600);
    expect(fast.length).toBe(slow.length);
    for (let i = 0; i < slow.length; i++) {
      expect(fast[i]!.table).toBe(slow[i]!.table);
      expect(fast[i]!.type).toBe(slow[i]!.type);
      for (let r = 0; r < slow[i]!.rows.length; r++) {
        // Row by row, keys in order included: a mismatch names its event and row.
        const [a, b] = [fast[i]!.rows[r], slow[i]!.rows[r]];
        expect({ i, r, table: slow[i]!.table, row: a }).toStrictEqual({ i, r, table: slow[i]!.table, row: b });
        const keys = (x: unknown) => Object.keys((x as { after?: object }).after ?? (x as object));
        expect(keys(a)).toEqual(keys(b));
      }
    }
    // UUID and INET6 columns arrive as binary(16) under binlog_row_metadata=FULL: decoded here, as BINARY (zongji does the same).
    const zongjiTables = new Set(['slow_s_set', 'slow_s_geo', 'slow_s_lat', 'slow___proto__']);
    expect(fallbackRows).toBe(count(slow, (t) => zongjiTables.has(t)));
    expect(fastRows).toBe(count(slow, (t) => !zongjiTables.has(t)));
  });

  it('gives the same captured transactions with fastRowDecoder on and off', async () => {
    const run = async (fastRowDecoder: boolean, eager = false): Promise<CapturedTransaction[]> => {
      setEagerPlans(eager);
      const cap = new MysqlBinlogCapture({
        // The __proto__ table stays out: the mapper cannot convert that column on either path (a separate bug).
        connection: conn, jobId: 'dec-test', logger: silentLogger,
        tables: { schemas: [{ schema: db, tables: ['fast_all', 'fast_final', ...SLOW_COLS.filter((c) => c[0] !== '__proto__').map((c) => `slow_${c[0]}`)] }] },
        from: { kind: 'mysql', file: from.file, pos: from.pos }, fastRowDecoder,
      });
      const txs: CapturedTransaction[] = [];
      const ac = new AbortController();
      const timer = setTimeout(() => ac.abort(), 60_000);
      try {
        await cap.run(async (tx) => {
          txs.push(tx);
          if (tx.resume.kind === 'mysql' && tx.resume.file === to.file && tx.resume.pos >= to.pos) ac.abort();
        }, ac.signal);
      } finally {
        clearTimeout(timer);
        setEagerPlans(false);
        await cap.close();
      }
      return txs;
    };
    const slow = await run(false);
    expect(slow.reduce((a, t) => a + t.events.length, 0)).toBeGreaterThan(600);
    // Eager: every row decoded here. Default: first rows of each table map by zongji, in the same events.
    for (const eager of [true, false]) {
      const before = { ...fastRowStats };
      // Repeated TABLE_MAP events (one per single-row statement here) reuse the first one's work (mysql-table-maps.ts).
      clearTableMaps();
      const maps = { ...tableMapStats };
      const asFinal = mapperStats.decodedAsFinal;
      const fast = await run(true, eager);
      // fast_final's rows (and only rows of tables whose every column decodes to its final value) are taken as decoded.
      expect(mapperStats.decodedAsFinal).toBeGreaterThan(asFinal + 60);
      expect(fastRowStats.fast).toBeGreaterThan(before.fast);
      if (!eager) expect(fastRowStats.deferred).toBeGreaterThan(before.deferred);
      expect(tableMapStats.recorded).toBeGreaterThan(maps.recorded);
      expect(tableMapStats.reused).toBeGreaterThan(maps.reused);
      // The commit estimate is lag metadata taken from this process's clock at receipt (commit-clock.ts), not payload.
      const payload = (list: typeof slow) => list.map(({ commitEstimate: _c, ...t }) => t);
      expect(payload(fast)).toStrictEqual(payload(slow));
    }
  });
});
