/**
 * Appliers against the private PostgreSQL and MariaDB: the type matrix of
 * docs/types.md (ids T01.. name its rows), batch collapsing, keyless tables,
 * checkpoints and replays, a failing batch, DDL and lanes. Events are built
 * by hand in the representation each capture produces.
 */
import { randomBytes } from 'node:crypto';
import mysql from 'mysql2/promise';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { Operation, type ChangeEvent, type ColumnType, type Row, type SourceKind, type Value } from '../../../src/replication/change-event.ts';
import type { DbConnectionConfig } from '../../../src/replication/connection-config.ts';
import { FatalError, RetriableError, UnmappableValueError, UnsupportedDdlError } from '../../../src/replication/errors.ts';
import { createApplier } from '../../../src/replication/apply/applier-factory.ts';
import type { Applier } from '../../../src/replication/apply/applier.ts';
import { cutAtDdl, laneOf, splitLanes } from '../../../src/replication/apply/lanes.ts';
import { makeSequence } from '../../../src/replication/sequence.ts';
import type { TableInfo } from '../../../src/replication/table-info.ts';

const RUN = randomBytes(3).toString('hex');
const SCHEMA = `apply_${RUN}`;
let seqCounter = 1;
const nextSeq = (): string => makeSequence(1, seqCounter++, 0);

// ---------------------------------------------------------------- fixtures

const m = (c: Partial<ColumnType> & Pick<ColumnType, 'name' | 'kind' | 'sourceType'>): ColumnType => c;
const p = (c: Partial<ColumnType> & Pick<ColumnType, 'name' | 'kind' | 'sourceType'>): ColumnType => ({ pgOid: 1, ...c });
const ID_M = m({ name: 'id', kind: 'int', sourceType: 'int(11)', size: 4 });
const ID_P = p({ name: 'id', kind: 'int', sourceType: 'integer', size: 4 });

function ev(source: SourceKind, table: string, op: Operation, columns: ColumnType[], before: Row | null, after: Row | null, key = ['id'], extra: Partial<ChangeEvent> = {}): ChangeEvent {
  return {
    source, sequence: nextSeq(), txid: '1', commitSequence: '1', index: 0, op, schema: SCHEMA, table,
    key, before, after, columns, commitTime: Date.now(), ...extra,
  };
}
const ddl = (source: SourceKind, table: string, statement: string, columns: ColumnType[], key = ['id']): ChangeEvent =>
  ev(source, table, Operation.Ddl, columns, null, null, key, { ddl: statement });

interface Case {
  id: string;
  col: ColumnType;
  value: Value;
  /** [destination type, value as text] per destination. */
  pg: [string, string];
  my: [string, string];
}

const B4 = Buffer.from([0, 1, 2, 255]).toString('base64');
const B256 = Buffer.from(Array.from({ length: 256 }, (_, i) => i)).toString('base64');
const HEX256 = Buffer.from(Array.from({ length: 256 }, (_, i) => i)).toString('hex');
const EMOJI = 'naïve 😀 ☃ 𝄞 漢字';
const DEC65 = '12345678901234567890123456789012345.123456789012345678901234567890';
const JSON_TEXT = '{"b": [1, 2.50, "😀"],  "a": null}';

/** MariaDB source columns (as the binlog capture describes them). */
const MARIA_CASES: Case[] = [
  { id: 'T01', col: m({ name: 'c_t01', kind: 'int', sourceType: 'tinyint(4)', size: 1 }), value: -128, pg: ['smallint', '-128'], my: ['tinyint(4)', '-128'] },
  { id: 'T02', col: m({ name: 'c_t02', kind: 'int', sourceType: 'tinyint(3) unsigned', size: 1, unsigned: true }), value: 255, pg: ['smallint', '255'], my: ['tinyint(3) unsigned', '255'] },
  { id: 'T03', col: m({ name: 'c_t03', kind: 'int', sourceType: 'smallint(5) unsigned', size: 2, unsigned: true }), value: 65535, pg: ['integer', '65535'], my: ['smallint(5) unsigned', '65535'] },
  { id: 'T04', col: m({ name: 'c_t04', kind: 'int', sourceType: 'mediumint(9)', size: 3 }), value: -8388608, pg: ['integer', '-8388608'], my: ['mediumint(9)', '-8388608'] },
  { id: 'T05', col: m({ name: 'c_t05', kind: 'int', sourceType: 'int(10) unsigned', size: 4, unsigned: true }), value: 4294967295, pg: ['bigint', '4294967295'], my: ['int(10) unsigned', '4294967295'] },
  { id: 'T06', col: m({ name: 'c_t06', kind: 'int', sourceType: 'bigint(20)', size: 8 }), value: '-9223372036854775808', pg: ['bigint', '-9223372036854775808'], my: ['bigint(20)', '-9223372036854775808'] },
  { id: 'T07', col: m({ name: 'c_t07', kind: 'int', sourceType: 'bigint(20) unsigned', size: 8, unsigned: true }), value: '18446744073709551615', pg: ['numeric(20,0)', '18446744073709551615'], my: ['bigint(20) unsigned', '18446744073709551615'] },
  { id: 'T08', col: m({ name: 'c_t08', kind: 'decimal', sourceType: 'decimal(65,30)', precision: 65, scale: 30 }), value: DEC65, pg: ['numeric(65,30)', DEC65], my: ['decimal(65,30)', DEC65] },
  { id: 'T09', col: m({ name: 'c_t09', kind: 'float', sourceType: 'float', size: 4 }), value: Math.fround(1.1), pg: ['real', '1.1'], my: ['float', '1.1'] },
  { id: 'T10', col: m({ name: 'c_t10', kind: 'float', sourceType: 'double', size: 8 }), value: 0.1 + 0.2, pg: ['double precision', '0.30000000000000004'], my: ['double', '0.30000000000000004'] },
  { id: 'T11', col: m({ name: 'c_t11', kind: 'text', sourceType: 'varchar(40)', length: 40 }), value: EMOJI, pg: ['character varying(40)', EMOJI], my: ['varchar(40)', EMOJI] },
  { id: 'T12', col: m({ name: 'c_t12', kind: 'text', sourceType: 'char(4)', length: 4, fixed: true }), value: 'ab', pg: ['character(4)', 'ab'], my: ['char(4)', 'ab'] },
  { id: 'T13', col: m({ name: 'c_t13', kind: 'text', sourceType: 'text', family: 'text' }), value: EMOJI, pg: ['text', EMOJI], my: ['text', EMOJI] },
  { id: 'T14', col: m({ name: 'c_t14', kind: 'text', sourceType: 'longtext', family: 'longtext' }), value: `${EMOJI}\n\\'"`, pg: ['text', `${EMOJI}\n\\'"`], my: ['longtext', `${EMOJI}\n\\'"`] },
  { id: 'T15', col: m({ name: 'c_t15', kind: 'binary', sourceType: 'binary(4)', length: 4, fixed: true }), value: B4, pg: ['bytea', '\\x000102ff'], my: ['binary(4)', '000102FF'] },
  { id: 'T16', col: m({ name: 'c_t16', kind: 'binary', sourceType: 'varbinary(10)', length: 10 }), value: B4, pg: ['bytea', '\\x000102ff'], my: ['varbinary(10)', '000102FF'] },
  { id: 'T17', col: m({ name: 'c_t17', kind: 'binary', sourceType: 'blob', family: 'blob' }), value: B256, pg: ['bytea', `\\x${HEX256}`], my: ['blob', HEX256.toUpperCase()] },
  { id: 'T18', col: m({ name: 'c_t18', kind: 'date', sourceType: 'date' }), value: '2024-02-29', pg: ['date', '2024-02-29'], my: ['date', '2024-02-29'] },
  { id: 'T19', col: m({ name: 'c_t19', kind: 'time', sourceType: 'time(6)', fsp: 6 }), value: '23:59:59.999999', pg: ['time(6) without time zone', '23:59:59.999999'], my: ['time(6)', '23:59:59.999999'] },
  { id: 'T20', col: m({ name: 'c_t20', kind: 'datetime', sourceType: 'datetime(6)', fsp: 6 }), value: '2024-02-29 13:14:15.123456', pg: ['timestamp(6) without time zone', '2024-02-29 13:14:15.123456'], my: ['datetime(6)', '2024-02-29 13:14:15.123456'] },
  { id: 'T21', col: m({ name: 'c_t21', kind: 'timestamptz', sourceType: 'timestamp(6)', fsp: 6 }), value: '2024-02-29T13:14:15.123456Z', pg: ['timestamp(6) with time zone', '2024-02-29 13:14:15.123456+00'], my: ['timestamp(6)', '2024-02-29 13:14:15.123456'] },
  { id: 'T22', col: m({ name: 'c_t22', kind: 'json', sourceType: 'longtext' }), value: JSON_TEXT, pg: ['json', JSON_TEXT], my: ['longtext', JSON_TEXT] },
  { id: 'T23', col: m({ name: 'c_t23', kind: 'enum', sourceType: "enum('small','Large')", values: ['small', 'Large'] }), value: 'Large', pg: ['text', 'Large'], my: ["enum('small','Large')", 'Large'] },
  { id: 'T24', col: m({ name: 'c_t24', kind: 'set', sourceType: "set('a','b','c d')", values: ['a', 'b', 'c d'] }), value: 'a,c d', pg: ['text[]', '{a,"c d"}'], my: ["set('a','b','c d')", 'a,c d'] },
  { id: 'T25', col: m({ name: 'c_t25', kind: 'set', sourceType: "set('a','b')", values: ['a', 'b'] }), value: '', pg: ['text[]', '{}'], my: ["set('a','b')", ''] },
  { id: 'T26', col: m({ name: 'c_t26', kind: 'bit', sourceType: 'bit(10)', size: 10 }), value: '1000000001', pg: ['bit(10)', '1000000001'], my: ['bit(10)', '201'] },
  { id: 'T27', col: m({ name: 'c_t27', kind: 'bit', sourceType: 'bit(8)', size: 8 }), value: '101', pg: ['bit(8)', '00000101'], my: ['bit(8)', '5'] },
  { id: 'T28', col: m({ name: 'c_t28', kind: 'uuid', sourceType: 'uuid' }), value: '0b5e2c5a-8f7e-4c3b-9a1d-2e4f6a8b0c1d', pg: ['uuid', '0b5e2c5a-8f7e-4c3b-9a1d-2e4f6a8b0c1d'], my: ['uuid', '0b5e2c5a-8f7e-4c3b-9a1d-2e4f6a8b0c1d'] },
  { id: 'T29', col: m({ name: 'c_t29', kind: 'other', sourceType: 'year(4)' }), value: '2024', pg: ['text', '2024'], my: ['longtext', '2024'] },
];

