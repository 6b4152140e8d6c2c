/**
 * A faster row-image decoder for zongji's WRITE/UPDATE/DELETE_ROWS events
 * (v1, v2 and MariaDB's compressed variants, which zongji inflates before
 * reading rows). It yields exactly the row objects zongji's own readRow
 * yields (same keys in the same order, same values, same JS types) under the
 * connection options of mysql-connection.ts (dateStrings, timezone 'Z',
 * decimals and JSON as strings), so everything downstream (the mapper and
 * mysql-values.ts) is unchanged: it only skips zongji's per-value overhead
 * (a generic switch reached through `arguments`, a Buffer copy per decimal,
 * DataViews per float, fraction objects and zeroPad per temporal value).
 *
 * Wired into zongji by mysql-zongji-hooks.ts. Every table with a column
 * type not handled here (classic and MariaDB 5.3 temporals, JSON, geometry,
 * SET, COMPRESSED columns, UUID/INET/VECTOR, non-UTF-8 charsets, ...) keeps
 * zongji's own decoder (planFor says null).
 */
import type { ColumnType } from '../change-event.ts';
import { ROW_IMAGE_SLOT } from '../row-image-slot.ts';

/** zongji's column of a table map (TableMapEvent.updateColumnInfo). */
export interface ZjColumn {
  name: string;
  type: number;
  charset: string | null | undefined;
  metadata: Record<string, number> | undefined;
}
export interface ZjColumnSchema {
  COLUMN_TYPE: string;
  UNSIGNED?: boolean;
  ENUM_VALUES?: string[];
}
export interface ZjTableMap {
  columns: ZjColumn[];
  columnSchemas: ZjColumnSchema[];
}
/** The part of zongji's reader.js Parser used here. */
export interface ZjParser {
  _buffer: Buffer;
  _offset: number;
}

const enum Op {
  Tiny, TinyU, Short, ShortU, Int24, Int24U, Long, LongU, LongLong, LongLongU,
  Float, Double, Decimal, Year, Bit, Enum, Date, Time2, DateTime2, Timestamp2,
  /** VARCHAR/STRING text in UTF-8 (1- or 2-byte length). */
  Text1, Text2,
  /** VARBINARY (1- or 2-byte length): a view of the packet, as zongji's. */
  VarBin1, VarBin2,
  /** BINARY(n) (1- or 2-byte length): padded with zero bytes to n. */
  Bin1, Bin2,
  /** BLOB/TEXT: length of `len` bytes, then a Buffer (no charset) or UTF-8 text. */
  Blob, BlobText,
}

interface ColPlan {
  op: Op;
  name: string;
  /** Op.Decimal: precision/scale layout. Temporal: fractional digits. Blob: length bytes. Bit: bytes. Bin: width. */
  a: number;
  b: number;
  c: number;
  d: number;
  e: number;
  schema: ZjColumnSchema;
}

/**
 * A table's decode plan, or null when a column needs zongji's own decoder.
 * `newRow` makes a row with every column as a key set to null, in column
 * order: one allocation of the final shape, where adding the keys one by one
 * grows the object as it goes.
 */
export interface TablePlan { cols: ColPlan[]; newRow: () => Record<string, unknown> }

/**
 * A maker of plain objects (Object.prototype) with `names` set to null, in order: a constructor of its own per
 * plan, so that its rows share hidden classes and keep room for one more property. Not a copy of a template object
 * (`{ ...template }`): V8 gives such clones hidden classes off its transition tree, and a row image attached to a
 * clone later (mysql-row-images.ts keepRowImage, then a defineProperty) cost a new hidden class per row: three
 * times the time and 109 MiB more per 300,000 rows in a micro-benchmark (issue 12). Each row has the (empty) slot
 * of its image from the start, so that setting it later allocates nothing.
 */
function rowMaker(names: string[]): () => Record<string, unknown> {
  const Row = function (this: Record<string, unknown>) {
    for (let i = 0; i < names.length; i++) this[names[i]!] = null;
    ROW_IMAGE_SLOT.reserve(this);
  } as unknown as { new (): Record<string, unknown>; prototype: object };
  Row.prototype = Object.prototype;
  return () => new Row();
}
export type Plan = TablePlan | null;

