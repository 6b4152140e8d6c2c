/**
 * The column types the property-based fidelity suite draws from, per source
 * engine: the source's DDL, a generator of values as SQL literals of that
 * engine, and for each engine an SQL expression that prints the value as
 * text, for the source's own type and for the type the destination gets
 * (docs/types.md). Both sides are then read by the database servers' own
 * text output, never through Tributary's decoders.
 *
 * Values are drawn from what both engines can hold (docs/types.md lists what
 * fails a job on purpose: NaN into MariaDB, zero dates into PostgreSQL, ...):
 * years 1000-9999, times of day, MariaDB TIMESTAMP's 1970-2038, no U+0000
 * (PostgreSQL text has none), doubles and floats at every magnitude the two
 * engines share (subnormals included).
 */
import fc from 'fast-check';

export type Engine = 'postgres' | 'mysql';
/** How two printed values compare: as text, as 64- or 32-bit floats, as JSON documents, or as decimal numbers. */
export type Compare = 'text' | 'float8' | 'float4' | 'json' | 'decimal' | 'lower';

export interface ColumnCase {
  id: string;
  type: string;
  value: fc.Arbitrary<string>;
  print: Record<Engine, (col: string) => string>;
  compare?: Compare;
  /** Statements to run on the source before CREATE TABLE (PostgreSQL enum types). */
  setup?: string[];
}