/** PostgreSQL source columns (as the pgoutput capture describes them). */
const PG_CASES: Case[] = [
  { id: 'T30', col: p({ name: 'c_t30', kind: 'int', sourceType: 'smallint', size: 2 }), value: -32768, pg: ['smallint', '-32768'], my: ['smallint(6)', '-32768'] },
  { id: 'T31', col: p({ name: 'c_t31', kind: 'int', sourceType: 'bigint', size: 8 }), value: '9223372036854775807', pg: ['bigint', '9223372036854775807'], my: ['bigint(20)', '9223372036854775807'] },
  { id: 'T32', col: p({ name: 'c_t32', kind: 'decimal', sourceType: 'numeric(65,30)', precision: 65, scale: 30 }), value: `-${DEC65}`, pg: ['numeric(65,30)', `-${DEC65}`], my: ['decimal(65,30)', `-${DEC65}`] },
  { id: 'T33', col: p({ name: 'c_t33', kind: 'decimal', sourceType: 'numeric' }), value: '3.14159', pg: ['numeric', '3.14159'], my: ['decimal(65,30)', '3.141590000000000000000000000000'] },
  { id: 'T34', col: p({ name: 'c_t34', kind: 'float', sourceType: 'real', size: 4 }), value: Math.fround(0.1), pg: ['real', '0.1'], my: ['float', '0.1'] },
  { id: 'T35', col: p({ name: 'c_t35', kind: 'float', sourceType: 'double precision', size: 8 }), value: 1e-300, pg: ['double precision', '1e-300'], my: ['double', '1e-300'] },
  { id: 'T36', col: p({ name: 'c_t36', kind: 'text', sourceType: 'text', family: 'text' }), value: EMOJI, pg: ['text', EMOJI], my: ['longtext', EMOJI] },
  { id: 'T37', col: p({ name: 'c_t37', kind: 'text', sourceType: 'character varying(20)', family: 'varchar', length: 20 }), value: 'Ab ', pg: ['character varying(20)', 'Ab '], my: ['varchar(20)', 'Ab '] },
  { id: 'T38', col: p({ name: 'c_t38', kind: 'text', sourceType: 'character(3)', family: 'bpchar', length: 3, fixed: true }), value: 'ab ', pg: ['character(3)', 'ab'], my: ['char(3)', 'ab'] },
  { id: 'T39', col: p({ name: 'c_t39', kind: 'binary', sourceType: 'bytea', family: 'bytea' }), value: B256, pg: ['bytea', `\\x${HEX256}`], my: ['longblob', HEX256.toUpperCase()] },
  { id: 'T40', col: p({ name: 'c_t40', kind: 'date', sourceType: 'date' }), value: '0001-01-01', pg: ['date', '0001-01-01'], my: ['date', '0001-01-01'] },
  { id: 'T41', col: p({ name: 'c_t41', kind: 'time', sourceType: 'time without time zone', fsp: 6 }), value: '24:00:00', pg: ['time(6) without time zone', '24:00:00'], my: ['time(6)', '24:00:00.000000'] },
  { id: 'T42', col: p({ name: 'c_t42', kind: 'datetime', sourceType: 'timestamp without time zone', fsp: 6 }), value: '9999-12-31 23:59:59.999999', pg: ['timestamp(6) without time zone', '9999-12-31 23:59:59.999999'], my: ['datetime(6)', '9999-12-31 23:59:59.999999'] },
  { id: 'T43', col: p({ name: 'c_t43', kind: 'timestamptz', sourceType: 'timestamp with time zone', fsp: 6 }), value: '2100-01-01T00:00:00.000001Z', pg: ['timestamp(6) with time zone', '2100-01-01 00:00:00.000001+00'], my: ['datetime(6)', '2100-01-01 00:00:00.000001'] },
  { id: 'T44', col: p({ name: 'c_t44', kind: 'json', sourceType: 'jsonb' }), value: '{"a": 1, "b": [true, null]}', pg: ['jsonb', '{"a": 1, "b": [true, null]}'], my: ['longtext', '{"a": 1, "b": [true, null]}'] },
  { id: 'T45', col: p({ name: 'c_t45', kind: 'json', sourceType: 'json' }), value: JSON_TEXT, pg: ['json', JSON_TEXT], my: ['longtext', JSON_TEXT] },
  { id: 'T46', col: p({ name: 'c_t46', kind: 'enum', sourceType: 'mood', values: ['sad', 'happy'] }), value: 'happy', pg: ['text', 'happy'], my: ["enum('sad','happy')", 'happy'] },
  { id: 'T47', col: p({ name: 'c_t47', kind: 'bit', sourceType: 'bit(12)', size: 12, fixed: true }), value: '100000000001', pg: ['bit(12)', '100000000001'], my: ['bit(12)', '801'] },
  { id: 'T48', col: p({ name: 'c_t48', kind: 'bit', sourceType: 'bit varying(16)', size: 16, fixed: false }), value: '101', pg: ['bit varying(16)', '101'], my: ['varchar(16)', '101'] },
  { id: 'T49', col: p({ name: 'c_t49', kind: 'bool', sourceType: 'boolean' }), value: true, pg: ['boolean', 'true'], my: ['tinyint(1)', '1'] },
  { id: 'T50', col: p({ name: 'c_t50', kind: 'bool', sourceType: 'boolean' }), value: false, pg: ['boolean', 'false'], my: ['tinyint(1)', '0'] },
  { id: 'T51', col: p({ name: 'c_t51', kind: 'uuid', sourceType: 'uuid' }), value: 'ffffffff-0000-4000-8000-000000000001', pg: ['uuid', 'ffffffff-0000-4000-8000-000000000001'], my: ['char(36)', 'ffffffff-0000-4000-8000-000000000001'] },
  { id: 'T52', col: p({ name: 'c_t52', kind: 'other', sourceType: 'interval' }), value: '1 day 02:03:04', pg: ['interval', '1 day 02:03:04'], my: ['longtext', '1 day 02:03:04'] },
  { id: 'T53', col: p({ name: 'c_t53', kind: 'other', sourceType: 'integer[]' }), value: '{1,2,NULL}', pg: ['integer[]', '{1,2,NULL}'], my: ['longtext', '{1,2,NULL}'] },
  { id: 'T54', col: p({ name: 'c_t54', kind: 'float', sourceType: 'double precision', size: 8 }), value: 'NaN', pg: ['double precision', 'NaN'], my: ['double', 'NaN'] },
];

