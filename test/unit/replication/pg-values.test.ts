/** Text -> value conversions of pg-values.ts that the private server cannot easily produce (offsets, escape bytea). */
import { describe, expect, it } from 'vitest';
import type { ColumnType } from '../../../src/replication/change-event.ts';
import { byteaTextToBase64, normaliseTimestamptz, pgTextToValue } from '../../../src/replication/capture/pg-values.ts';

const col = (kind: ColumnType['kind']): ColumnType => ({ name: 'c', kind, sourceType: kind });

describe('pg-values', () => {
  it('normalises timestamptz of any offset to UTC with six fraction digits', () => {
    expect(normaliseTimestamptz('2024-02-29 23:59:59.123456+05:30')).toBe('2024-02-29T18:29:59.123456Z');
    expect(normaliseTimestamptz('2023-12-31 22:00:00.5-03')).toBe('2024-01-01T01:00:00.500000Z');
    expect(normaliseTimestamptz('1890-01-01 00:00:00+00:09:21')).toBe('1889-12-31T23:50:39.000000Z');
    expect(normaliseTimestamptz('0050-06-01 12:00:00+00')).toBe('0050-06-01T12:00:00.000000Z');
    expect(normaliseTimestamptz('infinity')).toBe('infinity');
    expect(normaliseTimestamptz('0044-03-15 12:00:00+00 BC')).toBe('0044-03-15 12:00:00+00 BC');
  });

  it('keeps int8 beyond 2^53 as text, floats special values as text, booleans as booleans', () => {
    expect(pgTextToValue('9007199254740991', col('int'))).toBe(9007199254740991);
    expect(pgTextToValue('9007199254740993', col('int'))).toBe('9007199254740993');
    expect(pgTextToValue('-Infinity', col('float'))).toBe('-Infinity');
    expect(pgTextToValue('1e+100', col('float'))).toBe(1e100);
    expect(pgTextToValue('f', col('bool'))).toBe(false);
    expect(pgTextToValue(null, col('text'))).toBeNull();
    expect(pgTextToValue('0.10', col('decimal'))).toBe('0.10');
  });

  it('decodes bytea in hex and escape formats', () => {
    expect(byteaTextToBase64('\\x00ff10')).toBe(Buffer.from([0, 255, 16]).toString('base64'));
    expect(byteaTextToBase64('a\\000\\\\b\\377')).toBe(Buffer.from([0x61, 0, 0x5c, 0x62, 0xff]).toString('base64'));
  });

  it('pads time fractions to six digits and leaves six-digit and fraction-less values as they are', () => {
    const ref = (t: string) => t.replace(/\.(\d{1,6})(?=$|[^\d])/, (_m, f: string) => '.' + f.padEnd(6, '0'));
    for (const kind of ['time', 'datetime'] as const) {
      for (const t of ['12:00:00', '12:00:00.5', '12:00:00.123456', '12:00:00.12345', '2024-01-01 00:00:00.1', '2024-01-01 00:00:00', '2024-01-01 00:00:00.000000', '12:00:00.1234567', '24:00:00',
        '12:00:00.12+05', '12:00:00.1-03:30', '2024-01-01 00:00:00.12345 BC', '12:00:00.', '12:00:00.1234567.5', '1.2.3']) {
        const v = pgTextToValue(t, col(kind));
        if (typeof v === 'string' && v.includes(':')) expect(v, t).toBe(ref(t));
      }
    }
  });
});
