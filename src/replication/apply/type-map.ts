/**
 * Source column type -> destination column type, for PostgreSQL and
 * MariaDB/MySQL destinations; the values themselves are value-params.ts. The
 * table of decisions is docs/types.md; keep both in step.
 */
import type { ColumnType, Value } from '../change-event.ts';
import { FatalError } from '../errors.ts';

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

export function isMysqlTimestamp(col: ColumnType): boolean {
  return !isPgColumn(col) && /^timestamp\b/i.test(col.sourceType);
}

/** float(p<=24), real and float4 are 4-byte; everything else is a double. */
function isSinglePrecision(col: ColumnType): boolean {
  if (col.size) return col.size === 4;
  const m = /^(float|real|float4)(?:\((\d+)\))?$/i.exec(col.sourceType.trim());
  return !!m && (m[2] === undefined || Number(m[2]) <= 24);
}

export function isVarbit(col: ColumnType): boolean {
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

/** A table whose key column has no destination key type. */
export function assertKeyable(dest: DestKind, col: ColumnType, table: string): void {
  if (dest === 'postgres' && col.kind === 'json' && pgColumnType(col) === 'json') {
    throw new FatalError(`key column ${col.name} of ${table} is json, which PostgreSQL cannot index`);
  }
}