/** Values no destination may take silently: [id, source columns, value, destination, reason fragment]. */
const UNMAPPABLE: [string, ColumnType, Value, 'postgres' | 'mysql'][] = [
  ['T55', m({ name: 'd', kind: 'date', sourceType: 'date' }), '0000-00-00', 'postgres'],
  ['T56', m({ name: 'd', kind: 'datetime', sourceType: 'datetime', fsp: 0 }), '0000-00-00 00:00:00', 'postgres'],
  ['T57', m({ name: 'd', kind: 'date', sourceType: 'date' }), '2024-00-10', 'postgres'],
  ['T58', m({ name: 'd', kind: 'time', sourceType: 'time', fsp: 0 }), '-01:00:00', 'postgres'],
  ['T59', m({ name: 'd', kind: 'time', sourceType: 'time', fsp: 0 }), '838:59:59', 'postgres'],
  ['T60', p({ name: 'd', kind: 'datetime', sourceType: 'timestamp without time zone', fsp: 6 }), '294277-01-01 00:00:00', 'postgres'],
  ['T61', p({ name: 'd', kind: 'text', sourceType: 'text', family: 'text' }), 'a\u0000b', 'postgres'],
  ['T62', p({ name: 'd', kind: 'float', sourceType: 'double precision', size: 8 }), 'NaN', 'mysql'],
  ['T63', p({ name: 'd', kind: 'float', sourceType: 'real', size: 4 }), '-Infinity', 'mysql'],
  ['T64', p({ name: 'd', kind: 'decimal', sourceType: 'numeric' }), 'NaN', 'mysql'],
  ['T65', p({ name: 'd', kind: 'decimal', sourceType: 'numeric' }), '0.0000000000000000000000000000001', 'mysql'],
  ['T66', p({ name: 'd', kind: 'date', sourceType: 'date' }), 'infinity', 'mysql'],
  ['T67', p({ name: 'd', kind: 'datetime', sourceType: 'timestamp without time zone', fsp: 6 }), '10000-01-01 00:00:00', 'mysql'],
  ['T68', p({ name: 'd', kind: 'time', sourceType: 'time', fsp: 0 }), '839:00:00', 'mysql'],
  ['T69', m({ name: 'd', kind: 'enum', sourceType: "enum('a')", values: ['a'] }), '', 'postgres'],
];

// ---------------------------------------------------------------- servers

function connOf(url: string, database?: string): DbConnectionConfig {
  const u = new URL(url);
  return {
    kind: u.protocol.startsWith('postgres') ? 'postgres' : 'mysql',
    host: u.hostname, port: Number(u.port), user: decodeURIComponent(u.username), password: decodeURIComponent(u.password), database,
  };
}

let pgDb: pg.Client;
let myDb: mysql.Connection;
let pgConn: DbConnectionConfig;
let myConn: DbConnectionConfig;
const appliers: Applier[] = [];

function applier(dest: 'postgres' | 'mysql', jobId = `job_${RUN}`, extra: Record<string, unknown> = {}): Applier {
  const a = createApplier(dest === 'postgres' ? pgConn : myConn, { jobId, ...extra });
  appliers.push(a);
  return a;
}

