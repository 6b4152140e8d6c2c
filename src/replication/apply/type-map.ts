/**
 * Source column type -> destination column type, and the JSON-safe value of
 * change-event.ts -> a driver parameter, for PostgreSQL and MariaDB/MySQL
 * destinations. The table of decisions is docs/types.md; keep both in step.
 *
 * A value that the destination cannot hold exactly raises
 * UnmappableValueError (table, column, value): nothing is rounded, clipped or
 * replaced on the way, because a replica that silently differs is worse than
 * a stopped job. Checks happen here, before the statement is sent, so that
 * the failure is a FatalError with a clear message and not a driver error
 * that would be retried forever.
 */
import type { ColumnType, Value } from '../change-event.ts';
import { FatalError, UnmappableValueError } from '../errors.ts';

export type DestKind = 'postgres' | 'mysql';

/** What a MariaDB/MySQL destination server can do (probed once per applier). */
export interface MysqlCaps {
  /** MariaDB >= 10.7 has a native `uuid` type. */
  uuidType: boolean;
  /**
   * Charset and collation of every text column: binary and NO PAD, so 'a',
   * 'A' and 'a ' stay distinct keys as in the source (MariaDB
   * utf8mb4_nopad_bin, MySQL 8 utf8mb4_0900_bin).
   */
  textCollation: string;
  /**
   * The applier can store MariaDB's invalid-ENUM value (index 0) with a
   * one-statement `SET STATEMENT sql_mode` (MariaDB only); without it such a
   * value fails the job.
   */
  invalidEnum: boolean;
  /** MariaDB >= 10.4: `UNIQUE ... USING HASH` over columns of any length (a key too long for InnoDB, see mysqlHashedKey). */
  longUnique: boolean;
}

/** MariaDB 10.7 and later. */
export const MARIADB_CAPS: MysqlCaps = { uuidType: true, textCollation: 'CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin', invalidEnum: true, longUnique: true };

/**
 * MariaDB's invalid-ENUM value: index 0, stored by a non-strict session for a
 * string that is no label, read back as ''. The feed carries it as '', which
 * is told apart from a real '' label by the labels.
 */
export function isInvalidEnum(v: Value | undefined, col: ColumnType): boolean {
  return v === '' && col.kind === 'enum' && !isPgColumn(col) && !(col.values ?? []).includes('');
}

export interface PgColumnDef {
  type: string;
  /** CHECK expression over the quoted column name `$col`, for enum and set labels. */
  check?: (quotedCol: string) => string;
}

/** Key columns that would be unbounded text/blob on MariaDB become these (InnoDB key limit 3072 bytes). */
export const MYSQL_KEY_TEXT_CHARS = 768;
export const MYSQL_KEY_BINARY_BYTES = 3072;
/** InnoDB's limit on the length of one index key (DYNAMIC rows), in bytes. */
export const MYSQL_MAX_KEY_BYTES = 3072;
/** MariaDB varchar limit in utf8mb4 characters for one column (65535-byte rows / 4). */
const MYSQL_MAX_VARCHAR = 16383;

/** The source of a column: PostgreSQL capture always sets pgOid; MariaDB capture never does. */
export function isPgColumn(col: ColumnType): boolean {
  return col.pgOid !== undefined;
}

function intSize(col: ColumnType): number {
  if (col.size) return col.size;
  const t = col.sourceType.toLowerCase();
  if (/^(tinyint|bool)/.test(t)) return 1;
  if (/^(smallint|int2)/.test(t)) return 2;
  if (/^mediumint/.test(t)) return 3;
  if (/^(int|integer|int4)\b/.test(t)) return 4;
  return 8;
}

function fspOf(col: ColumnType): string {
  const fsp = col.fsp ?? (isPgColumn(col) ? 6 : 0);
  return `(${Math.min(6, Math.max(0, fsp))})`;
}

function sqlString(s: string): string {
  return `'${s.replace(/'/g, "''")}'`;
}

