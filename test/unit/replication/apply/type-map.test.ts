/** Type and value mapping to PostgreSQL and MariaDB destinations: exact or refused, never altered (docs/types.md). */
import { describe, expect, it } from 'vitest';
import mysql from 'mysql2';
import type { ColumnType } from '../../../../src/replication/change-event.ts';
import { FatalError, UnmappableValueError } from '../../../../src/replication/errors.ts';
import {
  MARIADB_CAPS, MYSQL_KEY_TEXT_CHARS, assertKeyable, isPgColumn, mysqlColumnType, pgColumnDef, pgColumnType, type MysqlCaps,
} from '../../../../src/replication/apply/type-map.ts';
import { decimalDigits, pgCopyTextSafe, toMysqlParam, toPgParam, type RawSql } from '../../../../src/replication/apply/value-params.ts';

const col = (c: Partial<ColumnType> & Pick<ColumnType, 'kind' | 'sourceType'>): ColumnType => ({ name: 'c', ...c });
const site = (c: ColumnType) => ({ table: 's.t', column: c });
const MYSQL8: MysqlCaps = { uuidType: false, textCollation: 'CHARACTER SET utf8mb4 COLLATE utf8mb4_0900_bin', invalidEnum: false, longUnique: false };
/** The SQL text mysql2 writes for a parameter (what reaches MariaDB): numbers and RawSql unquoted. */
const rawText = (v: unknown) => mysql.format('?', [v as RawSql]);

describe('column types', () => {
  it('tells a PostgreSQL source column by its type OID', () => {
    expect(isPgColumn(col({ kind: 'int', sourceType: 'integer', pgOid: 23 }))).toBe(true);
    expect(isPgColumn(col({ kind: 'int', sourceType: 'int(11)' }))).toBe(false);
  });

  it('widens unsigned integers so every source value fits', () => {
    expect(pgColumnType(col({ kind: 'int', sourceType: 'smallint unsigned', size: 2, unsigned: true }))).toBe('integer');
    expect(pgColumnType(col({ kind: 'int', sourceType: 'int unsigned', size: 4, unsigned: true }))).toBe('bigint');
    expect(pgColumnType(col({ kind: 'int', sourceType: 'bigint unsigned', size: 8, unsigned: true }))).toBe('numeric(20,0)');
    expect(pgColumnType(col({ kind: 'int', sourceType: 'mediumint' }))).toBe('integer');
    expect(mysqlColumnType(col({ kind: 'int', sourceType: 'int unsigned', size: 4, unsigned: true }), MARIADB_CAPS)).toBe('int unsigned');
    expect(mysqlColumnType(col({ kind: 'int', sourceType: 'year', size: 1, family: 'year' }), MARIADB_CAPS)).toBe('year');
  });

  it('keeps decimals, char lengths and fractional seconds', () => {
    expect(pgColumnType(col({ kind: 'decimal', sourceType: 'decimal(10,2)', precision: 10, scale: 2 }))).toBe('numeric(10,2)');
    expect(mysqlColumnType(col({ kind: 'decimal', sourceType: 'numeric' }), MARIADB_CAPS)).toBe('decimal(65,30)');
    expect(pgColumnType(col({ kind: 'text', sourceType: 'char(3)', fixed: true, length: 3 }))).toBe('char(3)');
    expect(pgColumnType(col({ kind: 'text', sourceType: 'varchar(20)', length: 20 }))).toBe('varchar(20)');
    expect(pgColumnType(col({ kind: 'text', sourceType: 'text' }))).toBe('text');
    expect(pgColumnType(col({ kind: 'datetime', sourceType: 'datetime(3)', fsp: 3 }))).toBe('timestamp(3)');
    expect(pgColumnType(col({ kind: 'timestamptz', sourceType: 'timestamp with time zone', pgOid: 1184 }))).toBe('timestamptz(6)');
    expect(mysqlColumnType(col({ kind: 'text', sourceType: 'varchar(20)', length: 20 }), MARIADB_CAPS)).toBe(`varchar(20) ${MARIADB_CAPS.textCollation}`);
  });

  it('bounds key columns that would be unbounded text on MariaDB', () => {
    const t = col({ kind: 'text', sourceType: 'text', pgOid: 25 });
    expect(mysqlColumnType(t, MARIADB_CAPS)).toBe(`longtext ${MARIADB_CAPS.textCollation}`);
    expect(mysqlColumnType(t, MARIADB_CAPS, true)).toBe(`varchar(${MYSQL_KEY_TEXT_CHARS}) ${MARIADB_CAPS.textCollation}`);
  });

  it('stores a PostgreSQL instant as a MariaDB datetime (UTC) but keeps a MariaDB timestamp', () => {
    expect(mysqlColumnType(col({ kind: 'timestamptz', sourceType: 'timestamp with time zone', pgOid: 1184 }), MARIADB_CAPS)).toBe('datetime(6)');
    expect(mysqlColumnType(col({ kind: 'timestamptz', sourceType: 'timestamp(2)', fsp: 2 }), MARIADB_CAPS)).toBe('timestamp(2)');
  });

  it('checks enum and set labels at a PostgreSQL destination', () => {
    const def = pgColumnDef(col({ kind: 'enum', sourceType: "enum('a','b''c')", values: ['a', "b'c"] }));
    expect(def.type).toBe('text');
    expect(def.check!('"c"')).toBe(`"c" IN ('a', 'b''c')`);
    expect(pgColumnDef(col({ kind: 'set', sourceType: "set('x')", values: ['x'] })).check!('"c"')).toBe(`"c" <@ ARRAY['x']::text[]`);
  });

  it('uses uuid where the server has it (MariaDB sources), else ascii char(36); a PostgreSQL uuid always as char(36)', () => {
    const fromMaria = col({ kind: 'uuid', sourceType: 'uuid' });
    expect(mysqlColumnType(fromMaria, MARIADB_CAPS)).toBe('uuid');
    expect(mysqlColumnType(fromMaria, MYSQL8)).toBe('char(36) CHARACTER SET ascii COLLATE ascii_bin');
    // MariaDB's uuid type refuses some values PostgreSQL holds (docs/types.md T51).
    const u = col({ kind: 'uuid', sourceType: 'uuid', pgOid: 2950 });
    expect(mysqlColumnType(u, MARIADB_CAPS)).toBe('char(36) CHARACTER SET ascii COLLATE ascii_bin');
  });

  it('keeps a PostgreSQL type PostgreSQL to PostgreSQL, text elsewhere', () => {
    expect(pgColumnType(col({ kind: 'other', sourceType: 'interval', pgOid: 1186 }))).toBe('interval');
    expect(pgColumnType(col({ kind: 'other', sourceType: 'my_domain', pgOid: 99999, pgType: 'integer[]' }))).toBe('integer[]');
    expect(pgColumnType(col({ kind: 'other', sourceType: 'geometry' }))).toBe('text');
  });
});

