/**
 * Binary feed pieces (feed-codec-wire.ts): rows kept as pgoutput bytes come
 * back as the rows they were read as, beside JSON rows in the same piece;
 * only the very change and rows the bytes were kept for use them; a piece
 * the format cannot hold is written as JSON; a damaged piece is refused.
 */
import { describe, expect, it } from 'vitest';
import { Operation, type ChangeEvent, type ColumnType, type Row, type WireRows } from '../../../../src/replication/change-event.ts';
import { decodePiece, encodePiece, encodePieceBytes, parsePiece } from '../../../../src/replication/feed/feed-codec.ts';
import { PIECE_V3_TAG } from '../../../../src/replication/feed/feed-codec-wire.ts';
import { wireRow } from '../../../../src/replication/pg-wire-rows.ts';

const COLS: ColumnType[] = [
  { name: 'id', kind: 'int', sourceType: 'int4' }, { name: 'name', kind: 'text', sourceType: 'text' },
  { name: 'at', kind: 'datetime', sourceType: 'timestamp' }, { name: 'ok', kind: 'bool', sourceType: 'bool' },
];
const sets = new Map([['c1', COLS]]);
const setId = () => 'c1';

/** pgoutput TupleData of text values (null: 'n'). */
function tuple(values: (string | null)[]): Buffer {
  const parts: Buffer[] = [Buffer.from([values.length >> 8, values.length & 0xff])];
  for (const v of values) {
    if (v === null) { parts.push(Buffer.from('n')); continue; }
    const b = Buffer.from(v, 'utf8');
    const len = Buffer.alloc(4);
    len.writeUInt32BE(b.length);
    parts.push(Buffer.from('t'), len, b);
  }
  return Buffer.concat(parts);
}

function event(i: number, over: Partial<ChangeEvent> = {}): ChangeEvent {
  return {
    source: 'postgres', sequence: `0.100.${i.toString(16)}`, txid: '9', commitSequence: '256', index: i, op: Operation.Insert,
    schema: 'public', table: 't', key: ['id'], before: null, after: null, columns: COLS, commitTime: 1_700_000_000_000, ...over,
  };
}

/** A change with its rows made from bytes, as the capture does, and the WireRows that keep them. */
function captured(i: number, op: Operation, before: (string | null)[] | null, after: (string | null)[] | null): { e: ChangeEvent; w: WireRows } {
  const bb = before ? tuple(before) : null;
  const ab = after ? tuple(after) : null;
  const b = bb ? wireRow(bb, 0, bb.length, COLS) : null;
  const a = ab ? wireRow(ab, 0, ab.length, COLS) : null;
  const e = event(i, { op, before: b, after: a });
  return { e, w: { ev: e, before: b, bb, bs: 0, be: bb?.length ?? 0, after: a, ab, as: 0, ae: ab?.length ?? 0 } };
}

function roundtrip(events: ChangeEvent[], wire: (WireRows | undefined)[], from = 0, to = events.length): { out: ChangeEvent[]; binary: boolean } {
  const sink = { buf: Buffer.alloc(8), len: 0 };
  encodePieceBytes(sink, events, from, to, setId, wire);
  const bytes = Buffer.from(sink.buf.subarray(0, sink.len));
  const out: ChangeEvent[] = [];
  decodePiece(parsePiece(bytes), sets, out);
  return { out, binary: bytes[0] === PIECE_V3_TAG };
}