const T = {
  DECIMAL: 0, TINY: 1, SHORT: 2, LONG: 3, FLOAT: 4, DOUBLE: 5, NULL: 6, TIMESTAMP: 7, LONGLONG: 8, INT24: 9, DATE: 10,
  TIME: 11, DATETIME: 12, YEAR: 13, NEWDATE: 14, VARCHAR: 15, BIT: 16, TIMESTAMP2: 17, DATETIME2: 18, TIME2: 19,
  JSON: 245, NEWDECIMAL: 246, ENUM: 247, SET: 248, TINY_BLOB: 249, MEDIUM_BLOB: 250, LONG_BLOB: 251, BLOB: 252,
  VAR_STRING: 253, STRING: 254, GEOMETRY: 255,
} as const;

/** Charsets zongji decodes with buffer.toString('utf8') (common.js decodeTextColumn). */
function utf8Charset(cs: string | null | undefined): boolean {
  return cs === null || cs === undefined || cs === '' || cs === 'utf8' || cs === 'utf8mb3' || cs === 'utf8mb4';
}

const DIG2BYTES = [0, 1, 1, 2, 2, 3, 3, 4, 4, 4];
const NO_METADATA: Record<string, number> = {};

/** Fractional digits of a temporal column's metadata (zongji reads none for a missing or zero value), null when out of range. */
function frac(n: unknown): number | null {
  return n === undefined || n === null || n === 0 ? 0 : typeof n === 'number' && Number.isInteger(n) && n > 0 && n <= 6 ? n : null;
}

function mk(col: ZjColumn, schema: ZjColumnSchema, op: Op, a = 0, b = 0, c = 0, d = 0, e = 0): ColPlan {
  return { op, name: col.name, a, b, c, d, e, schema };
}

function colPlan(col: ZjColumn, schema: ZjColumnSchema | undefined): ColPlan | null {
  if (!schema || typeof schema.COLUMN_TYPE !== 'string') return null;
  const md = col.metadata ?? NO_METADATA;
  const unsigned = schema.UNSIGNED !== undefined ? schema.UNSIGNED : schema.COLUMN_TYPE.indexOf('unsigned') !== -1;
  switch (col.type) {
    case T.TINY: return mk(col, schema, unsigned ? Op.TinyU : Op.Tiny);
    case T.SHORT: return mk(col, schema, unsigned ? Op.ShortU : Op.Short);
    case T.INT24: return mk(col, schema, unsigned ? Op.Int24U : Op.Int24);
    case T.LONG: return mk(col, schema, unsigned ? Op.LongU : Op.Long);
    case T.LONGLONG: return mk(col, schema, unsigned ? Op.LongLongU : Op.LongLong);
    case T.FLOAT: return mk(col, schema, Op.Float);
    case T.DOUBLE: return mk(col, schema, Op.Double);
    case T.NEWDECIMAL: {
      const scale = md.decimals;
      const precision = md.precision;
      if (!Number.isInteger(scale) || !Number.isInteger(precision) || scale! < 0 || precision! < scale! || precision! > 65) return null;
      const integral = precision! - scale!;
      const uncompIntegral = Math.floor(integral / 9);
      const uncompFractional = Math.floor(scale! / 9);
      const compIntegral = integral - uncompIntegral * 9;
      const compFractional = scale! - uncompFractional * 9;
      // a: scale, b: uncompIntegral, c: compIntegral digits, d: uncompFractional, e: compFractional digits
      return mk(col, schema, Op.Decimal, scale!, uncompIntegral, compIntegral, uncompFractional, compFractional);
    }
    case T.YEAR: return mk(col, schema, Op.Year);
    case T.BIT: {
      if (!Number.isInteger(md.bits)) return null;
      return mk(col, schema, Op.Bit, Math.floor((md.bits! + 7) / 8));
    }
    case T.ENUM: {
      if (md.size !== 1 && md.size !== 2) return null;
      return mk(col, schema, Op.Enum, md.size);
    }
    case T.DATE: return mk(col, schema, Op.Date);
    case T.TIME2: { const f = frac(md.decimals); return f === null ? null : mk(col, schema, Op.Time2, f); }
    case T.DATETIME2: { const f = frac(md.decimals); return f === null ? null : mk(col, schema, Op.DateTime2, f); }
    case T.TIMESTAMP2: { const f = frac(md.decimals); return f === null ? null : mk(col, schema, Op.Timestamp2, f); }
    case T.VARCHAR: case T.STRING: {
      const two = md.max_length! > 255;
      const def = schema.COLUMN_TYPE;
      const prefix = def.substr(0, 6);
      if (def === 'uuid' || def === 'inet4' || def === 'inet6' || prefix === 'vector') return null;
      if (prefix === 'binary') {
        // zongji: parseInt(def.substr(7, def.length - 2), 10)
        const width = parseInt(def.substr(7, def.length - 2), 10);
        if (!Number.isInteger(width) || width < 0) return null;
        return mk(col, schema, two ? Op.Bin2 : Op.Bin1, width);
      }
      if (prefix === 'varbin') return mk(col, schema, two ? Op.VarBin2 : Op.VarBin1);
      if (!utf8Charset(col.charset)) return null;
      return mk(col, schema, two ? Op.Text2 : Op.Text1);
    }
    case T.TINY_BLOB: case T.MEDIUM_BLOB: case T.LONG_BLOB: case T.BLOB: {
      const len = md.length_size;
      if (len !== 1 && len !== 2 && len !== 3 && len !== 4) return null;
      if (col.charset === null) return mk(col, schema, Op.Blob, len);
      if (!utf8Charset(col.charset)) return null;
      return mk(col, schema, Op.BlobText, len);
    }
    default:
      // DECIMAL (old), TIMESTAMP/DATETIME/TIME (classic and 5.3 hires), NEWDATE, JSON, SET,
      // GEOMETRY, VAR_STRING, BLOB/VARCHAR COMPRESSED, NULL, unknown: zongji decodes the table.
      return null;
  }
}