const q = (engine: Engine, s: string): string =>
  engine === 'postgres' ? `'${s.replace(/'/g, "''")}'` : `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;

const pad = (n: number, w = 2): string => String(n).padStart(w, '0');
const dateText = fc.record({ y: fc.integer({ min: 1000, max: 9999 }), m: fc.integer({ min: 1, max: 12 }), d: fc.integer({ min: 1, max: 28 }) })
  .map(({ y, m, d }) => `${pad(y, 4)}-${pad(m)}-${pad(d)}`);
const timeText = fc.record({ h: fc.integer({ min: 0, max: 23 }), mi: fc.integer({ min: 0, max: 59 }), s: fc.integer({ min: 0, max: 59 }), us: fc.integer({ min: 0, max: 999_999 }) })
  .map(({ h, mi, s, us }) => `${pad(h)}:${pad(mi)}:${pad(s)}.${pad(us, 6)}`);
const epochText = fc.integer({ min: 86_400, max: 2_147_000_000 }).chain((sec) => fc.integer({ min: 0, max: 999_999 }).map((us) => {
  const d = new Date(sec * 1000);
  return `${d.toISOString().slice(0, 19).replace('T', ' ')}.${pad(us, 6)}`;
}));
/** Text without U+0000, any other code point (emoji, combining marks, quotes, backslashes, newlines). */
const textOf = (maxLength: number) => fc.string({ unit: 'binary', maxLength }).map((s) => s.replace(/\u0000/g, ''));
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
/** Doubles both engines hold: finite, any magnitude (subnormals too), -0 as 0 is not distinguishable on MariaDB. */
const double = fc.double({ noNaN: true, noDefaultInfinity: true }).map((v) => (Object.is(v, -0) ? 0 : v));
const float4 = fc.float({ noNaN: true, noDefaultInfinity: true }).map((v) => (Object.is(v, -0) ? 0 : v));
/** A double literal: MariaDB reads 1.5 as DECIMAL and 1.5e0 as DOUBLE. */
const dbl = (e: Engine, v: number): string => (e === 'postgres' ? `'${v}'::float8` : /e/i.test(String(v)) ? String(v) : `${v}e0`);

const ints = (id: string, type: string, min: bigint, max: bigint): ColumnCase => ({
  id, type, value: fc.bigInt(min, max).map(String),
  print: { postgres: (c) => `${c}::text`, mysql: (c) => `CAST(${c} AS CHAR)` },
});

const decimal = (engine: Engine, id: string, type: string, digits: number, scale: number): ColumnCase => ({
  id, type,
  value: fc.bigInt(-(10n ** BigInt(digits)) + 1n, 10n ** BigInt(digits) - 1n).map((n) => {
    const neg = n < 0n; const s = (neg ? -n : n).toString().padStart(scale + 1, '0');
    return `${neg ? '-' : ''}${s.slice(0, s.length - scale)}${scale ? `.${s.slice(s.length - scale)}` : ''}`;
  }),
  print: { postgres: (c) => `${c}::text`, mysql: (c) => `CAST(${c} AS CHAR)` },
  ...(engine === 'postgres' && type === 'numeric' ? { compare: 'decimal' as const } : {}),
});

const temporal = {
  date: { postgres: (c: string) => `to_char(${c}, 'YYYY-MM-DD')`, mysql: (c: string) => `DATE_FORMAT(${c}, '%Y-%m-%d')` },
  datetime: { postgres: (c: string) => `to_char(${c}, 'YYYY-MM-DD HH24:MI:SS.US')`, mysql: (c: string) => `DATE_FORMAT(${c}, '%Y-%m-%d %H:%i:%s.%f')` },
  time: { postgres: (c: string) => `to_char(date '2000-01-01' + ${c}, 'HH24:MI:SS.US')`, mysql: (c: string) => `TIME_FORMAT(${c}, '%H:%i:%s.%f')` },
};

export const MYSQL_COLUMNS: ColumnCase[] = [
  ints('tinyint', 'tinyint', -128n, 127n),
  ints('smallint_u', 'smallint unsigned', 0n, 65535n),
  ints('int', 'int', -(2n ** 31n), 2n ** 31n - 1n),
  ints('bigint', 'bigint', -(2n ** 63n), 2n ** 63n - 1n),
  ints('bigint_u', 'bigint unsigned', 0n, 2n ** 64n - 1n),
  { ...ints('year', 'year', 1901n, 2155n) },
  decimal('mysql', 'decimal', 'decimal(20,6)', 20, 6),
  { id: 'double', type: 'double', value: double.map((v) => dbl('mysql', v)), print: { postgres: (c) => `${c}::text`, mysql: (c) => `CAST(${c} AS CHAR)` }, compare: 'float8' },
  { id: 'float', type: 'float', value: float4.map((v) => dbl('mysql', v)), print: { postgres: (c) => `${c}::text`, mysql: (c) => `CAST(${c} + 0e0 AS CHAR)` }, compare: 'float4' },
  { id: 'varchar', type: 'varchar(40)', value: textOf(40).map((s) => q('mysql', s)), print: { postgres: (c) => c, mysql: (c) => c } },
  { id: 'text', type: 'text', value: textOf(300).map((s) => q('mysql', s)), print: { postgres: (c) => c, mysql: (c) => c } },
  { id: 'blob', type: 'blob', value: fc.uint8Array({ maxLength: 64 }).map((b) => `X'${hex(b)}'`), print: { postgres: (c) => `encode(${c}, 'hex')`, mysql: (c) => `LOWER(HEX(${c}))` } },
  { id: 'varbinary', type: 'varbinary(16)', value: fc.uint8Array({ maxLength: 16 }).map((b) => `X'${hex(b)}'`), print: { postgres: (c) => `encode(${c}, 'hex')`, mysql: (c) => `LOWER(HEX(${c}))` } },
  { id: 'date', type: 'date', value: dateText.map((s) => `'${s}'`), print: temporal.date },
  { id: 'datetime', type: 'datetime(6)', value: fc.tuple(dateText, timeText).map(([d, t]) => `'${d} ${t}'`), print: temporal.datetime },
  {
    id: 'timestamp', type: 'timestamp(6) NULL', value: epochText.map((s) => `'${s}'`),
    print: { postgres: (c) => `to_char(${c} AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')`, mysql: (c) => `DATE_FORMAT(CONVERT_TZ(${c}, @@session.time_zone, '+00:00'), '%Y-%m-%d %H:%i:%s.%f')` },
  },
  { id: 'time', type: 'time(6)', value: timeText.map((s) => `'${s}'`), print: temporal.time },
  { id: 'json', type: 'json', value: fc.jsonValue().map((v) => q('mysql', JSON.stringify(v).replace(/\\u0000/g, ''))), print: { postgres: (c) => `${c}::text`, mysql: (c) => `CAST(${c} AS CHAR)` }, compare: 'json' },
  { id: 'enum', type: "enum('a','b c','Zz','é')", value: fc.constantFrom('a', 'b c', 'Zz', 'é').map((s) => q('mysql', s)), print: { postgres: (c) => `${c}::text`, mysql: (c) => `CAST(${c} AS CHAR)` } },
  { id: 'set', type: "set('x','y z','w')", value: fc.subarray(['x', 'y z', 'w']).map((a) => q('mysql', a.join(','))), print: { postgres: (c) => `array_to_string(${c}, ',')`, mysql: (c) => `CAST(${c} AS CHAR)` } },
  { id: 'bit', type: 'bit(10)', value: fc.integer({ min: 0, max: 1023 }).map((n) => `b'${n.toString(2)}'`), print: { postgres: (c) => `${c}::text`, mysql: (c) => `LPAD(BIN(${c}), 10, '0')` } },
];

