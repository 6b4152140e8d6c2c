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
 *   header JSON: {"x": [txid, commitSequence, commitTime, source], "T": [[schema, table, key, columnSet], ...], "P"?: [...]}
 *   header length u32
 *
 * Integers are big-endian. A row's bytes are its pgoutput TupleData (flag
 * WIRE), its MariaDB binlog row image (flag IMAGE: rows the MariaDB capture
 * decoded with a plan of its fast decoder and kept the image of,
 * mysql-row-images.ts; the header then names each such table's plan under
 * "P": [[table, plan text], ...]), or its JSON; `extra` is [scope | 0, ddl | 0, beforeKeyOnly | 0,
 * transaction fields that differ from the header's?], present only when one
 * of them is. The header comes last because the table list is complete only
 * once every change is written. A piece the format cannot hold (an index
 * past 2^32, a long or non-ASCII sequence, more than 65,536 tables) is
 * written as JSON instead: encodeWirePiece declines it.
 */
import { reserve, putText, type ByteSink } from '../byte-sink.ts';
import { Operation, OPERATION_CODE, type ChangeEvent, type ColumnType, type Row } from '../change-event.ts';
import { decodedIsFinal, decodeImage, planFromText, planText, type TablePlan } from '../capture/mysql-rows-decoder.ts';
import { presentRow } from '../capture/mysql-values.ts';
import { rowImageOf, type RowImage } from '../mysql-row-images.ts';
import { wireRow, type WireRows } from '../pg-wire-rows.ts';
import { PieceTables, resolveTables, txFieldsOf, txOverride, type TableRef, type TxFields, type TxOverride } from './feed-tables.ts';

/** First byte of a binary piece (a JSON piece starts with '{'). */
export const PIECE_V3_TAG = 0x03;

const HAS_BEFORE = 1;
const BEFORE_WIRE = 2;
const HAS_AFTER = 4;
const AFTER_WIRE = 8;
const HAS_EXTRA = 16;
const BEFORE_IMAGE = 32;
const AFTER_IMAGE = 64;

const OPS: Operation[] = [];
for (const op of Object.values(Operation)) OPS[OPERATION_CODE[op]] = op;

/** Row images written as MariaDB binlog images, and as JSON though the change had images (process-wide, for the benches). */
/** Images written, changes that could not be written so, and images read back as rows taken as decoded (decodedIsFinal). */
export const feedImageStats = { images: 0, declined: 0, readAsDecoded: 0 };

/** A parsed binary piece: the header, and where in `buf` its changes are. */
export interface WirePiece { v: 3; x: TxFields; T: TableRef[]; P?: [table: number, plan: string][]; buf: Buffer; start: number; end: number }

type Extra = [scope: string | 0, ddl: string | 0, beforeKeyOnly: true | 0, tx?: TxOverride];

/**
 * events[from, to) as a binary piece appended to `sink`; false (nothing written) when no change in the range
 * has its rows' bytes in `wire`, or the format cannot hold the piece.
 */
export function encodeWirePiece(
  sink: ByteSink, events: ChangeEvent[], from: number, to: number, columnSetId: (columns: ColumnType[]) => string, wire: (WireRows | undefined)[] | undefined,
): boolean {
  let any = false;
  for (let i = from; i < to && !any; i++) any = (wire !== undefined && wire[i] !== undefined && wire[i]!.ev === events[i]) || imageOf(events[i]!) !== undefined;
  if (!any) return false;
  const at0 = sink.len;
  const x = txFieldsOf(events[from]!);
  const tables = new PieceTables(columnSetId);
  // Each table's plan for the images of its rows (one plan per table and piece: a row of another goes as JSON).
  const plans: (TablePlan | undefined)[] = [];
  reserve(sink, 1);
  sink.buf[sink.len++] = PIECE_V3_TAG;
  for (let i = from; i < to; i++) {
    const e = events[i]!;
    const t = tables.of(e);
    const op = OPERATION_CODE[e.op];
    const seq = e.sequence;
    const n = seq.length;
    if (t > 0xffff || op === undefined || n > 0xff || !(e.index >= 0 && e.index <= 0xffffffff && Number.isInteger(e.index))) { sink.len = at0; return false; }
    const w = wire?.[i];
    const own = w !== undefined && w.ev === e;
    const before = e.before ?? null;
    const after = e.after ?? null;
    // Bytes only for the very row objects made from them (pg-wire-rows.ts WireRows).
    const beforeWire = own && before !== null && w.bb !== null && w.before === before;
    const afterWire = own && after !== null && w.ab !== null && w.after === after;
    // MariaDB row images (mysql-row-images.ts): the after image, a delete's before image, an update's before image when its before row is theirs.
    let img = own ? undefined : imageOf(e);
    if (img !== undefined) {
      const p = plans[t];
      if (p === undefined) plans[t] = img.block.plan;
      else if (p !== img.block.plan && planText(p) !== planText(img.block.plan!)) img = undefined;
    }
    const beforeImage = img !== undefined && before !== null && (img.deleted ? before === img.row : img.mid > img.start && before === img.before);
    const afterImage = img !== undefined && after !== null && !img.deleted && after === img.row;
    if (img !== undefined) feedImageStats.images += (beforeImage ? 1 : 0) + (afterImage ? 1 : 0);
    else if (!own && e.source === 'mysql' && (before !== null || after !== null)) feedImageStats.declined++;
    const tx = txOverride(e, x);
    const extra = e.scope !== undefined || e.ddl !== undefined || e.beforeKeyOnly !== undefined || tx !== undefined;
    reserve(sink, 9 + n);
    const buf = sink.buf;
    const p = sink.len;
    buf[p] = (before !== null ? HAS_BEFORE : 0) | (beforeWire ? BEFORE_WIRE : 0) | (after !== null ? HAS_AFTER : 0) | (afterWire ? AFTER_WIRE : 0) | (extra ? HAS_EXTRA : 0)
      | (beforeImage ? BEFORE_IMAGE : 0) | (afterImage ? AFTER_IMAGE : 0);
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
      else if (beforeImage) putBytes(sink, img!.block.bytes, img!.deleted ? img!.mid : img!.start, img!.deleted ? img!.end : img!.mid);
      else putJson(sink, JSON.stringify(before));
    }
    if (after !== null) {
      if (afterWire) putBytes(sink, w.ab!, w.as, w.ae);
      else if (afterImage) putBytes(sink, img!.block.bytes, img!.mid, img!.end);
      else putJson(sink, JSON.stringify(after));
    }
    if (extra) {
      const ex: Extra = [e.scope ?? 0, e.ddl ?? 0, e.beforeKeyOnly ? true : 0];
      if (tx) ex.push(tx);
      putJson(sink, JSON.stringify(ex));
    }
  }
  const h = sink.len;
  const P: [number, string][] = [];
  for (let t = 0; t < plans.length; t++) if (plans[t] !== undefined) P.push([t, planText(plans[t]!)]);
  putText(sink, JSON.stringify(P.length > 0 ? { x, T: tables.list, P } : { x, T: tables.list }));
  const hl = sink.len - h;
  reserve(sink, 4);
  sink.buf.writeUInt32BE(hl, sink.len);
  sink.len += 4;
  return true;
}