/** Decode plans by table-map column list (zongji builds a new list whenever it re-reads a table's columns). */
const plans = new WeakMap<ZjColumn[], Plan | typeof SEEN>();
const SEEN = Symbol('seen once');
let eager = false;

/**
 * Tests: plan a table map at its first row (default: at its second). With
 * binlog_row_metadata=FULL zongji builds a new column list at every
 * TABLE_MAP, that is for every statement; a plan costs more than zongji
 * decoding one row, so the first rows of a column list stay zongji's. A
 * TABLE_MAP that repeats an earlier one byte for byte gets that one's
 * column list again (mysql-table-maps.ts), so from a table's second
 * statement on its rows are decoded here, single-row statements included.
 */
export function setEagerPlans(on: boolean): void {
  eager = on;
}

/** The table's plan; null when zongji must decode it; undefined for the first row of a table map (see setEagerPlans). */
export function planFor(map: ZjTableMap): Plan | undefined {
  const cols = map.columns;
  let plan = plans.get(cols);
  if (plan === undefined && !eager) {
    plans.set(cols, SEEN);
    return undefined;
  }
  if (plan === undefined || plan === SEEN) {
    const list: ColPlan[] = [];
    for (let i = 0; i < cols.length; i++) {
      // zongji's `row[name] = value` sets the prototype for a column named __proto__: left to zongji.
      const c = cols[i]!.name === '__proto__' ? null : colPlan(cols[i]!, map.columnSchemas?.[i]);
      if (!c) break;
      list.push(c);
    }
    plan = list.length === cols.length ? { cols: list, newRow: rowMaker(list.map((c) => c.name)) } : null;
    plans.set(cols, plan);
  }
  return plan;
}

/**
 * A plan as text, for the feed (feed-codec-wire.ts keeps rows decoded here as their row-image bytes and names the
 * plan that reads them again): [[name, op, a, b, c, d, e, enum labels | 0], ...]. Made once per plan.
 */
const planTexts = new WeakMap<TablePlan, string>();
export function planText(plan: TablePlan): string {
  let t = planTexts.get(plan);
  if (t === undefined) {
    t = JSON.stringify(plan.cols.map((c) => [c.name, c.op, c.a, c.b, c.c, c.d, c.e,
      c.op === Op.Enum ? c.schema.ENUM_VALUES ?? enumLabels(c.schema.COLUMN_TYPE) : 0]));
    planTexts.set(plan, t);
  }
  return t;
}

/** Ops a plan's text may name (every Op). */
const MAX_OP = Op.BlobText;

