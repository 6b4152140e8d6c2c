/**
 * The feed's binary piece (version 3): a piece with rows the PostgreSQL
 * capture kept as their pgoutput bytes (pg-wire-rows.ts), which it writes
 * as they are instead of as JSON (issue 12: the JSON of every row was an
 * eighth of the PG -> PG apply's process and a third of what it allocated).
 * Everything else of the piece is what the JSON piece (feed-codec.ts) says,
 * and decoding returns the same events.
 *
 *   0x03
 *   per change:  flags u8 | op u8 | table u16 | index u32 | sequence: length u8, ASCII
 *                [before: length u32, bytes] [after: length u32, bytes] [extra: length u32, JSON]
 *   header JSON: {"x": [txid, commitSequence, commitTime, source], "T": [[schema, table, key, columnSet], ...]}
 *   header length u32
 *
 * Integers are big-endian. A row's bytes are its pgoutput TupleData (flag
 * WIRE) or its JSON; `extra` is [scope | 0, ddl | 0, beforeKeyOnly | 0,
 * transaction fields that differ from the header's?], present only when one
 * of them is. The header comes last because the table list is complete only
 * once every change is written. A piece the format cannot hold (an index
 * past 2^32, a long or non-ASCII sequence, more than 65,536 tables) is
 * written as JSON instead: encodeWirePiece declines it.
 */
import { reserve, putText, type ByteSink } from '../byte-sink.ts';
import { Operation, OPERATION_CODE, type ChangeEvent, type ColumnType, type Row } from '../change-event.ts';
import { wireRow, type WireRows } from '../pg-wire-rows.ts';
import { PieceTables, resolveTables, txFieldsOf, txOverride, type TableRef, type TxFields, type TxOverride } from './feed-tables.ts';

/** First byte of a binary piece (a JSON piece starts with '{'). */
export const PIECE_V3_TAG = 0x03;

const HAS_BEFORE = 1;
const BEFORE_WIRE = 2;
const HAS_AFTER = 4;
const AFTER_WIRE = 8;
const HAS_EXTRA = 16;

const OPS: Operation[] = [];
for (const op of Object.values(Operation)) OPS[OPERATION_CODE[op]] = op;

/** A parsed binary piece: the header, and where in `buf` its changes are. */
export interface WirePiece { v: 3; x: TxFields; T: TableRef[]; buf: Buffer; start: number; end: number }

type Extra = [scope: string | 0, ddl: string | 0, beforeKeyOnly: true | 0, tx?: TxOverride];

/**
 * events[from, to) as a binary piece appended to `sink`; false (nothing written) when no change in the range
 * has its rows' bytes in `wire`, or the format cannot hold the piece.
 */
export function encodeWirePiece(
  sink: ByteSink, events: ChangeEvent[], from: number, to: number, columnSetId: (columns: ColumnType[]) => string, wire: (WireRows | undefined)[],
): boolean {
  let any = false;
  for (let i = from; i < to && !any; i++) any = wire[i] !== undefined && wire[i]!.ev === events[i];
  if (!any) return false;
  const at0 = sink.len;
  const x = txFieldsOf(events[from]!);
  const tables = new PieceTables(columnSetId);
  reserve(sink, 1);
  sink.buf[sink.len++] = PIECE_V3_TAG;
  for (let i = from; i < to; i++) {
    const e = events[i]!;
    const t = tables.of(e);
    const op = OPERATION_CODE[e.op];
    const seq = e.sequence;
    const n = seq.length;
    if (t > 0xffff || op === undefined || n > 0xff || !(e.index >= 0 && e.index <= 0xffffffff && Number.isInteger(e.index))) { sink.len = at0; return false; }
    const w = wire[i];
    const own = w !== undefined && w.ev === e;
    const before = e.before ?? null;
    const after = e.after ?? null;
    // Bytes only for the very row objects made from them (pg-wire-rows.ts WireRows).
    const beforeWire = own && before !== null && w.bb !== null && w.before === before;
    const afterWire = own && after !== null && w.ab !== null && w.after === after;
    const tx = txOverride(e, x);
    const extra = e.scope !== undefined || e.ddl !== undefined || e.beforeKeyOnly !== undefined || tx !== undefined;
    reserve(sink, 9 + n);
    const buf = sink.buf;
    const p = sink.len;
    buf[p] = (before !== null ? HAS_BEFORE : 0) | (beforeWire ? BEFORE_WIRE : 0) | (after !== null ? HAS_AFTER : 0) | (afterWire ? AFTER_WIRE : 0) | (extra ? HAS_EXTRA : 0);
    buf[p + 1] = op;
    buf[p + 2] = t >>> 8; buf[p + 3] = t & 0xff;
    buf.writeUInt32BE(e.index, p + 4);
    buf[p + 8] = n;
    for (let k = 0; k < n; k++) {
      const c = seq.charCodeAt(k);
      if (c >= 0x80) { sink.len = at0; return false; }
      buf[p + 9 + k] = c;
    }
    sink.len = p + 9 + n;
    if (before !== null) {
      if (beforeWire) putBytes(sink, w.bb!, w.bs, w.be);
      else putJson(sink, JSON.stringify(before));
    }
    if (after !== null) {
      if (afterWire) putBytes(sink, w.ab!, w.as, w.ae);
      else putJson(sink, JSON.stringify(after));
    }
    if (extra) {
      const ex: Extra = [e.scope ?? 0, e.ddl ?? 0, e.beforeKeyOnly ? true : 0];
      if (tx) ex.push(tx);
      putJson(sink, JSON.stringify(ex));
    }
  }
  const h = sink.len;
  putText(sink, JSON.stringify({ x, T: tables.list }));
  const hl = sink.len - h;
  reserve(sink, 4);
  sink.buf.writeUInt32BE(hl, sink.len);
  sink.len += 4;
  return true;
}