/**
 * The kept row images of a MariaDB change that the feed may write as they are: those of its very rows, decoded with
 * their block's plan under exactly its columns, whose names are the plan's (checked once per plan and columns).
 */
function imageOf(e: ChangeEvent): RowImage | undefined {
  if (e.source !== 'mysql') return undefined;
  const row = e.after ?? e.before;
  if (row === null || row === undefined) return undefined;
  const img = rowImageOf(row);
  if (img === undefined || img.cols === null || img.cols !== e.columns || img.block.plan === undefined) return undefined;
  return namesMatch(img.block.plan, e.columns) ? img : undefined;
}

const matched = new WeakMap<TablePlan, WeakMap<ColumnType[], boolean>>();
function namesMatch(plan: TablePlan, cols: ColumnType[]): boolean {
  let byCols = matched.get(plan);
  if (byCols === undefined) matched.set(plan, byCols = new WeakMap());
  let ok = byCols.get(cols);
  if (ok === undefined) {
    ok = plan.cols.length === cols.length && plan.cols.every((c, i) => c.name === cols[i]!.name);
    byCols.set(cols, ok);
  }
  return ok;
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
  const head = JSON.parse(buf.toString('utf8', h, n - 4)) as { x: TxFields; T: TableRef[]; P?: [number, string][] };
  if (!Array.isArray(head.x) || !Array.isArray(head.T) || (head.P !== undefined && !Array.isArray(head.P))) corrupt('header');
  return { v: 3, x: head.x, T: head.T, ...(head.P ? { P: head.P } : {}), buf, start: 1, end: h };
}

