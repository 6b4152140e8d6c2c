/**
 * MariaDB row images in binary feed pieces (feed-codec-wire.ts): rows the
 * MariaDB capture decoded with a plan of its fast decoder, and kept the
 * binlog image of (mysql-row-images.ts), are written as those bytes and come
 * back as the rows they were read as: inserts, updates (both images), deletes,
 * beside JSON rows. Only the very rows the images were kept for, under the
 * columns they were converted by, use them; a piece whose images do not match
 * its plan, or name no plan, is refused.
 */
import { describe, expect, it } from 'vitest';
import { Operation, type ChangeEvent, type ColumnType, type Row } from '../../../../src/replication/change-event.ts';
import { decodeImage, planFromText, planText } from '../../../../src/replication/capture/mysql-rows-decoder.ts';
import { presentRow } from '../../../../src/replication/capture/mysql-values.ts';
import { decodePiece, encodePieceBytes, parsePiece } from '../../../../src/replication/feed/feed-codec.ts';
import { PIECE_V3_TAG } from '../../../../src/replication/feed/feed-codec-wire.ts';
import { keepRowImage, rowImageOf, type RowsImage, type TableMapImage } from '../../../../src/replication/mysql-row-images.ts';

const COLS: ColumnType[] = [
  { name: 'id', kind: 'int', sourceType: 'int' },
  { name: 'name', kind: 'text', sourceType: 'varchar(40)' },
  { name: 'note', kind: 'text', sourceType: 'text' },
  { name: 'kind', kind: 'enum', sourceType: "enum('a','b c')" },
  { name: 'big', kind: 'int', sourceType: 'bigint unsigned' },
];
const sets = new Map([['c1', COLS]]);
const setId = () => 'c1';
// Op numbers of mysql-rows-decoder.ts: Long 6, LongLongU 9, Enum 15, Text1 20, BlobText 27.
const PLAN = planFromText(JSON.stringify([
  ['id', 6, 0, 0, 0, 0, 0, 0], ['name', 20, 0, 0, 0, 0, 0, 0], ['note', 27, 2, 0, 0, 0, 0, 0], ['kind', 15, 1, 0, 0, 0, 0, ['a', 'b c']], ['big', 9, 0, 0, 0, 0, 0, 0],
]));
const MAP: TableMapImage = { body: Buffer.alloc(0), restAt: 0, names: COLS.map((c) => c.name), charsets: COLS.map(() => null) };

type Values = [id: number, name: string | null, note: string | null, kind: number, big: bigint];

/** One binlog row image of the plan's columns, every column present: null bitmap, then the values. */
function image([id, name, note, kind, big]: Values): Buffer {
  const nulls = (name === null ? 2 : 0) | (note === null ? 4 : 0);
  const parts: Buffer[] = [Buffer.from([nulls])];
  const i = Buffer.alloc(4); i.writeInt32LE(id); parts.push(i);
  if (name !== null) { const b = Buffer.from(name, 'utf8'); parts.push(Buffer.from([b.length]), b); }
  if (note !== null) { const b = Buffer.from(note, 'utf8'); const l = Buffer.alloc(2); l.writeUInt16LE(b.length); parts.push(l, b); }
  parts.push(Buffer.from([kind]));
  const g = Buffer.alloc(8); g.writeBigUInt64LE(big); parts.push(g);
  return Buffer.concat(parts);
}

/** A rows event's block of images, as the capture hooks keep it (single images, or before/after pairs). */
function block(images: Buffer[][], pairs: boolean): RowsImage {
  const bytes = Buffer.concat(images.flat());
  const spans: number[] = [];
  let at = 0;
  for (const row of images) { spans.push(at); for (const b of row) { at += b.length; spans.push(at); } }
  return { map: MAP, bytes, pairs, spans, plan: PLAN };
}

/** The row the mapper makes from an image. */
const rowOf = (b: Buffer): Row => presentRow(decodeImage(b, 0, b.length, PLAN), COLS);

function event(i: number, over: Partial<ChangeEvent>): ChangeEvent {
  return {
    source: 'mysql', sequence: `1.1000.${i.toString(16)}`, txid: '0-1-5', commitSequence: '1000', index: i, op: Operation.Insert,
    schema: 'db', table: 't', key: ['id'], before: null, after: null, columns: COLS, commitTime: 1_700_000_000_000, ...over,
  };
}