/** Bytes src[start, end) with their length before them. */
function putBytes(sink: ByteSink, src: Buffer, start: number, end: number): void {
  const n = end - start;
  reserve(sink, 4 + n);
  const buf = sink.buf;
  const p = sink.len;
  buf.writeUInt32BE(n, p);
  if (n <= 48) for (let i = 0; i < n; i++) buf[p + 4 + i] = src[start + i]!;
  else src.copy(buf, p + 4, start, end);
  sink.len = p + 4 + n;
}

/** A JSON text's UTF-8 with its length before it. */
function putJson(sink: ByteSink, json: string): void {
  reserve(sink, 4);
  const at = sink.len;
  sink.len += 4;
  putText(sink, json);
  sink.buf.writeUInt32BE(sink.len - at - 4, at);
}

export function parseWirePiece(buf: Buffer): WirePiece {
  const n = buf.length;
  if (n < 5 || buf[0] !== PIECE_V3_TAG) corrupt('too short');
  const hl = buf.readUInt32BE(n - 4);
  const h = n - 4 - hl;
  if (h < 1) corrupt('header length');
  const head = JSON.parse(buf.toString('utf8', h, n - 4)) as { x: TxFields; T: TableRef[] };
  if (!Array.isArray(head.x) || !Array.isArray(head.T)) corrupt('header');
  return { v: 3, x: head.x, T: head.T, buf, start: 1, end: h };
}

/** The events of a binary piece, those with `keep(sequence)` only, pushed onto `out` (feed-codec.ts decodePiece). */
export function decodeWirePiece(piece: WirePiece, columns: Map<string, ColumnType[]>, out: ChangeEvent[], keep?: (sequence: string) => boolean): void {
  const [txid, commitSequence, commitTime, source] = piece.x;
  const tables = resolveTables(piece.T, columns);
  const { buf, end } = piece;
  let p = piece.start;
  while (p < end) {
    if (end - p < 9) corrupt('change header');
    const flags = buf[p]!;
    const op = OPS[buf[p + 1]!];
    const t = tables[(buf[p + 2]! << 8) | buf[p + 3]!];
    const index = buf.readUInt32BE(p + 4);
    const n = buf[p + 8]!;
    if (op === undefined || t === undefined || end - p < 9 + n) corrupt('change header');
    const sequence = buf.toString('latin1', p + 9, p + 9 + n);
    p += 9 + n;
    let bs = 0; let be = 0; let as = 0; let ae = 0; let xs = 0; let xe = 0;
    if (flags & HAS_BEFORE) { bs = p + 4; be = bs + lengthAt(buf, p, end); p = be; }
    if (flags & HAS_AFTER) { as = p + 4; ae = as + lengthAt(buf, p, end); p = ae; }
    if (flags & HAS_EXTRA) { xs = p + 4; xe = xs + lengthAt(buf, p, end); p = xe; }
    if (keep && !keep(sequence)) continue;
    const before = flags & HAS_BEFORE ? rowAt(buf, bs, be, (flags & BEFORE_WIRE) !== 0, t.cols) : null;
    const after = flags & HAS_AFTER ? rowAt(buf, as, ae, (flags & AFTER_WIRE) !== 0, t.cols) : null;
    const ex = flags & HAS_EXTRA ? JSON.parse(buf.toString('utf8', xs, xe)) as Extra : undefined;
    const tx = ex?.[3];
    const e: ChangeEvent = {
      source: tx?.source ?? source, sequence, txid: tx?.txid ?? txid, commitSequence: tx?.commitSequence ?? commitSequence,
      index, op, schema: t.schema, table: t.table, key: t.key, before, after,
      commitTime: tx?.commitTime ?? commitTime, columns: t.cols,
    };
    if (ex) {
      if (ex[0] !== 0 && ex[0] !== undefined) e.scope = ex[0];
      if (ex[1] !== 0 && ex[1] !== undefined) e.ddl = ex[1];
      if (ex[2] === true) e.beforeKeyOnly = true;
    }
    out.push(e);
  }
}

/** The length at buf[p] (u32), checked to fit before `end`. */
function lengthAt(buf: Buffer, p: number, end: number): number {
  if (end - p < 4) corrupt('length');
  const n = buf.readUInt32BE(p);
  if (end - p - 4 < n) corrupt('length');
  return n;
}

function rowAt(buf: Buffer, start: number, end: number, wire: boolean, cols: ColumnType[]): Row {
  return wire ? wireRow(buf, start, end, cols) : JSON.parse(buf.toString('utf8', start, end)) as Row;
}

function corrupt(what: string): never {
  throw new Error(`feed piece (binary): bad ${what}`);
}
