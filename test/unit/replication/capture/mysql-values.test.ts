/** MariaDB/MySQL driver values -> Tributary's JSON-safe values, one path for binlog and snapshot. */
import { describe, expect, it } from 'vitest';
import type { ColumnType } from '../../../../src/replication/change-event.ts';
import {
  columnTypeFromSchema, convertRow, guessColumnType, parseEnumLabels, repairTime, shortestFloat32, toParam, toValue,
  type InformationSchemaColumn,
} from '../../../../src/replication/capture/mysql-values.ts';

const schemaCol = (c: Partial<InformationSchemaColumn> & Pick<InformationSchemaColumn, 'DATA_TYPE' | 'COLUMN_TYPE'>): InformationSchemaColumn => ({
  COLUMN_NAME: 'c', IS_NULLABLE: 'YES', CHARACTER_MAXIMUM_LENGTH: null, NUMERIC_PRECISION: null, NUMERIC_SCALE: null, DATETIME_PRECISION: null, ...c,
});
const col = (c: Partial<ColumnType> & Pick<ColumnType, 'kind'>): ColumnType => ({ name: 'c', sourceType: 'x', ...c });

describe('parseEnumLabels', () => {
  it('reads quoted labels, doubled quotes and backslash escapes', () => {
    expect(parseEnumLabels("enum('a','it''s','b,c')")).toEqual(['a', "it's", 'b,c']);
    expect(parseEnumLabels("set('x','y\\\\z')")).toEqual(['x', 'y\\z']);
    expect(parseEnumLabels("enum('')")).toEqual(['']);
  });
});

describe('columnTypeFromSchema', () => {
  it('maps integer widths, unsigned and YEAR', () => {
    expect(columnTypeFromSchema(schemaCol({ DATA_TYPE: 'int', COLUMN_TYPE: 'int(10) unsigned', IS_NULLABLE: 'NO' })))
      .toEqual({ name: 'c', kind: 'int', sourceType: 'int(10) unsigned', nullable: false, size: 4, unsigned: true });
    expect(columnTypeFromSchema(schemaCol({ DATA_TYPE: 'tinyint', COLUMN_TYPE: 'tinyint(1)' }))).toMatchObject({ kind: 'int', size: 1 });
    expect(columnTypeFromSchema(schemaCol({ DATA_TYPE: 'year', COLUMN_TYPE: 'year(4)' }))).toMatchObject({ kind: 'int', size: 1, family: 'year' });
  });

  it('keeps decimal precision, fractional seconds, text lengths and labels', () => {
    expect(columnTypeFromSchema(schemaCol({ DATA_TYPE: 'decimal', COLUMN_TYPE: 'decimal(10,2)', NUMERIC_PRECISION: 10, NUMERIC_SCALE: '2' })))
      .toMatchObject({ kind: 'decimal', precision: 10, scale: 2 });
    expect(columnTypeFromSchema(schemaCol({ DATA_TYPE: 'timestamp', COLUMN_TYPE: 'timestamp(3)', DATETIME_PRECISION: 3 }))).toMatchObject({ kind: 'timestamptz', fsp: 3 });
    expect(columnTypeFromSchema(schemaCol({ DATA_TYPE: 'char', COLUMN_TYPE: 'char(2)', CHARACTER_MAXIMUM_LENGTH: 2 }))).toMatchObject({ kind: 'text', length: 2, fixed: true, family: 'char' });
    expect(columnTypeFromSchema(schemaCol({ DATA_TYPE: 'varbinary', COLUMN_TYPE: 'varbinary(16)', CHARACTER_MAXIMUM_LENGTH: 16 }))).toMatchObject({ kind: 'binary', length: 16, family: 'varbinary' });
    expect(columnTypeFromSchema(schemaCol({ DATA_TYPE: 'set', COLUMN_TYPE: "set('r','w')" }))).toMatchObject({ kind: 'set', values: ['r', 'w'] });
    expect(columnTypeFromSchema(schemaCol({ DATA_TYPE: 'float', COLUMN_TYPE: 'float' }))).toMatchObject({ kind: 'float', size: 4 });
  });

  it('takes MariaDB JSON (longtext with json_valid) as json, unknown types as other', () => {
    expect(columnTypeFromSchema(schemaCol({ DATA_TYPE: 'longtext', COLUMN_TYPE: 'longtext' }), true)).toMatchObject({ kind: 'json', family: 'longtext' });
    expect(columnTypeFromSchema(schemaCol({ DATA_TYPE: 'inet6', COLUMN_TYPE: 'inet6' }))).toMatchObject({ kind: 'other', family: 'inet6' });
  });
});