/** The plan `planText` wrote; throws on anything it would not have written. */
export function planFromText(text: string): TablePlan {
  const raw = JSON.parse(text) as unknown;
  if (!Array.isArray(raw) || raw.length === 0) throw new Error('row plan: not a column list');
  const cols: ColPlan[] = [];
  const template = new Set<string>();
  for (const c of raw as unknown[]) {
    if (!Array.isArray(c) || c.length !== 8) throw new Error('row plan: bad column');
    const [name, op, a, b, cc, d, e, labels] = c as [unknown, unknown, unknown, unknown, unknown, unknown, unknown, unknown];
    const ints = [op, a, b, cc, d, e].every((n) => Number.isInteger(n) && (n as number) >= 0 && (n as number) <= 0xffff);
    if (typeof name !== 'string' || name === '__proto__' || template.has(name) || !ints || (op as number) > MAX_OP) throw new Error('row plan: bad column');
    const enumValues = op === Op.Enum ? labels : undefined;
    if (enumValues !== undefined && !(Array.isArray(enumValues) && enumValues.every((l) => typeof l === 'string'))) throw new Error('row plan: bad enum labels');
    cols.push({ op: op as Op, name, a: a as number, b: b as number, c: cc as number, d: d as number, e: e as number,
      schema: { COLUMN_TYPE: '', ...(enumValues ? { ENUM_VALUES: enumValues as string[] } : {}) } });
    template.add(name);
  }
  return { cols, newRow: rowMaker(cols.map((c) => c.name)) };
}

/** A row image decoded from buf[start, end) with `plan`, every column present (binlog_row_image=FULL); throws when the bytes are not one such image. */
export function decodeImage(buf: Buffer, start: number, end: number, plan: TablePlan): Record<string, unknown> {
  const n = plan.cols.length;
  const nullBytes = (n + 7) >> 3;
  const parser: ZjParser = { _buffer: buf.subarray(start, end), _offset: 0 };
  const row = decodeRow(parser, plan, allPresent(nullBytes), nullBytes);
  if (parser._offset !== end - start) throw new Error('row image: its length does not match its plan');
  return row;
}

const presentBitmaps: Buffer[] = [];
function allPresent(bytes: number): Buffer {
  return presentBitmaps[bytes] ??= Buffer.alloc(bytes, 0xff);
}

// ---- value helpers (each the same arithmetic as zongji's common.js / datetime_decode.js) ----

const P2: string[] = Array.from({ length: 100 }, (_, i) => (i < 10 ? '0' : '') + i);
const ZEROS = '00000000000000000000000000000000';

/**
 * zongji's zeroPad (`('0' * 32 + num)`, cut to its last `size` characters),
 * without building the 32-zero string.
 */
export function zeroPad(num: number | string, size: number): string {
  const s = String(num);
  const n = s.length;
  if (n === size) return s;
  if (n < size) return size - n <= 32 ? ZEROS.substr(0, size - n) + s : (ZEROS + s).substr(32 + n - size);
  return s.substr(n - size);
}

/** The text of `/^0+(?=\d)/` removed (parseNewDecimal's leading-zero strip), without a regular expression. */
export function stripZeros(s: string): string {
  let run = 0;
  while (run < s.length && s.charCodeAt(run) === 48) run++;
  if (run === 0) return s;
  const next = s.charCodeAt(run);
  const cut = run < s.length && next >= 48 && next <= 57 ? run : run - 1;
  return cut > 0 ? s.substr(cut) : s;
}
function pad2(n: number): string { return n >= 0 && n < 100 && Number.isInteger(n) ? P2[n]! : zeroPad(n, 2); }
function pad4(n: number): string { return n >= 1000 && n < 10000 ? String(n) : zeroPad(n, 4); }

/** Signed big-endian integer of 1..4 bytes (zongji's readIntBE). */
function readIntBE(buf: Buffer, off: number, len: number): number {
  switch (len) {
    case 1: return (buf[off]! << 24) >> 24;
    case 2: return ((buf[off]! << 24) >> 16) | buf[off + 1]!;
    case 3: return ((buf[off]! << 24) >> 8) + ((buf[off + 1]! << 8) | buf[off + 2]!);
    default: return (buf[off]! << 24) | (buf[off + 1]! << 16) | (buf[off + 2]! << 8) | buf[off + 3]!;
  }
}

const TWO_32 = 4294967296;
const MIN_SAFE = BigInt(Number.MIN_SAFE_INTEGER);
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/** Unsigned BIGINT: a Number up to 2^53 - 1, else exact text (parseUInt64). */
function uint64(buf: Buffer, off: number): number | string {
  const low = buf.readUInt32LE(off);
  const high = buf.readUInt32LE(off + 4);
  if (high < 0x200000) return high * TWO_32 + low;
  const v = buf.readBigUInt64LE(off);
  return v <= MAX_SAFE ? Number(v) : v.toString();
}

/** Signed BIGINT: a Number within +-(2^53 - 1), else exact text. */
function int64(buf: Buffer, off: number): number | string {
  const low = buf.readUInt32LE(off);
  const high = buf.readUInt32LE(off + 4);
  if (high < 0x200000) return high * TWO_32 + low;
  const v = buf.readBigInt64LE(off);
  return v >= MIN_SAFE && v <= MAX_SAFE ? Number(v) : v.toString();
}