describe('binary feed pieces', () => {
  it('give back every change: byte rows, JSON rows, key-only images, DDL, scope and differing transaction fields', () => {
    const a = captured(0, Operation.Insert, null, ['1', 'é€😀 \t\\ "q"', '2024-01-01 00:00:00.5', 't']);
    const b = captured(1, Operation.Update, ['2', null, '2024-01-01 00:00:00', 'f'], ['2', 'x', null, 't']);
    const c = captured(2, Operation.Delete, ['3', 'gone', null, null], null);
    const keyOnly = event(3, { op: Operation.Delete, before: { id: 4 }, beforeKeyOnly: true });
    const json = event(4, { after: { id: 5, name: 'json row', at: null, ok: false } as Row, scope: 'tenant-1' });
    const ddl = event(5, { op: Operation.Ddl, ddl: 'ALTER TABLE "public"."t" ADD COLUMN "w" integer' });
    const other = event(6, { after: { id: 6 }, txid: '10', commitSequence: '512', commitTime: 1 });
    const events = [a.e, b.e, c.e, keyOnly, json, ddl, other];
    const { out, binary } = roundtrip(events, [a.w, b.w, c.w]);
    expect(binary).toBe(true);
    expect(out).toEqual(events);
    expect(out[0]!.after).toEqual({ id: 1, name: 'é€😀 \t\\ "q"', at: '2024-01-01 00:00:00.500000', ok: true });
    // Read from inside the piece: only the changes after the reader's position.
    const sink = { buf: Buffer.alloc(8), len: 0 };
    encodePieceBytes(sink, events, 0, events.length, setId, [a.w, b.w, c.w]);
    const kept: ChangeEvent[] = [];
    decodePiece(parsePiece(Buffer.from(sink.buf.subarray(0, sink.len))), sets, kept, (s) => s > '0.100.2');
    expect(kept.map((e) => e.index)).toEqual([3, 4, 5, 6]);
  });

  it('write bytes only for the change and rows they were kept for', () => {
    const a = captured(0, Operation.Insert, null, ['1', 'kept', null, 't']);
    const replaced = captured(1, Operation.Insert, null, ['2', 'old bytes', null, 't']);
    // Something replaced the row after capture: the bytes no longer say what the change holds.
    replaced.e.after = { id: 2, name: 'new row', at: null, ok: true };
    const other = captured(2, Operation.Insert, null, ['3', 'bytes of another change', null, 't']);
    const events = [a.e, replaced.e, event(2, { after: { id: 3, name: 'this change', at: null, ok: null } as Row })];
    const { out } = roundtrip(events, [a.w, replaced.w, other.w]);
    expect(out).toEqual(events);
  });

  it('are not written when no change has its bytes, or the format cannot hold the piece (JSON instead)', () => {
    const a = captured(0, Operation.Insert, null, ['1', 'x', null, 't']);
    expect(roundtrip([event(0, { after: { id: 1 } })], []).binary).toBe(false);
    expect(roundtrip([a.e], [a.w]).binary).toBe(true);
    // Bytes at another position than their change's are not that change's.
    expect(roundtrip([a.e], [undefined, a.w]).binary).toBe(false);
    for (const over of [{ sequence: '0.100.é' }, { sequence: `0.${'1'.repeat(300)}` }, { index: 2 ** 32 }]) {
      const b = captured(0, Operation.Insert, null, ['1', 'x', null, 't']);
      Object.assign(b.e, over);
      const { out, binary } = roundtrip([b.e], [b.w]);
      expect(binary).toBe(false);
      expect(out).toEqual([b.e]);
      const text = encodePiece([b.e], 0, 1, setId);
      expect(text.startsWith('{')).toBe(true);
    }
  });

  it('refuse damaged bytes with an error', () => {
    const a = captured(0, Operation.Insert, null, ['1', 'x', '2024-01-01 00:00:00', 't']);
    const sink = { buf: Buffer.alloc(8), len: 0 };
    encodePieceBytes(sink, [a.e], 0, 1, setId, [a.w]);
    const good = Buffer.from(sink.buf.subarray(0, sink.len));
    const headerAt = good.length - 4 - good.readUInt32BE(good.length - 4);
    const damaged = [
      Buffer.concat([good.subarray(0, 20), good.subarray(21)]), // a byte of the change gone
      Buffer.concat([good.subarray(0, headerAt - 3), good.subarray(headerAt)]), // the row's end gone
      Buffer.from(good).fill(9, 2, 3), // an unknown operation
      Buffer.concat([good.subarray(0, good.length - 4), Buffer.from([0, 1, 0, 0])]), // a header longer than the piece
    ];
    for (const bad of damaged) expect(() => decodePiece(parsePiece(bad), sets, [])).toThrow();
    expect(() => wireRow(tuple(['1', 'x']), 0, tuple(['1', 'x']).length, COLS)).toThrow(/do not match/);
  });
});