describe('values to PostgreSQL', () => {
  it('passes NULL through', () => {
    expect(toPgParam(null, site(col({ kind: 'int', sourceType: 'int' })))).toBeNull();
    expect(toPgParam(undefined, site(col({ kind: 'text', sourceType: 'text' })))).toBeNull();
  });

  it('refuses integers out of the destination range, and non-integers', () => {
    const small = site(col({ kind: 'int', sourceType: 'smallint', size: 2 }));
    expect(toPgParam(32767, small)).toBe(32767);
    expect(() => toPgParam(32768, small)).toThrow(UnmappableValueError);
    expect(() => toPgParam('1.5', small)).toThrow(/not an integer/);
    const big = site(col({ kind: 'int', sourceType: 'bigint unsigned', size: 8, unsigned: true }));
    expect(toPgParam('18446744073709551615', big)).toBe('18446744073709551615');
  });

  it('keeps decimals exact and refuses more digits than the column holds', () => {
    const d = site(col({ kind: 'decimal', sourceType: 'numeric(5,2)', precision: 5, scale: 2 }));
    expect(toPgParam('123.40', d)).toBe('123.40');
    expect(() => toPgParam('123.456', d)).toThrow(/more than 2 fraction digits/);
    expect(() => toPgParam('1234.5', d)).toThrow(/more than 3 integer digits/);
    expect(toPgParam('NaN', d)).toBe('NaN');
  });

  it('refuses what PostgreSQL cannot hold: NUL in text, zero dates, 25:00', () => {
    expect(() => toPgParam('a\u0000b', site(col({ kind: 'text', sourceType: 'text' })))).toThrow(/NUL/);
    expect(() => toPgParam('0000-00-00', site(col({ kind: 'date', sourceType: 'date' })))).toThrow(/no zero date/);
    expect(() => toPgParam('25:00:00', site(col({ kind: 'time', sourceType: 'time' })))).toThrow(/time range/);
    expect(toPgParam('24:00:00', site(col({ kind: 'time', sourceType: 'time' })))).toBe('24:00:00');
  });

  it('decodes binary from base64, left-pads MariaDB bit(n), splits sets', () => {
    expect(toPgParam('AAEC', site(col({ kind: 'binary', sourceType: 'blob' })))).toEqual(Buffer.from([0, 1, 2]));
    expect(toPgParam('101', site(col({ kind: 'bit', sourceType: 'bit(8)', size: 8 })))).toBe('00000101');
    expect(toPgParam('a,b', site(col({ kind: 'set', sourceType: "set('a','b')", values: ['a', 'b'] })))).toEqual(['a', 'b']);
    expect(toPgParam('', site(col({ kind: 'set', sourceType: "set('a')", values: ['a'] })))).toEqual([]);
    expect(() => toPgParam('z', site(col({ kind: 'enum', sourceType: "enum('a')", values: ['a'] })))).toThrow(/enum labels/);
  });

  it('names the table, column and value in the error', () => {
    try {
      toPgParam('x', { table: 'shop.orders', column: col({ name: 'qty', kind: 'int', sourceType: 'int' }) });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(UnmappableValueError);
      expect(err).toBeInstanceOf(FatalError);
      expect(err).toMatchObject({ table: 'shop.orders', column: 'qty', value: 'x', name: 'UnmappableValueError' });
      expect((err as Error).message).toMatch(/column qty in table shop\.orders/);
    }
  });
});