const FLIPPED = Buffer.alloc(4);

/** A signed big-endian group of a NEWDECIMAL at `off + pos`; the first byte of the value is read with its sign bit flipped. */
function decimalGroup(buf: Buffer, off: number, pos: number, len: number): number {
  if (pos !== 0) return len === 4 ? buf.readInt32BE(off + pos) : readIntBE(buf, off + pos, len);
  for (let i = 0; i < len; i++) FLIPPED[i] = buf[off + i]!;
  FLIPPED[0] = FLIPPED[0]! ^ 0x80;
  return readIntBE(FLIPPED, 0, len);
}

const DEC = Buffer.alloc(192);
const DEC_LIMIT = [1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000, 1000000000];

/** Writes `v` (0 <= v < 10^width) as `width` digits at DEC[p]; returns the end. */
function decDigits(v: number, p: number, width: number): number {
  for (let i = p + width - 1; i >= p; i--) { DEC[i] = 48 + (v % 10); v = (v / 10) | 0; }
  return p + width;
}

/**
 * NEWDECIMAL as zongji's parseNewDecimal text (decimalNumbers off). Returns the bytes read in `out.n`.
 * Written digit by digit into one flat latin1 string (issue 12: the concatenated pieces were a tenth of the
 * bytes the MariaDB -> MariaDB apply bench allocated); a group outside its digits' range (not a value
 * MariaDB writes) takes decimalText, the string way, so the text is the same for any bytes.
 */
function decimal(buf: Buffer, off: number, c: ColPlan, out: { n: number }): string {
  const compIntegral = c.c; const uncompIntegral = c.b; const uncompFractional = c.d; const compFractional = c.e;
  const ci = DIG2BYTES[compIntegral]!; const cf = DIG2BYTES[compFractional]!;
  const size = uncompIntegral * 4 + ci + uncompFractional * 4 + cf;
  out.n = size;
  const mask = (buf[off]! & 0x80) === 0x80 ? 0 : -1;
  // DEC[0] and DEC[1]: room for the sign and for a '0' when there are no integral digits.
  let p = 2;
  let pos = 0;
  if (ci > 0) {
    const v = decimalGroup(buf, off, 0, ci) ^ mask;
    if (v < 0 || v >= DEC_LIMIT[compIntegral]!) return decimalText(buf, off, c);
    p = decDigits(v, p, compIntegral); pos += ci;
  }
  for (let i = 0; i < uncompIntegral; i++) {
    const v = decimalGroup(buf, off, pos, 4) ^ mask;
    if (v < 0 || v > 999999999) return decimalText(buf, off, c);
    p = decDigits(v, p, 9); pos += 4;
  }
  // Leading zeros go, one digit stays (the /^0+(?=\d)/ strip; no digits at all is '0').
  let start = 2;
  while (start < p - 1 && DEC[start] === 48) start++;
  if (p === 2) { DEC[1] = 48; start = 1; }
  if (mask !== 0) DEC[--start] = 45;
  if (c.a > 0) {
    DEC[p++] = 46;
    for (let k = 0; k < uncompFractional; k++) {
      const v = decimalGroup(buf, off, pos, 4) ^ mask;
      if (v < 0 || v > 999999999) return decimalText(buf, off, c);
      p = decDigits(v, p, 9); pos += 4;
    }
    if (cf > 0) {
      const v = decimalGroup(buf, off, pos, cf) ^ mask;
      if (v < 0 || v >= DEC_LIMIT[compFractional]!) return decimalText(buf, off, c);
      p = decDigits(v, p, compFractional);
    }
  }
  return DEC.toString('latin1', start, p);
}