export const PG_COLUMNS: ColumnCase[] = [
  ints('smallint', 'smallint', -32768n, 32767n),
  ints('integer', 'integer', -(2n ** 31n), 2n ** 31n - 1n),
  ints('bigint', 'bigint', -(2n ** 63n), 2n ** 63n - 1n),
  decimal('postgres', 'numeric', 'numeric(20,6)', 20, 6),
  { ...decimal('postgres', 'numeric_free', 'numeric', 30, 10), compare: 'decimal' },
  { id: 'float8', type: 'double precision', value: double.map((v) => dbl('postgres', v)), print: { postgres: (c) => `${c}::text`, mysql: (c) => `CAST(${c} AS CHAR)` }, compare: 'float8' },
  { id: 'real', type: 'real', value: float4.map((v) => `'${v}'::real`), print: { postgres: (c) => `${c}::text`, mysql: (c) => `CAST(${c} + 0e0 AS CHAR)` }, compare: 'float4' },
  { id: 'boolean', type: 'boolean', value: fc.boolean().map(String), print: { postgres: (c) => `CASE WHEN ${c} THEN '1' WHEN NOT ${c} THEN '0' END`, mysql: (c) => `CAST(${c} AS CHAR)` } },
  { id: 'varchar', type: 'varchar(40)', value: textOf(40).map((s) => q('postgres', s)), print: { postgres: (c) => c, mysql: (c) => c } },
  { id: 'text', type: 'text', value: textOf(300).map((s) => q('postgres', s)), print: { postgres: (c) => c, mysql: (c) => c } },
  { id: 'bytea', type: 'bytea', value: fc.uint8Array({ maxLength: 64 }).map((b) => `'\\x${hex(b)}'::bytea`), print: { postgres: (c) => `encode(${c}, 'hex')`, mysql: (c) => `LOWER(HEX(${c}))` } },
  { id: 'date', type: 'date', value: dateText.map((s) => `'${s}'::date`), print: temporal.date },
  { id: 'timestamp', type: 'timestamp(6)', value: fc.tuple(dateText, timeText).map(([d, t]) => `'${d} ${t}'::timestamp`), print: temporal.datetime },
  {
    id: 'timestamptz', type: 'timestamptz(6)', value: fc.tuple(dateText, timeText).map(([d, t]) => `'${d} ${t}+00'::timestamptz`),
    print: { postgres: (c) => `to_char(${c} AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')`, mysql: temporal.datetime.mysql },
  },
  { id: 'time', type: 'time(6)', value: timeText.map((s) => `'${s}'::time`), print: temporal.time },
  { id: 'jsonb', type: 'jsonb', value: fc.jsonValue().map((v) => `${q('postgres', JSON.stringify(v).replace(/\\u0000/g, ''))}::jsonb`), print: { postgres: (c) => `${c}::text`, mysql: (c) => `CAST(${c} AS CHAR)` }, compare: 'json' },
  { id: 'json', type: 'json', value: fc.jsonValue().map((v) => `${q('postgres', JSON.stringify(v).replace(/\\u0000/g, ''))}::json`), print: { postgres: (c) => `${c}::text`, mysql: (c) => `CAST(${c} AS CHAR)` }, compare: 'json' },
  { id: 'uuid', type: 'uuid', value: fc.uuid().map((u) => `'${u}'::uuid`), print: { postgres: (c) => `${c}::text`, mysql: (c) => `CAST(${c} AS CHAR)` }, compare: 'lower' },
  { id: 'bit', type: 'bit(10)', value: fc.integer({ min: 0, max: 1023 }).map((n) => `B'${n.toString(2).padStart(10, '0')}'`), print: { postgres: (c) => `${c}::text`, mysql: (c) => `LPAD(BIN(${c}), 10, '0')` } },
  { id: 'int_array', type: 'integer[]', value: fc.array(fc.option(fc.integer(), { nil: null }), { maxLength: 5 }).map((a) => `'{${a.map((x) => (x === null ? 'NULL' : x)).join(',')}}'::integer[]`), print: { postgres: (c) => `${c}::text`, mysql: (c) => c } },
  {
    id: 'enum', type: 'mood', setup: [`CREATE TYPE mood AS ENUM ('sad', 'ok', 'very happy')`],
    value: fc.constantFrom('sad', 'ok', 'very happy').map((s) => `'${s}'`), print: { postgres: (c) => `${c}::text`, mysql: (c) => `CAST(${c} AS CHAR)` },
  },
];

/** Whether two printed values are the same value under the column's comparison. */
export function samePrinted(cmp: Compare, a: string | null, b: string | null): boolean {
  if (a === null || b === null) return a === b;
  switch (cmp) {
    case 'float8': return Number(a) === Number(b);
    case 'float4': return Math.fround(Number(a)) === Math.fround(Number(b));
    case 'json': try { return JSON.stringify(sortKeys(JSON.parse(a))) === JSON.stringify(sortKeys(JSON.parse(b))); } catch { return a === b; }
    case 'decimal': return normDecimal(a) === normDecimal(b);
    case 'lower': return a.toLowerCase() === b.toLowerCase();
    default: return a === b;
  }
}

function normDecimal(s: string): string {
  const t = s.includes('.') ? s.replace(/0+$/, '').replace(/\.$/, '') : s;
  return t === '-0' ? '0' : t;
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v && typeof v === 'object') return Object.fromEntries(Object.keys(v).sort().map((k) => [k, sortKeys((v as Record<string, unknown>)[k])]));
  return v;
}