/** Changes as the mapper makes them: rows from the images, the images kept on them. */
function captured(): ChangeEvent[] {
  const v1: Values = [1, 'é€😀 \t\\ "q"', null, 1, 2n ** 64n - 1n];
  const v2: Values = [2, null, 'x'.repeat(300), 2, 7n];
  const v2b: Values = [2, 'after', '', 0, 8n];
  const v3: Values = [3, 'gone', 'n', 1, 0n];
  const ins = block([[image(v1)]], false);
  const upd = block([[image(v2), image(v2b)]], true);
  const del = block([[image(v3)]], false);
  const a = event(0, { after: rowOf(image(v1)) });
  keepRowImage(a.after!, ins, 0, null, COLS);
  const b = event(1, { op: Operation.Update, before: rowOf(image(v2)), after: rowOf(image(v2b)) });
  keepRowImage(b.after!, upd, 0, b.before, COLS);
  const c = event(2, { op: Operation.Delete, before: rowOf(image(v3)) });
  keepRowImage(c.before!, del, 0, null, COLS, true);
  return [a, b, c];
}

function roundtrip(events: ChangeEvent[]): { out: ChangeEvent[]; bytes: Buffer } {
  const sink = { buf: Buffer.alloc(8), len: 0 };
  encodePieceBytes(sink, events, 0, events.length, setId);
  const bytes = Buffer.from(sink.buf.subarray(0, sink.len));
  const out: ChangeEvent[] = [];
  decodePiece(parsePiece(bytes), sets, out);
  return { out, bytes };
}

describe('MariaDB row images in feed pieces', () => {
  it('give back inserts, updates (both images) and deletes as read, beside JSON rows and DDL', () => {
    const [a, b, c] = captured();
    const json = event(3, { after: { id: 4, name: 'json', note: null, kind: 'a', big: 1 } });
    const ddl = event(4, { op: Operation.Ddl, ddl: 'ALTER TABLE t ADD COLUMN w int' });
    const events = [a!, b!, c!, json, ddl];
    const { out, bytes } = roundtrip(events);
    expect(bytes[0]).toBe(PIECE_V3_TAG);
    expect(out).toEqual(events);
    expect(out[0]!.after).toEqual({ id: 1, name: 'é€😀 \t\\ "q"', note: null, kind: 'a', big: '18446744073709551615' });
    expect(out[1]!.before).toEqual({ id: 2, name: null, note: 'x'.repeat(300), kind: 'b c', big: 7 });
    // The images, not the rows' JSON: the text of a row is nowhere in the piece.
    expect(bytes.includes(Buffer.from('"é€'))).toBe(false);
    expect(bytes.includes(Buffer.from('xxxxxxxx'))).toBe(true);
  });

  it('are written only for the very rows they were kept for, under the columns they were converted by', () => {
    const [a, b, c] = captured();
    // A transform replaced the after row; another changed the before row of the update; another the columns.
    a!.after = { ...a!.after! };
    b!.before = { ...b!.before!, name: 'changed' };
    c!.columns = [...COLS];
    expect(rowImageOf(a!.after!)).toBeUndefined();
    const events = [a!, b!, c!];
    const { out, bytes } = roundtrip(events);
    expect(out).toEqual(events);
    // The update's after image still goes as bytes (a piece with one image row is binary).
    expect(bytes[0]).toBe(PIECE_V3_TAG);
    // Nothing kept: JSON.
    expect(roundtrip([event(0, { after: { id: 1, name: null, note: null, kind: 'a', big: 0 } })]).bytes[0]).toBe('{'.charCodeAt(0));
  });

  it('refuse a piece whose image does not match its plan, or that names no plan', () => {
    const [a] = captured();
    const { bytes } = roundtrip([a!]);
    const headerAt = bytes.length - 4 - bytes.readUInt32BE(bytes.length - 4);
    const header = JSON.parse(bytes.toString('utf8', headerAt, bytes.length - 4)) as { P: [number, string][] };
    expect(header.P).toEqual([[0, planText(PLAN)]]);
    const withHeader = (h: unknown): Buffer => {
      const text = Buffer.from(JSON.stringify(h));
      const len = Buffer.alloc(4); len.writeUInt32BE(text.length);
      return Buffer.concat([bytes.subarray(0, headerAt), text, len]);
    };
    const noPlan = withHeader({ ...header, P: undefined });
    const otherPlan = withHeader({ ...header, P: [[0, JSON.stringify([['id', 6, 0, 0, 0, 0, 0, 0]])]] });
    const badPlan = withHeader({ ...header, P: [[0, '[["id", 99, 0, 0, 0, 0, 0, 0]]']] });
    const badTable = withHeader({ ...header, P: [[5, planText(PLAN)]] });
    for (const bad of [noPlan, otherPlan, badPlan, badTable]) expect(() => decodePiece(parsePiece(bad), sets, [])).toThrow(/feed piece/);
    // An image cut short inside the piece (its length prefix says less than the plan reads).
    const at = 1 + 9 + a!.sequence.length;
    const cut = Buffer.from(bytes);
    cut.writeUInt32BE(cut.readUInt32BE(at) - 1, at);
    expect(() => decodePiece(parsePiece(cut), sets, [])).toThrow(/feed piece/);
  });
});