/** NEWDECIMAL as zongji's parseNewDecimal text, by its string arithmetic (decimal's fallback, and its reference in tests). */
export function decimalText(buf: Buffer, off: number, c: Pick<ColPlan, 'a' | 'b' | 'c' | 'd' | 'e'>): string {
  const scale = c.a; const uncompIntegral = c.b; const compIntegral = c.c; const uncompFractional = c.d; const compFractional = c.e;
  const ci = DIG2BYTES[compIntegral]!; const cf = DIG2BYTES[compFractional]!;
  const positive = (buf[off]! & 0x80) === 0x80;
  const mask = positive ? 0 : -1;
  let pos = 0;
  let intDigits = '';
  if (ci > 0) { intDigits += (decimalGroup(buf, off, 0, ci) ^ mask).toString(10); pos += ci; }
  for (let i = 0; i < uncompIntegral; i++) { intDigits += zeroPad((decimalGroup(buf, off, pos, 4) ^ mask).toString(10), 9); pos += 4; }
  intDigits = stripZeros(intDigits);
  if (intDigits === '') intDigits = '0';
  let fractionDigits = '';
  for (let k = 0; k < uncompFractional; k++) { fractionDigits += zeroPad((decimalGroup(buf, off, pos, 4) ^ mask).toString(10), 9); pos += 4; }
  if (cf > 0) fractionDigits += zeroPad((decimalGroup(buf, off, pos, cf) ^ mask).toString(10), compFractional);
  let str = (positive ? '' : '-') + intDigits;
  if (scale > 0) str += '.' + fractionDigits;
  return str;
}

/** The decoder's NEWDECIMAL text of the value at buf[off] (tests: decimal against decimalText). */
export function decimalAt(buf: Buffer, off: number, c: Pick<ColPlan, 'a' | 'b' | 'c' | 'd' | 'e'>): string {
  return decimal(buf, off, c as ColPlan, scratch);
}

/** zongji's readTemporalFraction value (digits after the point), or -1 for none; `fsp` > 0. */
function fraction(buf: Buffer, off: number, fsp: number): number {
  let f = readIntBE(buf, off, (fsp + 1) >> 1);
  if (fsp % 2 !== 0) f /= 10;
  if (f < 0) f *= -1;
  return f;
}

let lastDay = NaN;
let lastDayText = '';
let lastY = 0; let lastMo = 0; let lastD = 0;

const TEN = [1, 10, 100, 1000, 10000, 100000, 1000000];
const DT = Buffer.alloc(32);
/** Writes `n` as `width` digits ending before `end`. */
function digitsAt(n: number, end: number, width: number): void {
  for (let i = end - 1; i >= end - width; i--) { DT[i] = 48 + (n % 10); n = Math.floor(n / 10); }
}

/**
 * "YYYY-MM-DD hh:mm:ss[.f]" as one flat string (concatenation leaves a tree
 * of string pieces, which a row waiting in the capture queue carries through
 * every young-generation collection). The same text as zongji's
 * zeroPad-based formatting for the ranges it accepts; undefined outside
 * them (year above 9999, a fraction that is not an integer of `fsp` digits).
 */
function flatDateTime(y: number, mo: number, d: number, h: number, mi: number, s: number, fsp: number, frac: number): string | undefined {
  if (!(y >= 0 && y <= 9999) || !(mo < 100 && d < 100 && h < 100 && mi < 100 && s < 100)) return undefined;
  if (fsp > 0 && !(Number.isInteger(frac) && frac >= 0 && frac < TEN[fsp]!)) return undefined;
  digitsAt(y, 4, 4); DT[4] = 45; digitsAt(mo, 7, 2); DT[7] = 45; digitsAt(d, 10, 2); DT[10] = 32;
  digitsAt(h, 13, 2); DT[13] = 58; digitsAt(mi, 16, 2); DT[16] = 58; digitsAt(s, 19, 2);
  if (fsp === 0) return DT.toString('latin1', 0, 19);
  DT[19] = 46;
  digitsAt(frac, 20 + fsp, fsp);
  return DT.toString('latin1', 0, 20 + fsp);
}

/** TIMESTAMP2 text as zongji's getTimeStamp (dateStrings, timezone 'Z'). */
function timestampText(secs: number, fsp: number, frac: number): string {
  const fracText = fsp > 0 ? '.' + zeroPad(frac, fsp) : '';
  if (secs === 0 && (fsp === 0 || frac === 0)) return '0000-00-00 00:00:00' + fracText;
  // The fraction (< 1 s) never moves the whole second: date parts come from the seconds alone.
  const day = Math.floor(secs / 86400);
  if (day !== lastDay) {
    const d = new Date(day * 86400000);
    lastY = d.getUTCFullYear(); lastMo = d.getUTCMonth() + 1; lastD = d.getUTCDate();
    lastDayText = pad4(lastY) + '-' + pad2(lastMo) + '-' + pad2(lastD);
    lastDay = day;
  }
  const s = secs - day * 86400;
  const flat = flatDateTime(lastY, lastMo, lastD, Math.floor(s / 3600), Math.floor(s / 60) % 60, s % 60, fsp, frac);
  if (flat !== undefined) return flat;
  return lastDayText + ' ' + pad2(Math.floor(s / 3600)) + ':' + pad2(Math.floor(s / 60) % 60) + ':' + pad2(s % 60) + fracText;
}