describe('toValue', () => {
  it('keeps big integers exact as strings and small ones as numbers', () => {
    const i = col({ kind: 'int', size: 8 });
    expect(toValue(i, '9007199254740991')).toBe(9007199254740991);
    expect(toValue(i, '18446744073709551615')).toBe('18446744073709551615');
    expect(toValue(i, 12n)).toBe(12);
    expect(toValue(col({ kind: 'int', size: 1, family: 'year' }), 1900)).toBe(0);
  });

  it('gives FLOAT its shortest float32 decimal and names non-finite values', () => {
    expect(toValue(col({ kind: 'float', size: 4 }), Math.fround(0.1))).toBe(0.1);
    expect(toValue(col({ kind: 'float', size: 8 }), 0.1)).toBe(0.1);
    expect(toValue(col({ kind: 'float', size: 8 }), Number.NaN)).toBe('NaN');
    expect(toValue(col({ kind: 'float', size: 8 }), -Infinity)).toBe('-Infinity');
    expect(shortestFloat32(Math.fround(3.14159))).toBe(3.14159);
  });

  it('writes binary as base64 and BIT(n) as exactly n digits', () => {
    expect(toValue(col({ kind: 'binary' }), Buffer.from([0, 255]))).toBe('AP8=');
    expect(toValue(col({ kind: 'bit', size: 10 }), Buffer.from([0x01, 0x05]))).toBe('0100000101');
    expect(toValue(col({ kind: 'bit', size: 4 }), 5)).toBe('0101');
  });

  it('writes TIMESTAMP as a UTC instant and keeps DATETIME and zero dates as text', () => {
    expect(toValue(col({ kind: 'timestamptz' }), '2024-01-02 03:04:05.123')).toBe('2024-01-02T03:04:05.123Z');
    expect(toValue(col({ kind: 'datetime' }), '0000-00-00 00:00:00')).toBe('0000-00-00 00:00:00');
    expect(toValue(col({ kind: 'date' }), new Date(Date.UTC(2024, 1, 29)))).toBe('2024-02-29');
  });

  it('gives an invalid enum (zongji undefined) the empty label and other undefined values NULL', () => {
    expect(toValue(col({ kind: 'enum' }), undefined)).toBe('');
    expect(toValue(col({ kind: 'text' }), undefined)).toBeNull();
    expect(toValue(col({ kind: 'text' }), null)).toBeNull();
  });

  it('formats uuid, INET4 and INET6 as MariaDB prints them', () => {
    expect(toValue(col({ kind: 'uuid' }), Buffer.from('A0EEBC999C0B4EF8BB6D6BB9BD380A11', 'hex'))).toBe('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11');
    expect(toValue(col({ kind: 'other', family: 'inet4' }), Buffer.from([192, 168, 0, 1]))).toBe('192.168.0.1');
    expect(toValue(col({ kind: 'other', family: 'inet6' }), Buffer.from('20010db8000000000000000000000001', 'hex'))).toBe('2001:db8::1');
    expect(toValue(col({ kind: 'other', family: 'inet6' }), Buffer.from('00000000000000000000ffffc0a80001', 'hex'))).toBe('::ffff:192.168.0.1');
  });

  it('keeps JSON as text so JSON null and SQL NULL stay apart', () => {
    expect(toValue(col({ kind: 'json' }), 'null')).toBe('null');
    expect(toValue(col({ kind: 'json' }), { a: 1 })).toBe('{"a":1}');
  });
});

describe('repairTime', () => {
  it('rebuilds negative times zongji printed with 64 seconds, leaves real times alone', () => {
    expect(repairTime('-11:63:64')).toBe('-12:00:00');
    expect(repairTime('-11:63:64.5')).toBe('-12:00:00.5');
    expect(repairTime('-01:02:03')).toBe('-01:02:03');
    expect(repairTime('838:59:59')).toBe('838:59:59');
  });
});

describe('convertRow and guessColumnType', () => {
  it('converts known columns in metadata order and guesses the ones the metadata lacks', () => {
    const id = col({ name: 'id', kind: 'int', size: 4 });
    const unknown = new Map<string, ColumnType>();
    const row = convertRow({ extra: Buffer.from('hi'), id: 7 }, [id], new Map([['id', id]]), unknown);
    expect(row).toEqual({ id: 7, extra: 'aGk=' });
    expect(Object.keys(row)).toEqual(['id', 'extra']);
    expect(unknown.get('extra')).toEqual({ name: 'extra', kind: 'binary', sourceType: 'unknown' });
    expect(guessColumnType('n', 1.5).kind).toBe('float');
    expect(guessColumnType('n', 2).kind).toBe('int');
    expect(guessColumnType('n', 'x').kind).toBe('text');
  });
});

describe('toParam', () => {
  it('inverts toValue for key values used as query parameters', () => {
    expect(toParam(col({ kind: 'binary' }), 'AP8=')).toEqual(Buffer.from([0, 255]));
    expect((toParam(col({ kind: 'bit', size: 4 }), '0101') as { toSqlString(): string }).toSqlString()).toBe('5');
    expect(toParam(col({ kind: 'timestamptz' }), '2024-01-02T03:04:05.123Z')).toBe('2024-01-02 03:04:05.123');
    expect(toParam(col({ kind: 'bool' }), true)).toBe(1);
    expect(toParam(col({ kind: 'int' }), null)).toBeNull();
    expect(toParam(col({ kind: 'text' }), 'a')).toBe('a');
  });
});
