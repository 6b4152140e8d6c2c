/**
 * putCopyRows (the streaming apply's COPY data) writes, for any row, exactly the fields copyField(toPgParam())
 * makes, and fails where toPgParam fails: its one-pass writers for text and integer columns change no byte.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { ColumnType, Row } from '../../../../src/replication/change-event.ts';
import { copyField, putCopyRows } from '../../../../src/replication/apply/pg-copy.ts';
import { toPgParam, type ValueSite } from '../../../../src/replication/apply/value-params.ts';

const COLS: ColumnType[] = [
  { name: 'i4', kind: 'int', sourceType: 'integer', size: 4 },
  { name: 'i8', kind: 'int', sourceType: 'bigint', size: 8 },
  { name: 'i2', kind: 'int', sourceType: 'smallint', size: 2 },
  { name: 't', kind: 'text', sourceType: 'text' },
  { name: 'v', kind: 'text', sourceType: 'character varying(100)' },
  { name: 'd', kind: 'decimal', sourceType: 'numeric(12,2)', precision: 12, scale: 2 },
  { name: 'ts', kind: 'datetime', sourceType: 'timestamp(6) without time zone' },
  { name: 'o', kind: 'other', sourceType: 'inet' },
];
const SITES: ValueSite[] = COLS.map((column) => ({ table: 'x', column }));

/** The COPY data's payload: the CopyData messages' bodies joined. */
function payload(buf: Buffer): string {
  const parts: Buffer[] = [];
  for (let at = 0; at < buf.length;) {
    expect(buf[at]).toBe(0x64);
    const len = buf.readUInt32BE(at + 1);
    parts.push(buf.subarray(at + 5, at + 1 + len));
    at += 1 + len;
  }
  return Buffer.concat(parts).toString('utf8');
}

function reference(rows: Row[]): string {
  return rows.map((r) => SITES.map((s) => copyField(toPgParam(r[s.column.name], s))).join('\t') + '\n').join('');
}

function outcome(f: () => string): { ok: string } | { error: string } {
  try { return { ok: f() }; } catch (e) { return { error: String(e) }; }
}

const text = fc.oneof(
  { weight: 10, arbitrary: fc.oneof(fc.string(), fc.string({ unit: 'grapheme' }), fc.constantFrom('', '\\', '\t\n\r', 'a\\nb', 'x'.repeat(64), 'y\t'.repeat(40), 'é', 'é\\', '\\N', '😀\t')) },
  { weight: 1, arbitrary: fc.oneof(fc.string({ unit: 'binary', maxLength: 80 }), fc.constantFrom('\u0000', 'a\u0000')) },
);
const int = fc.oneof(
  { weight: 10, arbitrary: fc.oneof(fc.integer({ min: -32768, max: 32767 }), fc.constantFrom(0, -0, 1, -1, 9, 10, -10, 99, 100, -32768, 32767)) },
  { weight: 1, arbitrary: fc.constantFrom(2147483647, -2147483648, 2147483648, -2147483649, 32768, 2 ** 53 - 1, '12', '-7', '007', 'x', 1.5, NaN) },
);
const value = (arb: fc.Arbitrary<unknown>) => fc.oneof({ weight: 8, arbitrary: arb }, { weight: 1, arbitrary: fc.constantFrom(null, undefined) });

describe('putCopyRows', () => {
  it('writes exactly the fields of copyField(toPgParam()) and fails where they fail', () => {
    const row = fc.record({
      i4: value(int), i8: value(int), i2: value(int), t: value(text), v: value(text),
      d: value(fc.oneof({ weight: 8, arbitrary: fc.constantFrom('0', '-12.50', '1234567890.12', 'NaN') }, { weight: 1, arbitrary: fc.constantFrom('1e5', '12.345') })),
      ts: value(fc.oneof({ weight: 8, arbitrary: fc.constantFrom('2024-01-01 00:00:00', '2024-01-01 00:16:40.000001', 'infinity', 'a\tb\\ BC') }, { weight: 1, arbitrary: fc.constant('0000-01-01 00:00:00') })),
      o: value(text),
    }, { requiredKeys: [] });
    let written = 0;
    fc.assert(fc.property(fc.array(row, { minLength: 1, maxLength: 6 }), (list) => {
      const rows = list as Row[];
      const sink = { buf: Buffer.allocUnsafe(4), len: 0 };
      const got = outcome(() => { putCopyRows(sink, rows, SITES); return payload(sink.buf.subarray(0, sink.len)); });
      const want = outcome(() => reference(rows));
      expect(got).toEqual(want);
      if ('ok' in want) written++;
    }), { numRuns: 3000 });
    // Most runs write their rows (the rest fail as toPgParam does): the comparison is of bytes, not only of errors.
    expect(written).toBeGreaterThan(1000);
  });
});