const scratch = { n: 0 };

/**
 * One row image at the parser's offset, as zongji's readRow returns it
 * (`plan` from planFor, `bitmap` the event's columns-present bitmap,
 * `nullBytes` the size of the row's null bitmap).
 */
export function decodeRow(parser: ZjParser, table: TablePlan, bitmap: Buffer, nullBytes: number): Record<string, unknown> {
  const buf = parser._buffer;
  const nullAt = parser._offset;
  let off = nullAt + nullBytes;
  const plan = table.cols;
  const row = table.newRow();
  for (let i = 0, nb = 0; i < plan.length; i++) {
    const c = plan[i]!;
    if ((bitmap[i >> 3]! & (1 << (i & 7))) === 0) { row[c.name] = null; continue; }
    if ((buf[nullAt + (nb >> 3)]! & (1 << (nb & 7))) !== 0) { row[c.name] = null; nb++; continue; }
    nb++;
    let v: unknown;
    switch (c.op) {
      case Op.Tiny: v = buf.readInt8(off); off += 1; break;
      case Op.TinyU: v = buf[off]; off += 1; break;
      case Op.Short: v = buf.readInt16LE(off); off += 2; break;
      case Op.ShortU: v = buf.readUInt16LE(off); off += 2; break;
      case Op.Int24: v = buf.readIntLE(off, 3); off += 3; break;
      case Op.Int24U: v = buf.readUIntLE(off, 3); off += 3; break;
      case Op.Long: v = buf.readInt32LE(off); off += 4; break;
      case Op.LongU: v = buf.readUInt32LE(off); off += 4; break;
      case Op.LongLong: v = int64(buf, off); off += 8; break;
      case Op.LongLongU: v = uint64(buf, off); off += 8; break;
      case Op.Float: v = buf.readFloatLE(off); off += 4; break;
      case Op.Double: v = buf.readDoubleLE(off); off += 8; break;
      case Op.Decimal: v = decimal(buf, off, c, scratch); off += scratch.n; break;
      case Op.Year: v = buf[off]! + 1900; off += 1; break;
      case Op.Bit: v = buf.slice(off, off + c.a); off += c.a; break;
      case Op.Enum: {
        const raw = c.a === 1 ? buf[off]! : buf.readUInt16LE(off);
        off += c.a;
        const choices = c.schema.ENUM_VALUES || enumLabels(c.schema.COLUMN_TYPE);
        v = choices[raw - 1];
        break;
      }
      case Op.Date: {
        const raw = buf.readUIntLE(off, 3);
        off += 3;
        v = zeroPad(raw >> 9, 4) + '-' + pad2((raw >> 5) & 15) + '-' + pad2(raw & 31);
        break;
      }
      case Op.Time2: {
        let raw = readIntBE(buf, off, 3);
        off += 3;
        const fsp = c.a;
        const frac = fsp > 0 ? fraction(buf, off, fsp) : -1;
        if (fsp > 0) off += (fsp + 1) >> 1;
        const negative = (raw & (1 << 23)) === 0;
        if (negative) raw = raw ^ ((1 << 24) - 1);
        const hour = (raw & 0x3ff000) >> 12;
        const minute = (raw & 0xfc0) >> 6;
        let second = raw & 0x3f;
        if (negative && (frac === -1 || frac === 0)) second++;
        v = (negative ? '-' : '') + zeroPad(hour, hour > 99 ? 3 : 2) + ':' + pad2(minute) + ':' + pad2(second)
          + (fsp > 0 ? '.' + zeroPad(frac, fsp) : '');
        break;
      }
      case Op.DateTime2: {
        const high = readIntBE(buf, off, 4);
        const low = readIntBE(buf, off + 1, 4);
        off += 5;
        const fsp = c.a;
        let frac = 0;
        if (fsp > 0) { frac = fraction(buf, off, fsp); off += (fsp + 1) >> 1; }
        const yearMonth = (high & 0x7fffc000) >> 14;
        v = flatDateTime(Math.floor(yearMonth / 13), yearMonth % 13, (low & 0x3e0000) >> 17, (low & 0x1f000) >> 12, (low & 0xfc0) >> 6, low & 0x3f, fsp, frac);
        if (v !== undefined) break;
        const fracText = fsp > 0 ? '.' + zeroPad(frac, fsp) : '';
        v = zeroPad(Math.floor(yearMonth / 13), 4) + '-' + pad2(yearMonth % 13) + '-' + pad2((low & 0x3e0000) >> 17) + ' '
          + pad2((low & 0x1f000) >> 12) + ':' + pad2((low & 0xfc0) >> 6) + ':' + pad2(low & 0x3f) + fracText;
        break;
      }
      case Op.Timestamp2: {
        const secs = readIntBE(buf, off, 4);
        off += 4;
        const fsp = c.a;
        let frac = 0;
        if (fsp > 0) { frac = fraction(buf, off, fsp); off += (fsp + 1) >> 1; }
        v = timestampText(secs, fsp, frac);
        break;
      }
      case Op.Text1: { const n = buf[off]!; off += 1; v = buf.toString('utf8', off, off + n); off += n; break; }
      case Op.Text2: { const n = buf.readUInt16LE(off); off += 2; v = buf.toString('utf8', off, off + n); off += n; break; }
      case Op.VarBin1: { const n = buf[off]!; off += 1; v = buf.slice(off, off + n); off += n; break; }
      case Op.VarBin2: { const n = buf.readUInt16LE(off); off += 2; v = buf.slice(off, off + n); off += n; break; }
      case Op.Bin1: case Op.Bin2: {
        let n: number;
        if (c.op === Op.Bin1) { n = buf[off]!; off += 1; } else { n = buf.readUInt16LE(off); off += 2; }
        const b = Buffer.alloc(c.a, 0);
        buf.copy(b, 0, off, off + n);
        off += n;
        v = b;
        break;
      }
      case Op.Blob: case Op.BlobText: {
        const n = buf.readUIntLE(off, c.a);
        off += c.a;
        v = c.op === Op.Blob ? buf.slice(off, off + n) : buf.toString('utf8', off, off + n);
        off += n;
        break;
      }
    }
    row[c.name] = v;
  }
  parser._offset = off;
  return row;
}