/** MariaDB string literal: backslash is an escape character there (unlike PostgreSQL). */
function mysqlString(s: string): string {
  return `'${s.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
}

function isMysqlTimestamp(col: ColumnType): boolean {
  return !isPgColumn(col) && /^timestamp\b/i.test(col.sourceType);
}

/** float(p<=24), real and float4 are 4-byte; everything else is a double. */
function isSinglePrecision(col: ColumnType): boolean {
  if (col.size) return col.size === 4;
  const m = /^(float|real|float4)(?:\((\d+)\))?$/i.exec(col.sourceType.trim());
  return !!m && (m[2] === undefined || Number(m[2]) <= 24);
}

function isVarbit(col: ColumnType): boolean {
  return /varying|varbit/i.test(col.sourceType) || (isPgColumn(col) && col.fixed === false);
}

// ---------------------------------------------------------------- types

/** PostgreSQL column type for a source column. */
export function pgColumnDef(col: ColumnType): PgColumnDef {
  switch (col.kind) {
    case 'int': {
      const size = intSize(col);
      if (size <= 2) return { type: col.unsigned && size === 2 ? 'integer' : 'smallint' };
      if (size <= 4) return { type: col.unsigned && size === 4 ? 'bigint' : 'integer' };
      return { type: col.unsigned ? 'numeric(20,0)' : 'bigint' };
    }
    case 'decimal':
      return { type: col.precision ? `numeric(${col.precision},${col.scale ?? 0})` : 'numeric' };
    case 'float':
      return { type: isSinglePrecision(col) ? 'real' : 'double precision' };
    case 'text':
      if (col.fixed && col.length) return { type: `char(${col.length})` };
      if (col.length && /char/i.test(col.family ?? col.sourceType)) return { type: `varchar(${col.length})` };
      return { type: 'text' };
    case 'binary':
      return { type: 'bytea' };
    case 'date':
      return { type: 'date' };
    case 'time':
      return { type: `time${fspOf(col)}` };
    case 'datetime':
      return { type: `timestamp${fspOf(col)}` };
    case 'timestamptz':
      return { type: `timestamptz${fspOf(col)}` };
    case 'json':
      // jsonb only when the source was jsonb: json keeps the text byte for byte.
      return { type: /jsonb/i.test(col.sourceType) ? 'jsonb' : 'json' };
    case 'enum': {
      const labels = col.values ?? [];
      return { type: 'text', check: labels.length ? (c) => `${c} IN (${labels.map(sqlString).join(', ')})` : undefined };
    }
    case 'set': {
      const labels = col.values ?? [];
      return { type: 'text[]', check: (c) => `${c} <@ ARRAY[${labels.map(sqlString).join(', ')}]::text[]` };
    }
    case 'bit':
      if (isVarbit(col)) return { type: col.size ? `varbit(${col.size})` : 'varbit' };
      return { type: `bit(${col.size ?? 1})` };
    case 'bool':
      return { type: 'boolean' };
    case 'uuid':
      return { type: 'uuid' };
    case 'other':
      // PostgreSQL -> PostgreSQL keeps the exact type (interval, inet, arrays...).
      return { type: isPgColumn(col) ? col.pgType ?? col.sourceType : 'text' };
  }
}

export function pgColumnType(col: ColumnType): string {
  return pgColumnDef(col).type;
}

/** MariaDB/MySQL column type (with charset/collation where it matters). */
export function mysqlColumnType(col: ColumnType, caps: MysqlCaps, inKey = false): string {
  const mysqlSrc = !isPgColumn(col);
  switch (col.kind) {
    case 'int': {
      // YEAR arrives as a 1-byte int carrying 1901..2155 (or 0): it stays YEAR.
      if (mysqlSrc && col.family === 'year') return 'year';
      const size = intSize(col);
      const name = { 1: 'tinyint', 2: 'smallint', 3: 'mediumint', 4: 'int' }[size] ?? 'bigint';
      return col.unsigned && mysqlSrc ? `${name} unsigned` : col.unsigned && size === 4 ? 'bigint' : name;
    }
    case 'decimal':
      if (!col.precision) return 'decimal(65,30)';
      return `decimal(${Math.min(65, col.precision)},${Math.min(30, col.scale ?? 0)})`;
    case 'float':
      return pgColumnType(col) === 'real' ? 'float' : 'double';
    case 'text': {
      const fam = (col.family ?? '').toLowerCase();
      if (col.fixed && col.length && col.length <= 255) return `char(${col.length}) ${caps.textCollation}`;
      if (col.length && col.length <= MYSQL_MAX_VARCHAR && (fam === '' || /char/.test(fam) || /char/i.test(col.sourceType))) {
        return `varchar(${col.length}) ${caps.textCollation}`;
      }
      if (inKey) return `varchar(${MYSQL_KEY_TEXT_CHARS}) ${caps.textCollation}`;
      const textType = mysqlSrc && /^(tiny|medium|long)?text$/.test(fam) ? fam : 'longtext';
      return `${textType} ${caps.textCollation}`;
    }
    case 'binary': {
      const fam = (col.family ?? '').toLowerCase();
      if (mysqlSrc && col.length && col.fixed) return `binary(${col.length})`;
      if (mysqlSrc && col.length && col.length <= 65532 && !/blob/.test(fam)) return `varbinary(${col.length})`;
      if (inKey) return `varbinary(${MYSQL_KEY_BINARY_BYTES})`;
      return mysqlSrc && /^(tiny|medium|long)?blob$/.test(fam) ? fam : 'longblob';
    }
    case 'date':
      return 'date';
    case 'time':
      return `time${fspOf(col)}`;
    case 'datetime':
      return `datetime${fspOf(col)}`;
    case 'timestamptz':
      // A MariaDB timestamp stays a timestamp; any other instant (PostgreSQL
      // timestamptz) becomes datetime holding UTC, because MariaDB's timestamp
      // stops at 2038-01-19 and PostgreSQL's does not.
      return isMysqlTimestamp(col) ? `timestamp${fspOf(col)}` : `datetime${fspOf(col)}`;
    case 'json':
      return 'json';
    case 'enum':
      return `enum(${(col.values ?? []).map(mysqlString).join(',')}) ${caps.textCollation}`;
    case 'set':
      return `set(${(col.values ?? []).map(mysqlString).join(',')}) ${caps.textCollation}`;
    case 'bit': {
      const n = col.size ?? 1;
      if (n <= 64 && !isVarbit(col)) return `bit(${n})`;
      // Longer or varying bit strings keep their exact length as '0'/'1' text.
      return `varchar(${Math.min(n || MYSQL_MAX_VARCHAR, MYSQL_MAX_VARCHAR)}) CHARACTER SET ascii COLLATE ascii_bin`;
    }
    case 'bool':
      return 'tinyint(1)';
    case 'uuid':
      // A PostgreSQL uuid may be one MariaDB's uuid type refuses (10.11.5+: version >= 8 with variant 0, e.g. ffffffe6-ffff-8fff-8000-...): text keeps every one.
      return caps.uuidType && !isPgColumn(col) ? 'uuid' : 'char(36) CHARACTER SET ascii COLLATE ascii_bin';
    case 'other':
      return inKey ? `varchar(${MYSQL_KEY_TEXT_CHARS}) ${caps.textCollation}` : `longtext ${caps.textCollation}`;
  }
}

/** MariaDB DECIMAL storage: 4 bytes per 9 digits, the rest packed, integer and fraction parts apart. */
function decimalBytes(digits: number): number {
  return Math.floor(digits / 9) * 4 + [0, 1, 1, 2, 2, 3, 3, 4, 4][digits % 9]!;
}

/**
 * Bytes a column of this MariaDB type (as mysqlColumnType writes it) takes in
 * an InnoDB index key; Infinity for types indexed only through a prefix
 * (text, blob, json).
 */
export function mysqlKeyPartBytes(type: string): number {
  const t = type.toLowerCase();
  let m = /^(var)?char\((\d+)\)/.exec(t);
  if (m) return Number(m[2]) * (/character set ascii/.test(t) ? 1 : 4);
  if ((m = /^(var)?binary\((\d+)\)/.exec(t))) return Number(m[2]);
  if ((m = /^decimal\((\d+),(\d+)\)/.exec(t))) return decimalBytes(Number(m[1]) - Number(m[2])) + decimalBytes(Number(m[2]));
  if ((m = /^bit\((\d+)\)/.exec(t))) return Math.ceil(Number(m[1]) / 8);
  if ((m = /^(time|datetime|timestamp)\((\d)\)/.exec(t))) return { time: 3, datetime: 5, timestamp: 4 }[m[1] as 'time'] + Math.ceil(Number(m[2]) / 2);
  const fixed: Record<string, number> = {
    tinyint: 1, smallint: 2, mediumint: 3, int: 4, bigint: 8, year: 1, float: 4, double: 8, date: 3, enum: 2, set: 8, uuid: 16,
  };
  const head = /^[a-z]+/.exec(t)?.[0] ?? '';
  return fixed[head] ?? Infinity;
}

/**
 * A key whose columns, at their key types, exceed InnoDB's 3072-byte key
 * (e.g. (int, text): 4 + 768 x 4 bytes, or a varchar(1000) key) cannot be
 * the PRIMARY KEY of a MariaDB table. Such a table keeps its key columns at
 * full width (text -> longtext, nothing cut to 768 characters) and gets
 * `UNIQUE KEY ... USING HASH` instead (docs/types.md K3): MariaDB hashes the
 * whole key and compares the full values on a hash match, so distinct keys
 * never collide, whatever prefix they share. Depends only on the key
 * columns, so table creation and apply agree on it.
 */
export function mysqlHashedKey(keyCols: ColumnType[], caps: MysqlCaps): boolean {
  let bytes = 0;
  for (const c of keyCols) bytes += mysqlKeyPartBytes(mysqlColumnType(c, caps, true));
  return bytes > MYSQL_MAX_KEY_BYTES;
}

// ---------------------------------------------------------------- values

const INT_RE = /^-?\d+$/;
const DATE_RE = /^(\d{4,})-(\d{2})-(\d{2})$/;
const DATETIME_RE = /^(\d{4,})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(\.\d{1,6})?$/;
const TSTZ_RE = /^(\d{4,})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d{1,6})?Z$/;
const TIME_RE = /^(-?)(\d{2,3}):(\d{2}):(\d{2})(\.\d{1,6})?$/;
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** PostgreSQL timestamp upper bound: 294276-12-31 23:59:59.999999. */
const PG_MAX_TS_YEAR = 294276;
const PG_MAX_DATE_YEAR = 5874897;

/** Where a value goes, for error messages. */
export interface ValueSite {
  table: string;
  column: ColumnType;
}

function fail(site: ValueSite, v: unknown, reason: string): never {
  throw new UnmappableValueError(site.table, site.column.name, v, reason);
}

function intRange(bits: number, unsigned: boolean): [bigint, bigint] {
  return unsigned ? [0n, (1n << BigInt(bits)) - 1n] : [-(1n << BigInt(bits - 1)), (1n << BigInt(bits - 1)) - 1n];
}

function checkInt(v: Value, site: ValueSite, range: [bigint, bigint], dest: string): string | number {
  const s = typeof v === 'number' ? (Number.isInteger(v) ? BigInt(v).toString() : '') : String(v);
  if (!INT_RE.test(s)) fail(site, v, `not an integer for ${dest}`);
  const n = BigInt(s);
  if (n < range[0] || n > range[1]) fail(site, v, `out of range for ${dest}`);
  return typeof v === 'number' ? v : s;
}

/**
 * `^[+-]?\d*(\.\d*)?$` (not both parts empty) in one pass without allocating
 * (the snapshot and apply check every decimal): the integer digits without
 * leading zeros and the fraction digits without trailing zeros, as they do
 * not change the value; undefined when `s` is not a decimal number.
 */
export function decimalDigits(s: string): [intDigits: number, fracDigits: number] | undefined {
  let i = 0;
  const n = s.length;
  if (i < n && (s.charCodeAt(i) === 43 || s.charCodeAt(i) === 45)) i++; // + -
  let intAll = 0; let intLead = 0; let seenNonZero = false;
  for (; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) break;
    intAll++;
    if (c !== 48) seenNonZero = true; else if (!seenNonZero) intLead++;
  }
  let fracAll = 0; let fracLast = 0;
  if (i < n && s.charCodeAt(i) === 46) { // .
    for (i++; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c < 48 || c > 57) return undefined;
      fracAll++;
      if (c !== 48) fracLast = fracAll;
    }
  }
  if (i !== n || (intAll === 0 && fracAll === 0)) return undefined;
  return [intAll - intLead, fracLast];
}

/** Integer digits and fraction digits (trailing zeros dropped, as they do not change the value). */
function checkDecimal(v: Value, site: ValueSite, precision: number | undefined, scale: number, dest: string): string {
  const s = String(v);
  const digits = decimalDigits(s);
  if (!digits) fail(site, v, `not a decimal number for ${dest}`);
  if (precision === undefined) return s;
  const [intDigits, fracDigits] = digits;
  if (fracDigits > scale) fail(site, v, `more than ${scale} fraction digits for ${dest}`);
  if (intDigits > precision - scale) fail(site, v, `more than ${precision - scale} integer digits for ${dest}`);
  return s;
}

function isZeroDate(y: string, mo: string, d: string): boolean {
  return Number(y) === 0 || mo === '00' || d === '00';
}

function bitsOf(v: Value, site: ValueSite, size: number | undefined): string {
  const s = String(v);
  if (!/^[01]*$/.test(s)) fail(site, v, 'not a bit string');
  if (size !== undefined && s.length > size) fail(site, v, `longer than ${size} bits`);
  return s;
}

/** JSON-safe value -> `pg` query parameter for the column's PostgreSQL type (pgColumnDef). */
/** A PostgreSQL integer column's type and bounds, derived once per column object (per value it cost more than the check). */
const pgIntCache = new WeakMap<ColumnType, { type: string; range: [bigint, bigint]; lo: number; hi: number }>();
function pgIntInfo(col: ColumnType): { type: string; range: [bigint, bigint]; lo: number; hi: number } {
  let info = pgIntCache.get(col);
  if (!info) {
    const type = pgColumnType(col);
    const range: [bigint, bigint] = type === 'smallint' ? intRange(16, false) : type === 'integer' ? intRange(32, false)
      : type === 'bigint' ? intRange(64, false) : intRange(64, true);
    info = { type, range, lo: Math.max(Number(range[0]), Number.MIN_SAFE_INTEGER), hi: Math.min(Number(range[1]), Number.MAX_SAFE_INTEGER) };
    pgIntCache.set(col, info);
  }
  return info;
}

export function toPgParam(v: Value | undefined, site: ValueSite): unknown {
  if (v === null || v === undefined) return null;
  const col = site.column;
  switch (col.kind) {
    case 'int': {
      const info = pgIntInfo(col);
      // A safe integer in range needs no BigInt (checkInt returns numbers as they are).
      if (typeof v === 'number' && Number.isSafeInteger(v) && v >= info.lo && v <= info.hi) return v;
      return checkInt(v, site, info.range, info.type);
    }
    case 'decimal':
      if (v === 'NaN' || v === 'Infinity' || v === '-Infinity') return v;
      return checkDecimal(v, site, col.precision || undefined, col.scale ?? 0, 'numeric');
    case 'float':
      if (typeof v === 'number' || v === 'NaN' || v === 'Infinity' || v === '-Infinity' || v === '-0') return v;
      return fail(site, v, 'not a float');
    case 'text':
      if (typeof v !== 'string') return fail(site, v, 'not a string');
      if (v.includes('\u0000')) fail(site, v, 'PostgreSQL text cannot hold the NUL character');
      return v;
    case 'binary':
      return Buffer.from(String(v), 'base64');
    case 'date': {
      const m = DATE_RE.exec(String(v));
      if (!m) return v === 'infinity' || v === '-infinity' || /BC$/.test(String(v)) ? v : fail(site, v, 'not a date');
      if (isZeroDate(m[1]!, m[2]!, m[3]!)) fail(site, v, 'PostgreSQL has no zero date');
      if (Number(m[1]) > PG_MAX_DATE_YEAR) fail(site, v, 'beyond PostgreSQL date range');
      return v;
    }
    case 'time': {
      const m = TIME_RE.exec(String(v));
      if (!m) return fail(site, v, 'not a time');
      const h = Number(m[2]);
      const frac = Number(m[5] ?? 0);
      if (m[1] === '-' || h > 24 || (h === 24 && (m[3] !== '00' || m[4] !== '00' || frac !== 0))) {
        fail(site, v, 'outside PostgreSQL time range 00:00:00..24:00:00');
      }
      return v;
    }
    case 'datetime':
    case 'timestamptz': {
      const s = String(v);
      const m = (col.kind === 'datetime' ? DATETIME_RE : TSTZ_RE).exec(s);
      if (!m) return s === 'infinity' || s === '-infinity' || /BC$/.test(s) ? s : fail(site, v, `not a ${col.kind} value`);
      if (isZeroDate(m[1]!, m[2]!, m[3]!)) fail(site, v, 'PostgreSQL has no zero date');
      if (Number(m[1]) > PG_MAX_TS_YEAR) fail(site, v, `beyond PostgreSQL timestamp range (year ${PG_MAX_TS_YEAR})`);
      return s;
    }
    case 'json': {
      const s = String(v);
      try { JSON.parse(s); } catch { fail(site, v, 'not valid JSON'); }
      if (pgColumnType(col) === 'jsonb' && s.includes('\\u0000')) fail(site, v, 'jsonb cannot hold \\u0000');
      return s;
    }
    case 'enum':
      return checkLabel(v, site);
    case 'set':
      return setLabels(v, site);
    case 'bit': {
      const bits = bitsOf(v, site, col.size);
      // MariaDB bit(n) is a number: b'101' in bit(8) is 00000101, so pad on the left.
      return isVarbit(col) ? bits : bits.padStart(col.size ?? 1, '0');
    }
    case 'bool':
      if (typeof v === 'boolean') return v;
      if (v === 0 || v === 1) return v === 1;
      return fail(site, v, 'not a boolean');
    case 'uuid':
      if (!UUID_RE.test(String(v).toLowerCase())) fail(site, v, 'not a uuid');
      return String(v);
    case 'other':
      return typeof v === 'string' ? v : String(v);
  }
}

/** MariaDB shows 4-byte characters of labels as '?' when they could not be read exactly (mysql-schema.ts exactLabels). */
function labelHint(labels: string[]): string {
  return labels.some((l) => l.includes('?'))
    ? " (MariaDB's metadata shows 4-byte characters of labels as '?': grant the source user CREATE TEMPORARY TABLES on the schema so the labels can be read exactly)"
    : '';
}

function checkLabel(v: Value, site: ValueSite): string {
  const labels = site.column.values;
  if (labels && labels.length && !labels.includes(String(v))) fail(site, v, `not one of the enum labels${labelHint(labels)}`);
  return String(v);
}

function setLabels(v: Value, site: ValueSite): string[] {
  const s = String(v);
  const parts = s === '' ? [] : s.split(',');
  const labels = site.column.values;
  if (labels && parts.some((p) => !labels.includes(p))) fail(site, v, `not a subset of the set labels${labelHint(labels)}`);
  return parts;
}

/**
 * A literal mysql2 inlines as is (sqlstring's toSqlString). Numbers go to
 * MariaDB unquoted because a quoted string compared with a DECIMAL or BIGINT
 * column is compared as a double, which could match the wrong key.
 */
export interface RawSql { toSqlString(): string }
/** A literal mysql2 writes as is (a class, not a closure per value: the apply hot path makes one per integer). */
class RawLiteral implements RawSql {
  constructor(private readonly literal: string) {}
  toSqlString(): string { return this.literal; }
}
function raw(literal: string): RawSql {
  return new RawLiteral(literal);
}

/**
 * What toMysqlParam derives from a column alone, once per column object
 * (column arrays are shared by every event of a column set): the MariaDB
 * type, an integer's bounds, a char column's length limit. Derived per value,
 * it cost more than the values' conversion itself (issue 12 profile).
 */
interface MysqlSiteInfo { type: string; lo: number; hi: number; range?: [bigint, bigint]; charLimit?: number }
const siteInfoCache = new WeakMap<ColumnType, { caps: MysqlCaps; byKey: [MysqlSiteInfo | undefined, MysqlSiteInfo | undefined] }>();
function siteInfo(col: ColumnType, caps: MysqlCaps, inKey: boolean): MysqlSiteInfo {
  let entry = siteInfoCache.get(col);
  if (!entry || entry.caps !== caps) { entry = { caps, byKey: [undefined, undefined] }; siteInfoCache.set(col, entry); }
  const i = inKey ? 1 : 0;
  const have = entry.byKey[i];
  if (have) return have;
  const type = mysqlColumnType(col, caps, col.kind === 'int' ? false : inKey);
  const info: MysqlSiteInfo = { type, lo: 0, hi: -1 };
  if (col.kind === 'int') {
    const bits = { tinyint: 8, smallint: 16, mediumint: 24, int: 32 }[type.split(' ')[0]!] ?? 64;
    info.range = type === 'year' ? [0n, 2155n] : intRange(bits, type.endsWith('unsigned'));
    // Numbers inside both the range and the safe integers need no BigInt.
    info.lo = Math.max(Number(info.range[0]), Number.MIN_SAFE_INTEGER);
    info.hi = Math.min(Number(info.range[1]), Number.MAX_SAFE_INTEGER);
  }
  const lim = /^(var)?char\((\d+)\)/.exec(type);
  if (lim) info.charLimit = Number(lim[2]);
  entry.byKey[i] = info;
  return info;
}

/** JSON-safe value -> mysql2 parameter for the column's MariaDB type (mysqlColumnType). */
export function toMysqlParam(v: Value | undefined, site: ValueSite, caps: MysqlCaps, inKey = false): unknown {
  if (v === null || v === undefined) return null;
  const col = site.column;
  switch (col.kind) {
    case 'int': {
      const info = siteInfo(col, caps, false);
      // A safe integer in range is written as the number itself (mysql2 writes it as its digits, as raw() did).
      if (typeof v === 'number' && Number.isSafeInteger(v) && v >= info.lo && v <= info.hi) return v;
      return raw(String(checkInt(v, site, info.range!, info.type)));
    }
    case 'decimal': {
      if (typeof v === 'string' && /^[+-]?(NaN|Infinity)$/.test(v)) fail(site, v, 'MariaDB decimal has no NaN or Infinity');
      const p = Math.min(65, col.precision || 65);
      const sc = col.precision ? Math.min(30, col.scale ?? 0) : 30;
      return raw(checkDecimal(v, site, p, sc, siteInfo(col, caps, false).type));
    }
    case 'float':
      if (v === '-0') return -0;
      if (typeof v !== 'number' || !Number.isFinite(v)) fail(site, v, 'MariaDB float/double has no NaN or Infinity');
      // A 4-byte value travels as its shortest float32 text (3.4028235e38 for FLOAT's max), which read as a
      // double lies above FLT_MAX: MariaDB calls that out of range. Its exact double is the same float32.
      return mysqlColumnType(col, caps) === 'float' ? Math.fround(v) : v;
    case 'text':
    case 'other': {
      let s = typeof v === 'string' ? v : String(v);
      // CHAR(n) pads are no part of the value (PostgreSQL sends bpchar padded; MariaDB strips CHAR on read).
      // A CHAR above 255 becomes varchar here, which would keep the pad: strip it, as CHAR(n <= 255) does.
      if (col.kind === 'text' && col.fixed) s = s.replace(/ +$/, '');
      const info = siteInfo(col, caps, inKey);
      // Code points: never more than UTF-16 units, so only a long string needs counting.
      if (info.charLimit !== undefined && s.length > info.charLimit && [...s].length > info.charLimit) {
        fail(site, v, `longer than ${info.charLimit} characters for ${info.type.split(' ')[0]}`);
      }
      return s;
    }
    case 'binary': {
      const buf = Buffer.from(String(v), 'base64');
      if (inKey && buf.length > MYSQL_KEY_BINARY_BYTES && !col.length) fail(site, v, `key longer than ${MYSQL_KEY_BINARY_BYTES} bytes`);
      return buf;
    }
    case 'date': {
      const m = DATE_RE.exec(String(v));
      if (!m || m[1]!.length !== 4) fail(site, v, 'outside MariaDB date range 0000-01-01..9999-12-31');
      return String(v);
    }
    case 'time': {
      const m = TIME_RE.exec(String(v));
      if (!m) return fail(site, v, 'not a time');
      const h = Number(m[2]);
      if (h > 838 || (h === 838 && (m[3] !== '59' || Number(m[4]) > 59))) fail(site, v, 'outside MariaDB time range -838:59:59..838:59:59');
      return String(v);
    }
    case 'datetime': {
      const s = String(v);
      const m = DATETIME_RE.exec(s);
      if (!m || m[1]!.length !== 4) fail(site, v, 'outside MariaDB datetime range 0000..9999');
      return s.replace('T', ' ');
    }
    case 'timestamptz': {
      const s = String(v);
      if (/^0000-00-00[ T]00:00:00(\.0+)?Z?$/.test(s) && isMysqlTimestamp(col)) return '0000-00-00 00:00:00';
      const m = TSTZ_RE.exec(s);
      if (!m || m[1]!.length !== 4) fail(site, v, 'outside MariaDB datetime range 0000..9999');
      const local = s.slice(0, -1).replace('T', ' ');
      if (isMysqlTimestamp(col) && (local < '1970-01-01 00:00:01' || local >= '2038-01-19 03:14:08')) {
        fail(site, v, 'outside MariaDB timestamp range');
      }
      return local;
    }
    case 'json': {
      const s = String(v);
      try { JSON.parse(s); } catch { fail(site, v, 'not valid JSON'); }
      return s;
    }
    case 'enum':
      // The invalid-ENUM value compares equal to '' (key and keyless deletes); the applier writes it itself (index 0).
      if (caps.invalidEnum && isInvalidEnum(v, col)) return '';
      return checkLabel(v, site);
    case 'set':
      return setLabels(v, site).join(',');
    case 'bit': {
      const bits = bitsOf(v, site, col.size);
      const n = col.size ?? 1;
      // An unsigned integer literal, not bytes: a bare string would be stored as its ASCII codes, and MariaDB
      // never finds a BIT value compared with a hex string (X'..'), so key deletes and updates would miss.
      return n <= 64 && !isVarbit(col) ? raw((bits === '' ? 0n : BigInt('0b' + bits)).toString()) : bits;
    }
    case 'bool':
      if (typeof v === 'boolean') return v ? 1 : 0;
      if (v === 0 || v === 1) return v;
      return fail(site, v, 'not a boolean');
    case 'uuid':
      if (!UUID_RE.test(String(v).toLowerCase())) fail(site, v, 'not a uuid');
      return String(v).toLowerCase();
  }
}

/** A table whose key column has no destination key type. */
export function assertKeyable(dest: DestKind, col: ColumnType, table: string): void {
  if (dest === 'postgres' && col.kind === 'json' && pgColumnType(col) === 'json') {
    throw new FatalError(`key column ${col.name} of ${table} is json, which PostgreSQL cannot index`);
  }
}
