/**
 * The JSON-safe value of change-event.ts -> a driver parameter, for
 * PostgreSQL (toPgParam) and MariaDB/MySQL (toMysqlParam) destinations, in
 * the column types type-map.ts chooses. The table of decisions is
 * docs/types.md; keep both in step.
 *
 * A value that the destination cannot hold exactly raises
 * UnmappableValueError (table, column, value): nothing is rounded, clipped or
 * replaced on the way, because a replica that silently differs is worse than
 * a stopped job. Checks happen here, before the statement is sent, so that
 * the failure is a FatalError with a clear message and not a driver error
 * that would be retried forever.
 */
import type { ColumnType, Value } from '../change-event.ts';
import { UnmappableValueError } from '../errors.ts';
import {
  isInvalidEnum, isMysqlTimestamp, isVarbit, mysqlColumnType, pgColumnType, MYSQL_KEY_BINARY_BYTES, type MysqlCaps,
} from './type-map.ts';

const INT_RE = /^-?\d+$/;
const DATE_RE = /^(\d{4,})-(\d{2})-(\d{2})$/;
const DATETIME_RE = /^(\d{4,})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(\.\d{1,6})?$/;
const TSTZ_RE = /^(\d{4,})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d{1,6})?Z$/;
const TIME_RE = /^(-?)(\d{2,3}):(\d{2}):(\d{2})(\.\d{1,6})?$/;
/**
 * The common shapes, four-digit years, tested without captures: a match array and its eight substrings per
 * value were 6% of the bytes a PostgreSQL apply allocated (issue 12). Zero parts are then read off fixed
 * positions, and a four-digit year is within every PostgreSQL range; any other text takes the full check.
 */
const DATE4_RE = /^\d{4}-\d{2}-\d{2}$/;
const DATETIME4_RE = /^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?$/;
const TSTZ4_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?Z$/;

/** A string DATE4_RE (or a longer shape starting so) matched: year, month or day zero. */
function zeroDate4(s: string): boolean {
  return s.startsWith('0000') || (s.charCodeAt(5) === 48 && s.charCodeAt(6) === 48) || (s.charCodeAt(8) === 48 && s.charCodeAt(9) === 48);
}
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** PostgreSQL timestamp upper bound: 294276-12-31 23:59:59.999999. */
const PG_MAX_TS_YEAR = 294276;
const PG_MAX_DATE_YEAR = 5874897;

/** Where a value goes, for error messages. */
export interface ValueSite {
  table: string;
  column: ColumnType;
  /** toMysqlParam's siteInfo of this site, kept on it (a site serves one statement's rows; see siteInfoAt). */
  mysqlInfo?: { caps: MysqlCaps; inKey: boolean; info: MysqlSiteInfo };
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
  return scanDecimal(s) ? [scanned.intDigits, scanned.fracDigits] : undefined;
}

/** What the last scanDecimal that returned true found (no tuple per value: issue 12, 11.7 MiB per apply bench run). */
const scanned = { intDigits: 0, fracDigits: 0 };

/** decimalDigits into `scanned`: false when `s` is not a decimal number. */
function scanDecimal(s: string): boolean {
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
      if (c < 48 || c > 57) return false;
      fracAll++;
      if (c !== 48) fracLast = fracAll;
    }
  }
  if (i !== n || (intAll === 0 && fracAll === 0)) return false;
  scanned.intDigits = intAll - intLead;
  scanned.fracDigits = fracLast;
  return true;
}

/** Integer digits and fraction digits (trailing zeros dropped, as they do not change the value). */
function checkDecimal(v: Value, site: ValueSite, precision: number | undefined, scale: number, dest: string): string {
  const s = typeof v === 'string' ? v : String(v);
  if (!scanDecimal(s)) fail(site, v, `not a decimal number for ${dest}`);
  if (precision === undefined) return s;
  const { intDigits, fracDigits } = scanned;
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

/**
 * Columns whose COPY text a MariaDB source may produce itself (the snapshot's
 * server-side COPY text, mysql.snapshot.ts readChunkCopyText): for these
 * kinds `copyField(toPgParam(toValue(raw)))` is the server's own text of the
 * value, escaped, whenever toPgParam accepts it, and the values toPgParam
 * rejects are recognisable there (NUL in text, zero dates) and go back to
 * the row path, which then fails with its message. Integers only where the
 * PostgreSQL type holds the whole source range (no range check can fail);
 * YEAR (0000 vs 0) and every other kind stay on the row path.
 */
export function pgCopyTextSafe(col: ColumnType): boolean {
  switch (col.kind) {
    case 'int': {
      if (col.family === 'year' || !(col.size === 1 || col.size === 2 || col.size === 3 || col.size === 4 || col.size === 8)) return false;
      const [lo, hi] = intRange(col.size * 8, col.unsigned === true);
      const r = pgIntInfo(col).range;
      return lo >= r[0] && hi <= r[1];
    }
    case 'decimal': case 'text': case 'datetime':
      return true;
    default:
      return false;
  }
}

/** JSON-safe value -> `pg` query parameter for the column's PostgreSQL type (pgColumnDef). */
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
      if (typeof v === 'string' && DATE4_RE.test(v)) return zeroDate4(v) ? fail(site, v, 'PostgreSQL has no zero date') : v;
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
      if ((col.kind === 'datetime' ? DATETIME4_RE : TSTZ4_RE).test(s)) return zeroDate4(s) ? fail(site, v, 'PostgreSQL has no zero date') : s;
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
/** siteInfo of the site's column, kept on the site: a field read per value instead of a WeakMap lookup (issue 12 profile). */
function siteInfoAt(site: ValueSite, caps: MysqlCaps, inKey: boolean): MysqlSiteInfo {
  const m = site.mysqlInfo;
  if (m && m.caps === caps && m.inKey === inKey) return m.info;
  const info = siteInfo(site.column, caps, inKey);
  site.mysqlInfo = { caps, inKey, info };
  return info;
}
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
      const info = siteInfoAt(site, caps, false);
      // A safe integer in range is written as the number itself (mysql2 writes it as its digits, as raw() did).
      if (typeof v === 'number' && Number.isSafeInteger(v) && v >= info.lo && v <= info.hi) return v;
      return raw(String(checkInt(v, site, info.range!, info.type)));
    }
    case 'decimal': {
      if (typeof v === 'string' && /^[+-]?(NaN|Infinity)$/.test(v)) fail(site, v, 'MariaDB decimal has no NaN or Infinity');
      const p = Math.min(65, col.precision || 65);
      const sc = col.precision ? Math.min(30, col.scale ?? 0) : 30;
      return raw(checkDecimal(v, site, p, sc, siteInfoAt(site, caps, false).type));
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
      const info = siteInfoAt(site, caps, inKey);
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
      if (!DATE4_RE.test(String(v))) fail(site, v, 'outside MariaDB date range 0000-01-01..9999-12-31');
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
      if (!DATETIME4_RE.test(s)) fail(site, v, 'outside MariaDB datetime range 0000..9999');
      return s.replace('T', ' ');
    }
    case 'timestamptz': {
      const s = String(v);
      if (/^0000-00-00[ T]00:00:00(\.0+)?Z?$/.test(s) && isMysqlTimestamp(col)) return '0000-00-00 00:00:00';
      if (!TSTZ4_RE.test(s)) fail(site, v, 'outside MariaDB datetime range 0000..9999');
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