/**
 * Whether every value `plan` decodes is already the one mysql-values.ts toValue makes of it under `present` (the
 * columns the rows are typed by, in the plan's order): integers other than YEAR (a Number, or the exact text of a
 * BIGINT beyond 2^53, which intValue keeps), DOUBLE, NEWDECIMAL text, DATE and DATETIME text, UTF-8 text; NULL
 * everywhere. The mapper then takes the decoded rows as the change's rows instead of copying each into a new
 * object value by value (issue 12: that copy was a twentieth of the MariaDB -> MariaDB apply bench's process and
 * an object per row image). Remembered per plan for the last column list asked about.
 */
export function decodedIsFinal(plan: TablePlan, present: readonly ColumnType[]): boolean {
  const cols = plan.cols;
  if (present.length !== cols.length) return false;
  const last = finalChecked.get(plan);
  if (last !== undefined && last.present.length === present.length && last.present.every((c, i) => c === present[i])) return last.final;
  let final = true;
  for (let i = 0; i < cols.length && final; i++) final = cols[i]!.name === present[i]!.name && finalPair(cols[i]!.op, present[i]!);
  finalChecked.set(plan, { present: [...present], final });
  return final;
}

const finalChecked = new WeakMap<TablePlan, { present: ColumnType[]; final: boolean }>();

function finalPair(op: Op, col: ColumnType): boolean {
  switch (op) {
    case Op.Tiny: case Op.TinyU: case Op.Short: case Op.ShortU: case Op.Int24: case Op.Int24U:
    case Op.Long: case Op.LongU: case Op.LongLong: case Op.LongLongU:
      return col.kind === 'int' && col.family !== 'year';
    case Op.Double: return col.kind === 'float' && col.size === 8;
    case Op.Decimal: return col.kind === 'decimal';
    case Op.Date: return col.kind === 'date';
    case Op.DateTime2: return col.kind === 'datetime';
    case Op.Text1: case Op.Text2: case Op.BlobText: return col.kind === 'text';
    default: return false;
  }
}

/** zongji's parseSetEnumTypeDef(type, 5), for when the labels did not come with the table map. */
const enumCache = new Map<string, string[]>();
function enumLabels(type: string): string[] {
  let labels = enumCache.get(type);
  if (!labels) {
    labels = type.substr(5, type.length - 5 - 1).split(',').map((opt) => (opt[0] === '"' || opt[0] === "'" ? opt.substr(1, opt.length - 2) : opt));
    enumCache.set(type, labels);
  }
  return labels;
}
