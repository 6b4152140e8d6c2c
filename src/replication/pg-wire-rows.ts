/**
 * PostgreSQL rows kept as their pgoutput bytes for the feed (issue 12).
 *
 * Why: the PostgreSQL capture reads each row from the server's text
 * (pg-tuple-reader.ts), and the feed's append then wrote that row again as
 * JSON (feed-codec.ts): in the PG -> PG apply bench JSON.stringify was an
 * eighth of the process's CPU and, with the texts it made, a third of the
 * bytes it allocated (so of the scavenges). The bytes the row came from are
 * already a compact record of it: a row of a relation whose tuples are read
 * as its final rows (DirectRelation: every column converted by its column
 * type alone, pgTextToValue) is rebuilt exactly from them and its column
 * set. So the capture keeps each such tuple's bytes (text and null columns
 * only; an unchanged TOAST datum or a binary one keeps the JSON way) as it
 * reads it, and the feed writes them into a binary piece
 * (feed-codec.ts, version 3) instead of the row's JSON; a reader makes the
 * row again with wireRow, the capture's own conversion.
 *
 * No copy is made: the capture's replication socket is framed by
 * copy-framing.ts, which hands each message over inside the socket's own
 * chunk (or, for a message split across two, a buffer of its own), and Node
 * never reuses a chunk it has emitted. A kept tuple is a view (buffer, start,
 * end) of it, and the chunk lives as long as a row still holds it. (Until
 * 2026-12-07 pg-protocol framed the socket, reusing its read buffer, so each
 * tuple was copied into an arena: a Buffer#copy per tuple, 4% of the PG -> PG
 * apply bench's process.)
 */
import { pgTextToValue } from './capture/pg-values.ts';
import type { ColumnType, Row, WireRows } from './change-event.ts';
import { hiddenSlot } from './hidden-slot.ts';

export type { WireRows };

// The tuples the message being parsed has read so far (at most two: an old or key image, then the new one).
let marks = 0;
let m0b: Buffer | null = null; let m0s = 0; let m0e = 0;
let m1b: Buffer | null = null; let m1s = 0; let m1e = 0;

/** Called before a pgoutput message is parsed: its tuples are marked afresh. */
export function beginWireMessage(): void {
  marks = 0;
}

/**
 * A tuple of a direct relation just read from src[start, end): kept (as that view) when `plain` (text and null
 * columns only), else marked as not kept, so that the message's tuples keep their order. `src` must not be
 * written again while a row holds it (see above).
 */
export function markTuple(src: Buffer, start: number, end: number, plain: boolean): void {
  const b = plain ? src : null;
  if (marks === 0) { m0b = b; m0s = start; m0e = end; } else { m1b = b; m1s = start; m1e = end; }
  marks++;
}

/**
 * The row images of the message just parsed, as marked: `old` says whether it carried an old or key image
 * before its new one, `oldFull` whether that was the whole old row (REPLICA IDENTITY FULL: 'O'), not a key
 * ('K'), which the change's `before` keeps only in part.
 */
export function takeWire(hasNew: boolean, old: boolean, oldFull: boolean): WireRows | undefined {
  if (marks === 0) return undefined;
  const w: WireRows = { ev: null, before: null, bb: null, bs: 0, be: 0, after: null, ab: null, as: 0, ae: 0 };
  if (old) {
    if (oldFull) { w.bb = m0b; w.bs = m0s; w.be = m0e; }
    if (hasNew && marks > 1) { w.ab = m1b; w.as = m1s; w.ae = m1e; }
  } else if (hasNew) {
    w.ab = m0b; w.as = m0s; w.ae = m0e;
  }
  m0b = null; m1b = null;
  marks = 0;
  return w.bb === null && w.ab === null ? undefined : w;
}

/** The row the capture made from TupleData bytes buf[start, end) of a relation with these columns. */
export function wireRow(buf: Buffer, start: number, end: number, cols: ColumnType[]): Row {
  let p = start;
  if (end - p < 2) corrupt();
  const n = (buf[p]! << 8) | buf[p + 1]!;
  p += 2;
  if (n !== cols.length) corrupt();
  const row: Row = {};
  for (let i = 0; i < n; i++) {
    const col = cols[i]!;
    if (col.name === '__proto__') corrupt();
    if (p >= end) corrupt();
    const kind = buf[p++]!;
    if (kind === 0x6e) { // 'n'
      row[col.name] = null;
    } else if (kind === 0x74) { // 't'
      if (end - p < 4) corrupt();
      const size = buf.readUInt32BE(p);
      p += 4;
      if (end - p < size) corrupt();
      row[col.name] = pgTextToValue(buf.toString('utf8', p, p + size), col);
      p += size;
    } else {
      corrupt();
    }
  }
  if (p !== end) corrupt();
  return row;
}

function corrupt(): never {
  throw new Error('feed piece: a row\'s tuple bytes do not match its columns');
}

/**
 * The row objects the capture made from kept tuples carry them, for the PostgreSQL apply (apply/pg-copy.ts): a
 * hidden slot (hidden-slot.ts), so that no copy, spread, JSON text or comparison of the row sees it, and a row
 * made from it (a merge, a transform) does not have it. The apply writes a row's COPY line from these bytes when
 * the row is still the one they were read as (wireOf) and the destination's columns take the source's text.
 */
const WIRE_ROW = hiddenSlot<WireRows>();

/**
 * A maker of empty plain objects (Object.prototype) for the rows of one relation, each with the (empty) slot of its
 * kept bytes: a constructor of its own, so that V8 sizes its objects by what its first ones held (their columns and
 * the slot) and keeps every property in the object itself. Why (issue 12): an object literal `{}` has room for four
 * properties; a row of more columns grew a separate property store as it was read, an allocation per row.
 */
export function wireRowMaker(): () => Record<string, unknown> {
  const WireRow = function (this: object) {
    WIRE_ROW.reserve(this);
  } as unknown as { new (): Record<string, unknown>; prototype: object };
  WireRow.prototype = Object.prototype;
  return () => new WireRow();
}

/** Attaches `w` to its after image (the capture's assembler, once the row is the change's). */
export function keepAfterWire(w: WireRows): void {
  const row = w.after;
  if (row === null || w.ab === null) return;
  WIRE_ROW.set(row, w);
}

/** The kept bytes of `row` when it is an after image as the capture made it from them (keepAfterWire). */
export function wireOf(row: Row): WireRows | undefined {
  const w = WIRE_ROW.get(row);
  return w !== undefined && w.after === row && w.ab !== null && w.ev !== null ? w : undefined;
}
