/**
 * The feed's entry payload: one Redis Stream entry per append piece (up to
 * APPEND_PIECE_EVENTS changes of one transaction), not one per change.
 *
 * Why (issue 12, profiled in docs/benchmarks.md): with an entry per change,
 * every change cost its own JSON text, its own XADD inside the append script,
 * its own argument on the wire and its own entry in Redis, and the capture's
 * process spent about a fifth of its time there plus the garbage it left.
 * A piece is one JSON text instead:
 *
 *   {"v":2,"x":[txid, commitSequence, commitTime, source],
 *    "T":[[schema, table, key, columnSetId], ...],
 *    "E":[[sequence, index, op, tableIndex, before, after, scope?, ddl?, beforeKeyOnly?], ...]}
 *
 * The transaction's fields are written once per piece and the table's once
 * per table; an event whose transaction fields differ from the piece's (never
 * from a capture, but the codec does not assume it) carries them in an extra
 * object at position 9. Columns stay in the feed's column-set hash
 * (column-sets.ts). Decoding returns the events exactly as appended
 * (roundtrip test in test/unit/replication/feed/feed-codec.test.ts).
 *
 * A piece with rows the PostgreSQL capture kept as their pgoutput bytes, or
 * the MariaDB capture as their binlog row images, is written in binary
 * instead (version 3, feed-codec-wire.ts); parsePiece and decodePiece read both.
 */
import { putText as put, type ByteSink } from '../byte-sink.ts';
import type { ChangeEvent, ColumnType, Operation, Row } from '../change-event.ts';
import type { WireRows } from '../pg-wire-rows.ts';
import { decodeWirePiece, encodeWirePiece, parseWirePiece, PIECE_V3_TAG, type WirePiece } from './feed-codec-wire.ts';
import { PieceTables, resolveTables, txFieldsOf, txOverride, type TableRef, type TxFields, type TxOverride } from './feed-tables.ts';

export const PIECE_VERSION = 2;

type EncodedEvent = [
  sequence: string, index: number, op: Operation, table: number, before: Row | null, after: Row | null,
  scope?: string | 0, ddl?: string | 0, beforeKeyOnly?: true | 0, tx?: TxOverride,
];
interface JsonPiece { v: number; x: TxFields; T: TableRef[]; E: EncodedEvent[] }
/** A piece as read: JSON (version 2) or binary (version 3, feed-codec-wire.ts). */
export type Piece = JsonPiece | WirePiece;

/**
 * Every field of ChangeEvent and where the codec keeps it: adding a field to
 * ChangeEvent fails to compile here until the codec carries it.
 */
const FIELDS: Record<keyof ChangeEvent, 'tx' | 'table' | 'event'> = {
  source: 'tx', txid: 'tx', commitSequence: 'tx', commitTime: 'tx',
  schema: 'table', table: 'table', key: 'table', columns: 'table',
  sequence: 'event', index: 'event', op: 'event', before: 'event', after: 'event', scope: 'event', ddl: 'event', beforeKeyOnly: 'event',
};
void FIELDS;

/** Encodes events[from, to) as one piece; `columnSetId` gives a column array's id in the feed's column-set hash. */
export function encodePiece(events: ChangeEvent[], from: number, to: number, columnSetId: (columns: ColumnType[]) => string): string {
  return JSON.stringify(pieceOf(events, from, to, columnSetId));
}

/**
 * encodePiece's text, byte for byte its UTF-8, written into `sink` from its current length on: the
 * piece's fields, then each change's JSON in turn. Why: JSON.stringify of a whole piece of 1,000 changes
 * makes a text of over 128 KiB, which V8 assembles from parts and must flatten into a fresh large-object
 * page before it can be encoded, and Buffer.from then encodes it into fresh memory again; on this machine
 * kind the page faults of the two cost about 1 ms per piece, a tenth of the capture's process in the
 * apply bench (issue 12 profile). A sink that is used again has its pages already.
 */