describe('values to MariaDB', () => {
  it('inlines numbers unquoted, checked against the destination type', () => {
    const i = site(col({ kind: 'int', sourceType: 'tinyint', size: 1 }));
    expect(rawText(toMysqlParam(127, i, MARIADB_CAPS))).toBe('127');
    expect(() => toMysqlParam(128, i, MARIADB_CAPS)).toThrow(/out of range for tinyint/);
    expect(rawText(toMysqlParam(-0, i, MARIADB_CAPS))).toBe('0');
    expect(() => toMysqlParam(1.5, i, MARIADB_CAPS)).toThrow(/not an integer/);
    const big = site(col({ kind: 'int', sourceType: 'bigint', size: 8 }));
    expect(rawText(toMysqlParam('9223372036854775807', big, MARIADB_CAPS))).toBe('9223372036854775807');
    expect(() => toMysqlParam('9223372036854775808', big, MARIADB_CAPS)).toThrow(/out of range for bigint/);
    expect(rawText(toMysqlParam(9007199254740993n.toString(), big, MARIADB_CAPS))).toBe('9007199254740993');
    expect(rawText(toMysqlParam('12.50', site(col({ kind: 'decimal', sourceType: 'decimal(4,2)', precision: 4, scale: 2 })), MARIADB_CAPS))).toBe('12.50');
  });

  it('refuses NaN and Infinity, which MariaDB cannot store', () => {
    expect(() => toMysqlParam('NaN', site(col({ kind: 'float', sourceType: 'double' })), MARIADB_CAPS)).toThrow(/NaN or Infinity/);
    expect(() => toMysqlParam('Infinity', site(col({ kind: 'decimal', sourceType: 'numeric', pgOid: 1700 })), MARIADB_CAPS)).toThrow(UnmappableValueError);
  });

  it('writes an instant as UTC datetime and keeps MariaDB timestamps within their range', () => {
    const pgTs = site(col({ kind: 'timestamptz', sourceType: 'timestamp with time zone', pgOid: 1184 }));
    expect(toMysqlParam('2040-05-06T07:08:09.123Z', pgTs, MARIADB_CAPS)).toBe('2040-05-06 07:08:09.123');
    const myTs = site(col({ kind: 'timestamptz', sourceType: 'timestamp' }));
    expect(() => toMysqlParam('2040-05-06T07:08:09Z', myTs, MARIADB_CAPS)).toThrow(/timestamp range/);
    expect(toMysqlParam('0000-00-00T00:00:00Z', myTs, MARIADB_CAPS)).toBe('0000-00-00 00:00:00');
  });

  it('refuses text longer than a bounded column and writes bit strings as unsigned integers', () => {
    const v = site(col({ kind: 'text', sourceType: 'varchar(3)', length: 3 }));
    expect(toMysqlParam('abc', v, MARIADB_CAPS)).toBe('abc');
    expect(() => toMysqlParam('abcd', v, MARIADB_CAPS)).toThrow(/longer than 3 characters/);
    // MariaDB never matches a BIT column against X'..' (docs/types.md T26b): an unsigned integer literal.
    expect((toMysqlParam('100000001', site(col({ kind: 'bit', sourceType: 'bit(9)', size: 9 })), MARIADB_CAPS) as RawSql).toSqlString()).toBe('257');
  });

  it('writes booleans as 0/1 and lower-cases uuids', () => {
    expect(toMysqlParam(true, site(col({ kind: 'bool', sourceType: 'boolean', pgOid: 16 })), MARIADB_CAPS)).toBe(1);
    expect(toMysqlParam('A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', site(col({ kind: 'uuid', sourceType: 'uuid', pgOid: 2950 })), MARIADB_CAPS))
      .toBe('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11');
  });
});

