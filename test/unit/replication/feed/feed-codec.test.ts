/**
 * The feed's piece payload (feed-codec.ts): events come back exactly as
 * appended, whatever fields they carry, and a read starting inside a piece
 * gets only the changes after it.
 */
import { describe, expect, it } from 'vitest';
import { Operation, type ChangeEvent, type ColumnType } from '../../../../src/replication/change-event.ts';
import { decodePiece, encodePiece, parsePiece, pieceColumnSets } from '../../../../src/replication/feed/feed-codec.ts';

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
});
