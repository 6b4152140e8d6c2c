/**
 * pgoutput TupleData, read straight from the message buffer: the same tuple
 * objects pg-logical-replication's PgoutputParser.readTuple makes (column
 * name -> the column parser's value of the
 * text, null, a Buffer view for binary, the fallback's value for an
 * unchanged TOAST datum), without its per-value Buffer view and TextDecoder
 * call (issue 12: a third of the bulk capture's own CPU went there).
 *
 * One difference, deliberate: the text is decoded with Buffer#toString,
 * which keeps a leading U+FEFF; the library's TextDecoder drops it, so a
 * value starting with a byte-order mark lost it on the way.
 */

import type { Pgoutput } from 'pg-logical-replication';
import { markTuple, wireRowMaker, type WireRows } from '../pg-wire-rows.ts';

/**
 * Buffer#utf8Slice where Node has it (every version this runs on): the same
 * decoding as toString('utf8', start, end) without its argument handling, a
 * quarter of each value's cost (issue 12 profile).
 */
const utf8: (b: Buffer, start: number, end: number) => string =
  typeof (Buffer.prototype as { utf8Slice?: unknown }).utf8Slice === 'function'
    ? (b, start, end) => (b as unknown as { utf8Slice(s: number, e: number): string }).utf8Slice(start, end)
    : (b, start, end) => b.toString('utf8', start, end);

/**
 * The part of the library's BinaryReader a tuple read uses: the buffer, the read offset, and where the message
 * ends when that is before the buffer's end (RawTextPgoutputPlugin.parseAt: a message inside its socket chunk).
 */
interface Reader { _b: Buffer; _p: number; _e?: number }

type Column = { name: string; parser: (raw: unknown) => unknown };

/**
 * A relation (the parser's cached pgoutput Relation message) whose column parsers make the change's final
 * values, in the order of its table's columns (the assembler's bindRows): its tuples are read as the
 * change's rows, plain objects, and an unchanged TOAST datum without an old value is left out, not set to
 * undefined. Why (issue 12): a tuple object and then a row object per image, and the row's every property
 * read from the one and written into the other, were about 3% of the PG -> PG apply bench's process.
 */
export interface DirectRelation {
  rowsDirect?: boolean;
  /** Makes its rows (wireRowMaker), one maker per relation message, made at its first row. */
  newRow?: () => Record<string, unknown>;
}

/** A row message as the capture's parser returns it: `rowsDirect` when its tuples were read as rows. */
export type RowMessage = (Pgoutput.MessageInsert | Pgoutput.MessageUpdate | Pgoutput.MessageDelete) & { rowsDirect?: boolean; wire?: WireRows };

const RAW = (text: unknown): unknown => text;

/** The identity column parser: the tuple keeps the server's text. */
export const rawTextParser: (text: unknown) => unknown = RAW;

/**
 * A tuple: column name -> value, on a prototype that is itself prototype-less, so no column name meets an
 * inherited member (`__proto__` and `constructor` are own data properties like any other, and a name the
 * tuple lacks reads undefined), as on the library's Object.create(null) tuples. Unlike those, which V8 keeps
 * in dictionary mode (a hash table per tuple, grown as columns are added: a third of the bytes the bulk
 * capture allocated, issue 12), these objects share hidden classes per column list.
 */
const Tuple = function WireTuple() { /* columns are added by the reader */ } as unknown as new () => Record<string, unknown>;
(Tuple as unknown as { prototype: object }).prototype = Object.create(null) as object;

/** An empty tuple (see Tuple). */
export function newTuple(): Record<string, unknown> {
  return new Tuple();
}

/**
 * Where each text column of the last tuple read lies in its buffer (start and size; size -1: not text), so that
 * an update's new tuple, read right after its old one from the same message, takes the old tuple's value for a
 * column whose bytes are the same instead of decoding them again. Why (issue 12): an update usually changes a
 * few columns (the apply bench's two of six); the others were decoded twice, two equal strings held by the
 * change until it was applied, where one shared value now serves both images (values are immutable primitives:
 * numbers, booleans and strings).
 */
let lastTuple: object | null = null;
let lastBuf: Buffer | null = null;
let lastAt = new Int32Array(64);
let lastLen = new Int32Array(64);

/** Byte ranges of equal length with the same bytes. */
function sameBytes(b: Buffer, x: number, y: number, n: number): boolean {
  if (n > 48) return b.compare(b, x, x + n, y, y + n) === 0;
  for (let k = 0; k < n; k++) if (b[x + k] !== b[y + k]) return false;
  return true;
}

function endOfMessage(): never {
  throw Error('unexpected end of message');
}

