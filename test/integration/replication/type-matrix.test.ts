/**
 * The type matrix of docs/types.md through real jobs, in all four
 * directions: rows copied by the snapshot (ids 1, 2) and the same values
 * inserted while streaming (ids 3, 4) must arrive with exact values. Cross-
 * engine directions are checked against the documented destination text;
 * same-engine directions against the source itself. Unmappable values (a
 * MariaDB zero date into PostgreSQL, NaN into MariaDB) fail the job with an
 * error naming table, column and value.
 */
import { describe, expect, it } from 'vitest';
import { gql } from '../../support/gateway.ts';
import { uniq, waitFor, type DbHandle } from '../../support/databases.ts';
import { createJob, endpoint, qname, useReplicationSuite, waitJob } from '../../support/replication.ts';

// MariaDB source columns (T01..T29). [column, type, value of row 1]; row 2 is all NULL.
const M_COLS: [string, string, string][] = [
  ['t01', 'tinyint', '-128'],
  ['t02', 'tinyint unsigned', '255'],
  ['t03', 'smallint unsigned', '65535'],
  ['t04', 'mediumint', '-8388608'],
  ['t05', 'int unsigned', '4294967295'],
  ['t06', 'bigint', '-9223372036854775808'],
  ['t07', 'bigint unsigned', '18446744073709551615'],
  ['t08', 'decimal(65,30)', `'-12345678901234567890123456789012345.123456789012345678901234567890'`],
  ['t09', 'float', '1.1'],
  ['t10', 'double', '0.30000000000000004'],
  ['t11', 'varchar(20)', `'emoji 😀𝄞'`],
  ['t12', 'char(5)', `'ab'`],
  ['t13', 'text', `'tab\\tq"uote''s'`],
  ['t14', 'longtext', `'line1\\nline2 \\\\ back'`],
  ['t15', 'binary(4)', `x'00ff1020'`],
  ['t16', 'varbinary(8)', `x'0102'`],
  ['t17', 'blob', `x'000102ff'`],
  ['t18', 'date', `'2024-02-29'`],
  ['t19', 'time(6)', `'23:59:59.999999'`],
  ['t20', 'datetime(6)', `'2024-02-29 13:14:15.123456'`],
  ['t21', 'timestamp(6) NULL', `'2024-02-29 13:14:15.654321'`],
  ['t22', 'json', `'{"a": [1, 2.5, "x"]}'`],
  ['t23', `enum('a','B')`, `'B'`],
  ['t24', `set('a','c d','e')`, `'a,c d'`],
  ['t25', `set('a','b')`, `''`],
  ['t26', 'bit(10)', `b'1010101010'`],
  ['t27', 'bit(8)', `b'101'`],
  ['t28', 'uuid', `'F47AC10B-58CC-4372-A567-0E02B2C3D479'`],
  ['t29', 'year', '2024'],
];
/** Row 1 at a PostgreSQL destination, read by pgText. */
const M_TO_PG: Record<string, string> = {
  t01: '-128', t02: '255', t03: '65535', t04: '-8388608', t05: '4294967295', t06: '-9223372036854775808', t07: '18446744073709551615',
  t08: '-12345678901234567890123456789012345.123456789012345678901234567890', t09: '1.1', t10: '0.30000000000000004',
  t11: 'emoji 😀𝄞', t12: 'ab', t13: 'tab\tq"uote\'s', t14: 'line1\nline2 \\ back', t15: '\\x00ff1020', t16: '\\x0102', t17: '\\x000102ff',
  t18: '2024-02-29', t19: '23:59:59.999999', t20: '2024-02-29 13:14:15.123456', t21: '2024-02-29 13:14:15.654321', t22: '{"a": [1, 2.5, "x"]}',
  t23: 'B', t24: '{a,"c d"}', t25: '{}', t26: '1010101010', t27: '00000101', t28: 'f47ac10b-58cc-4372-a567-0e02b2c3d479', t29: '2024',
};
const M_TO_PG_TYPES: Record<string, string> = {
  t01: 'smallint', t02: 'smallint', t03: 'integer', t04: 'integer', t05: 'bigint', t06: 'bigint', t07: 'numeric(20,0)', t08: 'numeric(65,30)',
  t09: 'real', t10: 'double precision', t11: 'character varying(20)', t12: 'character(5)', t13: 'text', t14: 'text', t15: 'bytea', t16: 'bytea', t17: 'bytea',
  t18: 'date', t19: 'time(6) without time zone', t20: 'timestamp(6) without time zone', t21: 'timestamp(6) with time zone', t22: 'json',
  t23: 'text', t24: 'text[]', t25: 'text[]', t26: 'bit(10)', t27: 'bit(8)', t28: 'uuid', t29: 'smallint',
};