export function encodePieceBytes(
  sink: ByteSink, events: ChangeEvent[], from: number, to: number, columnSetId: (columns: ColumnType[]) => string, wire?: (WireRows | undefined)[],
): void {
  // Rows the captures kept as bytes go in a binary piece (feed-codec-wire.ts); it declines a piece without any.
  if ((wire !== undefined || events[from]?.source === 'mysql') && encodeWirePiece(sink, events, from, to, columnSetId, wire)) return;
  const piece = pieceOf(events, from, to, columnSetId);
  put(sink, `{"v":${piece.v},"x":${JSON.stringify(piece.x)},"T":${JSON.stringify(piece.T)},"E":`);
  // The changes in runs of STRINGIFY_RUN, each run's JSON array written over the previous run's closing
  // bracket with its opening bracket turned into a comma: the same text as the whole array's JSON.
  const E = piece.E;
  if (E.length === 0) put(sink, '[]');
  for (let i = 0; i < E.length; i += STRINGIFY_RUN) {
    const run = JSON.stringify(i === 0 && E.length <= STRINGIFY_RUN ? E : E.slice(i, i + STRINGIFY_RUN));
    if (i === 0) { put(sink, run); continue; }
    const at = sink.len - 1;
    sink.len = at;
    put(sink, run);
    sink.buf[at] = 0x2c; // ','
  }
  put(sink, '}');
}

/**
 * Changes stringified per call in encodePieceBytes: few enough that the text stays under V8's 16 Ki-character
 * builder part (one flat string, no flattening before it is written), many enough to spare the calls.
 */
const STRINGIFY_RUN = 64;

function pieceOf(events: ChangeEvent[], from: number, to: number, columnSetId: (columns: ColumnType[]) => string): JsonPiece {
  const x = txFieldsOf(events[from]!);
  const tables = new PieceTables(columnSetId);
  const out: EncodedEvent[] = new Array(to - from);
  for (let i = from; i < to; i++) {
    const e = events[i]!;
    const ev: EncodedEvent = [e.sequence, e.index, e.op, tables.of(e), e.before, e.after];
    const tx = txOverride(e, x);
    if (e.scope !== undefined || e.ddl !== undefined || e.beforeKeyOnly !== undefined || tx) {
      ev.push(e.scope ?? 0, e.ddl ?? 0, e.beforeKeyOnly ? true : 0);
      if (tx) ev.push(tx);
    }
    out[i - from] = ev;
  }
  return { v: PIECE_VERSION, x, T: tables.list, E: out };
}

/** Column-set ids a piece refers to (resolve them before decodePiece). */
export function pieceColumnSets(piece: Piece): string[] {
  return piece.T.map((t) => t[3]);
}

/** A piece as Redis holds it: JSON text (as a string or its bytes) or a binary piece. */
export function parsePiece(stored: string | Buffer): Piece {
  if (typeof stored !== 'string' && stored[0] === PIECE_V3_TAG) return parseWirePiece(stored);
  const piece = JSON.parse(typeof stored === 'string' ? stored : stored.toString('utf8')) as JsonPiece;
  if (piece.v !== PIECE_VERSION) throw new Error(`feed entry of version ${String(piece.v)}; this version reads ${PIECE_VERSION} and binary pieces`);
  return piece;
}

/**
 * The events of a parsed piece, those with `keep(sequence)` only (a read
 * starting inside the piece), pushed onto `out`.
 */
export function decodePiece(piece: Piece, columns: Map<string, ColumnType[]>, out: ChangeEvent[], keep?: (sequence: string) => boolean): void {
  if (piece.v === 3) { decodeWirePiece(piece as WirePiece, columns, out, keep); return; }
  const [txid, commitSequence, commitTime, source] = piece.x;
  const tables = resolveTables(piece.T, columns);
  for (const ev of (piece as JsonPiece).E) {
    if (keep && !keep(ev[0])) continue;
    const t = tables[ev[3]]!;
    const tx = ev[9];
    const e: ChangeEvent = {
      source: tx?.source ?? source, sequence: ev[0], txid: tx?.txid ?? txid, commitSequence: tx?.commitSequence ?? commitSequence,
      index: ev[1], op: ev[2], schema: t.schema, table: t.table, key: t.key, before: ev[4], after: ev[5],
      commitTime: tx?.commitTime ?? commitTime, columns: t.cols,
    };
    if (ev.length > 6) {
      if (ev[6] !== 0 && ev[6] !== undefined) e.scope = ev[6];
      if (ev[7] !== 0 && ev[7] !== undefined) e.ddl = ev[7];
      if (ev[8] === true) e.beforeKeyOnly = true;
    }
    out.push(e);
  }
}