beforeAll(async () => {
  const admin = new pg.Client({ connectionString: inject('pgUrl') });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${SCHEMA}`);
  await admin.end();
  pgConn = connOf(inject('pgUrl'), SCHEMA);
  myConn = connOf(inject('mariaUrl'));
  // Read everything back as the server's own text.
  pgDb = new pg.Client({ ...pgConn, database: SCHEMA, types: { getTypeParser: () => (v: string) => v } });
  await pgDb.connect();
  await pgDb.query("SET TimeZone = 'UTC'");
  myDb = await mysql.createConnection({ host: myConn.host, port: myConn.port, user: myConn.user, password: myConn.password, charset: 'utf8mb4', typeCast: (field) => field.string('utf8') });
  await myDb.query("SET time_zone = '+00:00'");
});

afterAll(async () => {
  await Promise.all(appliers.map((a) => a.close()));
  await pgDb?.end();
  await myDb?.query(`DROP DATABASE IF EXISTS ${SCHEMA}`).catch(() => undefined);
  await myDb?.end();
});

async function rows(dest: 'postgres' | 'mysql', table: string, cols: ColumnType[] | string[], order = 'id'): Promise<Record<string, string | null>[]> {
  const defs = cols.map((c) => (typeof c === 'string' ? { name: c, kind: 'text' } as ColumnType : c));
  if (dest === 'postgres') {
    const sel = defs.map((c) => `"${c.name}"::text AS "${c.name}"`).join(', ');
    const by = order.split(',').map((c) => `src.${c.trim()}`).join(', ');
    return (await pgDb.query(`SELECT ${sel} FROM "${SCHEMA}"."${table}" AS src ORDER BY ${by}`)).rows;
  }
  const sel = defs.map((c) => (c.kind === 'binary' || c.kind === 'bit') && !/varying/.test(c.sourceType) ? `HEX(\`${c.name}\`) AS \`${c.name}\`` : `\`${c.name}\``).join(', ');
  const [r] = await myDb.query(`SELECT ${sel} FROM \`${SCHEMA}\`.\`${table}\` ORDER BY ${order}`);
  return r as Record<string, string | null>[];
}

async function types(dest: 'postgres' | 'mysql', table: string): Promise<Record<string, string>> {
  if (dest === 'postgres') {
    const r = await pgDb.query(`SELECT attname AS n, format_type(atttypid, atttypmod) AS t FROM pg_attribute WHERE attrelid = '"${SCHEMA}"."${table}"'::regclass AND attnum > 0 AND NOT attisdropped`);
    return Object.fromEntries(r.rows.map((x: { n: string; t: string }) => [x.n, x.t]));
  }
  const [r] = await myDb.query('SELECT column_name AS n, column_type AS t FROM information_schema.columns WHERE table_schema = ? AND table_name = ?', [SCHEMA, table]);
  return Object.fromEntries((r as { n: string; t: string }[]).map((x) => [x.n, x.t]));
}

const DESTS = ['postgres', 'mysql'] as const;

/** What an applier sent at once (applyAtOnce of pg.applier.ts and mysql.applier.ts). */
function atOnceOf(a: Applier): { committed: number; fellBack: number } {
  return (a as { atOnce?: { committed: number; fellBack: number } }).atOnce ?? { committed: 0, fellBack: 0 };
}

// ---------------------------------------------------------------- type matrix

describe.each(DESTS)('type matrix into %s', (dest) => {
  for (const [source, cases, idCol] of [['mysql', MARIA_CASES, ID_M], ['postgres', PG_CASES, ID_P]] as const) {
    it(`${source} source columns ${cases[0]!.id}..${cases[cases.length - 1]!.id} map to the documented types and round-trip exactly`, async () => {
      const a = applier(dest);
      const table = `matrix_${source}`;
      const usable = cases.filter((c) => !(dest === 'mysql' && c.id === 'T54'));
      const columns = [idCol, ...usable.map((c) => c.col)];
      const full: Row = { id: 1, ...Object.fromEntries(usable.map((c) => [c.col.name, c.value])) };
      const nulls: Row = { id: 2, ...Object.fromEntries(usable.map((c) => [c.col.name, null])) };
      await a.applyBatch([
        ddl(source, table, `CREATE TABLE ${table} (...)`, columns),
        ev(source, table, Operation.Insert, columns, null, full),
        ev(source, table, Operation.Insert, columns, null, nulls),
      ], 0, nextSeq());
      const t = await types(dest, table);
      const got = await rows(dest, table, columns);
      for (const c of usable) {
        const [type, text] = dest === 'postgres' ? c.pg : c.my;
        expect(`${c.id} ${t[c.col.name]}`).toBe(`${c.id} ${type}`);
        expect(`${c.id} ${got[0]![c.col.name]}`).toBe(`${c.id} ${text}`);
        expect(`${c.id} ${got[1]![c.col.name]}`).toBe(`${c.id} null`);
      }
      // The applier committed lane 0, so the destination now takes the batch in one query with literal values
      // (applyAtOnce): the same images, upserted over rows 1 and 2 and inserted as 3 and 4,
      // must store exactly what the bound parameters stored.
      const sentBefore = atOnceOf(a).committed;
      await a.applyBatch([
        ev(source, table, Operation.Update, columns, full, full),
        ev(source, table, Operation.Update, columns, nulls, nulls),
        ev(source, table, Operation.Insert, columns, null, { ...full, id: 3 }),
        ev(source, table, Operation.Insert, columns, null, { ...nulls, id: 4 }),
      ], 0, nextSeq());
      expect(atOnceOf(a)).toEqual({ committed: sentBefore + 1, fellBack: 0 });
      const again = await rows(dest, table, columns);
      expect(again.map(({ id: _id, ...r }) => r)).toEqual([got[0], got[1], got[0], got[1]].map(({ id: _id, ...r }) => r));
    });
  }

  it('T54: NaN stays NaN in PostgreSQL and is refused by MariaDB', async () => {
    const col = PG_CASES.find((c) => c.id === 'T54')!.col;
    const run = applier(dest).applyBatch([ddl('postgres', 'nan', 'CREATE TABLE nan', [ID_P, col]), ev('postgres', 'nan', Operation.Insert, [ID_P, col], null, { id: 1, [col.name]: 'NaN' })], 0, nextSeq());
    if (dest === 'postgres') await run; else await expect(run).rejects.toBeInstanceOf(UnmappableValueError);
  });
});

describe('unmappable values stop the batch with table, column and value', () => {
  for (const [id, col, value, dest] of UNMAPPABLE) {
    it(`${id}: ${col.sourceType} ${JSON.stringify(value)} into ${dest}`, async () => {
      const source: SourceKind = col.pgOid ? 'postgres' : 'mysql';
      const idCol = source === 'postgres' ? ID_P : ID_M;
      const table = `bad_${id.toLowerCase()}`;
      const a = applier(dest, `job_bad_${id}`);
      const create = ddl(source, table, `CREATE TABLE ${table} (...)`, [idCol, col]);
      const err = await a.applyBatch([create, ev(source, table, Operation.Insert, [idCol, col], null, { id: 1, d: value })], 0, nextSeq())
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(UnmappableValueError);
      const u = err as UnmappableValueError;
      expect([u.table, u.column, u.value]).toEqual([`${SCHEMA}.${table}`, 'd', value]);
      expect(u.message).toContain(JSON.stringify(value));
      expect(u.retriable).toBe(false);
      // PostgreSQL rolls the whole batch back; MariaDB DDL commits on its own, so there the checkpoint stops right after it.
      expect(await a.readCheckpoint(0)).toBe(dest === 'postgres' ? null : create.sequence);
      if (dest === 'mysql') expect(await rows(dest, table, ['id'])).toEqual([]);
    });
  }
});

// ---------------------------------------------------------------- behaviour

const KV = [ID_M, m({ name: 'v', kind: 'text', sourceType: 'varchar(20)', length: 20 }), m({ name: 'n', kind: 'int', sourceType: 'int(11)', size: 4 })];
const kvTable = (name: string): TableInfo => ({ schema: SCHEMA, table: name, columns: KV, key: ['id'], estimatedRows: 0 });
const ins = (t: string, id: number, v: string, n = 0): ChangeEvent => ev('mysql', t, Operation.Insert, KV, null, { id, v, n });
const upd = (t: string, b: Row, a: Row): ChangeEvent => ev('mysql', t, Operation.Update, KV, b, a);
const del = (t: string, b: Row): ChangeEvent => ev('mysql', t, Operation.Delete, KV, b, null);

describe.each(DESTS)('apply into %s', (dest) => {
  it('collapses a batch per key: last image wins, key changes move the row, partial images merge', async () => {
    const a = applier(dest, `job_collapse_${dest}`);
    const t = 'collapse';
    await a.ensureTable(kvTable(t));
    await a.applyBatch([
      ins(t, 1, 'one'), ins(t, 2, 'two'), ins(t, 3, 'three'),
      upd(t, { id: 1, v: 'one', n: 0 }, { id: 1, v: 'uno', n: 1 }),
      del(t, { id: 2, v: 'two', n: 0 }),
      ins(t, 2, 'two again', 2),
      upd(t, { id: 3, v: 'three', n: 0 }, { id: 30, v: 'thirty', n: 3 }), // key change
      ins(t, 3, 'new three', 4), // the freed key is taken again in the same batch
      // A partial after image (PostgreSQL leaves unchanged TOAST values out): n must survive.
      ev('mysql', t, Operation.Update, KV, { id: 1 }, { id: 1, v: 'eins' }),
      ins(t, 4, 'four'), del(t, { id: 4 }),
    ], 0, nextSeq());
    expect(await rows(dest, t, ['id', 'v', 'n'])).toEqual([
      { id: '1', v: 'eins', n: '1' }, { id: '2', v: 'two again', n: '2' }, { id: '3', v: 'new three', n: '4' }, { id: '30', v: 'thirty', n: '3' },
    ]);
    // Next batch: key change back onto an existing key's neighbour and a delete of a moved row.
    await a.applyBatch([upd(t, { id: 30 }, { id: 31, v: 'thirty-one', n: 31 }), del(t, { id: 2 })], 0, nextSeq());
    expect((await rows(dest, t, ['id'])).map((r) => r.id)).toEqual(['1', '3', '31']);
  });

  it('a replayed batch changes nothing: the checkpoint skips it, even on a keyless table', async () => {
    const a = applier(dest, `job_replay_${dest}`);
    const t = 'replay_keyless';
    const cols = KV.slice(1);
    await a.ensureTable({ schema: SCHEMA, table: t, columns: cols, key: [], estimatedRows: 0 });
    const batch = [1, 2, 3].map((i) => ev('mysql', t, Operation.Insert, cols, null, { v: `r${i}`, n: i }, []));
    const seq = batch[2]!.sequence;
    await a.applyBatch(batch, 0, seq);
    await a.applyBatch(batch, 0, seq);
    expect(await a.readCheckpoint(0)).toBe(seq);
    expect(await rows(dest, t, ['v', 'n'], 'n')).toEqual([{ v: 'r1', n: '1' }, { v: 'r2', n: '2' }, { v: 'r3', n: '3' }]);
    // A batch overlapping the checkpoint applies only its new tail.
    const more = ev('mysql', t, Operation.Insert, cols, null, { v: 'r4', n: 4 }, []);
    await a.applyBatch([...batch, more], 0, more.sequence);
    expect((await rows(dest, t, ['n'], 'n')).map((r) => r.n)).toEqual(['1', '2', '3', '4']);
  });

  it('keyless tables: duplicates kept, delete and update touch exactly one matching row', async () => {
    const a = applier(dest, `job_keyless_${dest}`);
    const t = 'keyless';
    const cols = [...KV.slice(1), m({ name: 'j', kind: 'json', sourceType: 'json' }), m({ name: 'f', kind: 'float', sourceType: 'float', size: 4 })];
    const r = (v: string, n: number | null): Row => ({ v, n, j: '{"k": [1]}', f: Math.fround(2.2) });
    const e = (op: Operation, b: Row | null, af: Row | null): ChangeEvent => ev('mysql', t, op, cols, b, af, []);
    await a.applyBatch([
      ddl('mysql', t, `CREATE TABLE ${t} (v varchar(20), n int, j json, f float)`, cols, []),
      e(Operation.Insert, null, r('x', 1)), e(Operation.Insert, null, r('x', 1)), e(Operation.Insert, null, r('x', 1)),
      e(Operation.Insert, null, r('y', null)),
      e(Operation.Delete, r('x', 1), null),
      e(Operation.Update, r('x', 1), r('z', 9)),
      e(Operation.Update, r('y', null), r('y', 2)),
    ], 0, nextSeq());
    expect(await rows(dest, t, ['v', 'n'], 'v, n')).toEqual([{ v: 'x', n: '1' }, { v: 'y', n: '2' }, { v: 'z', n: '9' }]);
  });

  it('a lane checkpoint moved by another applier since this one committed: the batch is applied past it, nothing twice', async () => {
    // Keyless table: an insert applied twice would show as a duplicate row.
    const cols = [ID_P, p({ name: 'v', kind: 'text', sourceType: 'text' })];
    const table = 'moved_cp';
    const a = applier(dest, `job_moved_${RUN}`);
    const b = applier(dest, `job_moved_${RUN}`);
    const ins = (id: number) => ev('postgres', table, Operation.Insert, cols, null, { id, v: `v${id}` }, []);
    const create = ddl('postgres', table, `CREATE TABLE ${table} (...)`, cols, []);
    const e1 = ins(1);
    await a.applyBatch([create, e1], 0, e1.sequence);
    const e2 = ins(2);
    await b.applyBatch([e2], 0, e2.sequence);
    const e3 = ins(3);
    // `a` last committed e1's checkpoint; the lane is at e2 now. Sent at once, its guard fails and it falls back.
    await a.applyBatch([e2, e3], 0, e3.sequence);
    expect((await rows(dest, table, ['id', 'v'])).map((r) => r.v)).toEqual(['v1', 'v2', 'v3']);
    expect(atOnceOf(a)).toEqual({ committed: 0, fellBack: 1 });
    // Then `a` knows the checkpoint again and sends the next batch at once.
    const e4 = ins(4);
    await a.applyBatch([e4], 0, e4.sequence);
    expect((await rows(dest, table, ['id', 'v'])).map((r) => r.v)).toEqual(['v1', 'v2', 'v3', 'v4']);
    expect(atOnceOf(a)).toEqual({ committed: 1, fellBack: 1 });
  });

  it('a batch that fails midway leaves neither rows nor checkpoint', async () => {
    const a = applier(dest, `job_crash_${dest}`);
    const t = 'crash';
    await a.ensureTable(kvTable(t));
    await a.applyBatch([ins(t, 1, 'kept')], 0, nextSeq());
    const before = await a.readCheckpoint(0);
    // Many good rows first, then one the destination rejects (varchar(20) overflow: a driver error, not ours).
    const good = Array.from({ length: 50 }, (_, i) => ins(t, 100 + i, `r${i}`));
    const bad = ev('mysql', 'crash_other', Operation.Insert, KV, null, { id: 1, v: 'x'.repeat(30), n: 0 });
    await a.ensureTable(kvTable('crash_other'));
    const err = await a.applyBatch([...good, upd(t, { id: 1 }, { id: 1, v: 'changed', n: 5 }), bad], 0, nextSeq()).catch((x: unknown) => x);
    expect(err).toBeInstanceOf(FatalError);
    expect(await a.readCheckpoint(0)).toBe(before);
    expect(await rows(dest, t, ['id', 'v'])).toEqual([{ id: '1', v: 'kept' }]);
  });

  it('a destination that forgot acknowledged commits (crash with async commit) is noticed, and a new applier redoes them', async () => {
    const job = `job_forgot_${dest}`;
    const a = applier(dest, job);
    const t = 'forgot';
    await a.ensureTable(kvTable(t));
    const first = nextSeq();
    await a.applyBatch([ins(t, 1, 'one')], 0, first);
    const lostBatch = [ins(t, 2, 'two')];
    const lost = nextSeq();
    await a.applyBatch(lostBatch, 0, lost);
    // The destination comes back without the second commit: its row and its checkpoint are gone together.
    if (dest === 'postgres') {
      await pgDb.query(`DELETE FROM "${SCHEMA}"."${t}" WHERE id = 2`);
      await pgDb.query('UPDATE tributary.tributary_checkpoints SET sequence = $1 WHERE job_id = $2 AND lane = 0', [first, job]);
    } else {
      await myDb.query(`DELETE FROM \`${SCHEMA}\`.\`${t}\` WHERE id = 2`);
      await myDb.query('UPDATE tributary.tributary_checkpoints SET sequence = ? WHERE job_id = ? AND lane = 0', [first, job]);
    }
    // The applier's caller reads on after the lost batch: going on would skip row 2 for good.
    const next = [ins(t, 3, 'three')];
    const nextSeqValue = nextSeq();
    const err = await a.applyBatch(next, 0, nextSeqValue).catch((x: unknown) => x);
    expect(err).toBeInstanceOf(RetriableError);
    expect(String((err as Error).message)).toMatch(/destination lost committed changes/);
    expect((await rows(dest, t, ['id'])).map((r) => r.id)).toEqual(['1']);
    // The retried task: a new applier reads the checkpoint the destination has and applies from there.
    const b = applier(dest, job);
    expect(await b.readCheckpoint(0)).toBe(first);
    await b.applyBatch([...lostBatch, ...next], 0, nextSeqValue);
    expect((await rows(dest, t, ['id', 'v']))).toEqual([{ id: '1', v: 'one' }, { id: '2', v: 'two' }, { id: '3', v: 'three' }]);
  });

  it('DDL: create, add column, drop column, truncate, column and table renames; drop table, moves to another schema and key changes are refused', async () => {
    const source: SourceKind = dest === 'postgres' ? 'mysql' : 'postgres'; // cross-engine both ways
    const id = source === 'mysql' ? ID_M : ID_P;
    const v = source === 'mysql' ? m({ name: 'v', kind: 'text', sourceType: 'text', family: 'text' }) : p({ name: 'v', kind: 'text', sourceType: 'text', family: 'text' });
    const w = source === 'mysql' ? m({ name: 'w', kind: 'datetime', sourceType: 'datetime(3)', fsp: 3 }) : p({ name: 'w', kind: 'datetime', sourceType: 'timestamp(3) without time zone', fsp: 3 });
    const t = 'ddl';
    const q = source === 'mysql' ? `\`${t}\`` : `${SCHEMA}.${t}`;
    const a = applier(dest, `job_ddl_${dest}`);
    await a.applyBatch([
      ddl(source, t, source === 'mysql' ? `CREATE TABLE ${q} (id int primary key, v text)` : `CREATE TABLE ${q} (id integer, v text)`, [id, v]),
      ev(source, t, Operation.Insert, [id, v], null, { id: 1, v: 'a' }),
      ddl(source, t, source === 'mysql' ? `/* x */ ALTER TABLE ${q} ADD COLUMN w datetime(3), ADD INDEX (v(10))` : `ALTER TABLE ${q} ADD COLUMN w timestamp(3) without time zone`, [id, v, w]),
      ev(source, t, Operation.Insert, [id, v, w], null, { id: 2, v: 'b', w: '2024-01-02 03:04:05.678' }),
    ], 0, nextSeq());
    expect((await types(dest, t)).w).toBe(dest === 'postgres' ? 'timestamp(3) without time zone' : 'datetime(3)');
    expect(await rows(dest, t, ['id', 'v', 'w'])).toEqual([{ id: '1', v: 'a', w: null }, { id: '2', v: 'b', w: '2024-01-02 03:04:05.678' }]);
    await a.applyBatch([
      ddl(source, t, `ALTER TABLE ${q} DROP COLUMN v`, [id, w]),
      ev(source, t, Operation.Insert, [id, w], null, { id: 3, w: null }),
    ], 0, nextSeq());
    expect(Object.keys(await types(dest, t)).sort()).toEqual(['id', 'w']);
    expect((await rows(dest, t, ['id'])).map((r) => r.id)).toEqual(['1', '2', '3']);
    await a.applyBatch([ddl(source, t, `TRUNCATE ${q}`, [id, w]), ev(source, t, Operation.Insert, [id, w], null, { id: 9, w: null })], 0, nextSeq());
    expect((await rows(dest, t, ['id'])).map((r) => r.id)).toEqual(['9']);
    for (const stmt of [`ALTER TABLE ${q} RENAME TO t2, ADD COLUMN z int`, `ALTER TABLE ${q} SET SCHEMA other`, `DROP TABLE ${q}`, `RENAME TABLE ${q} TO other.x`, `ALTER TABLE ${q} DROP PRIMARY KEY`]) {
      const cp = await a.readCheckpoint(0);
      const err = await a.applyBatch([ddl(source, t, stmt, [id, w])], 0, nextSeq()).catch((x: unknown) => x);
      expect(err, stmt).toBeInstanceOf(UnsupportedDdlError);
      expect((err as Error).message).toContain(stmt);
      expect(await a.readCheckpoint(0)).toBe(cp);
    }
    // Renames in stream order, one batch: a column (CHANGE to another name / RENAME COLUMN), then the table
    // (the PostgreSQL capture's event names the new table, the MariaDB one the old), rows under each name between.
    const w2 = { ...w, name: 'w2' };
    const renamed = 'ddl_renamed';
    await a.applyBatch([
      ev(source, t, Operation.Insert, [id, w], null, { id: 10, w: '2024-01-02 03:04:05.678' }),
      ddl(source, t, source === 'mysql' ? `ALTER TABLE ${q} CHANGE w w2 datetime(3)` : `ALTER TABLE ${q} RENAME COLUMN w TO w2`, [id, w2]),
      ev(source, t, Operation.Insert, [id, w2], null, { id: 11, w2: '2024-01-02 03:04:05.679' }),
      source === 'mysql' ? ddl(source, t, `RENAME TABLE ${q} TO \`${renamed}\``, [id, w2]) : ddl(source, renamed, `ALTER TABLE ${q} RENAME TO ${renamed}`, [id, w2]),
      ev(source, renamed, Operation.Insert, [id, w2], null, { id: 12, w2: null }),
    ], 0, nextSeq());
    expect(await rows(dest, renamed, ['id', 'w2'])).toEqual([
      { id: '9', w2: null }, { id: '10', w2: '2024-01-02 03:04:05.678' }, { id: '11', w2: '2024-01-02 03:04:05.679' }, { id: '12', w2: null },
    ]);
    expect(Object.keys(await types(dest, renamed)).sort()).toEqual(['id', 'w2']);
  });

  it('snapshot chunks: idempotent re-run, done marker, keyless chunk replaces the table', async () => {
    const a = applier(dest, `job_chunks_${dest}`);
    const info = kvTable('chunks');
    await a.ensureTable(info);
    const data = Array.from({ length: 30 }, (_, i) => ({ id: i, v: `v${i}`, n: i }));
    await a.loadChunk(info, data.slice(0, 10), 'chunks#0', false);
    expect(await a.isChunkDone('chunks#0')).toBe(false);
    // "Crash": the worker re-reads the chunk from its start.
    await a.loadChunk(info, data.slice(0, 20), 'chunks#0', false);
    await a.loadChunk(info, data.slice(20), 'chunks#0', true);
    expect(await a.isChunkDone('chunks#0')).toBe(true);
    expect((await rows(dest, 'chunks', ['id'])).length).toBe(30);
    const keyless: TableInfo = { ...info, table: 'chunks_keyless', key: [] };
    await a.ensureTable(keyless);
    await a.loadChunk(keyless, data.slice(0, 5), 'kl#0', false);
    expect((await rows(dest, 'chunks_keyless', ['id'])).length).toBe(0); // held until final
    await a.loadChunk(keyless, data.slice(5, 8), 'kl#0', true);
    await a.loadChunk(keyless, data.slice(0, 8), 'kl#0', true); // re-run of a done chunk: no-op
    expect((await rows(dest, 'chunks_keyless', ['id'])).length).toBe(8);
  });

  it('lanes keep per-row order when applied concurrently', async () => {
    const lanes = 4;
    const a = applier(dest, `job_lanes_${dest}`, { poolSize: lanes });
    const t = 'lanes';
    await a.ensureTable(kvTable(t));
    const events: ChangeEvent[] = [];
    const state = new Map<number, Row>();
    for (let i = 0; i < 2000; i++) {
      const id = (i * 7919) % 97;
      const cur = state.get(id);
      if (!cur) { events.push(ins(t, id, `v${i}`, i)); state.set(id, { id, v: `v${i}`, n: i }); continue; }
      if (i % 11 === 0) { events.push(del(t, cur)); state.delete(id); continue; }
      if (i % 13 === 0 && !state.has(id + 1000)) {
        const moved = { id: id + 1000, v: `m${i}`, n: i };
        events.push(upd(t, cur, moved)); state.delete(id); state.set(id + 1000, moved); continue;
      }
      const next = { id, v: `v${i}`, n: i };
      events.push(upd(t, cur, next)); state.set(id, next);
    }
    const split = splitLanes(events, lanes);
    for (const lane of split) for (const e of lane) if (e.op !== Operation.Update) expect(laneOf(e, lanes)).toBe(split.indexOf(lane));
    expect(cutAtDdl(events)).toHaveLength(1);
    const last = events[events.length - 1]!.sequence;
    // Each lane in batches of 100, lanes in parallel.
    await Promise.all(split.map(async (laneEvents, lane) => {
      for (let i = 0; i < laneEvents.length; i += 100) {
        const part = laneEvents.slice(i, i + 100);
        await a.applyBatch(part, lane, i + 100 >= laneEvents.length ? last : part[part.length - 1]!.sequence);
      }
    }));
    const want = [...state.values()].sort((x, y) => Number(x.id) - Number(y.id)).map((r) => ({ id: String(r.id), v: r.v, n: String(r.n) }));
    expect(await rows(dest, t, ['id', 'v', 'n'])).toEqual(want);
    for (let l = 0; l < lanes; l++) expect(await a.readCheckpoint(l)).toBe(last);
  });

  it('a small batch of every lane in one transaction (applyWhole): same rows, every lane checkpointed, each lane skips what it holds', async () => {
    const lanes = 3;
    const a = applier(dest, `job_whole_${dest}`);
    const t = 'whole';
    await a.ensureTable(kvTable(t));
    // Keyless tables too (routed by name to one lane each): an event applied twice would show as a duplicate row.
    const cols = [ID_P, p({ name: 'v', kind: 'text', sourceType: 'text' })];
    const names = Array.from({ length: 40 }, (_, i) => `whole_kl${i}`);
    const byLane = new Map<number, string>();
    for (const n of names) {
      const lane = laneOf(ev('postgres', n, Operation.Insert, cols, null, { id: 0, v: '' }, []), lanes);
      if (!byLane.has(lane)) byLane.set(lane, n);
    }
    expect(byLane.size).toBe(lanes);
    const keyless = [...byLane.values()];
    const creates = keyless.map((n) => ddl('postgres', n, `CREATE TABLE ${n} (...)`, cols, []));
    for (const c of creates) await a.applyBatch([c], 0, c.sequence);
    const kl = (n: string, id: number) => ev('postgres', n, Operation.Insert, cols, null, { id, v: `${n}-${id}` }, []);
    const first: ChangeEvent[] = [];
    for (let i = 0; i < 30; i++) first.push(ins(t, i, `a${i}`, i), kl(keyless[i % lanes]!, i));
    const s1 = first.at(-1)!.sequence;
    await a.applyWhole!(splitLanes(first, lanes), s1);
    for (let l = 0; l < lanes; l++) expect(await a.readCheckpoint(l)).toBe(s1);
    // The same batch again, and a second one: lane 1 alone is moved on first by another applier (a part of its own).
    const second: ChangeEvent[] = [];
    for (let i = 0; i < 30; i++) second.push(upd(t, { id: i, v: `a${i}`, n: i }, { id: i, v: `b${i}`, n: i + 100 }), kl(keyless[i % lanes]!, 100 + i));
    const s2 = second.at(-1)!.sequence;
    const parts2 = splitLanes(second, lanes);
    const other = applier(dest, `job_whole_${dest}`);
    const half = parts2[1]!.slice(0, 10);
    await other.applyBatch(half, 1, half.at(-1)!.sequence);
    const sentBefore = { ...atOnceOf(a) };
    await a.applyWhole!(splitLanes([...first, ...second], lanes), s2);
    for (let l = 0; l < lanes; l++) expect(await a.readCheckpoint(l)).toBe(s2);
    const want = Array.from({ length: 30 }, (_, i) => ({ id: String(i), v: `b${i}`, n: String(i + 100) }));
    expect(await rows(dest, t, ['id', 'v', 'n'])).toEqual(want);
    for (const [lane, n] of [...byLane].map(([l, name]) => [l, name] as const)) {
      const ids = Array.from({ length: 30 }, (_, i) => i).filter((i) => keyless[i % lanes] === n);
      const got = (await rows(dest, n, ['id', 'v'])).map((r) => r.v).sort();
      expect(got, `lane ${lane}`).toEqual([...ids.map((i) => `${n}-${i}`), ...ids.map((i) => `${n}-${100 + i}`)].sort());
    }
    // The first whole batch went the ordinary way (this applier knew lane 0's checkpoint only); the second
    // was sent at once, found lane 1 moved by the other applier, fell back and applied the rest; the third went at once.
    expect(atOnceOf(a)).toEqual({ committed: sentBefore.committed, fellBack: sentBefore.fellBack + 1 });
    const third = [ins(t, 500, 'c', 1)];
    await a.applyWhole!(splitLanes(third, lanes), third[0]!.sequence);
    expect(atOnceOf(a).committed).toBe(sentBefore.committed + 1);
    for (let l = 0; l < lanes; l++) expect(await a.readCheckpoint(l)).toBe(third[0]!.sequence);
  });

  it('rename map: schema and table', async () => {
    const a = applier(dest, `job_rename_${dest}`, { rename: { schemas: { other_src: SCHEMA }, tables: { 'other_src.orig': 'renamed' } } });
    await a.ensureTable({ ...kvTable('orig'), schema: 'other_src' });
    await a.applyBatch([{ ...ins('orig', 1, 'r'), schema: 'other_src' }], 0, nextSeq());
    expect(await rows(dest, 'renamed', ['id', 'v'])).toEqual([{ id: '1', v: 'r' }]);
  });

  it('T36/T39: unbounded text and bytea keys get bounded key types on MariaDB; too-long keys are refused', async () => {
    const k = p({ name: 'k', kind: 'text', sourceType: 'text', family: 'text' });
    const b = p({ name: 'b', kind: 'binary', sourceType: 'bytea', family: 'bytea' });
    const a = applier(dest, `job_textkey_${dest}`);
    await a.ensureTable({ schema: SCHEMA, table: 'textkey', columns: [k, b], key: ['k'], estimatedRows: 0 });
    await a.ensureTable({ schema: SCHEMA, table: 'binkey', columns: [b], key: ['b'], estimatedRows: 0 });
    expect((await types(dest, 'textkey')).k).toBe(dest === 'postgres' ? 'text' : 'varchar(768)');
    expect((await types(dest, 'binkey')).b).toBe(dest === 'postgres' ? 'bytea' : 'varbinary(3072)');
    const row = (kv: string): ChangeEvent => ev('postgres', 'textkey', Operation.Insert, [k, b], null, { k: kv, b: B4 }, ['k']);
    const brow = (bytes: number): ChangeEvent => ev('postgres', 'binkey', Operation.Insert, [b], null, { b: Buffer.alloc(bytes, 7).toString('base64') }, ['b']);
    await a.applyBatch([row('a'), row('A'), row('a '), row('😀'.repeat(768)), brow(3072)], 0, nextSeq());
    expect((await rows(dest, 'textkey', ['k'], 'k')).length).toBe(4);
    for (const bad of [row('x'.repeat(769)), brow(3073)]) {
      const run = a.applyBatch([bad], 0, nextSeq());
      if (dest === 'postgres') await run; else await expect(run).rejects.toBeInstanceOf(UnmappableValueError);
    }
  });

  it('statements stay under 65535 parameters whatever rowsPerStatement says; works on a pool of one', async () => {
    const a = applier(dest, `job_params_${dest}`, { rowsPerStatement: 100_000, poolSize: 1 });
    const t = 'params';
    await a.ensureTable(kvTable(t));
    const data = Array.from({ length: 25_000 }, (_, i) => ({ id: i, v: `v${i}`, n: i })); // 75k parameters
    await a.loadChunk(kvTable(t), data, 'params#0', true);
    await a.applyBatch(data.map((r) => del(t, r)), 0, nextSeq());
    expect(await rows(dest, t, ['id'])).toEqual([]);
  });

  it('a large batch of inserts over keys the destination already holds ends as the upsert (fresh rows copied, duplicates fall back)', async () => {
    const a = applier(dest, `job_fresh_${dest}`);
    const t = 'fresh_dup';
    await a.ensureTable(kvTable(t));
    // Rows made at the destination by hand, and a first batch of fresh inserts that COPY takes straight in.
    await a.applyBatch(Array.from({ length: 300 }, (_, i) => ins(t, i, `first ${i}`, i)), 0, nextSeq());
    if (dest === 'postgres') await pgDb.query(`INSERT INTO "${SCHEMA}"."${t}" (id, v, n) VALUES (1000, 'by hand', 0)`);
    else await myDb.query(`INSERT INTO \`${SCHEMA}\`.\`${t}\` (id, v, n) VALUES (1000, 'by hand', 0)`);
    // Inserts of 900..1199 (1000 is there already): the whole group must still land, 1000 rewritten, nothing doubled.
    await a.applyBatch(Array.from({ length: 300 }, (_, i) => ins(t, 900 + i, `second ${900 + i}`, 900 + i)), 0, nextSeq());
    const got = await rows(dest, t, ['id', 'v', 'n']);
    expect(got).toHaveLength(600);
    expect(got.find((r) => r.id === '1000')).toEqual({ id: '1000', v: 'second 1000', n: '1000' });
    expect(got[299]).toEqual({ id: '299', v: 'first 299', n: '299' });
    expect(await a.readCheckpoint(0)).not.toBeNull();
  });

  it('throughput: one 20k-row batch', async () => {
    const a = applier(dest, `job_bulk_${dest}`);
    const cols = [...KV, m({ name: 'd', kind: 'decimal', sourceType: 'decimal(12,2)', precision: 12, scale: 2 }), m({ name: 'ts', kind: 'datetime', sourceType: 'datetime(6)', fsp: 6 })];
    const t = 'bulk';
    await a.ensureTable({ schema: SCHEMA, table: t, columns: cols, key: ['id'], estimatedRows: 0 });
    const events = Array.from({ length: 20_000 }, (_, i) => ev('mysql', t, Operation.Insert, cols, null, { id: i, v: `row ${i} 😀`, n: i, d: `${i}.25`, ts: '2024-05-06 07:08:09.123456' }));
    const t0 = performance.now();
    await a.applyBatch(events, 0, events[events.length - 1]!.sequence);
    const ms = performance.now() - t0;
    console.log(`[apply] ${dest}: 20000 rows in ${ms.toFixed(0)} ms = ${Math.round(20_000 / (ms / 1000))} rows/s`);
    expect((await rows(dest, t, ['id'])).length).toBe(20_000);
  });
});

describe('a PostgreSQL destination table already there', () => {
  it('with every column: ensured by one read, without the DDL lock, and its unique key learnt for COPY; missing a column: under the lock, added', async () => {
    const a = applier('postgres', `job_ready_${RUN}`);
    await pgDb.query(`CREATE SCHEMA IF NOT EXISTS "${SCHEMA}"`);
    await pgDb.query(`CREATE TABLE "${SCHEMA}".ready_all (id int PRIMARY KEY, v varchar(20), n int, extra text)`);
    await pgDb.query(`CREATE TABLE "${SCHEMA}".ready_short (id int PRIMARY KEY, v varchar(20))`);
    await a.readCheckpoint(0); // the bookkeeping tables, made under the same lock, are there first
    const locker = new pg.Client({ ...pgConn, database: SCHEMA });
    await locker.connect();
    try {
      await locker.query(`BEGIN; SELECT pg_advisory_xact_lock(hashtext('tributary.apply.ddl'))`);
      // Nothing to create or add: done while another session holds the DDL lock.
      await a.ensureTable(kvTable('ready_all'));
      // A column to add: waits for the lock.
      let added = false;
      const adding = a.ensureTable(kvTable('ready_short')).then(() => { added = true; });
      await new Promise((r) => setTimeout(r, 300));
      expect(added).toBe(false);
      await locker.query('COMMIT');
      await adding;
      expect(Object.keys(await types('postgres', 'ready_short')).sort()).toEqual(['id', 'n', 'v']);
    } finally {
      await locker.end();
    }
    // The key's unique index was learnt by the read: 300 fresh inserts go straight in by COPY, and inserts of
    // the same keys again (rows the destination holds) still end as the upsert.
    const batch = Array.from({ length: 300 }, (_, i) => ins('ready_all', i, `r${i}`, i));
    await a.applyBatch(batch, 0, nextSeq());
    await a.applyBatch(batch.map((e) => ({ ...e, sequence: nextSeq(), after: { ...e.after!, v: 'again' } })), 0, nextSeq());
    const got = await rows('postgres', 'ready_all', ['id', 'v', 'n', 'extra']);
    expect(got).toHaveLength(300);
    expect(got[299]).toEqual({ id: '299', v: 'again', n: '299', extra: null });
  });
});