// PostgreSQL source columns (T30..T53).
const P_COLS: [string, string, string][] = [
  ['p30', 'smallint', '-32768'],
  ['p31', 'bigint', '9223372036854775807'],
  ['p32', 'numeric(65,30)', `'-123.450000000000000000000000000001'`],
  ['p33', 'numeric', '3.14159'],
  ['p34', 'real', '1.5'],
  ['p35', 'double precision', '1e-300'],
  ['p36', 'text', `'emoji 😀 "q" \\ x'`],
  ['p37', 'varchar(10)', `'Ab  '`],
  ['p38', 'character(5)', `'xy'`],
  ['p39', 'bytea', `'\\x00ff7f'`],
  ['p40', 'date', `'0001-01-01'`],
  ['p41', 'time', `'24:00:00'`],
  ['p42', 'timestamp', `'2024-02-29 13:14:15.123456'`],
  ['p43', 'timestamptz', `'2100-01-01 00:00:00.5+00'`],
  ['p44', 'jsonb', `'{"b": 1, "a": [1, 2]}'`],
  ['p45', 'json', `'{"b":1,  "a":2}'`],
  ['p46', 'mood', `'happy'`],
  ['p47', 'bit(5)', `B'10101'`],
  ['p48', 'bit varying(8)', `B'101'`],
  ['p49', 'boolean', 'true'],
  ['p50', 'boolean', 'false'],
  ['p51', 'uuid', `'f47ac10b-58cc-4372-a567-0e02b2c3d479'`],
  // Valid in PostgreSQL, refused by MariaDB's uuid type (version 8, found by fidelity-property.test.ts).
  ['p51b', 'uuid', `'ffffffe6-ffff-8fff-8000-00180000001d'`],
  ['p52', 'interval', `'1 day 02:03:04'`],
  ['p53', 'integer[]', `'{1,2,3}'`],
];
/** Row 1 at a MariaDB destination, read by mariaText. */
const P_TO_M: Record<string, string> = {
  p30: '-32768', p31: '9223372036854775807', p32: '-123.450000000000000000000000000001', p33: '3.141590000000000000000000000000', p34: '1.5', p35: '1e-300',
  p36: 'emoji 😀 "q" \\ x', p37: 'Ab  ', p38: 'xy', p39: '00FF7F', p40: '0001-01-01', p41: '24:00:00.000000', p42: '2024-02-29 13:14:15.123456',
  p43: '2100-01-01 00:00:00.500000', p44: '{"a": [1, 2], "b": 1}', p45: '{"b":1,  "a":2}', p46: 'happy', p47: '10101', p48: '101',
  p49: '1', p50: '0', p51: 'f47ac10b-58cc-4372-a567-0e02b2c3d479', p51b: 'ffffffe6-ffff-8fff-8000-00180000001d', p52: '1 day 02:03:04', p53: '{1,2,3}',
};

/** Every column as text, the same way on source and destination (binary as hex, bit as 0/1 digits). */
async function mariaText(db: DbHandle, table: string): Promise<Record<string, string | null>[]> {
  const cols = await db.query<{ c: string; t: string }>(`SELECT COLUMN_NAME AS c, DATA_TYPE AS t FROM information_schema.columns WHERE CONCAT('\`', table_schema, '\`.\`', table_name, '\`') = ? ORDER BY ordinal_position`, [table]);
  const expr = cols.map(({ c, t }) => (/binary|blob/.test(t) ? `HEX(\`${c}\`)` : t === 'bit' ? `BIN(\`${c}\` + 0)` : t === 'timestamp' ? `CAST(CONVERT_TZ(\`${c}\`, @@session.time_zone, '+00:00') AS CHAR)` : `CAST(\`${c}\` AS CHAR)`) + ` AS \`${c}\``);
  const rows = await db.query<Record<string, string | null>>(`SELECT ${expr.join(', ')} FROM ${table} ORDER BY id`);
  return rows.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, v === null ? null : String(v)])));
}

