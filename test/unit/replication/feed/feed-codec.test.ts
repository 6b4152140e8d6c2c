/**
 * The feed's piece payload (feed-codec.ts): events come back exactly as
 * appended, whatever fields they carry, and a read starting inside a piece
 * gets only the changes after it.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Operation, type ChangeEvent, type ColumnType } from '../../../../src/replication/change-event.ts';
import { decodePiece, encodePiece, encodePieceBytes, parsePiece, pieceColumnSets } from '../../../../src/replication/feed/feed-codec.ts';

const A: ColumnType[] = [{ name: 'id', kind: 'int', sourceType: 'integer' }, { name: 'v', kind: 'text', sourceType: 'text' }];
const B: ColumnType[] = [{ name: 'k', kind: 'text', sourceType: 'varchar(10)' }];
const ids = new Map<ColumnType[], string>([[A, 'setA'], [B, 'setB']]);

function ev(i: number, over: Partial<ChangeEvent> = {}): ChangeEvent {
  return {
    source: 'postgres', sequence: `0.100.${i.toString(16)}`, txid: '77', commitSequence: '256', index: i, op: Operation.Insert,
    schema: 'public', table: 'a', key: ['id'], before: null, after: { id: i, v: `row ${i}` }, columns: A, commitTime: 1_700_000_000_123, ...over,
  };
}

const roundtrip = (events: ChangeEvent[], keep?: (s: string) => boolean) => {
  const piece = parsePiece(encodePiece(events, 0, events.length, (c) => ids.get(c)!));
  expect(pieceColumnSets(piece).sort()).toEqual([...new Set(events.map((e) => ids.get(e.columns)!))].sort());
  const out: ChangeEvent[] = [];
  decodePiece(piece, new Map([['setA', A], ['setB', B]]), out, keep);
  return out;
};

describe('feed piece codec', () => {
  it('returns every event exactly, with optional fields, other tables and differing transaction fields', () => {
    const events = [
      ev(0),
      ev(1, { op: Operation.Update, before: { id: 1, v: null }, after: { id: 1, v: '' }, scope: '' }),
      ev(2, { op: Operation.Delete, before: { id: 2 }, after: null, beforeKeyOnly: true, scope: 'tenant-1' }),
      ev(3, { op: Operation.Ddl, after: null, ddl: 'ALTER TABLE "public"."a" ADD COLUMN "w" integer' }),
      ev(4, { table: 'b', schema: 's', key: [], columns: B, after: { k: 'x' } }),
      ev(5, { txid: '78', commitSequence: '512', commitTime: 1, source: 'mysql' }),
      ev(6, { after: { id: 6, v: '"quoted" \\ \u0000 😀' } }),
    ];
    expect(roundtrip(events)).toEqual(events);
    // Absent optional fields stay absent (not undefined-valued keys).
    expect(Object.keys(roundtrip([ev(0)])[0]!).sort()).toEqual(Object.keys(ev(0)).sort());
  });

  it('keeps only the changes a reader has not seen when it starts inside the piece', () => {
    const events = [0, 1, 2, 3].map((i) => ev(i));
    expect(roundtrip(events, (s) => s > '0.100.1').map((e) => e.index)).toEqual([2, 3]);
  });

  it('writes, as bytes into a sink used again, exactly the UTF-8 of the text (grown from a tiny sink, after earlier pieces)', () => {
    const odd = ['😀 é ☃', '\ud800 lone', 'x\u0000y', '"\\\n\t', '漢字'.repeat(500)];
    const events = Array.from({ length: 1500 }, (_, i) => ev(i, i % 7 === 0
      ? { op: Operation.Update, before: { id: i, v: odd[i % odd.length]! }, after: { id: i, v: odd[(i + 1) % odd.length]! }, scope: i % 2 ? 's' : undefined }
      : i % 11 === 0 ? { table: 'b', key: [], columns: B, after: { k: odd[i % odd.length]! } } : {}));
    const sink = { buf: Buffer.allocUnsafe(16).fill(0xee), len: 0 };
    const want: Buffer[] = [];
    for (const [from, to] of [[0, 1], [1, 1000], [1000, 1500], [0, 64], [64, 192], [7, 7], [3, 68]] as const) {
      const at = sink.len;
      encodePieceBytes(sink, events, from, to, (c) => ids.get(c)!);
      const text = encodePiece(events, from, to, (c) => ids.get(c)!);
      expect(sink.buf.subarray(at, sink.len).equals(Buffer.from(text))).toBe(true);
      want.push(Buffer.from(text));
    }
    expect(sink.buf.subarray(0, sink.len).equals(Buffer.concat(want))).toBe(true);
  });

  it('writes the bytes JSON.stringify would for random rows: any key, string, number, boolean, null or missing value', () => {
    const key = fc.oneof(fc.string(), fc.constantFrom('0', '7', '42', '-1', '01', '__proto__x', 'toJSON', 'a"b', 'é'), fc.string({ unit: 'binary' }));
    const value = fc.oneof(
      fc.string(), fc.string({ unit: 'binary' }), fc.string({ unit: 'grapheme' }), fc.constantFrom('\ud800', '\udfff x', '\u007f', '\u001f', ''),
      fc.double(), fc.integer(), fc.constantFrom(-0, NaN, Infinity, -Infinity, 1e21, 5e-324, 2 ** 53 + 2),
      fc.boolean(), fc.constant(null), fc.constant(undefined),
    );
    const row = fc.option(fc.dictionary(key, value, { maxKeys: 8 }), { nil: null });
    const event = fc.record({ before: row, after: row, extra: fc.option(fc.string(), { nil: undefined }), index: fc.nat() });
    fc.assert(fc.property(fc.array(event, { minLength: 1, maxLength: 30 }), (list) => {
      const events = list.map((x, i) => ev(i, { before: x.before as never, after: x.after as never, index: x.index, ...(x.extra !== undefined ? { scope: x.extra } : {}) }));
      const sink = { buf: Buffer.allocUnsafe(8), len: 0 };
      encodePieceBytes(sink, events, 0, events.length, (c) => ids.get(c)!);
      expect(sink.buf.subarray(0, sink.len).toString('latin1')).toBe(Buffer.from(encodePiece(events, 0, events.length, (c) => ids.get(c)!)).toString('latin1'));
    }), { numRuns: 500 });
  });
});