describe('assertKeyable', () => {
  it('refuses a PostgreSQL json key (no equality operator), accepts jsonb', () => {
    expect(() => assertKeyable('postgres', col({ name: 'doc', kind: 'json', sourceType: 'json' }), 's.t')).toThrow(/json, which PostgreSQL cannot index/);
    expect(() => assertKeyable('postgres', col({ kind: 'json', sourceType: 'jsonb', pgOid: 3802 }), 's.t')).not.toThrow();
    expect(() => assertKeyable('mysql', col({ kind: 'json', sourceType: 'json' }), 's.t')).not.toThrow();
  });
});

describe('decimalDigits', () => {
  /** The regular expression it replaces, as the reference. */
  const reference = (s: string): [number, number] | undefined => {
    const m = /^([+-]?)(\d*)(?:\.(\d*))?$/.exec(s);
    if (!m || (m[2] === '' && (m[3] ?? '') === '')) return undefined;
    return [m[2]!.replace(/^0+/, '').length, (m[3] ?? '').replace(/0+$/, '').length];
  };
  it('agrees with the regular expression on every short string over its alphabet', () => {
    const alphabet = ['0', '1', '9', '.', '-', '+', 'e', ' '];
    const all: string[] = [''];
    for (let len = 1; len <= 5; len++) {
      const prev = all.filter((x) => x.length === len - 1);
      for (const p of prev) for (const c of alphabet) all.push(p + c);
    }
    for (const s of all) expect(decimalDigits(s), JSON.stringify(s)).toEqual(reference(s));
    for (const s of ['00012.3400', '-0.000', '+.5', '5.', '123456789012345678901234567890.000000000000000000001']) expect(decimalDigits(s)).toEqual(reference(s));
  });
});

describe('pgCopyTextSafe (the MariaDB server may write these columns\' COPY text)', () => {
  it('integers whose PostgreSQL type holds the whole source range, decimals, text and datetimes; nothing else', () => {
    for (const [size, unsigned] of [[1, false], [1, true], [2, false], [2, true], [3, false], [3, true], [4, false], [4, true], [8, false], [8, true]] as const) {
      expect(pgCopyTextSafe(col({ kind: 'int', sourceType: 'int', size, unsigned: unsigned || undefined })), `${size} ${unsigned}`).toBe(true);
    }
    expect(pgCopyTextSafe(col({ kind: 'int', sourceType: 'year', size: 1, family: 'year' }))).toBe(false);
    expect(pgCopyTextSafe(col({ kind: 'int', sourceType: 'int' }))).toBe(false);
    expect(pgCopyTextSafe(col({ kind: 'decimal', sourceType: 'decimal(12,2)', precision: 12, scale: 2 }))).toBe(true);
    expect(pgCopyTextSafe(col({ kind: 'text', sourceType: 'varchar(10)', length: 10 }))).toBe(true);
    expect(pgCopyTextSafe(col({ kind: 'datetime', sourceType: 'datetime(6)', fsp: 6 }))).toBe(true);
    for (const kind of ['float', 'binary', 'bit', 'bool', 'date', 'time', 'timestamptz', 'json', 'enum', 'set', 'uuid', 'other'] as const) {
      expect(pgCopyTextSafe(col({ kind, sourceType: kind })), kind).toBe(false);
    }
  });
});