/** The events of a binary piece, those with `keep(sequence)` only, pushed onto `out` (feed-codec.ts decodePiece). */
export function decodeWirePiece(piece: WirePiece, columns: Map<string, ColumnType[]>, out: ChangeEvent[], keep?: (sequence: string) => boolean): void {
  const [txid, commitSequence, commitTime, source] = piece.x;
  const tables = resolveTables(piece.T, columns);
  const plans = piecePlans(piece, tables.length);
  const { buf, end } = piece;
  let p = piece.start;
  while (p < end) {
    if (end - p < 9) corrupt('change header');
    const p0 = p;
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
    const ti = (buf[p0 + 2]! << 8) | buf[p0 + 3]!;
    const before = flags & HAS_BEFORE ? rowAt(buf, bs, be, flags & (BEFORE_WIRE | BEFORE_IMAGE), t.cols, plans[ti]) : null;
    const after = flags & HAS_AFTER ? rowAt(buf, as, ae, flags & (AFTER_WIRE | AFTER_IMAGE), t.cols, plans[ti]) : null;
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

function rowAt(buf: Buffer, start: number, end: number, kind: number, cols: ColumnType[], plan: TablePlan | undefined): Row {
  if (kind === 0) return JSON.parse(buf.toString('utf8', start, end)) as Row;
  if ((kind & (BEFORE_WIRE | AFTER_WIRE)) !== 0) return wireRow(buf, start, end, cols);
  if (plan === undefined || !namesMatch(plan, cols)) corrupt('row image without its plan');
  let raw: Record<string, unknown>;
  try {
    raw = decodeImage(buf, start, end, plan);
  } catch {
    corrupt('row image');
  }
  // Values already final under the columns (decodedIsFinal): the decoded row is the change's row.
  if (!decodedIsFinal(plan, cols)) return presentRow(raw, cols);
  feedImageStats.readAsDecoded++;
  return raw as Row;
}

/** Plans by their text, as pieces name them (a table's plan stays the same from piece to piece). */
const planCache = new Map<string, TablePlan>();
const PLAN_CACHE_MAX = 1000;

/** A piece's plans by table position. */
function piecePlans(piece: WirePiece, tables: number): (TablePlan | undefined)[] {
  const out: (TablePlan | undefined)[] = [];
  for (const entry of piece.P ?? []) {
    if (!Array.isArray(entry) || !Number.isInteger(entry[0]) || entry[0] < 0 || entry[0] >= tables || typeof entry[1] !== 'string') corrupt('plan list');
    let plan = planCache.get(entry[1]);
    if (plan === undefined) {
      try {
        plan = planFromText(entry[1]);
      } catch {
        corrupt('plan');
      }
      if (planCache.size >= PLAN_CACHE_MAX) planCache.clear();
      planCache.set(entry[1], plan);
    }
    out[entry[0]] = plan;
  }
  return out;
}

function corrupt(what: string): never {
  throw new Error(`feed piece (binary): bad ${what}`);
}