async function pgText(db: DbHandle, table: string): Promise<Record<string, string | null>[]> {
  const [schema, name] = table.split('.').map((s) => s.replace(/"/g, '')) as [string, string];
  const cols = await db.query<{ c: string; t: string }>(`SELECT column_name AS c, data_type AS t FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position`, [schema, name]);
  const expr = cols.map(({ c, t }) => (t === 'timestamp with time zone' ? `("${c}" AT TIME ZONE 'UTC')::text` : `"${c}"::text`) + ` AS "${c}"`);
  return db.query(`SELECT ${expr.join(', ')} FROM ${table} ORDER BY id`);
}

async function pgTypes(db: DbHandle, schema: string, table: string): Promise<Record<string, string>> {
  const rows = await db.query<{ c: string; t: string }>(`SELECT a.attname AS c, format_type(a.atttypid, a.atttypmod) AS t FROM pg_attribute a JOIN pg_class k ON k.oid = a.attrelid JOIN pg_namespace n ON n.oid = k.relnamespace WHERE n.nspname = $1 AND k.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped`, [schema, table]);
  return Object.fromEntries(rows.map((r) => [r.c, r.t]));
}

const asRows = (cols: [string, string, string][], row1: Record<string, string>) => {
  const nulls = Object.fromEntries(cols.map(([c]) => [c, null]));
  return [1, 2, 3, 4].map((id) => ({ id: String(id), ...(id % 2 === 1 ? row1 : nulls) }));
};

describe('type matrix through real jobs (snapshot and streaming rows)', () => {
  const { gw, openUniq: open } = useReplicationSuite();

  async function mariaSource(): Promise<DbHandle> {
    const src = await open('mysql', 'tm_msrc');
    await src.query(`CREATE TABLE mt (id int PRIMARY KEY, ${M_COLS.map(([c, t]) => `${c} ${t}`).join(', ')})`);
    await insertMaria(src, [1, 2]);
    return src;
  }
  async function insertMaria(src: DbHandle, ids: [number, number]): Promise<void> {
    await src.query(`SET time_zone = '+00:00'; INSERT INTO mt VALUES (${ids[0]}, ${M_COLS.map(([, , v]) => v).join(', ')}), (${ids[1]}, ${M_COLS.map(() => 'NULL').join(', ')})`);
  }
  async function pgSource(): Promise<DbHandle> {
    const src = await open('postgres', 'tm_psrc');
    await src.query(`CREATE TYPE mood AS ENUM ('sad', 'happy')`);
    await src.query(`CREATE TABLE pt (id int PRIMARY KEY, ${P_COLS.map(([c, t]) => `${c} ${t}`).join(', ')})`);
    await insertPg(src, [1, 2]);
    return src;
  }
  async function insertPg(src: DbHandle, ids: [number, number]): Promise<void> {
    await src.query(`INSERT INTO pt VALUES (${ids[0]}, ${P_COLS.map(([, , v]) => v).join(', ')}), (${ids[1]}, ${P_COLS.map(() => 'NULL').join(', ')})`);
  }

  async function runJob(src: DbHandle, dst: DbHandle, table: string, insertStreaming: () => Promise<void>): Promise<{ id: string; schema: string }> {
    const srcSchema = src.kind === 'postgres' ? 'public' : src.database;
    const schema = dst.kind === 'mysql' ? dst.database : srcSchema;
    const job = await createJob(gw.url, { name: uniq('types'), source: endpoint(src), destination: endpoint(dst), tables: [{ schema: srcSchema, tables: [table] }], ...(schema !== srcSchema ? { rename: { schemas: { [srcSchema]: schema } } } : {}) });
    const snap = await waitJob(gw.url, job.id, (j) => j.progress.phase === 'streaming' || j.status !== 'RUNNING', 60_000, 'snapshot done');
    expect(snap.status, snap.error).toBe('RUNNING');
    await insertStreaming();
    const count = dst.kind === 'postgres' ? `SELECT count(*)::int AS n FROM ${qname(dst, schema, table)}` : `SELECT count(*) AS n FROM ${qname(dst, schema, table)}`;
    await waitFor(async () => Number((await dst.query(count))[0].n), (n) => n === 4, 30_000, 'streamed rows');
    const j = await waitJob(gw.url, job.id, () => true);
    expect(j.status, j.error).toBe('RUNNING');
    return { id: job.id, schema };
  }

  it('MariaDB -> PostgreSQL: T01..T29 exact, types as documented', async () => {
    const src = await mariaSource();
    const dst = await open('postgres', 'tm_m2p');
    const { id, schema } = await runJob(src, dst, 'mt', () => insertMaria(src, [3, 4]));
    expect(await pgText(dst, `${schema}.mt`)).toEqual(asRows(M_COLS, M_TO_PG));
    expect(await pgTypes(dst, schema, 'mt')).toEqual({ id: 'integer', ...M_TO_PG_TYPES });
    await gql(gw.url, `mutation { deleteJob(id: "${id}") }`);
  });

  it('MariaDB -> MariaDB: T01..T29 equal to the source', async () => {
    const src = await mariaSource();
    const dst = await open('mysql', 'tm_m2m');
    const { id, schema } = await runJob(src, dst, 'mt', () => insertMaria(src, [3, 4]));
    const expected = await mariaText(src, qname(src, src.database, 'mt'));
    expect(expected[0]!.t28).toBe('f47ac10b-58cc-4372-a567-0e02b2c3d479');
    expect(await mariaText(dst, qname(dst, schema, 'mt'))).toEqual(expected);
    const typesOf = async (db: DbHandle, sch: string) => Object.fromEntries((await db.query<{ c: string; t: string }>(`SELECT COLUMN_NAME AS c, COLUMN_TYPE AS t FROM information_schema.columns WHERE table_schema = ? AND table_name = 'mt'`, [sch])).map((r) => [r.c, r.t]));
    expect(await typesOf(dst, schema)).toEqual(await typesOf(src, src.database));
    await gql(gw.url, `mutation { deleteJob(id: "${id}") }`);
  });

  it('PostgreSQL -> MariaDB: T30..T53 exact', async () => {
    const src = await pgSource();
    const dst = await open('mysql', 'tm_p2m');
    const { id, schema } = await runJob(src, dst, 'pt', () => insertPg(src, [3, 4]));
    expect(await mariaText(dst, qname(dst, schema, 'pt'))).toEqual(asRows(P_COLS, P_TO_M));
    await gql(gw.url, `mutation { deleteJob(id: "${id}") }`);
  });

  it('PostgreSQL -> PostgreSQL: T30..T53 equal to the source, same types', async () => {
    const src = await pgSource();
    const dst = await open('postgres', 'tm_p2p');
    const { id, schema } = await runJob(src, dst, 'pt', () => insertPg(src, [3, 4]));
    const expected = await pgText(src, 'public.pt');
    expect(expected[0]!.p44).toBe('{"a": [1, 2], "b": 1}');
    expect(await pgText(dst, `${schema}.pt`)).toEqual(expected);
    const types = await pgTypes(src, 'public', 'pt');
    // time and timestamp carry their (default) precision explicitly: T41, T42, T43.
    expect(await pgTypes(dst, schema, 'pt')).toEqual({ ...types, p41: 'time(6) without time zone', p42: 'timestamp(6) without time zone', p43: 'timestamp(6) with time zone', p46: 'text' });
    await gql(gw.url, `mutation { deleteJob(id: "${id}") }`);
  });

  it('an unmappable value fails the job naming table, column and value (MariaDB zero date -> PostgreSQL, snapshot)', async () => {
    const src = await open('mysql', 'tm_zero');
    await src.query(`SET SESSION sql_mode = ''; CREATE TABLE z (id int PRIMARY KEY, d date); INSERT INTO z VALUES (1, '2024-01-01'), (2, '0000-00-00')`);
    const dst = await open('postgres', 'tm_zero_dst');
    const job = await createJob(gw.url, { name: uniq('zero'), source: endpoint(src), destination: endpoint(dst), tables: [{ schema: src.database }] });
    const failed = await waitJob(gw.url, job.id, (j) => j.status !== 'RUNNING', 60_000, 'job failed');
    expect(failed.status).toBe('FAILED');
    expect(failed.error).toContain(`${src.database}.z`);
    expect(failed.error).toMatch(/\bd\b/);
    expect(failed.error).toContain('0000-00-00');
  });

  it('an unmappable value fails the job naming table, column and value (PostgreSQL NaN -> MariaDB, streaming)', async () => {
    const src = await open('postgres', 'tm_nan');
    await src.query(`CREATE TABLE f (id int PRIMARY KEY, x double precision); INSERT INTO f VALUES (1, 1.5)`);
    const dst = await open('mysql', 'tm_nan_dst');
    const job = await createJob(gw.url, { name: uniq('nan'), source: endpoint(src), destination: endpoint(dst), tables: [{ schema: 'public' }], rename: { schemas: { public: dst.database } } });
    await waitJob(gw.url, job.id, (j) => j.progress.phase === 'streaming', 60_000, 'streaming');
    await src.query(`INSERT INTO f VALUES (2, 'NaN')`);
    const failed = await waitJob(gw.url, job.id, (j) => j.status !== 'RUNNING', 30_000, 'job failed');
    expect(failed.status).toBe('FAILED');
    expect(failed.error).toContain('public.f');
    expect(failed.error).toMatch(/\bx\b/);
    expect(failed.error).toContain('NaN');
  });
});