export function readTupleFast(reader: Reader, relation: { columns: Column[] }, unchangedToastFallback?: Record<string, unknown> | null): Record<string, unknown> {
  const b = reader._b;
  let p = reader._p;
  const start = p;
  const lim = reader._e ?? b.length;
  // Text and null columns only: a direct relation's tuple is then kept as bytes for the feed (pg-wire-rows.ts).
  let plain = true;
  if (lim < p + 2) endOfMessage();
  const nfields = (b[p]! << 8) | b[p + 1]!;
  p += 2;
  const columns = relation.columns;
  const direct = (relation as DirectRelation).rowsDirect === true;
  const tuple: Record<string, unknown> = direct ? ((relation as DirectRelation).newRow ??= wireRowMaker())() : new Tuple();
  // The old tuple of this update (the library passes it as the fallback for unchanged TOAST), just read from b.
  const old = unchangedToastFallback != null && unchangedToastFallback === lastTuple && lastBuf === b ? unchangedToastFallback : null;
  if (nfields > lastAt.length) {
    const grown = (from: Int32Array) => { const a = new Int32Array(nfields); a.set(from); return a; };
    lastAt = grown(lastAt);
    lastLen = grown(lastLen);
  }
  const at = lastAt;
  const len = lastLen;
  for (let i = 0; i < nfields; i++) {
    const { name, parser } = columns[i]!;
    if (lim < p + 1) endOfMessage();
    const kind = b[p++]!;
    switch (kind) {
      case 0x74: { // 't' text
        if (lim < p + 4) endOfMessage();
        const size = (b[p]! << 24) | (b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!;
        p += 4;
        if (size < 0 || lim < p + size) endOfMessage();
        // Read (at[i], len[i]) before they are set to this tuple's: they still describe the old tuple's column i.
        if (old !== null && len[i] === size && sameBytes(b, at[i]!, p, size)) tuple[name] = old[name];
        else tuple[name] = parser(utf8(b, p, p + size));
        at[i] = p;
        len[i] = size;
        p += size;
        break;
      }
      case 0x6e: // 'n' null
        tuple[name] = null;
        len[i] = -1;
        break;
      case 0x75: { // 'u' unchanged toast datum
        len[i] = -1;
        plain = false;
        const v = unchangedToastFallback?.[name];
        if (!direct || v !== undefined) tuple[name] = v;
        break;
      }
      case 0x62: { // 'b' binary
        len[i] = -1;
        plain = false;
        if (lim < p + 4) endOfMessage();
        const size = (b[p]! << 24) | (b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!;
        p += 4;
        if (size < 0 || lim < p + size) endOfMessage();
        tuple[name] = b.subarray(p, p + size);
        p += size;
        break;
      }
      default:
        reader._p = p;
        throw Error(`unknown attribute kind ${String.fromCharCode(kind)}`);
    }
  }
  reader._p = p;
  lastTuple = tuple;
  lastBuf = b;
  if (direct) markTuple(b, start, p, plain);
  return tuple;
}

/** The library parser's members the row message readers below use. */
interface RowParser {
  _relationCache: Map<number, Pgoutput.MessageRelation>;
  readTuple(reader: Reader, relation: Pgoutput.MessageRelation, unchangedToastFallback?: Record<string, unknown> | null): Record<string, unknown>;
  readKeyTuple(reader: Reader, relation: Pgoutput.MessageRelation): Record<string, unknown>;
}

function readUint8(reader: Reader): number {
  if (reader._p >= (reader._e ?? reader._b.length)) endOfMessage();
  return reader._b[reader._p++]!;
}

function readInt32(reader: Reader): number {
  const b = reader._b;
  const p = reader._p;
  if (p + 4 > (reader._e ?? b.length)) endOfMessage();
  reader._p = p + 4;
  return (b[p]! << 24) | (b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!;
}

function relationOf(parser: RowParser, reader: Reader): Pgoutput.MessageRelation {
  const relation = parser._relationCache.get(readInt32(reader));
  if (!relation) throw Error('missing relation');
  return relation;
}

/**
 * Makes `parser` read Insert, Update and Delete messages as the library's msgInsert, msgUpdate and msgDelete do,
 * into objects that have `rowsDirect` and `wire` (RowMessage) from the start. Why (issue 12): the two fields added
 * to every row message after it was made gave each its own property store, an allocation per change.
 */
export function useFullRowMessages(parser: unknown): void {
  const p = parser as RowParser & Record<string, unknown>;
  p.msgInsert = (reader: Reader): RowMessage => {
    const relation = relationOf(p, reader);
    readUint8(reader); // 'N'
    return { tag: 'insert', relation, new: p.readTuple(reader, relation), rowsDirect: undefined, wire: undefined };
  };
  p.msgUpdate = (reader: Reader): RowMessage => {
    const relation = relationOf(p, reader);
    let key: Record<string, unknown> | null = null;
    let old: Record<string, unknown> | null = null;
    let neu: Record<string, unknown>;
    const sub = readUint8(reader);
    if (sub === 0x4b) { // 'K'
      key = p.readKeyTuple(reader, relation);
      readUint8(reader); // 'N'
      neu = p.readTuple(reader, relation);
    } else if (sub === 0x4f) { // 'O'
      old = p.readTuple(reader, relation);
      readUint8(reader); // 'N'
      neu = p.readTuple(reader, relation, old);
    } else if (sub === 0x4e) { // 'N'
      neu = p.readTuple(reader, relation);
    } else {
      throw Error(`unknown submessage key ${String.fromCharCode(sub)}`);
    }
    return { tag: 'update', relation, key, old, new: neu, rowsDirect: undefined, wire: undefined };
  };
  p.msgDelete = (reader: Reader): RowMessage => {
    const relation = relationOf(p, reader);
    let key: Record<string, unknown> | null = null;
    let old: Record<string, unknown> | null = null;
    const sub = readUint8(reader);
    if (sub === 0x4b) key = p.readKeyTuple(reader, relation); // 'K'
    else if (sub === 0x4f) old = p.readTuple(reader, relation); // 'O'
    else throw Error(`unknown submessage key ${String.fromCharCode(sub)}`);
    return { tag: 'delete', relation, key, old, rowsDirect: undefined, wire: undefined };
  };
}

/** Makes `parser` (a PgoutputPlugin's PgoutputParser) read tuples with readTupleFast; its key tuples go through it too. */
export function useFastTuples(parser: unknown): void {
  (parser as { readTuple: typeof readTupleFast }).readTuple = readTupleFast;
}

